"""Sirolimus and mycophenolate dosing support: BSA, starting dose, trough monitoring.

- BSA by Mosteller: sqrt(height_cm x weight_kg / 3600) m^2.
- Sirolimus starting dose and target trough as Teachey 2009 (ALPS, full text PMC2819393) gave
  them: 2-3 mg/m^2/day, rounded to the nearest 0.5 mg, at most 4 mg initially; steady-state
  trough 4-15 ng/mL. Each is a setting a site may override (labelled "site override").
- A trough out of the target range gets a proportional suggestion (linear kinetics, as the
  Rapamune labelling states): new daily dose = current daily dose x target / measured, aiming
  at the middle of the range; re-check 7-14 days after a change (steady state, long half-life).
- MMF dose per m^2 is a site setting (convention); nothing is said about MMF drug levels
  (not confirmed from a retrieved source).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

from alpsdx import knowledge
from alpsdx.care.items import CareItem
from alpsdx.care.settings import CareSettings
from alpsdx.cytopenias import observation_evidence, observations
from alpsdx.errors import InputError
from alpsdx.model import Case, Medication

__all__ = [
    "MMF_NAMES",
    "SIROLIMUS_NAMES",
    "TroughAssessment",
    "assess_trough",
    "bsa_mosteller",
    "daily_dose_mg",
    "doses_per_day",
    "dosing_items",
    "mmf_dose",
    "proportional_dose",
    "sirolimus_starting_dose",
]

SIROLIMUS_NAMES = frozenset({"sirolimus", "rapamycin", "rapamune"})
MMF_NAMES = frozenset({"mycophenolate mofetil", "mycophenolate", "mmf", "cellcept"})


def bsa_mosteller(height_cm: float, weight_kg: float) -> float:
    """Body-surface area (m^2) by Mosteller; height in cm, weight in kg."""
    if not (height_cm > 0 and weight_kg > 0) or not math.isfinite(height_cm * weight_kg):
        raise InputError("height and weight must be positive numbers", field="height_cm/weight_kg",
                         value=(height_cm, weight_kg))
    return math.sqrt(height_cm * weight_kg / 3600.0)


_FREQ = [
    (re.compile(r"^(daily|once daily|once a day|qd|od|q24h|1x/day|every 24 hours)$"), 1),
    (re.compile(r"^(bid|b\.i\.d\.|twice daily|twice a day|q12h|2x/day|every 12 hours)$"), 2),
    (re.compile(r"^(tid|t\.i\.d\.|three times daily|q8h|3x/day|every 8 hours)$"), 3),
]


def doses_per_day(frequency: str | None) -> int | None:
    """Doses per day from a frequency text ('daily', 'bid', 'q12h' ...); ``None`` if not understood."""
    if not frequency:
        return None
    f = frequency.strip().lower()
    for rx, n in _FREQ:
        if rx.match(f):
            return n
    return None


def daily_dose_mg(med: Medication) -> float | None:
    """Total mg per day of a medication entry (dose_mg x doses per day)."""
    n = doses_per_day(med.frequency)
    if med.dose_mg is None or n is None:
        return None
    return med.dose_mg * n


def _round(x: float, step: float) -> float:
    return round(round(x / step) * step, 6)


def _round_half_up(x: float, step: float) -> float:
    """Nearest multiple of ``step``; an exact half goes up (2.25 -> 2.5 at 0.5 mg)."""
    return round(math.floor(x / step + 0.5 + 1e-9) * step, 6)


def _spec() -> Any:
    return knowledge.load("dosing")


def sirolimus_starting_dose(bsa_m2: float, settings: CareSettings | None = None) -> dict[str, Any]:
    """Starting daily dose range (mg/day) from BSA, as Teachey 2009 started ALPS patients.

    ``low``-``high`` mg/m^2/day x BSA, each rounded to the nearest ``sirolimus_start_rounding_mg``
    (0.5 mg) and capped at ``sirolimus_max_initial_dose_mg`` (4 mg).
    """
    if not (bsa_m2 > 0) or not math.isfinite(bsa_m2):
        raise InputError("body-surface area must be a positive number", field="bsa_m2", value=bsa_m2)
    s = settings or CareSettings()
    lo_m2 = float(s.get("sirolimus_start_mg_per_m2_day_low"))
    hi_m2 = float(s.get("sirolimus_start_mg_per_m2_day_high"))
    step = float(s.get("sirolimus_start_rounding_mg"))
    cap = float(s.get("sirolimus_max_initial_dose_mg"))
    raw_lo, raw_hi = _round_half_up(lo_m2 * bsa_m2, step), _round_half_up(hi_m2 * bsa_m2, step)
    lo, hi = min(raw_lo, cap), min(raw_hi, cap)
    return {"mg_per_day_low": lo, "mg_per_day_high": hi, "mg_per_m2_day_low": lo_m2, "mg_per_m2_day_high": hi_m2,
            "bsa_m2": bsa_m2, "rounding_mg": step, "max_initial_mg": cap, "capped": raw_hi > cap,
            "settings": tuple(s.describe(n) for n in (
                "sirolimus_start_mg_per_m2_day_low", "sirolimus_start_mg_per_m2_day_high",
                "sirolimus_start_rounding_mg", "sirolimus_max_initial_dose_mg"))}


def proportional_dose(current_daily_mg: float, measured: float, target: float, step: float = 0.1,
                      max_daily_mg: float | None = None) -> float:
    """New daily dose = current x target / measured (linear kinetics), rounded to ``step``."""
    if current_daily_mg <= 0 or measured <= 0 or target <= 0:
        raise InputError("dose, measured and target concentrations must be positive", field="proportional_dose",
                         value=(current_daily_mg, measured, target))
    new = _round(current_daily_mg * target / measured, step)
    if max_daily_mg is not None:
        new = min(new, max_daily_mg)
    return new


def mmf_dose(bsa_m2: float, settings: CareSettings | None = None) -> dict[str, Any]:
    """MMF mg per dose and per day from BSA and the site's mg/m^2 setting."""
    s = settings or CareSettings()
    per = float(s.get("mmf_mg_per_m2_per_dose"))
    n = int(s.get("mmf_doses_per_day"))
    mg = round(per * bsa_m2)
    return {"mg_per_dose": mg, "doses_per_day": n, "mg_per_day": mg * n, "mg_per_m2_per_dose": per,
            "settings": (s.describe("mmf_mg_per_m2_per_dose"), s.describe("mmf_doses_per_day"))}


def _active(meds: list[Medication], names: frozenset[str], on: dt.date) -> Medication | None:
    """The entry of the drug in effect on ``on`` (latest start <= on, not ended before)."""
    cands = [m for m in meds if m.name in names and (m.start is None or m.start <= on)
             and (m.end is None or m.end >= on)]
    if not cands:
        return None
    return max(cands, key=lambda m: m.start or dt.date.min)


@dataclass(frozen=True)
class TroughAssessment:
    """The newest sirolimus trough against the target range, with any dose suggestion."""

    status: str  # "in_range" | "low" | "high"
    value: float
    date: dt.date | None
    low: float
    high: float
    current_daily_mg: float | None
    suggested_daily_mg: float | None
    days_on_dose: int | None
    steady_state: bool | None
    drifted_from: dt.date | None


def assess_trough(case: Case, settings: CareSettings | None = None) -> TroughAssessment | None:
    """Assess the newest sirolimus trough while on sirolimus; ``None`` without a trough."""
    s = settings or CareSettings()
    troughs = [o for o in observations(case, "sirolimus_trough")]
    if not troughs:
        return None
    o = troughs[-1]
    low, high = float(s.get("sirolimus_trough_low")), float(s.get("sirolimus_trough_high"))
    v = o.canonical_value
    status = "low" if v < low else "high" if v > high else "in_range"
    on = o.date or case.as_of
    med = _active(list(case.medications), SIROLIMUS_NAMES, on)
    current = None if med is None else daily_dose_mg(med)
    days = None if (med is None or med.start is None or o.date is None) else (o.date - med.start).days
    spec = _spec()["sirolimus"]
    min_days = int(spec["recheck_after_days"]["min"])
    steady = None if days is None else days >= min_days
    suggested = None
    if status != "in_range" and current and steady is not False:
        target = (low + high) / 2
        suggested = proportional_dose(current, v, target, float(s.get("sirolimus_dose_rounding_mg")),
                                      float(spec["max_daily_dose_mg"]["value"]))
    drifted = None
    if status != "in_range":
        prev_in = [t for t in troughs[:-1] if low <= t.canonical_value <= high and t.date is not None]
        if prev_in:
            # the first out-of-range trough after the last in-range one
            last_in = prev_in[-1]
            after = [t for t in troughs if t.date is not None and last_in.date is not None and t.date > last_in.date]
            drifted = after[0].date if after else None
    return TroughAssessment(status, v, o.date, low, high, current, suggested, days, steady, drifted)


def _fmt(x: float) -> str:
    return f"{x:g}"


def dosing_items(case: Case, settings: CareSettings | None = None) -> list[CareItem]:
    """BSA, sirolimus starting dose / trough monitoring and MMF dose items for the case."""
    s = settings or CareSettings()
    items: list[CareItem] = []
    bsa = None
    f = case.findings
    on_drug = any(_active(list(case.medications), names, case.as_of) is not None for names in (SIROLIMUS_NAMES, MMF_NAMES))
    # dose suggestions only for a patient who may need them: on treatment, autoimmune
    # cytopenias recorded, or lymphoproliferation present
    candidate = on_drug or bool(f.autoimmune_cytopenias) or any(
        x is not None and x.present for x in (f.lymphadenopathy, f.splenomegaly))
    if case.height_cm and case.weight_kg and candidate:
        bsa = bsa_mosteller(case.height_cm, case.weight_kg)
        ev = ({"value": case.height_cm, "unit": "cm", "field": "height_cm", "date": None},
              {"value": case.weight_kg, "unit": "kg", "field": "weight_kg", "date": None})
        items.append(CareItem("dosing.bsa", f"Body-surface area {bsa:.2f} m2 (Mosteller).", "mosteller1987",
                              "info", ev, "dosing", details={"bsa_m2": round(bsa, 4)}))
    on_sir = _active(list(case.medications), SIROLIMUS_NAMES, case.as_of)
    if bsa is not None:
        start = sirolimus_starting_dose(bsa, s)
        verb = "Starting dose by BSA" if on_sir is None else "For comparison, the BSA-based starting dose"
        lo, hi = start["mg_per_day_low"], start["mg_per_day_high"]
        dose = f"{lo:g} mg/day" if lo == hi else f"{lo:g}-{hi:g} mg/day"
        per_m2 = (f"{start['mg_per_m2_day_low']:g}" if start["mg_per_m2_day_low"] == start["mg_per_m2_day_high"]
                  else f"{start['mg_per_m2_day_low']:g}-{start['mg_per_m2_day_high']:g}")
        cap = f"; at most {start['max_initial_mg']:g} mg initially" + (" (applied)" if start["capped"] else "")
        items.append(CareItem(
            "dosing.sirolimus_start",
            f"{verb}: sirolimus {dose} ({per_m2} mg/m2/day x {bsa:.2f} m2, rounded to the nearest "
            f"{start['rounding_mg']:g} mg{cap}; {s.label('sirolimus_start_mg_per_m2_day_low')}). Target trough "
            f"{_fmt(s.get('sirolimus_trough_low'))}-{_fmt(s.get('sirolimus_trough_high'))} ng/mL at steady state "
            f"({s.label('sirolimus_trough_low')}). Sirolimus should be considered as first-line steroid-sparing "
            "treatment in ALPS needing chronic therapy: all 12 children with ALPS in Bride 2016 achieved a durable "
            "complete response, improving within 1-3 months.",
            s.citation("sirolimus_start_mg_per_m2_day_low"), "info", (), "dosing",
            settings=(*start["settings"], s.describe("sirolimus_trough_low"), s.describe("sirolimus_trough_high")),
            extra_citations=tuple(dict.fromkeys(c for c in (
                s.citation("sirolimus_start_mg_per_m2_day_high"), s.citation("sirolimus_start_rounding_mg"),
                s.citation("sirolimus_max_initial_dose_mg"), s.citation("sirolimus_trough_low"), "teachey2009",
                "bride2016") if c != s.citation("sirolimus_start_mg_per_m2_day_low"))),
            details={k: v for k, v in start.items() if k != "settings"}))
    ta = assess_trough(case, s)
    spec = _spec()["sirolimus"]
    recheck = f"{spec['recheck_after_days']['min']}-{spec['recheck_after_days']['max']}"
    if ta is not None:
        o = observations(case, "sirolimus_trough")[-1]
        trough_ev: tuple[dict[str, Any], ...] = (observation_evidence(o),)
        rng = f"{_fmt(ta.low)}-{_fmt(ta.high)} ng/mL ({s.label('sirolimus_trough_low')})"
        tsettings = (s.describe("sirolimus_trough_low"), s.describe("sirolimus_trough_high"))
        if ta.status == "in_range":
            items.append(CareItem("dosing.sirolimus_trough", f"Sirolimus trough {ta.value:g} ng/mL is within the "
                                  f"target {rng}.", s.citation("sirolimus_trough_low"), "info", trough_ev, "dosing",
                                  settings=tsettings))
        else:
            word = "below" if ta.status == "low" else "above"
            msg = f"Sirolimus trough {ta.value:g} ng/mL is {word} the target {rng}"
            if ta.drifted_from is not None:
                msg += f"; it drifted out of range on {ta.drifted_from.isoformat()} after earlier troughs in range"
            msg += "."
            if ta.steady_state is False:
                msg += (f" The trough was drawn {ta.days_on_dose} days after the current dose started: not yet at "
                        f"steady state (re-check {recheck} days after a change before adjusting).")
            if ta.suggested_daily_mg is not None and ta.current_daily_mg is not None:
                msg += (f" Proportional adjustment (linear kinetics), aiming at the middle of the range (a "
                        f"convention): {ta.current_daily_mg:g} mg/day x "
                        f"{(ta.low + ta.high) / 2:g} / {ta.value:g} = {ta.suggested_daily_mg:g} mg/day; "
                        f"re-check the trough {recheck} days after the change.")
            elif ta.steady_state is not False:
                msg += " No current sirolimus dose with a readable frequency is recorded, so no adjustment is computed."
            extra = tuple(dict.fromkeys((s.citation("sirolimus_trough_low"), s.citation("sirolimus_trough_high"),
                                         "site_setting")))
            items.append(CareItem("dosing.sirolimus_trough", msg, "rapamune_label", "warning", trough_ev, "dosing",
                                  settings=tsettings, extra_citations=extra,
                                  details={"status": ta.status, "suggested_daily_mg": ta.suggested_daily_mg,
                                           "current_daily_mg": ta.current_daily_mg,
                                           "drifted_from": None if ta.drifted_from is None else ta.drifted_from.isoformat(),
                                           "steady_state": ta.steady_state}))
    elif on_sir is not None and on_sir.start is not None and (case.as_of - on_sir.start).days >= int(
            spec["recheck_after_days"]["min"]):
        items.append(CareItem("dosing.sirolimus_trough_missing",
                              f"On sirolimus since {on_sir.start.isoformat()} without a recorded trough: therapeutic "
                              f"drug monitoring is required (check a trough {recheck} days after starting or "
                              "changing the dose).", "rapamune_label", "warning",
                              ({"value": on_sir.dose_mg, "unit": "mg", "date": on_sir.start.isoformat(),
                                "field": "medications.sirolimus"},), "dosing"))
    if bsa is not None:
        mmf = mmf_dose(bsa, s)
        on_mmf = _active(list(case.medications), MMF_NAMES, case.as_of)
        msg = (f"MMF by BSA: {mmf['mg_per_dose']:g} mg per dose x {mmf['doses_per_day']} a day "
               f"({mmf['mg_per_m2_per_dose']:g} mg/m2 per dose; {s.label('mmf_mg_per_m2_per_dose')}). As a steroid-sparing "
               "agent, MMF has marked activity against ALPS (Teachey 2012).")
        ev2: tuple[dict[str, Any], ...] = ()
        if on_mmf is not None:
            cur = daily_dose_mg(on_mmf)
            if cur is not None:
                msg += f" Current MMF dose {cur:g} mg/day vs {mmf['mg_per_day']:g} mg/day by BSA."
            ev2 = ({"value": on_mmf.dose_mg, "unit": "mg", "frequency": on_mmf.frequency,
                    "date": on_mmf.start.isoformat() if on_mmf.start else None, "field": "medications.mmf"},)
        items.append(CareItem("dosing.mmf", msg, s.citation("mmf_mg_per_m2_per_dose"), "info", ev2, "dosing",
                              settings=mmf["settings"], extra_citations=("teachey_review2012",),
                              details={k: v for k, v in mmf.items() if k != "settings"}))
    return items
