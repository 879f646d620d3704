"""Time to response across a group of cases (Kaplan-Meier, lifelines).

IWG 2009 (Rodeghiero) notes that time-to-response outcomes are represented collectively
with Kaplan-Meier analysis. For each case whose lineage was cytopenic at the start of the
course, the time from the start to the first confirmed response (partial or complete, as
:mod:`alpsdx.care.response` defines them) is an event; a case without a confirmed response
is censored at its last count after the start. Cases not cytopenic at baseline, without a
course or without any follow-up count are listed as excluded, with the reason.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from alpsdx.care.response import LINEAGES, assess_lineage
from alpsdx.care.settings import CareSettings
from alpsdx.errors import InputError
from alpsdx.model import Case

__all__ = ["TimeToResponse", "kaplan_meier_time_to_response", "time_to_response"]


@dataclass(frozen=True)
class TimeToResponse:
    case_id: str
    days: int
    responded: bool
    course_start: dt.date


def time_to_response(case: Case, analyte: str, level: Literal["partial", "complete"] = "partial",
                     settings: CareSettings | None = None) -> TimeToResponse | str:
    """The case's time to response (event) or censoring time; a string says why it is excluded."""
    if analyte not in LINEAGES:
        raise InputError("unknown lineage analyte", field="analyte", value=analyte, expected=" | ".join(LINEAGES))
    r = assess_lineage(case, analyte, settings)
    if r is None:
        return "no treatment course or no dated counts"
    if r.status in ("not_cytopenic_at_baseline", "no_follow_up", "no_baseline"):
        return r.status.replace("_", " ")
    days = r.time_to_complete_days if level == "complete" else r.time_to_response_days
    if days is not None:
        return TimeToResponse(case.id, days, True, r.course.start)
    last = max(dt.date.fromisoformat(e["date"]) for e in r.evidence if e.get("date"))  # last count after start
    return TimeToResponse(case.id, (last - r.course.start).days, False, r.course.start)


def kaplan_meier_time_to_response(cases: Iterable[Case], analyte: str,
                                  level: Literal["partial", "complete"] = "partial",
                                  settings: CareSettings | None = None,
                                  at_days: tuple[int, ...] = (30, 90, 180, 365)) -> dict[str, Any]:
    """Kaplan-Meier estimate of the cumulative probability of response over time."""
    from lifelines import KaplanMeierFitter

    rows: list[TimeToResponse] = []
    excluded: list[dict[str, str]] = []
    for c in cases:
        t = time_to_response(c, analyte, level, settings)
        if isinstance(t, str):
            excluded.append({"case_id": c.id, "reason": t})
        else:
            rows.append(t)
    out: dict[str, Any] = {
        "analyte": analyte, "lineage": LINEAGES[analyte], "level": level, "n": len(rows),
        "events": sum(r.responded for r in rows), "excluded": excluded,
        "cases": [{"case_id": r.case_id, "days": r.days, "responded": r.responded,
                   "course_start": r.course_start.isoformat()} for r in rows],
        "method": "Kaplan-Meier (lifelines): response = event, no confirmed response = censored at the last count",
        "citation": "rodeghiero2009",
    }
    if not rows:
        out.update({"median_days": None, "cumulative_response": {}, "timeline": []})
        return out
    kmf = KaplanMeierFitter()
    kmf.fit([r.days for r in rows], event_observed=[r.responded for r in rows])
    med = float(kmf.median_survival_time_)
    out["median_days"] = None if math.isinf(med) else med
    surv = kmf.survival_function_at_times(list(at_days))
    out["cumulative_response"] = {str(d): round(1.0 - float(v), 6) for d, v in zip(at_days, surv, strict=True)}
    sf = kmf.survival_function_
    out["timeline"] = [{"day": float(t), "cumulative_response": round(1.0 - float(v), 6)}
                       for t, v in zip(sf.index, sf.iloc[:, 0], strict=True)]
    return out
