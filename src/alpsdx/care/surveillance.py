"""Lymphoma surveillance: risk category from genotype, the recommended surveillance, alerts.

- **Risk** comes from the annotated variants (:func:`alpsdx.genetics.annotate`): germline
  intracellular FAS highest (Rao & Oliveira 2011, Price 2014), other germline FAS
  increased (Straus 2001: non-Hodgkin x14, Hodgkin x51), somatic FAS not established.
- **Surveillance** (Teachey 2012): investigate for malignancy on constitutional symptoms or a
  significant change in disease pattern; baseline and periodic imaging (Medscape ALPS
  work-up). The periodic interval is a labelled site setting.
- **Alerts** from ``clinical_events`` -> "consider biopsy of that node":
  new B symptoms (recent = site setting); a rapidly enlarging node (increase fraction and
  window are site settings); a dominant node (ratio to the next largest, site setting); a
  PET-avid node out of keeping with the patient's own earlier scans (rise over the
  patient's highest earlier SUVmax, site setting). PET SUV ranges overlap between ALPS
  with and without lymphoma (Carrasquillo 2019): no fixed SUV cut-off is applied, and
  every PET-based item says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from alpsdx import knowledge
from alpsdx.care.events import Measurement, dated_events, measurements
from alpsdx.care.items import CareItem
from alpsdx.care.settings import CareSettings
from alpsdx.errors import VariantError
from alpsdx.model import Case, ClinicalEvent, Variant

if TYPE_CHECKING:
    from alpsdx.genetics import AnnotatedVariant

__all__ = ["DAYS_PER_MONTH", "lymphoma_risk", "surveillance_items"]

DAYS_PER_MONTH = 365.25 / 12
_ORDER = {"highest": 3, "elevated": 2, "increased": 2, "unclassified": 1, "not_established": 1}


def _spec() -> Mapping[str, Any]:
    return knowledge.load("care_rules")["surveillance"]  # type: ignore[no-any-return]


@lru_cache(maxsize=4096)
def _annotate(v: Variant) -> AnnotatedVariant | None:
    from alpsdx.genetics import annotate

    try:
        return annotate(v)
    except VariantError:
        return None  # an unparsable HGVS gets no position, so no risk band (genetics reports the error)


def lymphoma_risk(case: Case) -> dict[str, Any]:
    """``{category, text, citations, variant}`` for the highest-risk FAS variant of the case."""
    best: dict[str, Any] | None = None
    for v in case.variants:
        if v.gene != "FAS":
            continue
        a = _annotate(v)
        if a is None:
            continue
        risk = dict(a.risk)
        if risk.get("category") not in _ORDER:
            continue
        risk["variant"] = " ".join(x for x in (v.gene, v.hgvs_c, v.hgvs_p) if x)
        risk["origin"] = a.origin
        risk["region"] = a.region
        if best is None or _ORDER[risk["category"]] > _ORDER[best["category"]]:
            best = risk
    if best is not None:
        return best
    unknown = _spec()["risk"]["unknown"]
    return {"category": "unknown", "text": str(unknown["text"]), "citations": list(unknown["citations"]),
            "variant": None}


def _ev(e: ClinicalEvent | Measurement) -> dict[str, Any]:
    if isinstance(e, Measurement):
        e = e.event
    return {"event": e.kind, "date": None if e.date is None else e.date.isoformat(), "site": e.site,
            "value": e.value, "unit": e.unit, "note": e.note}


def _alert(id_: str, msg: str, evidence: tuple[dict[str, Any], ...], settings: tuple[dict[str, Any], ...],
           details: dict[str, Any], extra: tuple[str, ...] = ()) -> CareItem:
    return CareItem(id_, msg, "teachey_review2012", "alert", evidence, "surveillance", settings=settings,
                    extra_citations=("site_setting", *extra), details=details)


def _b_symptoms(case: Case, s: CareSettings) -> list[CareItem]:
    days = int(s.get("b_symptoms_recent_days"))
    recent = [e for e in dated_events(case, "b_symptoms", require_date=True)
              if e.date is not None and (case.as_of - e.date).days <= days]
    if not recent:
        return []
    last = recent[-1]
    msg = (f"New constitutional (B) symptoms recorded on {last.date}"
           + (f" ({last.note})" if last.note else "")
           + ": investigate for lymphoma (imaging; consider biopsy of the most suspicious node) "
           f"(Teachey 2012). Recent = within {days} days ({s.label('b_symptoms_recent_days')}).")
    return [_alert("surveillance.b_symptoms", msg, tuple(_ev(e) for e in recent),
                   (s.describe("b_symptoms_recent_days"),), {"date": str(last.date)})]


def _node_alerts(case: Case, s: CareSettings) -> list[CareItem]:
    items: list[CareItem] = []
    nodes = measurements(case, "node_size")
    frac = float(s.get("rapid_enlargement_fraction"))
    months = float(s.get("rapid_enlargement_months"))
    by_site: dict[str, list[Measurement]] = {}
    for m in nodes:
        by_site.setdefault(m.site, []).append(m)
    for site, series in sorted(by_site.items()):
        last = series[-1]
        window = [m for m in series[:-1] if (last.date - m.date).days <= months * DAYS_PER_MONTH]
        if not window:
            continue
        smallest = min(window, key=lambda m: m.value)
        base, size = smallest.value, last.value
        if base > 0 and (size - base) / base >= frac:
            msg = (f"Rapidly enlarging node ({site}): {base:g} cm on {smallest.date} -> {size:g} cm on {last.date} "
                   f"(+{(size - base) / base:.0%} within {months:g} months). Consider biopsy of that node "
                   f"(rule: >= {frac:.0%} within {months:g} months, {s.label('rapid_enlargement_fraction')}).")
            items.append(_alert(f"surveillance.rapid_enlargement.{site}", msg, (_ev(smallest), _ev(last)),
                                (s.describe("rapid_enlargement_fraction"), s.describe("rapid_enlargement_months")),
                                {"site": site, "from_cm": base, "to_cm": size}))
    if nodes:
        newest_date = nodes[-1].date
        same_day: dict[str, float] = {}
        for m in nodes:
            if m.date == newest_date:
                same_day[m.site] = max(m.value, same_day.get(m.site, 0.0))
        ratio = float(s.get("dominant_node_ratio"))
        if len(same_day) >= 2:
            ranked = sorted(same_day.items(), key=lambda kv: kv[1], reverse=True)
            (site1, top), (_, second) = ranked[0], ranked[1]
            if second > 0 and top / second >= ratio:
                msg = (f"Dominant node ({site1}): {top:g} cm, {top / second:.1f} x the next largest ({second:g} cm) "
                       f"on {newest_date}. Consider biopsy of that node (rule: >= {ratio:g} x, "
                       f"{s.label('dominant_node_ratio')}).")
                items.append(_alert(f"surveillance.dominant_node.{site1}", msg,
                                    tuple(_ev(m) for m in nodes if m.date == newest_date),
                                    (s.describe("dominant_node_ratio"),), {"site": site1, "ratio": top / second}))
    return items


def _pet(case: Case, s: CareSettings) -> list[CareItem]:
    pets = measurements(case, "pet_suv")
    if not pets:
        return []
    spec = _spec()["pet_caveat"]
    caveat = str(spec["text"]).strip()
    newest_date = pets[-1].date
    latest = [m for m in pets if m.date == newest_date]
    earlier = [m for m in pets if m.date < newest_date]
    items: list[CareItem] = []
    rise = float(s.get("pet_rise_fraction"))
    if earlier:
        ref = max(earlier, key=lambda m: m.value)
        for m in latest:
            if ref.value > 0 and (m.value - ref.value) / ref.value >= rise:
                msg = (f"PET-avid node out of keeping with the patient's earlier scans ({m.site}): SUVmax {m.value:g} "
                       f"on {m.date} vs the highest earlier SUVmax {ref.value:g} ({ref.site}, {ref.date}). "
                       f"Consider biopsy of that node (rule: >= {rise:.0%} above the patient's own highest earlier "
                       f"value, {s.label('pet_rise_fraction')}). {caveat}")
                items.append(_alert(f"surveillance.pet_avid.{m.site}", msg, (_ev(ref), _ev(m)),
                                    (s.describe("pet_rise_fraction"),),
                                    {"site": m.site, "suv": m.value, "reference_suv": ref.value},
                                    extra=(str(spec["citation"]),)))
    if not items:
        msg = (f"FDG-PET recorded ({len(pets)} value(s); newest {newest_date}). " + caveat
               + ("" if earlier else " This is the first PET on record: it is the patient's baseline for later scans."))
        items.append(CareItem("surveillance.pet_caveat", msg, str(spec["citation"]), "info",
                              tuple(_ev(m) for m in latest), "surveillance"))
    return items


def _imaging_schedule(case: Case, s: CareSettings, risk: Mapping[str, Any]) -> CareItem:
    spec = _spec()["recommendation"]
    months = float(s.get("periodic_imaging_months"))
    imaging = [m for kind in ("node_size", "pet_suv", "spleen_size") for m in measurements(case, kind)]
    last = max((m.date for m in imaging), default=None)
    msg = f"Lymphoma risk: {risk['text']} Surveillance: {str(spec['text']).strip()}"
    severity: Any = "info"
    details: dict[str, Any] = {"risk_category": risk["category"], "periodic_imaging_months": months}
    if last is None:
        msg += " No imaging is recorded: obtain baseline imaging."
        severity = "warning" if risk["category"] in ("highest", "elevated") else "info"
        details["next_imaging_due"] = None
    else:
        due = last + dt.timedelta(days=round(months * DAYS_PER_MONTH))
        details.update({"last_imaging": last.isoformat(), "next_imaging_due": due.isoformat()})
        overdue = case.as_of > due
        msg += (f" Last imaging {last}; next due {due} (every {months:g} months, "
                f"{s.label('periodic_imaging_months')})" + (": OVERDUE." if overdue else "."))
        if overdue:
            severity = "warning"
    cites = [c for c in risk.get("citations", []) if c != str(spec["citation"])]
    return CareItem("surveillance.lymphoma", msg, str(spec["citation"]), severity,
                    ({"variant": risk.get("variant"), "risk_category": risk["category"]},), "surveillance",
                    settings=(s.describe("periodic_imaging_months"),),
                    extra_citations=(*cites, str(spec["imaging_citation"])), details=details)


def surveillance_items(case: Case, settings: CareSettings | None = None) -> list[CareItem]:
    """The surveillance recommendation for the genotype, then any alerts from the record."""
    s = settings or CareSettings()
    risk = lymphoma_risk(case)
    f = case.findings
    lymphoproliferation = any(x is not None and x.present for x in (f.lymphadenopathy, f.splenomegaly))
    relevant = (risk["category"] != "unknown" or lymphoproliferation or bool(f.lymphoma)
                or any(e.kind in ("node_size", "spleen_size", "pet_suv", "b_symptoms") for e in case.clinical_events))
    if not relevant:
        return []  # no FAS variant, no lymphoproliferation and nothing to watch: no surveillance item
    items = [_imaging_schedule(case, s, risk)]
    if case.findings.lymphoma:
        items.append(CareItem("surveillance.lymphoma_recorded",
                              "Lymphoma is recorded for this patient (findings.lymphoma); lymphoma is a major cause of "
                              "morbidity and mortality in ALPS-FAS (Price 2014).",
                              "price2014", "info", ({"finding": "lymphoma", "value": True},), "surveillance"))
    items += _b_symptoms(case, s) + _node_alerts(case, s) + _pet(case, s)
    return items
