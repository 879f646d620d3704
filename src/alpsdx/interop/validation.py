"""Validation of FHIR resources with ``fhir.resources`` (R4B models), mapped to ``FHIRError``.

Which models: ``fhir.resources`` 8.x ships FHIR R5 at its top level and the R4B (4.3.0)
models under ``fhir.resources.R4B``. R4B is R4 (4.0.1) with a small set of additive changes;
every resource and element alpsdx reads or writes (Patient, Observation, Condition,
Procedure, MedicationStatement/Request, FamilyMemberHistory, DiagnosticReport, DetectedIssue,
CommunicationRequest, Bundle, CapabilityStatement) is structurally identical in R4 and R4B,
so the R4B models validate R4 content; the R5 models would not (e.g. R5 renamed
MedicationStatement.medication[x] to a CodeableReference). The package has no R4 (4.0.1)
model set, which is why R4B is used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import cache
from typing import Any

from pydantic import ValidationError

from alpsdx.errors import FHIRError

__all__ = ["model_class", "validate_resource"]


@cache
def model_class(resource_type: str) -> Any:
    """The R4B model class for a resource type; ``FHIRError`` for an unknown type."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        raise FHIRError("unknown FHIR resource type", field="resourceType", value=resource_type) from None


# Content-addressed cache of resources that validated: an EHR sends the same resources every
# time a chart is opened, and identical JSON validates identically. Only successes are kept.
_CACHE_MAX = 8192
_VALID: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()


def _key(resource: dict[str, Any]) -> str:
    # The resource's repr, key order as sent: an EHR re-sends a resource serialised the same
    # way, and for JSON-parsed data (str, int, float, bool, None, list, dict) repr is exact
    # and twice as fast as json.dumps. A reordered resource only misses the cache.
    return repr(resource)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validate_resource(resource: Any, where: str) -> Any:
    """Validate one resource dict against its R4B model.

    ``where`` names it for the user (e.g. ``Bundle.entry[3]``); the error gives the resource
    type, its id and the failing element path, e.g.
    ``Bundle.entry[3] Observation/abc.valueQuantity.value: ...``.
    """
    if not isinstance(resource, dict):
        raise FHIRError("a FHIR resource must be a JSON object", field=where, value=type(resource).__name__)
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise FHIRError("resource has no resourceType", field=where)
    rid = resource.get("id")
    label = f"{where} {rtype}/{rid}" if rid else f"{where} {rtype}"
    cls = model_class(rtype)
    key = _key(resource)
    with _LOCK:
        hit = _VALID.get(key)
        if hit is not None:
            _VALID.move_to_end(key)
            return hit
    try:
        model = cls.model_validate(resource)
        with _LOCK:
            _VALID[key] = model
            while len(_VALID) > _CACHE_MAX:
                _VALID.popitem(last=False)
        return model
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        path = _loc(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        value = err.get("input")
        if isinstance(value, dict | list):
            value = None
        field = f"{label}.{path}" if path else label
        raise FHIRError(f"invalid FHIR R4 resource: {msg}", field=field, value=value) from None
    except FHIRError:
        raise
    except Exception as exc:  # fhir.resources raises a few non-pydantic errors too
        raise FHIRError(f"invalid FHIR R4 resource: {exc}", field=label) from None
