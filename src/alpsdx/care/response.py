"""Response of each cytopenia (and of lymphoproliferation) to treatment, from dated observations.

Definitions, with their sources (``knowledge/data/care_rules.yaml``):

- **Platelets** (IWG, Rodeghiero 2009): complete response (CR) = platelets >= 100 x10^9/L;
  response (R, reported here as "partial") = platelets >= 30 x10^9/L *and* at least twice
  the baseline. Baseline = the count at the start of the treatment. CR/R must be seen on
  two occasions at least 7 days apart; loss of CR/R on two occasions at least 1 day apart.
  Time to response = from the start of treatment to the first count of the confirmed run.
  (IWG also requires the absence of bleeding, which a case file does not record: the
  output says so.)
- **Haemoglobin and ANC**: Bride et al. 2016 define CR as the resolution of the autoimmune
  cytopenias (a normal blood count): CR = Hb not anaemic / ANC not neutropenic for age
  (the performing laboratory's interval on the count when given, else the cited ranges). A partial response is not defined numerically by Bride
  2016: the partial thresholds and the confirmation intervals are labelled site settings.
- **Lymphoproliferation** (node sizes from ``clinical_events``): CR when every measured
  node has resolved, partial when the sum of the largest diameters fell by a set fraction
  from baseline. Bride 2016 reports CR of lymphadenopathy without a numeric rule, so both
  thresholds are labelled site settings.

The treatment assessed is the current sirolimus course (else mycophenolate, else the
most recently started medication); ``treatment_start`` overrides it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from alpsdx import knowledge
from alpsdx.care.events import measurements
from alpsdx.care.items import CareItem
from alpsdx.care.settings import CareSettings
from alpsdx.cytopenias import age_at, observation_evidence, observation_reference, observations
from alpsdx.model import Case, Medication, Observation
from alpsdx.reference_ranges import reference_range

__all__ = [
    "LINEAGES",
    "LineageResponse",
    "NodeResponse",
    "assess_lineage",
    "assess_lymphoproliferation",
    "assess_spleen",
    "response_items",
    "treatment_course",
]

Level = Literal["none", "partial", "complete"]
_RANK: Mapping[str, int] = {"none": 0, "partial": 1, "complete": 2}
LINEAGES: Mapping[str, str] = {"platelets": "thrombocytopenia", "hemoglobin": "anaemia", "anc": "neutropenia"}
_UNITS: Mapping[str, str] = {"platelets": "x10^9/L", "hemoglobin": "g/dL", "anc": "x10^9/L"}
_SIROLIMUS = ("sirolimus", "rapamycin", "rapamune")
_MMF = ("mycophenolate mofetil", "mycophenolate", "mmf", "cellcept")


def _spec() -> Mapping[str, Any]:
    return knowledge.load("care_rules")["response"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Course:
    """The treatment whose response is assessed."""

    drug: str
    start: dt.date
    basis: str


def treatment_course(case: Case, treatment_start: dt.date | None = None) -> Course | None:
    """The course assessed: sirolimus, else MMF, else the newest-started medication.

    A drug's course starts at its earliest recorded start among entries that run, without
    a gap, up to its newest entry (dose changes are new entries of the same course).
    """
    if treatment_start is not None:
        return Course("treatment", treatment_start, "start date given by the user")
    meds = [m for m in case.medications if m.start is not None and m.start <= case.as_of]
    for names in (_SIROLIMUS, _MMF):
        mine = sorted((m for m in meds if m.name in names), key=lambda m: m.start or dt.date.min)
        if mine:
            start = _course_start(mine)
            return Course(mine[-1].name, start, f"start of the current {mine[-1].name} course")
    if meds:
        newest = max(meds, key=lambda m: m.start or dt.date.min)
        assert newest.start is not None
        return Course(newest.name, newest.start, f"start of {newest.name} (the most recently started medication)")
    return None


def _course_start(entries: Sequence[Medication]) -> dt.date:
    start = entries[-1].start
    assert start is not None
    for prev in reversed(entries[:-1]):
        if prev.end is not None and prev.start is not None and prev.end < start - dt.timedelta(days=1):
            break  # a gap: the current course began after it
        if prev.start is not None:
            start = min(start, prev.start)
    return start


@dataclass(frozen=True)
class Event:
    kind: Literal["achieved", "lost", "loss_unconfirmed"]
    level: Level
    date: dt.date
    confirmed_on: dt.date | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "level": self.level, "date": self.date.isoformat(),
                "confirmed_on": None if self.confirmed_on is None else self.confirmed_on.isoformat()}


@dataclass(frozen=True)
class LineageResponse:
    """Response of one lineage. ``status`` is the current confirmed level or a reason."""

    analyte: str
    lineage: str
    status: Literal["complete", "partial", "no_response", "lost", "not_cytopenic_at_baseline", "no_baseline",
                    "no_follow_up"]
    baseline: Observation | None
    course: Course
    events: tuple[Event, ...] = ()
    time_to_response_days: int | None = None
    time_to_complete_days: int | None = None
    best: Level = "none"
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    citation: str = "bride2016"
    settings: tuple[dict[str, Any], ...] = ()
    evidence: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"analyte": self.analyte, "lineage": self.lineage, "status": self.status, "best": self.best,
                "treatment": self.course.drug, "treatment_start": self.course.start.isoformat(),
                "time_to_response_days": self.time_to_response_days,
                "time_to_complete_response_days": self.time_to_complete_days,
                "events": [e.to_dict() for e in self.events], "thresholds": dict(self.thresholds),
                "notes": list(self.notes)}


def _runs(points: Sequence[tuple[dt.date, Level]], ok: Callable[[Level], bool]) -> list[list[tuple[dt.date, Level]]]:
    """Maximal runs of consecutive points for which ``ok`` holds / does not hold, in order."""
    out: list[list[tuple[dt.date, Level]]] = []
    for p in points:
        if out and ok(out[-1][0][1]) == ok(p[1]):
            out[-1].append(p)
        else:
            out.append([p])
    return out


def _events_for(points: Sequence[tuple[dt.date, Level]], level: Level, confirm: int, loss: int) -> list[Event]:
    """Achievement and loss of ``level``: a run at/above it spanning >= ``confirm`` days
    achieves it (dated at the run's first point); after that, a run below it spanning
    >= ``loss`` days (two occasions) loses it; a single low point is an unconfirmed loss."""
    def ok(lv: Level) -> bool:
        return _RANK[lv] >= _RANK[level]

    events: list[Event] = []
    held = False
    for run in _runs(points, ok):
        span = (run[-1][0] - run[0][0]).days
        if ok(run[0][1]):
            if not held and len(run) >= 2 and span >= confirm:
                confirmed = next(d for d, _ in run if (d - run[0][0]).days >= confirm)
                events.append(Event("achieved", level, run[0][0], confirmed))
                held = True
        elif held:
            if len(run) >= 2 and span >= loss:
                confirmed = next(d for d, _ in run[1:] if (d - run[0][0]).days >= loss)
                events.append(Event("lost", level, run[0][0], confirmed))
                held = False
            else:
                events.append(Event("loss_unconfirmed", level, run[0][0]))
    return events


def assess_lineage(case: Case, analyte: str, settings: CareSettings | None = None,
                   treatment_start: dt.date | None = None) -> LineageResponse | None:
    """Response of one lineage to the current course; ``None`` without a course or data."""
    s = settings or CareSettings()
    course = treatment_course(case, treatment_start)
    obs = [o for o in observations(case, analyte) if o.date is not None]
    if course is None or not obs:
        return None
    spec = _spec()["platelets" if analyte == "platelets" else analyte]
    lineage = LINEAGES[analyte]
    before = [o for o in obs if o.date is not None and o.date <= course.start]
    after = [o for o in obs if o.date is not None and o.date > course.start]
    baseline = before[-1] if before else None
    sex = case.sex.value if case.sex.value in ("female", "male") else None
    settings_used: list[dict[str, Any]] = []
    notes: list[str] = []

    def cr_limit(o: Observation) -> float | None:
        if analyte == "platelets":
            return float(spec["complete"]["at_least"])
        rng = observation_reference(o) or reference_range(analyte, age_at(case, o.date), sex)
        return None if rng is None else rng.low

    if analyte == "platelets":
        citation = str(spec["citation"])
        confirm, loss = int(spec["confirm_days"]), int(spec["loss_confirm_days"])
        part_at_least, fold = float(spec["partial"]["at_least"]), float(spec["partial"]["fold_of_baseline"])
        thresholds: dict[str, Any] = {"complete": f">= {spec['complete']['at_least']:g} x10^9/L",
                                      "partial": f">= {part_at_least:g} x10^9/L and >= {fold:g} x baseline (IWG 'response', R)",
                                      "confirm_days": confirm, "loss_confirm_days": loss}
        notes.append("IWG also requires the absence of bleeding, which is not recorded here.")
    else:
        citation = str(spec["complete_citation"])
        key = "hb" if analyte == "hemoglobin" else "anc"
        confirm = int(s.get(f"{key}_confirm_days"))
        loss = int(s.get(f"{key}_loss_confirm_days"))
        settings_used += [s.describe(f"{key}_confirm_days"), s.describe(f"{key}_loss_confirm_days")]
        if analyte == "hemoglobin":
            rise = float(s.get("hb_partial_rise_g_dl"))
            settings_used.append(s.describe("hb_partial_rise_g_dl"))
            thresholds = {"complete": "not anaemic (the lab's interval if reported, else the WHO cut-off for age/sex)",
                          "partial": f"rise >= {rise:g} g/dL from baseline ({s.label('hb_partial_rise_g_dl')})"}
        else:
            part_at_least, fold = float(s.get("anc_partial_at_least")), float(s.get("anc_partial_fold"))
            settings_used += [s.describe("anc_partial_at_least"), s.describe("anc_partial_fold")]
            thresholds = {"complete": "ANC not below the lab's lower limit if reported, else the cited limit for age",
                          "partial": f">= {part_at_least:g} x10^9/L and >= {fold:g} x baseline "
                                     f"({s.label('anc_partial_at_least')})"}
        thresholds.update({"confirm_days": confirm, "loss_confirm_days": loss})

    def level(o: Observation) -> Level:
        v = o.canonical_value
        lim = cr_limit(o)
        if lim is not None and v >= lim:
            return "complete"
        if baseline is None:
            return "none"
        b = baseline.canonical_value
        if analyte == "hemoglobin":
            return "partial" if v - b >= float(s.get("hb_partial_rise_g_dl")) else "none"
        return "partial" if (v >= part_at_least and v >= fold * b) else "none"

    ev = tuple(observation_evidence(o) for o in ([baseline] if baseline else []) + after)
    base = {"analyte": analyte, "lineage": lineage, "baseline": baseline, "course": course,
            "thresholds": thresholds, "citation": citation, "settings": tuple(settings_used), "evidence": ev}
    if baseline is not None and cr_limit(baseline) is not None and level(baseline) == "complete":
        return LineageResponse(status="not_cytopenic_at_baseline", notes=tuple(notes), **base)  # type: ignore[arg-type]
    if baseline is None:
        notes.append("No baseline count (on or before the treatment start): partial response cannot be judged "
                     "(complete response still can).")
    if any(cr_limit(o) is None for o in after[-1:]):
        notes.append(f"No reference range covers this age for {analyte} and none is reported with the count: "
                     "complete response cannot be judged (enter the site laboratory's range).")
    if not after:
        return LineageResponse(status="no_follow_up" if baseline else "no_baseline", notes=tuple(notes),
                               **base)  # type: ignore[arg-type]
    points: list[tuple[dt.date, Level]] = [(o.date, level(o)) for o in after if o.date is not None]
    events = sorted(_events_for(points, "partial", confirm, loss) + _events_for(points, "complete", confirm, loss),
                    key=lambda e: (e.date, _RANK[e.level]))
    achieved = [e for e in events if e.kind == "achieved"]
    best: Level = max((e.level for e in achieved), key=lambda lv: _RANK[lv], default="none")
    first_any = min((e.date for e in achieved), default=None)
    first_cr = min((e.date for e in achieved if e.level == "complete"), default=None)
    held: dict[str, bool] = {"partial": False, "complete": False}
    for e in events:
        if e.kind == "achieved":
            held[e.level] = True
        elif e.kind == "lost":
            held[e.level] = False
    status: Any
    if held["complete"]:
        status = "complete"
    elif held["partial"]:
        status = "partial"
    elif achieved:
        status = "lost"
    else:
        status = "no_response"
    if any(e.kind == "loss_unconfirmed" for e in events[-1:]):
        notes.append("The newest count is below the response level once: repeat it (loss is confirmed on two "
                     f"occasions at least {loss} day(s) apart).")
    return LineageResponse(
        status=status, events=tuple(events), best=best, notes=tuple(notes),
        time_to_response_days=None if first_any is None else (first_any - course.start).days,
        time_to_complete_days=None if first_cr is None else (first_cr - course.start).days,
        **base,  # type: ignore[arg-type]
    )


# --- lymphoproliferation -------------------------------------------------------------------


@dataclass(frozen=True)
class NodeResponse:
    status: Literal["complete", "partial", "stable_or_progressive", "no_baseline", "no_follow_up"]
    baseline_date: dt.date | None
    latest_date: dt.date | None
    baseline_sum_cm: float | None
    latest_sum_cm: float | None
    evidence: tuple[dict[str, Any], ...]


def _by_date(case: Case) -> dict[dt.date, dict[str, float]]:
    out: dict[dt.date, dict[str, float]] = {}
    for m in measurements(case, "node_size"):
        day = out.setdefault(m.date, {})
        day[m.site] = max(m.value, day.get(m.site, 0.0))
    return out


def assess_lymphoproliferation(case: Case, settings: CareSettings | None = None,
                               treatment_start: dt.date | None = None) -> NodeResponse | None:
    """Node-size response: baseline = the newest measurement date on/before the start."""
    s = settings or CareSettings()
    course = treatment_course(case, treatment_start)
    table = _by_date(case)
    if course is None or not table:
        return None
    before = sorted(d for d in table if d <= course.start)
    after = sorted(d for d in table if d > course.start)
    ev = tuple({"event": "node_size", "date": d.isoformat(), "site": site, "value": v, "unit": "cm"}
               for d in before[-1:] + after for site, v in sorted(table[d].items()))
    if not before:
        return NodeResponse("no_baseline", None, after[-1] if after else None, None,
                             sum(table[after[-1]].values()) if after else None, ev)
    b = before[-1]
    b_sum = sum(table[b].values())
    if not after:
        return NodeResponse("no_follow_up", b, None, b_sum, None, ev)
    last = after[-1]
    l_sum = sum(table[last].values())
    resolved = float(s.get("node_resolved_cm"))
    frac = float(s.get("node_partial_decrease"))
    if all(v <= resolved for v in table[last].values()):
        status: Any = "complete"
    elif b_sum > 0 and (b_sum - l_sum) / b_sum >= frac:
        status = "partial"
    else:
        status = "stable_or_progressive"
    return NodeResponse(status, b, last, b_sum, l_sum, ev)


def assess_spleen(case: Case, settings: CareSettings | None = None,
                  treatment_start: dt.date | None = None) -> NodeResponse | None:
    """Spleen-size response: decrease by the partial fraction from the newest size on/before the
    start. No complete response is called: no cited normal spleen size by age is coded."""
    s = settings or CareSettings()
    course = treatment_course(case, treatment_start)
    sizes = measurements(case, "spleen_size")
    if course is None or not sizes:
        return None
    before = [m for m in sizes if m.date <= course.start]
    after = [m for m in sizes if m.date > course.start]
    ev = tuple({"event": "spleen_size", "date": m.date.isoformat(), "site": m.site, "value": m.value, "unit": "cm"}
               for m in before[-1:] + after)
    if not before:
        return NodeResponse("no_baseline", None, after[-1].date if after else None, None,
                            after[-1].value if after else None, ev)
    b = before[-1]
    if not after:
        return NodeResponse("no_follow_up", b.date, None, b.value, None, ev)
    last = after[-1]
    frac = float(s.get("node_partial_decrease"))
    status: Any = "partial" if b.value > 0 and (b.value - last.value) / b.value >= frac else "stable_or_progressive"
    return NodeResponse(status, b.date, last.date, b.value, last.value, ev)


# --- items -----------------------------------------------------------------------------------


_WORD = {"complete": "complete response", "partial": "partial response", "no_response": "no confirmed response",
         "lost": "response lost"}


def _lineage_item(r: LineageResponse, as_of: dt.date | None = None) -> CareItem | None:
    unit = _UNITS[r.analyte]
    start = r.course.start.isoformat()
    if r.status == "not_cytopenic_at_baseline":
        return None
    if r.status in ("no_follow_up", "no_baseline"):
        msg = (f"{r.lineage.capitalize()}: no {r.analyte} count after the start of {r.course.drug} on {start}; "
               "response cannot be assessed yet.")
        return CareItem(f"response.{r.analyte}", msg, r.citation, "info", r.evidence, "response",
                        settings=r.settings, details=r.to_dict())
    base = "" if r.baseline is None else (f" (baseline {r.baseline.canonical_value:g} {unit} on "
                                          f"{r.baseline.date.isoformat() if r.baseline.date else '?'})")
    msg = f"{r.lineage.capitalize()} on {r.course.drug} since {start}{base}: {_WORD[r.status]}"
    parts = []
    if r.time_to_response_days is not None:
        parts.append(f"time to response {r.time_to_response_days} days")
    if r.time_to_complete_days is not None:
        parts.append(f"time to complete response {r.time_to_complete_days} days")
    lost = [e for e in r.events if e.kind == "lost"]
    if lost:
        parts.append("; ".join(f"{e.level} response lost on {e.date.isoformat()}" for e in lost))
    if parts:
        msg += " (" + "; ".join(parts) + ")"
    msg += ". Criteria: CR " + str(r.thresholds["complete"]) + "; partial " + str(r.thresholds["partial"]) + "."
    extra: tuple[str, ...] = ("bride2016",) if r.citation != "bride2016" else ()
    exp = _spec()["sirolimus_expectation"]
    if (r.status == "no_response" and r.course.drug in _SIROLIMUS and as_of is not None
            and (as_of - r.course.start).days > float(exp["within_months"]) * 365.25 / 12):
        msg += " " + str(exp["text"])
    if r.notes:
        msg += " " + " ".join(r.notes)
    severity: Any = "warning" if r.status in ("lost", "no_response") else "info"
    return CareItem(f"response.{r.analyte}", msg, r.citation, severity, r.evidence, "response",
                    settings=r.settings, extra_citations=extra, details=r.to_dict())


def response_items(case: Case, settings: CareSettings | None = None,
                   treatment_start: dt.date | None = None) -> list[CareItem]:
    """One item per cytopenic lineage with follow-up, and one for node sizes when recorded."""
    s = settings or CareSettings()
    items: list[CareItem] = []
    for analyte in LINEAGES:
        r = assess_lineage(case, analyte, s, treatment_start)
        if r is not None:
            item = _lineage_item(r, case.as_of)
            if item is not None:
                items.append(item)
    n = assess_lymphoproliferation(case, s, treatment_start)
    if n is not None:
        word = {"complete": "resolved (complete response)", "partial": "partial response",
                "stable_or_progressive": "no response (stable or progressive)",
                "no_baseline": "no node size before treatment: response cannot be judged",
                "no_follow_up": "no node size after the start of treatment yet"}[n.status]
        msg = f"Lymphadenopathy: {word}"
        if n.baseline_sum_cm is not None and n.latest_sum_cm is not None:
            msg += (f" (sum of node sizes {n.baseline_sum_cm:g} cm on {n.baseline_date} -> {n.latest_sum_cm:g} cm "
                    f"on {n.latest_date})")
        msg += (f". Resolved = every node <= {s.get('node_resolved_cm'):g} cm; partial = sum decreased by >= "
                f"{s.get('node_partial_decrease'):.0%} ({s.label('node_partial_decrease')}).")
        items.append(CareItem("response.lymphoproliferation", msg, "bride2016",
                              "warning" if n.status == "stable_or_progressive" else "info", n.evidence, "response",
                              settings=(s.describe("node_resolved_cm"), s.describe("node_partial_decrease")),
                              extra_citations=("site_setting",),
                              details={"status": n.status, "baseline_sum_cm": n.baseline_sum_cm,
                                       "latest_sum_cm": n.latest_sum_cm}))
    sp = assess_spleen(case, s, treatment_start)
    if sp is not None:
        word = {"partial": "decreased (partial response)", "stable_or_progressive": "not decreased enough for a "
                "partial response", "no_baseline": "no spleen size before treatment: response cannot be judged",
                "no_follow_up": "no spleen size after the start of treatment yet"}.get(sp.status, sp.status)
        msg = f"Spleen size: {word}"
        if sp.baseline_sum_cm is not None and sp.latest_sum_cm is not None:
            msg += f" ({sp.baseline_sum_cm:g} cm on {sp.baseline_date} -> {sp.latest_sum_cm:g} cm on {sp.latest_date})"
        msg += (f". Partial = decrease >= {s.get('node_partial_decrease'):.0%} ({s.label('node_partial_decrease')}); "
                "a complete response is not called because no cited normal spleen size for age is coded.")
        items.append(CareItem("response.splenomegaly", msg, "bride2016", "info", sp.evidence, "response",
                              settings=(s.describe("node_partial_decrease"),), extra_citations=("site_setting",),
                              details={"status": sp.status, "baseline_cm": sp.baseline_sum_cm,
                                       "latest_cm": sp.latest_sum_cm}))
    return items
