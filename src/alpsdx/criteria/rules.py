"""Rule kinds: how one criterion reads the case. Parameters come from the criteria YAML.

Each kind returns met / not_met / unknown with the evidence it used; missing data is
always ``unknown``, never ``not_met``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from alpsdx import units
from alpsdx.criteria.base import Context, Evidence, Rule, RuleResult, Status
from alpsdx.errors import UnitError
from alpsdx.model import Finding, Observation
from alpsdx.reference_ranges import RefRange, classify_value
from alpsdx.units import dnt_percent_from_counts

__all__ = ["KINDS", "compare"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_SYMBOL = {">": ">", ">=": "≥", "<": "<", "<=": "≤"}
DAYS_PER_MONTH = 365.25 / 12
# Immunosuppressants that lower DNT and so can mask an elevation (caveat only).
_IMMUNOSUPPRESSANTS = ("sirolimus", "mycophenolate", "mmf", "prednisone", "prednisolone",
                       "methylprednisolone", "dexamethasone", "rituximab", "tacrolimus", "cyclosporine")


def compare(value: float, op: str, threshold: float) -> bool:
    """Apply a comparator exactly as the source states it (``>`` vs ``>=`` matters)."""
    return _OPS[op](value, threshold)


def _fmt(op: str, value: float, unit: str) -> str:
    return f"{_SYMBOL[op]} {value:g} {unit}".replace(" %", "%")


# --- reference ranges (issue #5 supplies alpsdx.reference_ranges) ----------------------


def _range_status(ctx: Context, analyte: str, value: float,
                  obs: Observation | None = None) -> tuple[str, str] | None:
    """('low'|'normal'|'high', description with citation) for the case's age, or None.

    The performing laboratory's own interval, when the observation carries it, comes first:
    it matches the lab's method and population (limits inclusive of normal, as in the tables).
    """
    ref = obs.canonical_reference if obs is not None else None
    if ref is not None:
        ref_lo, ref_hi = ref
        flag = ("low" if ref_lo is not None and value < ref_lo
                else "high" if ref_hi is not None and value > ref_hi else "normal")
        span = f"{'' if ref_lo is None else f'{ref_lo:g}'}-{'' if ref_hi is None else f'{ref_hi:g}'}"
        return flag, f"reference {span} {units.canonical_unit(analyte)} (performing laboratory's range, as reported)"
    out = classify_value(analyte, value, ctx.case.age, ctx.case.sex.value)
    if out is None:
        return None
    status, rng = out
    return status, _describe_range(rng)


@lru_cache(maxsize=1024)
def _describe_range(rng: RefRange) -> str:
    """How a cited band reads in a note (a few bands serve every case: made once each)."""
    lo = "" if rng.low is None else f"{rng.low:g}"
    hi = "" if rng.high is None else f"{rng.high:g}"
    return f"reference {lo}-{hi} {rng.unit} for {rng.age_band} ({rng.citation})"


# --- kinds -----------------------------------------------------------------------------


def _finding_duration(f: Finding, ctx: Context) -> float | None:
    if f.duration_months is not None:
        return f.duration_months
    if f.onset is not None:
        return (ctx.as_of - f.onset).days / DAYS_PER_MONTH
    return None


def _derive_pct(abs_obs: Observation | None, lym: Observation | None) -> float | str | None:
    """DNT % of lymphocytes from the absolute counts; a note (str) when the counts cannot give
    one (lymphocyte count 0, DNT above lymphocytes): the percentage then stays unknown."""
    if abs_obs is None or lym is None:
        return None
    try:
        return dnt_percent_from_counts(abs_obs.canonical_value, lym.canonical_value)
    except UnitError as exc:
        return f"DNT % of lymphocytes not derived from the counts: {exc}"


def _lymphoproliferation_params(p: Mapping[str, Any]) -> tuple[str, float, str]:
    op, months = str(p.get("op", ">")), float(p["min_months"])
    return op, months, f"duration {_SYMBOL[op]} {months:g} months, malignancy and infection excluded"


def lymphoproliferation(rule: Rule, ctx: Context) -> RuleResult:
    """Chronic (> N months) nonmalignant, noninfectious lymphadenopathy and/or splenomegaly."""
    p = rule.params
    op, months, threshold = rule.derived("params", lambda: _lymphoproliferation_params(p))
    statuses: list[Status] = []
    evidence: list[Evidence] = []
    notes: list[str] = []
    for name in p["findings"]:
        f: Finding | None = getattr(ctx.case.findings, name)
        if f is None or f.present is None:
            statuses.append(Status.unknown)
            continue
        if not f.present:
            evidence.append(Evidence(item=name, value=False, date=f.date))
            statuses.append(Status.not_met)
            continue
        dur = _finding_duration(f, ctx)
        src = "duration_months" if f.duration_months is not None else "onset to evaluation date"
        evidence.append(Evidence(item=name, value=True, unit=None, date=f.onset,
                                 note=None if dur is None else f"{dur:.1f} months ({src})"))
        if dur is None:
            statuses.append(Status.unknown)
            notes.append(f"{name}: duration not documented")
            continue
        if not compare(dur, op, months):
            statuses.append(Status.not_met)
            notes.append(f"{name}: {dur:.1f} months is not {_SYMBOL[op]} {months:g} months (not yet chronic)")
            continue
        if f.malignancy_excluded is False or f.infection_excluded is False:
            statuses.append(Status.unknown)
            notes.append(f"{name}: malignancy or infection not yet excluded")
            continue
        if f.malignancy_excluded is None or f.infection_excluded is None:
            notes.append(f"{name}: exclusion of malignancy/infection not documented; assumed by the clinician")
        statuses.append(Status.met)
    if ctx.case.findings.lymphoma:
        notes.append("history of lymphoma: lymphoproliferation must be shown to be nonmalignant")
    if Status.met in statuses:
        status = Status.met
    elif statuses and all(s is Status.not_met for s in statuses):
        status = Status.not_met
    else:
        status = Status.unknown
    return rule.result(status, evidence, threshold, notes)


def _dnt_threshold(p: Mapping[str, Any], op: str) -> str:
    """The DNT rule's threshold text for comparator ``op``."""
    comparator_cites: Mapping[str, str] = p.get("comparator_citations", {})
    parts = [_fmt(op, float(t["value"]), t["unit"]) + f" ({t['analyte']})" for t in p["thresholds"]]
    threshold = " or ".join(parts)
    if p.get("comparator_setting"):
        threshold += f"; comparator '{op}' (site setting {p['comparator_setting']}"
        if op in comparator_cites:
            threshold += f", as in {comparator_cites[op]}"
        threshold += ")"
    return threshold


def dnt(rule: Rule, ctx: Context) -> RuleResult:
    """Elevated TCRab+ DNT, counted only with a normal or raised lymphocyte count for age."""
    p = rule.params
    op = getattr(ctx.settings, p.get("comparator_setting", ""), None) or p.get("op", ">=")
    threshold = rule.derived(("threshold", op), lambda: _dnt_threshold(p, op))
    cutoffs: tuple[tuple[str, float], ...] = rule.derived(
        "cutoffs", lambda: tuple((t["analyte"], float(t["value"])) for t in p["thresholds"]))
    evidence: list[Evidence] = []
    notes: list[str] = []
    values: list[tuple[str, float, bool]] = []
    for analyte, cutoff in cutoffs:
        obs = ctx.latest(analyte)
        if obs is not None:
            value = obs.canonical_value
            evidence.append(ctx.evidence(obs))
            values.append((analyte, value, compare(value, op, cutoff)))
            if obs.tcrab_gated is False:
                notes.append(f"{obs.analyte} was gated without TCRab: gamma-delta DNT are included and do not count")
    # An absolute DNT count with the lymphocyte count gives the % of lymphocytes.
    if not any(a == "dnt_pct_lymphocytes" for a, _, _ in values):
        abs_obs, lym = ctx.latest("dnt_abs"), ctx.latest("lymphocytes_abs")
        lym_cutoff = next((c for a, c in cutoffs if a == "dnt_pct_lymphocytes"), None)
        pct_or_note = _derive_pct(abs_obs, lym) if lym_cutoff is not None else None
        if isinstance(pct_or_note, str):
            notes.append(pct_or_note)
        elif pct_or_note is not None and abs_obs is not None and lym_cutoff is not None:
            pct = pct_or_note
            evidence.append(ctx.evidence(abs_obs))
            evidence.append(Evidence(item="dnt_pct_lymphocytes", value=round(pct, 4), unit="%",
                                     date=abs_obs.date, note="derived from dnt_abs and lymphocytes_abs"))
            values.append(("dnt_pct_lymphocytes", pct, compare(pct, op, lym_cutoff)))
    tcrab_missing = any("gamma-delta" in n for n in notes)
    if not values:
        return rule.result(Status.unknown, evidence, threshold, ["DNT not measured"])
    elevated = any(hit for _, _, hit in values)
    # Sirolimus, steroids and other immunosuppressants lower DNT: a caveat on any reading.
    drugs = [m.name for m in ctx.active_medications() if any(k in m.name for k in _IMMUNOSUPPRESSANTS)]
    if drugs:
        notes.append("measured during immunosuppression (" + ", ".join(drugs) + "): DNT may be lowered")
    if not elevated:
        if tcrab_missing:
            # CD3+CD4-CD8- without TCRab gating overestimates TCRab DNT: below threshold is still below.
            notes.append("value below threshold even including gamma-delta DNT")
        return rule.result(Status.not_met, evidence, threshold, notes)
    if tcrab_missing:
        return rule.result(Status.unknown, evidence, threshold, notes,
                           needs=["TCRab+ CD4- CD8- DNT flow cytometry with TCRab gating"])
    if p.get("require_lymphocytes"):
        lym = ctx.latest("lymphocytes_abs")
        if lym is None:
            notes.append("lymphocyte count unknown: DNT counts only with a normal or raised lymphocyte count")
            return rule.result(Status.unknown, evidence, threshold, notes,
                               needs=["CBC with differential (absolute lymphocyte count)"])
        evidence.append(ctx.evidence(lym))
        rs = _range_status(ctx, "lymphocytes_abs", lym.canonical_value, lym)
        if rs is None:
            notes.append("no cited lymphocyte reference range for this age/sex: enter the laboratory's range")
            return rule.result(Status.unknown, evidence, threshold, notes,
                               needs=["Age-specific lymphocyte reference range from the performing laboratory"])
        status, desc = rs
        notes.append(f"lymphocytes {status}: {desc}")
        if status == "low":
            notes.append("lymphopenia: DNT percentages are unreliable; repeat when the count is normal")
            return rule.result(Status.unknown, evidence, threshold, notes,
                               needs=["Repeat DNT flow cytometry with CBC when the lymphocyte count is normal"])
    return rule.result(Status.met, evidence, threshold, notes)


def apoptosis(rule: Rule, ctx: Context) -> RuleResult:
    """Defective FAS-mediated apoptosis in at least N separate assays."""
    need = int(rule.params["min_defective"])
    threshold = f"defective in ≥ {need} separate assays"
    assays = [a for a in ctx.case.apoptosis_assays if a.date is None or a.date <= ctx.as_of]
    evidence = [Evidence(item="apoptosis_assay", value=a.result, date=a.date,
                         note=None if a.pct_of_control is None else f"{a.pct_of_control:g}% of control")
                for a in assays]
    defective = sum(a.result == "defective" for a in assays)
    normal = sum(a.result == "normal" for a in assays)
    notes = []
    if defective >= need:
        return rule.result(Status.met, evidence, threshold)
    if normal and defective == 0:
        notes.append("apoptosis may be normal in somatic FAS (ALPS-sFAS) and FASLG disease")
        return rule.result(Status.not_met, evidence, threshold, notes)
    if defective:
        notes.append(f"{defective} defective assay(s): a confirming separate assay is needed")
    return rule.result(Status.unknown, evidence, threshold, notes)


def mutation(rule: Rule, ctx: Context) -> RuleResult:
    """Somatic or germline pathogenic (or likely pathogenic) variant in the listed genes."""
    genes: list[str] = rule.derived("genes", lambda: [str(g) for g in rule.params["genes"]])
    threshold = rule.derived(
        "threshold", lambda: "pathogenic or likely pathogenic variant in " + ", ".join(genes) + " (a VUS does not count)")
    evidence: list[Evidence] = []
    notes: list[str] = []
    hit = False
    for v in ctx.case.variants:
        if v.gene not in genes:
            continue
        evidence.append(Evidence(item=f"{v.gene} {v.hgvs_c or ''} {v.hgvs_p or ''}".strip(),
                                 value=v.classification or "unclassified",
                                 note=f"origin {v.origin}" + (f", VAF {v.vaf:g}" if v.vaf is not None else "")))
        if v.is_pathogenic:
            hit = True
        elif v.classification == "vus":
            notes.append(f"{v.gene} variant of uncertain significance: not counted as a mutation")
    if hit:
        return rule.result(Status.met, evidence, threshold, notes)
    tested = {g.upper() for g in (ctx.case.genes_tested or [])} | {v.gene for v in ctx.case.variants}
    missing = [g for g in genes if g not in tested]
    if not missing:
        return rule.result(Status.not_met, evidence, threshold, notes)
    if not tested & set(genes):
        return rule.result(Status.unknown, evidence, threshold, notes or ["genetic testing not reported"])
    # Missing data is unknown, not 'not met': a negative FAS result leaves FASLG/CASP10 open.
    notes.append("no pathogenic variant in " + ", ".join(g for g in genes if g in tested)
                 + "; not tested: " + ", ".join(missing))
    return rule.result(Status.unknown, evidence, threshold, notes,
                       needs=["Sequencing of " + ", ".join(missing)])


def _biomarker_params(p: Mapping[str, Any]) -> tuple[int, str, tuple[tuple[str, str, float], ...]]:
    """(min_count, threshold text, (analyte, op, cut-off) per biomarker)."""
    need = int(p.get("min_count", 1))
    parts = [f"{t['analyte']} {_fmt(t['op'], float(t['value']), t['unit'])}" for t in p["thresholds"]]
    threshold = ("any of " if need == 1 else f"at least {need} of ") + "; ".join(parts)
    return need, threshold, tuple((t["analyte"], t["op"], float(t["value"])) for t in p["thresholds"])


def biomarkers(rule: Rule, ctx: Context) -> RuleResult:
    """At least ``min_count`` biomarkers above their thresholds."""
    p = rule.params
    need, threshold, cutoffs = rule.derived("params", lambda: _biomarker_params(p))
    evidence: list[Evidence] = []
    above = known = 0
    for analyte, op, cutoff in cutoffs:
        obs = ctx.latest(analyte)
        if obs is None:
            continue
        known += 1
        value = obs.canonical_value
        hit = compare(value, op, cutoff)
        above += hit
        evidence.append(ctx.evidence(obs, "above threshold" if hit else "not above threshold"))
    unknown = len(p["thresholds"]) - known
    if above >= need:
        return rule.result(Status.met, evidence, threshold)
    if above + unknown < need:
        return rule.result(Status.not_met, evidence, threshold)
    return rule.result(Status.unknown, evidence, threshold,
                       [f"{unknown} biomarker(s) not measured"])


def finding_flag(rule: Rule, ctx: Context) -> RuleResult:
    """A yes/no finding recorded in the case (histology, family history, ...)."""
    name = str(rule.params["finding"])
    value = getattr(ctx.case.findings, name)
    threshold = f"{name} recorded as present"
    if value is None:
        return rule.result(Status.unknown, (), threshold)
    ev = [Evidence(item=name, value=bool(value))]
    return rule.result(Status.met if value else Status.not_met, ev, threshold)


def cytopenias_igg(rule: Rule, ctx: Context) -> RuleResult:
    """Autoimmune cytopenia(s) together with IgG above the age-specific upper limit."""
    need = int(rule.params.get("min_lineages", 1))
    threshold = f"≥ {need} autoimmune cytopenia lineage(s) AND IgG above the upper limit for age"
    cyt = ctx.case.findings.autoimmune_cytopenias
    evidence: list[Evidence] = []
    notes: list[str] = []
    cyt_status = Status.unknown
    if cyt is not None:
        evidence.append(Evidence(item="autoimmune_cytopenias", value=[c.value for c in cyt]))
        cyt_status = Status.met if len(cyt) >= need else Status.not_met
    igg_status = Status.unknown
    igg = ctx.latest("igg")
    needs: list[str] = []
    if igg is not None:
        rs = _range_status(ctx, "igg", igg.canonical_value, igg)
        if rs is None:
            evidence.append(ctx.evidence(igg))
            notes.append("no cited IgG reference range for this age: enter the laboratory's range")
            needs.append("Age-specific IgG reference range from the performing laboratory")
        else:
            status, desc = rs
            evidence.append(ctx.evidence(igg, f"IgG {status}: {desc}"))
            igg_status = Status.met if status == "high" else Status.not_met
    # Both parts are needed: one failing part fails the criterion.
    if Status.not_met in (cyt_status, igg_status):
        return rule.result(Status.not_met, evidence, threshold, notes)
    if cyt_status is Status.met and igg_status is Status.met:
        return rule.result(Status.met, evidence, threshold, notes)
    return rule.result(Status.unknown, evidence, threshold, notes, needs=needs)


def any_finding(rule: Rule, ctx: Context) -> RuleResult:
    """Any one of several simple findings (used by sets whose part A is a list of features)."""
    items: list[Mapping[str, Any]] = list(rule.params["items"])
    threshold = "any of: " + "; ".join(str(i["label"]) for i in items)
    statuses: list[Status] = []
    evidence: list[Evidence] = []
    f = ctx.case.findings
    for item in items:
        kind = item["kind"]
        st = Status.unknown
        if kind == "finding_present":
            fnd: Finding | None = getattr(f, item["finding"])
            if fnd is not None and fnd.present is not None:
                dur = _finding_duration(fnd, ctx) if fnd.present else None
                min_m = item.get("min_months")
                if not fnd.present:
                    st = Status.not_met
                elif min_m is None:
                    st = Status.met
                elif dur is None:
                    st = Status.unknown
                else:
                    st = Status.met if compare(dur, str(item.get("op", ">")), float(min_m)) else Status.not_met
                evidence.append(Evidence(item=item["finding"], value=fnd.present,
                                         note=None if dur is None else f"{dur:.1f} months"))
        elif kind == "flag":
            v = getattr(f, item["finding"])
            if v is not None:
                st = Status.met if v else Status.not_met
                evidence.append(Evidence(item=item["finding"], value=bool(v)))
        elif kind == "cytopenia_lineages":
            cyt = f.autoimmune_cytopenias
            if cyt is not None:
                st = Status.met if len(cyt) >= int(item["min"]) else Status.not_met
                evidence.append(Evidence(item="autoimmune_cytopenias", value=[c.value for c in cyt]))
        statuses.append(st)
    if Status.met in statuses:
        return rule.result(Status.met, evidence, threshold)
    if all(s is Status.not_met for s in statuses):
        return rule.result(Status.not_met, evidence, threshold)
    return rule.result(Status.unknown, evidence, threshold)


def single_threshold(rule: Rule, ctx: Context) -> RuleResult:
    """One analyte against one threshold (e.g. ESID DNT > 6% of TCRab+ T cells)."""
    p = rule.params
    threshold = f"{p['analyte']} {_fmt(p['op'], float(p['value']), p['unit'])}"
    obs = ctx.latest(p["analyte"])
    if obs is None:
        return rule.result(Status.unknown, (), threshold, [f"{p['analyte']} not measured"])
    hit = compare(obs.canonical_value, p["op"], float(p["value"]))
    return rule.result(Status.met if hit else Status.not_met, [ctx.evidence(obs)], threshold)


KINDS: dict[str, Callable[[Rule, Context], RuleResult]] = {
    "lymphoproliferation": lymphoproliferation,
    "dnt": dnt,
    "apoptosis": apoptosis,
    "mutation": mutation,
    "biomarkers": biomarkers,
    "finding_flag": finding_flag,
    "cytopenias_igg": cytopenias_igg,
    "any_finding": any_finding,
    "single_threshold": single_threshold,
}


# --- kinds for the comparison sets (nih1999, seif2008, esid) -----------------------------
# Appended for issue #2 item 4; the kinds above keep their behaviour. A parameter ``x`` may
# instead be given as ``x_setting: <name>``: the value is then read from the site settings
# (a convention, labelled as such in the threshold text a clinician sees).


def _param(ctx: Context, spec: Mapping[str, Any], key: str, default: Any = None) -> tuple[Any, str | None]:
    """(value, setting name or None) for a parameter given directly or as ``<key>_setting``."""
    setting = spec.get(f"{key}_setting")
    if setting:
        return getattr(ctx.settings, str(setting)), str(setting)
    return spec.get(key, default), None


def _combine_any(statuses: list[Status]) -> Status:
    """OR over three-valued statuses: one met suffices; all not met fails; else unknown."""
    if Status.met in statuses:
        return Status.met
    if statuses and all(s is Status.not_met for s in statuses):
        return Status.not_met
    return Status.unknown


def _node_sites(ctx: Context) -> list[str]:
    """Distinct nodal sites with a measured node (``node_size`` events) up to the evaluation date."""
    return sorted({e.site.strip().lower() for e in ctx.case.clinical_events
                   if e.kind == "node_size" and e.site and (e.date is None or e.date <= ctx.as_of)})


def lymphoproliferation_extent(rule: Rule, ctx: Context) -> RuleResult:
    """Lymphadenopathy and/or splenomegaly: duration, exclusions and (nodes) extent as a set states them.

    params: findings; min_months | min_months_setting (optional); op; exclusions (subset of
    malignancy, infection); min_node_sites (lymphadenopathy only, counted from ``node_size``
    clinical events with a site; too few recorded sites leave it unknown, never not met).
    """
    p = rule.params
    months_v, months_setting = _param(ctx, p, "min_months")
    op = str(p.get("op", ">"))
    exclusions = [str(e) for e in p.get("exclusions", ("malignancy", "infection"))]
    min_sites = int(p.get("min_node_sites", 0))
    months = None if months_v is None else float(months_v)
    parts: list[str] = []
    if months is not None:
        parts.append(f"duration {_SYMBOL[op]} {months:g} months"
                     + (f" (site setting {months_setting})" if months_setting else ""))
    if min_sites:
        parts.append(f"lymphadenopathy in ≥ {min_sites} nodal sites")
    if exclusions:
        parts.append(" and ".join(exclusions) + " excluded")
    threshold = "; ".join(parts)
    sites = _node_sites(ctx)
    statuses: list[Status] = []
    evidence: list[Evidence] = []
    notes: list[str] = []
    for name in p["findings"]:
        f: Finding | None = getattr(ctx.case.findings, name)
        if f is None or f.present is None:
            statuses.append(Status.unknown)
            continue
        if not f.present:
            evidence.append(Evidence(item=name, value=False, date=f.date))
            statuses.append(Status.not_met)
            continue
        dur = _finding_duration(f, ctx)
        evidence.append(Evidence(item=name, value=True, date=f.onset,
                                 note=None if dur is None else f"{dur:.1f} months"))
        if months is not None:
            if dur is None:
                statuses.append(Status.unknown)
                notes.append(f"{name}: duration not documented")
                continue
            if not compare(dur, op, months):
                statuses.append(Status.not_met)
                notes.append(f"{name}: {dur:.1f} months is not {_SYMBOL[op]} {months:g} months")
                continue
        flags = {"malignancy": f.malignancy_excluded, "infection": f.infection_excluded}
        if any(flags[e] is False for e in exclusions):
            statuses.append(Status.unknown)
            notes.append(f"{name}: " + " or ".join(exclusions) + " not yet excluded")
            continue
        if any(flags[e] is None for e in exclusions):
            notes.append(f"{name}: exclusion of " + "/".join(exclusions)
                         + " not documented; assumed by the clinician")
        if name == "lymphadenopathy" and min_sites:
            evidence.append(Evidence(item="nodal_sites_recorded", value=sites))
            if len(sites) < min_sites:
                statuses.append(Status.unknown)
                notes.append(f"lymphadenopathy: {len(sites)} distinct nodal site(s) recorded as node_size "
                             f"events; ≥ {min_sites} needed (document the extent)")
                continue
        statuses.append(Status.met)
    return rule.result(_combine_any(statuses), evidence, threshold, notes)


# Same DNT numerator over shrinking denominators (lymphocytes ⊃ CD3+ ⊃ TCRab+ T cells):
# along this order a patient's values never decrease, which lets one measurement settle another.
_DNT_ORDER = ("dnt_pct_lymphocytes", "dnt_pct_cd3", "dnt_pct_tcrab")


def _dnt_one(ctx: Context, analyte: str, op: str, value: float, upper: Mapping[str, Any] | None,
             evidence: list[Evidence], notes: list[str]) -> tuple[Status, bool]:
    """Status of one DNT cut-off (optionally a band) and whether TCRab gating is what is missing."""
    obs = ctx.latest(analyte)
    pct: float | None = None
    gated: bool | None = None
    if obs is not None:
        pct, gated = obs.canonical_value, obs.tcrab_gated
        evidence.append(ctx.evidence(obs))
    elif analyte == "dnt_pct_lymphocytes":
        abs_obs, lym = ctx.latest("dnt_abs"), ctx.latest("lymphocytes_abs")
        derived = _derive_pct(abs_obs, lym)
        if isinstance(derived, str):
            notes.append(derived)
        elif derived is not None and abs_obs is not None:
            pct, gated = derived, abs_obs.tcrab_gated
            evidence.append(ctx.evidence(abs_obs))
            evidence.append(Evidence(item="dnt_pct_lymphocytes", value=round(pct, 4), unit="%",
                                     date=abs_obs.date, note="derived from dnt_abs and lymphocytes_abs"))
    if pct is not None:
        lower_ok = compare(pct, op, value)
        in_band = lower_ok and (upper is None or compare(pct, str(upper["op"]), float(upper["value"])))
        if gated is False:
            notes.append(f"{analyte} was gated without TCRab: gamma-delta DNT are included and do not count")
            if not lower_ok:
                notes.append("value below the cut-off even including gamma-delta DNT")
                return Status.not_met, False
            return Status.unknown, True
        return (Status.met if in_band else Status.not_met), False
    if analyte in _DNT_ORDER:
        i = _DNT_ORDER.index(analyte)
        for other in _DNT_ORDER[:i]:  # never above the target: reaching the cut-off settles it
            o = ctx.latest(other)
            if (o is not None and upper is None and o.tcrab_gated is not False
                    and compare(o.canonical_value, op, value)):
                evidence.append(ctx.evidence(o, f"{other} ≤ {analyte}, so {analyte} also reaches the cut-off"))
                return Status.met, False
        for other in _DNT_ORDER[i + 1:]:  # never below the target: missing the cut-off settles it
            o = ctx.latest(other)
            if o is not None and not compare(o.canonical_value, op, value):
                evidence.append(ctx.evidence(o, f"{other} ≥ {analyte}, so {analyte} is also below the cut-off"))
                return Status.not_met, False
    notes.append(f"{analyte} not measured")
    return Status.unknown, False


def dnt_percent(rule: Rule, ctx: Context) -> RuleResult:
    """TCRab+ DNT percentage against one or more cut-offs (any one suffices), each optionally a band.

    params.thresholds: [{analyte | analyte_setting + analyte_map, op | op_setting,
    value | value_setting, upper: {op, value}}]; params.tissue_finding: a yes/no finding that
    also meets the rule (DNT expansion shown in a biopsy). No lymphocyte-count condition: the
    sets using this kind state none (a lymphopenia caveat is noted).
    """
    p = rule.params
    statuses: list[Status] = []
    evidence: list[Evidence] = []
    notes: list[str] = []
    parts: list[str] = []
    gating_only = True
    for t in p["thresholds"]:
        analyte_v, a_set = _param(ctx, t, "analyte")
        analyte = str(t["analyte_map"][analyte_v]) if a_set else str(analyte_v)
        op_v, op_set = _param(ctx, t, "op", ">=")
        value_v, v_set = _param(ctx, t, "value")
        op, value = str(op_v), float(value_v)
        upper = t.get("upper")
        desc = f"{analyte} {_fmt(op, value, '%')}"
        if upper is not None:
            desc += f" and {_fmt(str(upper['op']), float(upper['value']), '%')}"
        used = [s for s in (a_set, op_set, v_set) if s]
        if used:
            desc += " (site setting " + ", ".join(used) + ")"
        parts.append(desc)
        st, gating = _dnt_one(ctx, analyte, op, value, upper, evidence, notes)
        if st is Status.unknown and not gating:
            gating_only = False
        statuses.append(st)
    tissue = p.get("tissue_finding")
    if tissue:
        parts.append(f"{tissue} recorded as present (DNT expansion in a spleen or lymph node biopsy)")
        v = getattr(ctx.case.findings, str(tissue))
        if v is None:
            statuses.append(Status.unknown)
            gating_only = False
        else:
            evidence.append(Evidence(item=str(tissue), value=bool(v)))
            statuses.append(Status.met if v else Status.not_met)
    lym = ctx.latest("lymphocytes_abs")
    if lym is not None:
        rs = _range_status(ctx, "lymphocytes_abs", lym.canonical_value, lym)
        if rs is not None and rs[0] == "low":
            notes.append("lymphopenia: DNT percentages are unreliable; repeat when the count is normal")
    status = _combine_any(statuses)
    needs = (["TCRab+ CD4- CD8- DNT flow cytometry with TCRab gating"]
             if status is Status.unknown and gating_only else [])
    return rule.result(status, evidence, " or ".join(parts), notes, needs=needs)


def analyte_threshold(rule: Rule, ctx: Context) -> RuleResult:
    """One analyte against one cut-off given directly or by a site setting (``value_setting``)."""
    p = rule.params
    analyte, unit = str(p["analyte"]), str(p["unit"])
    op_v, op_set = _param(ctx, p, "op", ">")
    value_v, v_set = _param(ctx, p, "value")
    op, value = str(op_v), float(value_v)
    used = [s for s in (op_set, v_set) if s]
    threshold = f"{analyte} {_fmt(op, value, unit)}" + (" (site setting " + ", ".join(used) + ")" if used else "")
    obs = ctx.latest(analyte)
    if obs is None:
        return rule.result(Status.unknown, (), threshold, [f"{analyte} not measured"])
    hit = compare(obs.canonical_value, op, value)
    ev = ctx.evidence(obs, "above threshold" if hit else "not above threshold")
    return rule.result(Status.met if hit else Status.not_met, [ev], threshold)


def above_reference(rule: Rule, ctx: Context) -> RuleResult:
    """An analyte above the upper limit of its cited age-specific reference range (e.g. IgG)."""
    analyte = str(rule.params["analyte"])
    threshold = f"{analyte} above the upper limit of the reference range for age"
    obs = ctx.latest(analyte)
    if obs is None:
        return rule.result(Status.unknown, (), threshold, [f"{analyte} not measured"])
    rs = _range_status(ctx, analyte, obs.canonical_value, obs)
    if rs is None:
        return rule.result(Status.unknown, [ctx.evidence(obs)], threshold,
                           [f"no cited {analyte} reference range for this age: enter the laboratory's range"],
                           needs=[f"Age-specific {analyte} reference range from the performing laboratory"])
    status, desc = rs
    return rule.result(Status.met if status == "high" else Status.not_met,
                       [ctx.evidence(obs, f"{analyte} {status}: {desc}")], threshold)


def esid_apoptosis(rule: Rule, ctx: Context) -> RuleResult:
    """ESID part B 'impaired FAS-mediated apoptosis', placed by the site setting esid_apoptosis_placement.

    'alternative': impaired apoptosis alone meets part B. 'biomarker': it is one item of the
    'at least 2 elevated biomarkers' list, so here it counts only together with at least one
    elevated biomarker (the biomarker-only pairs are the separate biomarker rule).
    """
    base = apoptosis(rule, ctx)
    placement = ctx.settings.esid_apoptosis_placement
    label = f"site setting esid_apoptosis_placement = {placement}"
    if placement != "biomarker":
        return rule.result(base.status, base.evidence, f"{base.threshold} ({label})", base.notes)
    evidence = list(base.evidence)
    marks: list[Status] = []
    parts: list[str] = []
    for t in rule.params["biomarkers"]:
        parts.append(f"{t['analyte']} {_fmt(str(t['op']), float(t['value']), str(t['unit']))}")
        obs = ctx.latest(str(t["analyte"]))
        if obs is None:
            marks.append(Status.unknown)
            continue
        hit = compare(obs.canonical_value, str(t["op"]), float(t["value"]))
        evidence.append(ctx.evidence(obs, "above threshold" if hit else "not above threshold"))
        marks.append(Status.met if hit else Status.not_met)
    any_marker = _combine_any(marks)
    threshold = f"{base.threshold} AND at least one of " + "; ".join(parts) + f" ({label})"
    if Status.not_met in (base.status, any_marker):
        status = Status.not_met
    elif base.status is Status.met and any_marker is Status.met:
        status = Status.met
    else:
        status = Status.unknown
    return rule.result(status, evidence, threshold, base.notes)


KINDS.update({
    "lymphoproliferation_extent": lymphoproliferation_extent,
    "dnt_percent": dnt_percent,
    "analyte_threshold": analyte_threshold,
    "above_reference": above_reference,
    "esid_apoptosis": esid_apoptosis,
})
