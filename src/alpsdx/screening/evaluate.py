"""How well the screen finds ALPS: sensitivity, precision at top-k and lead time.

Truth is either a ``truth.csv`` written by :mod:`alpsdx.screening.synthetic` (the planted
ALPS-like persons: ``person_id,onset_date,diagnosis_date``) or, without it, the persons the
warehouse itself codes with ALPS (D89.82).

* **sensitivity**: planted (or diagnosed) persons whose score reaches the flag threshold,
  over all planted (diagnosed) persons.
* **precision@k**: among the top k of the ranked *undiagnosed* list, the share that are
  planted persons (needs a truth file: in a real warehouse an undiagnosed case is unknown).
* **lead time**: for persons with an ALPS diagnosis code, months from the day the screen
  would first have flagged them (the earliest date their points reached the threshold) to
  the first D89.82 record; positive = flagged before diagnosis. Months are 30.44 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alpsdx.errors import InputError
from alpsdx.screening.screen import ScreenResult

__all__ = ["Evaluation", "evaluate", "read_truth"]

DAYS_PER_MONTH = 30.436875


@dataclass
class Evaluation:
    """Metrics of one screen run against its truth."""

    truth_source: str
    cases: int
    flagged_cases: int
    sensitivity: float | None
    precision_at_k: dict[int, float | None]
    diagnosed_cases: int
    flagged_before_diagnosis: int
    lead_time_months: dict[str, float | None]
    flag_threshold: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "truth": self.truth_source,
            "flag_threshold": self.flag_threshold,
            "cases": self.cases,
            "flagged_cases": self.flagged_cases,
            "sensitivity": self.sensitivity,
            "precision_at_k": {str(k): v for k, v in self.precision_at_k.items()},
            "diagnosed_cases": self.diagnosed_cases,
            "flagged_before_diagnosis": self.flagged_before_diagnosis,
            "lead_time_months": self.lead_time_months,
            "notes": self.notes,
        }


def read_truth(path: str | Path) -> pd.DataFrame:
    """Read a truth CSV with at least a ``person_id`` column (typed error otherwise)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("truth file not found", field="truth", value=str(path),
                         expected="a CSV with a person_id column (e.g. truth.csv from 'screen synth')")
    try:
        df = pd.read_csv(p, dtype={"person_id": "string"})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"truth file is not a readable CSV: {exc}", field="truth", value=p.name) from exc
    if "person_id" not in df.columns:
        raise InputError("truth file lacks a person_id column", field="truth", value=list(df.columns),
                         expected="a person_id column")
    ids = pd.to_numeric(df["person_id"], errors="coerce")
    bad = df["person_id"][ids.isna()]
    if len(bad):
        raise InputError("person_id must be an integer", field="truth.person_id", value=str(bad.iloc[0]),
                         expected="integer person_id values")
    df["person_id"] = ids.astype("int64")
    return df


def evaluate(result: ScreenResult, *, truth: pd.DataFrame | None = None,
             ks: Sequence[int] = (10, 50, 100)) -> Evaluation:
    """Metrics of ``result`` (run with ``top=None`` so the whole ranked list is present)."""
    people = result.people[result.people.in_person_table.astype(bool)]
    threshold = result.spec.flag_threshold
    notes: list[str] = []
    diagnosed = people[people.alps_first_day.notna()]
    if truth is not None:
        case_ids = set(truth.person_id.astype("int64"))
        source = "truth file"
    else:
        case_ids = set(diagnosed.person_id.astype("int64"))
        source = "ALPS diagnosis codes (D89.82) in the warehouse"
        notes.append("no truth file: precision@k needs one (undiagnosed cases are unknown)")
    cases = people[people.person_id.isin(case_ids)]
    flagged = int((cases.score >= threshold).sum())
    n_cases = len(case_ids)
    sens = flagged / n_cases if n_cases else None
    prec: dict[int, float | None] = {}
    ranked = result.ranked
    for k in ks:
        if k < 1:
            raise InputError("k must be positive", field="k", value=k, expected=">= 1")
        if truth is None or len(ranked) == 0:
            prec[k] = None
            continue
        top = ranked.head(k)
        prec[k] = float(top.person_id.isin(case_ids).sum()) / len(top)
    if truth is not None and len(ranked) < max(ks, default=0):
        notes.append(f"only {len(ranked)} persons ranked: precision@k uses fewer than k")
    dx = diagnosed[diagnosed.person_id.isin(case_ids)] if truth is not None else diagnosed
    lead = (dx.alps_first_day.astype("float64") - dx.flag_day.astype("float64")) / DAYS_PER_MONTH
    before = lead[lead > 0]
    lt: dict[str, float | None] = {
        "median": float(before.median()) if len(before) else None,
        "mean": float(before.mean()) if len(before) else None,
        "min": float(before.min()) if len(before) else None,
        "max": float(before.max()) if len(before) else None,
    }
    return Evaluation(
        truth_source=source, cases=n_cases, flagged_cases=flagged, sensitivity=sens,
        precision_at_k=prec, diagnosed_cases=len(dx), flagged_before_diagnosis=len(before),
        lead_time_months=lt, flag_threshold=threshold, notes=notes,
    )
