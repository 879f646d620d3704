"""Validated reading of the dated clinical events the care module uses.

A measurement the care rules cannot place or compare is refused with a typed error naming
the event, never dropped in silence: ``node_size``/``spleen_size`` need a date, a value and
a unit of cm or mm; ``pet_suv`` needs a date and a value (SUVmax, no unit); ``b_symptoms``
needs a date (whether symptoms are *new* depends on it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from alpsdx.errors import InputError
from alpsdx.model import Case, ClinicalEvent

__all__ = ["Measurement", "dated_events", "measurements"]

_LENGTH = {"cm": 1.0, "mm": 0.1}


@dataclass(frozen=True)
class Measurement:
    """One measured event; ``value`` in cm for sizes, SUVmax for PET."""

    date: dt.date
    site: str
    value: float
    event: ClinicalEvent


def measurements(case: Case, kind: str) -> list[Measurement]:
    """The case's ``kind`` measurements up to the evaluation date, oldest first."""
    out: list[Measurement] = []
    for i, e in enumerate(case.clinical_events):
        if e.kind != kind:
            continue
        where = f"clinical_events[{i}]"
        if e.date is None:
            raise InputError(f"a {kind} event needs a date to be compared over time", field=f"{where}.date")
        if e.value is None:
            raise InputError(f"a {kind} event needs a value", field=f"{where}.value",
                             expected="SUVmax" if kind == "pet_suv" else "size in cm or mm")
        if e.date > case.as_of:
            continue
        value = e.value
        if kind in ("node_size", "spleen_size"):
            unit = (e.unit or "").strip().lower()
            if unit not in _LENGTH:
                raise InputError(f"unit of a {kind} event", field=f"{where}.unit", value=e.unit, expected="cm | mm")
            value = e.value * _LENGTH[unit]
        elif e.unit not in (None, "", "1", "{SUV}", "SUV", "suv"):
            raise InputError("a pet_suv value is an SUVmax without unit", field=f"{where}.unit", value=e.unit,
                             expected="no unit (or 'SUV')")
        default = "spleen" if kind == "spleen_size" else "unspecified node"
        out.append(Measurement(e.date, (e.site or default).strip(), float(value), e))
    return sorted(out, key=lambda m: m.date)


def dated_events(case: Case, kind: str, *, require_date: bool = False) -> list[ClinicalEvent]:
    """Events of ``kind`` up to the evaluation date (undated ones kept unless a date is required)."""
    out: list[ClinicalEvent] = []
    for i, e in enumerate(case.clinical_events):
        if e.kind != kind:
            continue
        if e.date is None:
            if require_date:
                raise InputError(f"a {kind} event needs a date", field=f"clinical_events[{i}].date")
            out.append(e)
        elif e.date <= case.as_of:
            out.append(e)
    return sorted(out, key=lambda e: e.date or dt.date.min)
