"""A de-identified research cohort from the registry (``alpsdx export --deidentify``).

Per patient, in the output:

- the case identifier is replaced by a random pseudonym (``deid-`` + 10 hex digits) that is
  not derived from any identifier and is not kept anywhere, so it cannot be mapped back;
- every date (birth date, evaluation date, observation, finding onset/date, assay,
  variant report, medication start/end, clinical event) is moved back in time by the same
  random number of days, drawn per patient from 365..1095 (1-3 years). Intervals within a
  patient — ages, durations, the 6-month chronicity rule, trends — are unchanged, so the
  criteria give the same answer on the shifted case; dates never move into the future;
- free text that may carry identifiers is removed: observation and variant ``source``,
  assay ``lab``, clinical-event ``note``, and a variant ``sample`` that is not a plain
  vocabulary word (``whole_blood``, ``sorted_dnt``);
- an age of 90 years or more at the evaluation date is reported as ``age_years: 90`` with no
  birth date (the HIPAA Safe Harbor aggregation of ages over 89);
- uploaded files, file names, user names and timestamps of the registry's own bookkeeping
  are not exported at all.

Shifting dates is the usual approach for longitudinal research extracts; it is *not* the
HIPAA Safe Harbor method (which keeps no element of a date but the year), so treat the
output as a limited data set under a data-use agreement, not as public data.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator, Mapping
from random import Random
from typing import Any

from alpsdx.model import Case, case_from_dict

__all__ = ["MAX_SHIFT_DAYS", "MIN_SHIFT_DAYS", "deidentify_case", "deidentify_cohort", "new_pseudonym", "shift_days"]

MIN_SHIFT_DAYS = 365
MAX_SHIFT_DAYS = 1095
AGE_CAP_YEARS = 90
_VOCAB = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# (list field of the case, key to drop from each item)
_FREE_TEXT = (("observations", "source"), ("variants", "source"), ("apoptosis_assays", "lab"),
              ("clinical_events", "note"))


def shift_days(rng: Random | None = None) -> int:
    """A per-patient shift: a negative number of days in [-MAX_SHIFT_DAYS, -MIN_SHIFT_DAYS]."""
    r = rng or secrets.SystemRandom()
    return -r.randint(MIN_SHIFT_DAYS, MAX_SHIFT_DAYS)


def new_pseudonym(rng: Random | None = None) -> str:
    r = rng or secrets.SystemRandom()
    return f"deid-{r.getrandbits(40):010x}"


def _shift(obj: Any, delta: dt.timedelta) -> Any:
    if isinstance(obj, dt.datetime):
        return obj + delta
    if isinstance(obj, dt.date):
        return obj + delta
    if isinstance(obj, Mapping):
        return {k: _shift(v, delta) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_shift(v, delta) for v in obj]
    return obj


def deidentify_case(case: Case, *, pseudonym: str, shift: int, as_of: dt.date | None = None) -> dict[str, Any]:
    """The case as case-format JSON, de-identified (see the module docstring).

    ``as_of`` is the date the case was evaluated on (its ``evaluation_date`` when it has
    one); it is written, shifted, as ``evaluation_date`` so the output reproduces the
    evaluation. ``shift`` is in days and must be negative (into the past).
    """
    if shift >= 0:
        raise ValueError("the date shift must move dates into the past (a negative number of days)")
    data: dict[str, Any] = case.model_dump(mode="python", exclude_none=True)
    when = case.evaluation_date or as_of
    if when is not None:
        data["evaluation_date"] = when
    data["id"] = pseudonym
    for field, key in _FREE_TEXT:
        for item in data.get(field, ()):
            item.pop(key, None)
    for v in data.get("variants", ()):
        if "sample" in v and not _VOCAB.match(str(v["sample"])):
            v.pop("sample")
    age = case.at(when).age if when is not None else case.age_years
    if age is not None and age >= AGE_CAP_YEARS:
        data.pop("birth_date", None)
        data["age_years"] = float(AGE_CAP_YEARS)
    shifted = _shift(data, dt.timedelta(days=shift))
    # Validate: the output must itself be a valid case file.
    return case_from_dict(shifted, source="de-identified export").to_json_dict()


def _evaluation_summary(ev: Mapping[str, Any] | None, shift: int) -> dict[str, Any] | None:
    if not ev:
        return None
    result = ev.get("result") or {}
    when = dt.date.fromisoformat(str(ev["evaluation_date"])) + dt.timedelta(days=shift)
    return {
        "criteria_set": ev.get("criteria_set"),
        "category": ev.get("category"),
        "subtype": ev.get("subtype"),
        "kb_version": ev.get("kb_version"),
        "evaluation_date": when.isoformat(),
        "other_sets": {str(o.get("criteria_set")): o.get("category") for o in result.get("other_sets", ()) or ()
                       if isinstance(o, Mapping)},
    }


def deidentify_cohort(records: Iterator[tuple[Case, Mapping[str, Any] | None]], rng: Random | None = None
                      ) -> list[dict[str, Any]]:
    """``{"case": ..., "evaluation": ...}`` per patient, in pseudonym order (not registry order).

    ``records`` yields each patient's case and newest stored evaluation (with ``result``).
    """
    out: list[dict[str, Any]] = []
    used: set[str] = set()
    for case, ev in records:
        pseudonym = new_pseudonym(rng)
        while pseudonym in used:
            pseudonym = new_pseudonym(rng)
        used.add(pseudonym)
        shift = shift_days(rng)
        as_of = dt.date.fromisoformat(str(ev["evaluation_date"])) if ev else None
        out.append({"case": deidentify_case(case, pseudonym=pseudonym, shift=shift, as_of=as_of),
                    "evaluation": _evaluation_summary(ev, shift)})
    out.sort(key=lambda r: r["case"]["id"])
    return out

