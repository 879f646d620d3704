"""OMOP CDM v5.4 input for the screen: which tables and columns it needs, and their types.

Tables come from a folder of Parquet/CSV files, a DuckDB database file or a Spark catalog
(see :mod:`alpsdx.screening.backends`). Every table is checked for the columns the screen
reads; anything missing raises :class:`alpsdx.errors.OMOPError` naming the table, the
missing columns and what is needed. Columns are then cast to one set of types, so CSV
extracts (where a CPT code may be read as an integer and a date as text) behave like
Parquet and like a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from alpsdx.errors import OMOPError

__all__ = [
    "CLINICAL_TABLES",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "VOCABULARY_TABLES",
    "OmopTables",
    "normalise_table",
    "validate",
]

# Columns the screen reads, with the type each is cast to (OMOP CDM v5.4 names).
REQUIRED_COLUMNS: dict[str, dict[str, str]] = {
    "person": {"person_id": "int64", "year_of_birth": "int64", "gender_concept_id": "int64"},
    "observation_period": {
        "person_id": "int64",
        "observation_period_start_date": "date",
        "observation_period_end_date": "date",
    },
    "condition_occurrence": {
        "person_id": "int64",
        "condition_concept_id": "int64",
        "condition_start_date": "date",
        "condition_source_value": "string",
    },
    "measurement": {
        "person_id": "int64",
        "measurement_concept_id": "int64",
        "measurement_date": "date",
        "value_as_number": "float64",
        "unit_concept_id": "int64",
        "unit_source_value": "string",
        "measurement_source_value": "string",
    },
    "drug_exposure": {
        "person_id": "int64",
        "drug_concept_id": "int64",
        "drug_exposure_start_date": "date",
        "drug_source_value": "string",
    },
    "procedure_occurrence": {
        "person_id": "int64",
        "procedure_concept_id": "int64",
        "procedure_date": "date",
        "procedure_source_value": "string",
    },
    "observation": {
        "person_id": "int64",
        "observation_concept_id": "int64",
        "observation_date": "date",
        "observation_source_value": "string",
    },
    "concept": {
        "concept_id": "int64",
        "concept_name": "string",
        "vocabulary_id": "string",
        "concept_class_id": "string",
        "standard_concept": "string",
        "concept_code": "string",
    },
    "concept_relationship": {
        "concept_id_1": "int64",
        "concept_id_2": "int64",
        "relationship_id": "string",
    },
    "concept_ancestor": {"ancestor_concept_id": "int64", "descendant_concept_id": "int64"},
}

# Read when present (null when absent).
OPTIONAL_COLUMNS: dict[str, dict[str, str]] = {
    "person": {"gender_source_value": "string", "month_of_birth": "int64"},
    "condition_occurrence": {"condition_source_concept_id": "int64"},
    "measurement": {"measurement_source_concept_id": "int64"},
}

CLINICAL_TABLES = (
    "person",
    "observation_period",
    "condition_occurrence",
    "measurement",
    "drug_exposure",
    "procedure_occurrence",
    "observation",
)
# `concept` + `concept_relationship` switch on standard-concept matching; `concept_ancestor`
# adds descendants. Without them the screen matches source codes only.
VOCABULARY_TABLES = ("concept", "concept_relationship", "concept_ancestor")


@dataclass
class OmopTables:
    """The OMOP tables of one warehouse as Ibis tables on one backend connection."""

    con: Any
    tables: dict[str, ir.Table]
    source: str
    backend: str
    notes: list[str] = field(default_factory=list)

    @property
    def has_vocabulary(self) -> bool:
        """True when concept and concept_relationship exist (standard-concept matching)."""
        return "concept" in self.tables and "concept_relationship" in self.tables

    @property
    def has_ancestor(self) -> bool:
        return "concept_ancestor" in self.tables

    def __getitem__(self, name: str) -> ir.Table:
        return self.tables[name]


def _expected(table: str) -> str:
    cols = ", ".join(REQUIRED_COLUMNS[table])
    return f"OMOP CDM v5.4 table {table} with columns {cols}"


def normalise_table(name: str, table: ir.Table) -> ir.Table:
    """Lower-case column names, check required columns, select and cast them.

    Raises :class:`OMOPError` listing every missing column of the table.
    """
    lower = {c.lower(): c for c in table.columns}
    required = REQUIRED_COLUMNS[name]
    missing = [c for c in required if c not in lower]
    if missing:
        raise OMOPError(
            f"table {name} lacks column(s) {', '.join(missing)}",
            field=name,
            value=sorted(lower),
            expected=_expected(name),
        )
    exprs: dict[str, ir.Value] = {}
    for col, typ in {**required, **OPTIONAL_COLUMNS.get(name, {})}.items():
        if col in lower:
            src = table[lower[col]]
            exprs[col] = _cast(src, typ)
        else:
            exprs[col] = ibis.null(typ)
    return table.select(**exprs)


def _cast(col: ir.Value, typ: str) -> ir.Value:
    dtype = col.type()
    if typ == "string":
        if dtype.is_string():
            return col
        if dtype.is_floating():
            # a CSV reader can make "38100" a float; keep the code's text without ".0"
            return col.cast("int64").cast("string")
        return col.cast("string")
    if typ == "date":
        if dtype.is_date():
            return col
        if dtype.is_timestamp():
            return col.date()
        return col.cast("string").left(10).cast("date")
    if str(dtype) == typ or (typ == "int64" and dtype.is_integer() and str(dtype) == "int64"):
        return col
    return col.cast(typ)


def validate(
    raw: Mapping[str, ir.Table], *, source: str, notes: list[str] | None = None
) -> dict[str, ir.Table]:
    """Check that every clinical table exists and normalise all tables found.

    Vocabulary tables are optional; a partial vocabulary (concept without
    concept_relationship) is set aside with a note in ``notes`` (source-code matching).
    """
    notes = notes if notes is not None else []
    present = {k.lower(): v for k, v in raw.items()}
    missing = [t for t in CLINICAL_TABLES if t not in present]
    if missing:
        needed = "; ".join(_expected(t) for t in missing)
        raise OMOPError(
            f"OMOP input {source} lacks table(s) {', '.join(missing)}",
            field="omop",
            value=sorted(present),
            expected=needed,
        )
    if ("concept" in present) != ("concept_relationship" in present):
        have = "concept" if "concept" in present else "concept_relationship"
        notes.append(
            f"only {have} of the vocabulary tables is present: matching by source codes "
            "(standard-concept matching needs both concept and concept_relationship)"
        )
        present.pop("concept", None)
        present.pop("concept_relationship", None)
        present.pop("concept_ancestor", None)
    out: dict[str, ir.Table] = {}
    for name in (*CLINICAL_TABLES, *VOCABULARY_TABLES):
        if name in present:
            out[name] = normalise_table(name, present[name])
    return out
