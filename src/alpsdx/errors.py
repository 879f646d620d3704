"""One exception root for alpsdx, with a family per layer.

Every error names the field (or keyword), the value it saw and what was expected, so a
user can fix the input without reading a traceback. Lower-layer exceptions (pydantic,
numpy, SQLAlchemy, fhir.resources, ...) are mapped to these at each boundary.

    AlpsdxError
    ├── InputError            bad user input (case files, CLI arguments, forms)
    │   ├── UnitError         a value in a unit that cannot convert to the analyte's unit
    │   ├── VariantError      HGVS strings and VCF files
    │   ├── FHIRError         FHIR R4 resources and Bundles
    │   ├── CDSHooksError     CDS Hooks requests
    │   └── OMOPError         OMOP CDM tables handed to the screen
    ├── FlowError             flow cytometry
    │   ├── FCSError          malformed or unsupported FCS files
    │   └── GatingError       gating that cannot proceed (missing marker, empty gate)
    ├── KnowledgeError        a knowledge file that is missing or inconsistent
    ├── StoreError            the registry database
    │   └── NotFoundError     a record that does not exist
    └── AuthError             authentication / authorisation failures
"""

from __future__ import annotations

from typing import Any


class AlpsdxError(Exception):
    """Root of every error alpsdx raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: Any = None,
        expected: str | None = None,
    ) -> None:
        self.message = message
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = []
        if self.field is not None:
            parts.append(f"{self.field}: ")
        parts.append(self.message)
        if self.value is not None:
            parts.append(f" (got {self.value!r})")
        if self.expected is not None:
            parts.append(f"; expected {self.expected}")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for APIs and `--format json` error output."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "field": self.field,
            "value": None if self.value is None else repr(self.value),
            "expected": self.expected,
        }


class InputError(AlpsdxError):
    """Bad user input: a case file, a CLI argument, a form field."""


class UnitError(InputError):
    """A value whose unit cannot be converted to the analyte's canonical unit."""


class VariantError(InputError):
    """A malformed HGVS string or VCF file."""


class FHIRError(InputError):
    """An invalid FHIR resource or Bundle."""


class CDSHooksError(InputError):
    """An invalid CDS Hooks request."""


class OMOPError(InputError):
    """OMOP CDM input that lacks tables or columns the screen needs."""


class FlowError(AlpsdxError):
    """Flow cytometry failures."""


class FCSError(FlowError):
    """A malformed or unsupported FCS file; names the keyword and the values."""


class GatingError(FlowError):
    """Gating that cannot proceed: a missing marker, an empty gate."""


class KnowledgeError(AlpsdxError):
    """A knowledge file that is missing, malformed or inconsistent."""


class StoreError(AlpsdxError):
    """The registry database failed or refused a write."""


class NotFoundError(StoreError):
    """A record that does not exist."""


class AuthError(AlpsdxError):
    """Authentication or authorisation failed."""
