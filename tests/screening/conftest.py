"""Fixtures for the screen: small hand-made OMOP warehouses written as Parquet or CSV."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from alpsdx.screening.omop import CLINICAL_TABLES, REQUIRED_COLUMNS

_TYPES = {"int64": pa.int64(), "date": pa.date32(), "string": pa.string(), "float64": pa.float64()}
_EXTRA = {"person": {"month_of_birth": "int64", "gender_source_value": "string"}}
DEFAULTS: dict[str, dict[str, Any]] = {
    "person": {"gender_concept_id": 0, "month_of_birth": 1, "gender_source_value": "F"},
    "condition_occurrence": {"condition_concept_id": 0},
    "measurement": {"measurement_concept_id": 0, "unit_concept_id": 0},
    "drug_exposure": {"drug_concept_id": 0},
    "procedure_occurrence": {"procedure_concept_id": 0},
    "observation": {"observation_concept_id": 0},
}


def _schema(table: str) -> pa.Schema:
    cols = {**REQUIRED_COLUMNS[table], **_EXTRA.get(table, {})}
    return pa.schema([(c, _TYPES[t]) for c, t in cols.items()])


def _value(v: Any, typ: pa.DataType) -> Any:
    if v is not None and typ == pa.date32() and isinstance(v, str):
        return dt.date.fromisoformat(v)
    return v


def write_omop(folder: Path, rows: dict[str, list[dict[str, Any]]], *, fmt: str = "parquet",
               tables: tuple[str, ...] = CLINICAL_TABLES) -> Path:
    """Write ``tables`` (every clinical table by default) with ``rows`` and the defaults."""
    folder.mkdir(parents=True, exist_ok=True)
    persons = rows.get("person", [])
    for table in tables:
        schema = _schema(table) if table in REQUIRED_COLUMNS else None
        recs = [dict(DEFAULTS.get(table, {}), **r) for r in rows.get(table, [])]
        if table == "observation_period" and "observation_period" not in rows:
            recs = [{"person_id": p["person_id"], "observation_period_start_date": "2010-01-01",
                     "observation_period_end_date": "2024-12-31"} for p in persons]
        assert schema is not None
        data = {f.name: [_value(r.get(f.name), f.type) for r in recs] for f in schema}
        t = pa.table({k: pa.array(v, type=schema.field(k).type) for k, v in data.items()})
        if fmt == "parquet":
            pq.write_table(t, folder / f"{table}.parquet")
        else:
            pacsv.write_csv(t, folder / f"{table}.csv")
    return folder


@pytest.fixture
def omop_dir(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``omop_dir(rows, fmt=..., name=...)`` -> folder of OMOP tables."""
    counter = {"n": 0}

    def make(rows: dict[str, list[dict[str, Any]]], *, fmt: str = "parquet", name: str | None = None,
             tables: tuple[str, ...] = CLINICAL_TABLES) -> Path:
        counter["n"] += 1
        return write_omop(tmp_path / (name or f"omop{counter['n']}"), rows, fmt=fmt, tables=tables)

    return make


def person(pid: int, yob: int = 2010, sex: str = "F", mob: int = 1) -> dict[str, Any]:
    return {"person_id": pid, "year_of_birth": yob, "month_of_birth": mob, "gender_source_value": sex}


def cond(pid: int, code: str, date: str) -> dict[str, Any]:
    return {"person_id": pid, "condition_source_value": code, "condition_start_date": date}


def lab(pid: int, code: str, value: float | None, unit: str | None, date: str) -> dict[str, Any]:
    return {"person_id": pid, "measurement_source_value": code, "value_as_number": value,
            "unit_source_value": unit, "measurement_date": date}


def drug(pid: int, name: str, date: str) -> dict[str, Any]:
    return {"person_id": pid, "drug_source_value": name, "drug_exposure_start_date": date}
