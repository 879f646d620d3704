"""Age-specific grading of anaemia, neutropenia, thrombocytopenia and raised IgG; Evans syndrome.

Presence is decided against the performing laboratory's interval when the observation
carries one (``reference_range``), else the age/sex band of :mod:`alpsdx.reference_ranges`
(site ranges first); severity uses the cited bands in ``knowledge/data/cytopenias.yaml``.
Thrombocytopenia always uses the ITP threshold (a lab's platelet interval is not it):

- anaemia: Hb below the WHO 2024 cut-off; severity by the WHO 2011 bands;
- neutropenia: ANC below the age limit; mild 1.0-<1.5, moderate 0.5-<1.0, severe <0.5 x10^9/L;
- thrombocytopenia: platelets <100 x10^9/L (ITP, IWG 2009), phase by duration;
- polyclonal hypergammaglobulinaemia: IgG above the age-specific upper limit;
- Evans syndrome: >=2 autoimmune cytopenias -> screen for ALPS with DNT (Seif 2010).

Whether a cytopenia is *autoimmune* is a clinical judgement taken from
``findings.autoimmune_cytopenias``; a low count alone never makes it so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from alpsdx import knowledge
from alpsdx.model import DAYS_PER_YEAR, Case, Cytopenia, Observation
from alpsdx.reference_ranges import RefRange, classify_against, classify_value, lab_range

__all__ = [
    "EvansResult",
    "Grade",
    "age_at",
    "assess",
    "cytopenia_igg_status",
    "evans_syndrome",
    "grade_anaemia",
    "grade_igg",
    "grade_neutropenia",
    "grade_thrombocytopenia",
    "newest",
    "observation_evidence",
    "observation_reference",
    "observations",
]

Status3 = Literal["met", "not_met", "unknown"]
DAYS_PER_MONTH = DAYS_PER_YEAR / 12


def _kb() -> Mapping[str, Any]:
    return knowledge.load("cytopenias")


def _sex(case: Case) -> str | None:
    return case.sex.value if case.sex.value in ("female", "male") else None


def age_at(case: Case, date: dt.date | None) -> float | None:
    """Age in years on ``date`` (the evaluation date when ``None``)."""
    if date is None:
        return case.age
    if case.birth_date is not None:
        return max(0.0, (date - case.birth_date).days / DAYS_PER_YEAR)
    if case.age_years is None:
        return None
    return max(0.0, case.age_years - (case.as_of - date).days / DAYS_PER_YEAR)


def observations(case: Case, analyte: str) -> list[Observation]:
    """Observations of ``analyte`` up to the evaluation date, oldest first (undated ones last)."""
    obs = [o for o in case.observations if o.analyte == analyte and (o.date is None or o.date <= case.as_of)]
    dated = sorted((o for o in obs if o.date is not None), key=lambda o: o.date)  # type: ignore[arg-type,return-value]
    return dated + [o for o in obs if o.date is None]


def newest(case: Case, analyte: str) -> Observation | None:
    """The newest observation of ``analyte`` on or before the evaluation date."""
    obs = observations(case, analyte)
    dated = [o for o in obs if o.date is not None]
    if dated:
        return dated[-1]
    return obs[-1] if obs else None


def observation_reference(o: Observation) -> RefRange | None:
    """The performing laboratory's interval carried by the observation, in canonical units."""
    ref = o.canonical_reference
    if ref is None:
        return None
    return lab_range(o.analyte, ref[0], ref[1])


def _classify(analyte: str, value: float, age: float | None, sex: str | None,
              reference: RefRange | None) -> tuple[str, RefRange] | None:
    if reference is not None:
        return classify_against(reference, value), reference
    return classify_value(analyte, value, age, sex)


def observation_evidence(o: Observation, reference: RefRange | None = None) -> dict[str, Any]:
    """Evidence dict: original value/unit/date plus canonical value and the reference band used."""
    ev: dict[str, Any] = {
        "analyte": o.analyte,
        "value": o.value,
        "unit": o.unit,
        "date": o.date.isoformat() if o.date else None,
        "canonical_value": round(o.canonical_value, 6),
        "canonical_unit": o.canonical_unit,
    }
    if reference is not None:
        ev["reference"] = reference.describe()
        ev["reference_source"] = reference.source
        ev["reference_citation"] = reference.citation
    return ev


@dataclass(frozen=True)
class Grade:
    """One graded finding. ``present`` is ``None`` when no reference range covers the age."""

    kind: Literal["anaemia", "neutropenia", "thrombocytopenia", "hypergammaglobulinaemia", "low_igg"]
    analyte: str
    present: bool | None
    severity: str | None
    value: float
    unit: str
    reference: RefRange | None
    citation: str
    message: str
    evidence: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "analyte": self.analyte,
            "present": self.present,
            "severity": self.severity,
            "value": self.value,
            "unit": self.unit,
            "reference": None if self.reference is None else self.reference.to_dict(),
            "citation": self.citation,
            "citation_text": knowledge.resolve_citation(self.citation),
            "message": self.message,
            "evidence": list(self.evidence),
        }


def _no_range(kind: Any, analyte: str, value: float, unit: str, age: float | None) -> Grade:
    where = "age unknown" if age is None else f"age {age:.1f} y"
    return Grade(
        kind=kind, analyte=analyte, present=None, severity=None, value=value, unit=unit, reference=None,
        citation="site_setting",
        message=(f"{analyte} {value:g} {unit}: no cited reference range for {where}; enter the site "
                 f"laboratory's range (ALPSDX_SITE_RANGES)"),
    )


def grade_anaemia(hb_g_dl: float, age_years: float | None, sex: str | None = None,
                  reference: RefRange | None = None) -> Grade:
    """Anaemia (Hb below the age/sex cut-off, or the lab's own ``reference``) and its WHO severity; g/dL."""
    res = _classify("hemoglobin", hb_g_dl, age_years, sex, reference)
    if res is None:
        return _no_range("anaemia", "hemoglobin", hb_g_dl, "g/dL", age_years)
    status, rng = res
    if status != "low":
        return Grade("anaemia", "hemoglobin", False, None, hb_g_dl, "g/dL", rng, rng.citation,
                     f"Hb {hb_g_dl:g} g/dL: no anaemia (cut-off {rng.low:g} g/dL, {rng.age_band})")
    spec = _kb()["anaemia_severity"]
    months = (age_years or 0.0) * 12
    severity, cit = "mild", str(spec["citation"])
    for b in spec["bands"]:
        hi = b["age_max_months"]
        if months >= b["age_min_months"] and (hi is None or months < hi) and b["sex"] in (None, sex):
            if hb_g_dl < b["severe_below"]:
                severity = "severe"
            elif hb_g_dl < b["moderate_below"]:
                severity = "moderate"
            break
    else:
        cit = rng.citation
        severity = "unspecified"  # a site band without a cited severity band
    return Grade("anaemia", "hemoglobin", True, severity, hb_g_dl, "g/dL", rng, cit,
                 f"Hb {hb_g_dl:g} g/dL: {severity} anaemia (below {rng.low:g} g/dL, {rng.age_band})")


def grade_neutropenia(anc_10e9_l: float, age_years: float | None, reference: RefRange | None = None) -> Grade:
    """Neutropenia (ANC below the age limit or the lab's ``reference``), mild/moderate/severe (10^9/L)."""
    res = _classify("anc", anc_10e9_l, age_years, None, reference)
    if res is None:
        return _no_range("neutropenia", "anc", anc_10e9_l, "10*9/L", age_years)
    status, rng = res
    if status != "low":
        return Grade("neutropenia", "anc", False, None, anc_10e9_l, "10*9/L", rng, rng.citation,
                     f"ANC {anc_10e9_l:g} x10^9/L: no neutropenia (limit {rng.low:g}, {rng.age_band})")
    spec = _kb()["neutropenia_severity"]
    if anc_10e9_l < spec["severe_below"]:
        severity = "severe"
    elif anc_10e9_l < spec["moderate_below"]:
        severity = "moderate"
    else:
        severity = "mild"
    return Grade("neutropenia", "anc", True, severity, anc_10e9_l, "10*9/L", rng, str(spec["citation"]),
                 f"ANC {anc_10e9_l:g} x10^9/L: {severity} neutropenia (below {rng.low:g}, {rng.age_band})")


def grade_thrombocytopenia(
    plt_10e9_l: float, age_years: float | None, duration_months: float | None = None
) -> Grade:
    """Thrombocytopenia by the ITP threshold (<100 x10^9/L); phase from its duration in months."""
    res = classify_value("platelets", plt_10e9_l, age_years)
    if res is None:
        return _no_range("thrombocytopenia", "platelets", plt_10e9_l, "10*9/L", age_years)
    status, rng = res
    if status != "low":
        return Grade("thrombocytopenia", "platelets", False, None, plt_10e9_l, "10*9/L", rng, rng.citation,
                     f"platelets {plt_10e9_l:g} x10^9/L: not thrombocytopenic (limit {rng.low:g})")
    spec = _kb()["thrombocytopenia"]
    phase = None
    if duration_months is not None:
        for p in spec["phases"]:
            if p["max_months"] is None or duration_months < p["max_months"]:
                phase = str(p["name"])
                break
    txt = f"; {phase.replace('_', ' ')} ({duration_months:.1f} months documented)" if phase else ""
    return Grade("thrombocytopenia", "platelets", True, phase, plt_10e9_l, "10*9/L", rng, str(spec["citation"]),
                 f"platelets {plt_10e9_l:g} x10^9/L: thrombocytopenia (below {rng.low:g}){txt}")


def grade_igg(igg_mg_dl: float, age_years: float | None, sex: str | None = None,
              reference: RefRange | None = None) -> Grade:
    """Polyclonal hypergammaglobulinaemia = IgG above the age-specific (or the lab's) upper limit (mg/dL)."""
    res = _classify("igg", igg_mg_dl, age_years, sex, reference)
    if res is None:
        return _no_range("hypergammaglobulinaemia", "igg", igg_mg_dl, "mg/dL", age_years)
    status, rng = res
    if status == "high":
        return Grade("hypergammaglobulinaemia", "igg", True, None, igg_mg_dl, "mg/dL", rng, rng.citation,
                     f"IgG {igg_mg_dl:g} mg/dL: raised for age (upper limit {rng.high:g}, {rng.age_band})")
    if status == "low":
        return Grade("low_igg", "igg", True, None, igg_mg_dl, "mg/dL", rng, rng.citation,
                     f"IgG {igg_mg_dl:g} mg/dL: below the range for age (lower limit {rng.low:g}, "
                     f"{rng.age_band})")
    return Grade("hypergammaglobulinaemia", "igg", False, None, igg_mg_dl, "mg/dL", rng, rng.citation,
                 f"IgG {igg_mg_dl:g} mg/dL: within the range for age ({rng.describe()})")


def _low_run_months(case: Case) -> float | None:
    """Months from the first of the unbroken run of platelet counts <100 to the newest count."""
    obs = [o for o in observations(case, "platelets") if o.date is not None]
    if not obs:
        return None
    limit = float(_kb()["thrombocytopenia"]["below"])
    if obs[-1].canonical_value >= limit:
        return None
    first = obs[-1]
    for o in reversed(obs):
        if o.canonical_value < limit:
            first = o
        else:
            break
    assert first.date is not None and obs[-1].date is not None
    return (obs[-1].date - first.date).days / DAYS_PER_MONTH


def _with_evidence(g: Grade, o: Observation) -> Grade:
    return Grade(g.kind, g.analyte, g.present, g.severity, g.value, g.unit, g.reference, g.citation,
                 g.message, (observation_evidence(o, g.reference),))


def assess(case: Case) -> list[Grade]:
    """Grade the newest Hb, ANC, platelets and IgG of the case (age at each sample date)."""
    out: list[Grade] = []
    sex = _sex(case)
    o = newest(case, "hemoglobin")
    if o is not None:
        out.append(_with_evidence(grade_anaemia(o.canonical_value, age_at(case, o.date), sex,
                                                observation_reference(o)), o))
    o = newest(case, "anc")
    if o is not None:
        out.append(_with_evidence(grade_neutropenia(o.canonical_value, age_at(case, o.date),
                                                    observation_reference(o)), o))
    o = newest(case, "platelets")
    if o is not None:
        out.append(_with_evidence(grade_thrombocytopenia(o.canonical_value, age_at(case, o.date),
                                                         _low_run_months(case)), o))
    o = newest(case, "igg")
    if o is not None:
        out.append(_with_evidence(grade_igg(o.canonical_value, age_at(case, o.date), sex,
                                            observation_reference(o)), o))
    return out


def cytopenia_igg_status(case: Case) -> tuple[Status3, list[dict[str, Any]]]:
    """NIH 2009 secondary criterion 'autoimmune cytopenias AND elevated IgG' (both parts needed).

    Autoimmune cytopenias come from ``findings.autoimmune_cytopenias`` (None = unknown,
    [] = none); elevated IgG from the newest IgG against the age-specific upper limit. The
    result is met / not_met / unknown (three-valued AND); the evidence lists what was used.
    """
    evidence: list[dict[str, Any]] = []
    lineages = case.findings.autoimmune_cytopenias
    if lineages is None:
        cyto: Status3 = "unknown"
        evidence.append({"finding": "autoimmune_cytopenias", "value": None,
                         "note": "not recorded: whether the cytopenias are autoimmune is unknown"})
    else:
        cyto = "met" if lineages else "not_met"
        evidence.append({"finding": "autoimmune_cytopenias", "value": [c.value for c in lineages]})
    o = newest(case, "igg")
    if o is None:
        igg: Status3 = "unknown"
        evidence.append({"analyte": "igg", "value": None, "note": "no IgG measured"})
    else:
        g = grade_igg(o.canonical_value, age_at(case, o.date), _sex(case), observation_reference(o))
        ev = observation_evidence(o, g.reference)
        ev["interpretation"] = g.message
        evidence.append(ev)
        if g.present is None:
            igg = "unknown"
        else:
            igg = "met" if (g.kind == "hypergammaglobulinaemia" and g.present) else "not_met"
    if cyto == "not_met" or igg == "not_met":
        return "not_met", evidence
    if cyto == "met" and igg == "met":
        return "met", evidence
    return "unknown", evidence


@dataclass(frozen=True)
class EvansResult:
    """Evans syndrome (>=2 autoimmune cytopenias) and what the DNT adds (Seif 2010)."""

    lineages: tuple[str, ...]
    dnt: Observation | None
    dnt_band: Literal["high", "intermediate", "low"] | None
    message: str
    recommendation: str
    citation: str


def evans_syndrome(case: Case) -> EvansResult | None:
    """Flag Evans syndrome (>=2 autoimmune cytopenia lineages); ``None`` when not present/known."""
    spec = _kb()["evans_syndrome"]
    lineages = case.findings.autoimmune_cytopenias or []
    if len(lineages) < int(spec["min_lineages"]):
        return None
    names = tuple(c.value for c in lineages)
    dnt = newest(case, "dnt_pct_cd3") or newest(case, "dnt_pct_lymphocytes")
    band: Literal["high", "intermediate", "low"] | None = None
    hi, lo = float(spec["dnt_high_pct"]), float(spec["dnt_low_pct"])
    base = (f"Evans syndrome: autoimmune {', '.join(n.replace('_', ' ') for n in names)} "
            f"({len(names)} lineages). In Seif et al. 2010, {spec['alps_fraction']:.0%} of "
            f"{spec['cohort_n']} children with Evans syndrome had ALPS.")
    if dnt is None:
        rec = ("Screen for ALPS: measure TCRab+ CD4- CD8- double-negative T cells (DNT) "
               f"(DNT >={hi:g}% had PPV {spec['dnt_high_ppv']:.0%} for ALPS; no child with DNT <{lo:g}% had ALPS).")
    else:
        v = dnt.canonical_value
        denom = "CD3+ T cells" if dnt.analyte == "dnt_pct_cd3" else "lymphocytes"
        if v >= hi:
            band = "high"
            rec = (f"DNT {v:g}% of {denom} is >= {hi:g}%: in Seif 2010 this had PPV "
                   f"{spec['dnt_high_ppv']:.0%} for ALPS; complete the ALPS work-up (biomarkers, FAS sequencing).")
        elif v < lo:
            band = "low"
            rec = (f"DNT {v:g}% of {denom} is < {lo:g}%: no child in Seif 2010 with DNT below "
                   f"{lo:g}% had ALPS.")
        else:
            band = "intermediate"
            rec = (f"DNT {v:g}% of {denom} lies between {lo:g}% and {hi:g}%: not decisive in Seif 2010; "
                   "use biomarkers (B12, sFASL) and the NIH 2009 criteria.")
        rec += " (The DNT denominator Seif 2010 used was not confirmed here.)"
    return EvansResult(names, dnt, band, base, rec, str(spec["citation"]))


# Keep the enum importable for callers that build findings in code.
_ = Cytopenia
