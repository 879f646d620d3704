"""Rule kinds: how one criterion reads the case. Parameters come from the criteria YAML.

Each kind returns met / not_met / unknown with the evidence it used; missing data is
always ``unknown``, never ``not_met``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from alpsdx.criteria.base import Context, Evidence, Rule, RuleResult, Status
from alpsdx.model import Finding
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


def _range_status(ctx: Context, analyte: str, value: float) -> tuple[str, str] | None:
    """('low'|'normal'|'high', description with citation) for the case's age, or None."""
    from alpsdx.reference_ranges import classify_value

    out = classify_value(analyte, value, ctx.case.age, ctx.case.sex.value)
    if out is None:
        return None
    status, rng = out
    lo = "" if rng.low is None else f"{rng.low:g}"
    hi = "" if rng.high is None else f"{rng.high:g}"
    return status, f"reference {lo}-{hi} {rng.unit} for {rng.age_band} ({rng.citation})"


# --- kinds -----------------------------------------------------------------------------


def _finding_duration(f: Finding, ctx: Context) -> float | None:
    if f.duration_months is not None:
        return f.duration_months
    if f.onset is not None:
        return (ctx.as_of - f.onset).days / DAYS_PER_MONTH
    return None


def lymphoproliferation(rule: Rule, ctx: Context) -> RuleResult:
    """Chronic (> N months) nonmalignant, noninfectious lymphadenopathy and/or splenomegaly."""
    p = rule.params
    op, months = str(p.get("op", ">")), float(p["min_months"])
    threshold = f"duration {_SYMBOL[op]} {months:g} months, malignancy and infection excluded"
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


def dnt(rule: Rule, ctx: Context) -> RuleResult:
    """Elevated TCRab+ DNT, counted only with a normal or raised lymphocyte count for age."""
    p = rule.params
    op = getattr(ctx.settings, p.get("comparator_setting", ""), None) or p.get("op", ">=")
    comparator_cites: Mapping[str, str] = p.get("comparator_citations", {})
    parts = [_fmt(op, float(t["value"]), t["unit"]) + f" ({t['analyte']})" for t in p["thresholds"]]
    threshold = " or ".join(parts)
    if p.get("comparator_setting"):
        threshold += f"; comparator '{op}' (site setting {p['comparator_setting']}"
        if op in comparator_cites:
            threshold += f", as in {comparator_cites[op]}"
        threshold += ")"
    evidence: list[Evidence] = []
    notes: list[str] = []
    values: list[tuple[str, float, bool]] = []
    for t in p["thresholds"]:
        obs = ctx.latest(t["analyte"])
        if obs is not None:
            hit = compare(obs.canonical_value, op, float(t["value"]))
            evidence.append(ctx.evidence(obs))
            values.append((t["analyte"], obs.canonical_value, hit))
            if obs.tcrab_gated is False:
                notes.append(f"{obs.analyte} was gated without TCRab: gamma-delta DNT are included and do not count")
    # An absolute DNT count with the lymphocyte count gives the % of lymphocytes.
    if not any(a == "dnt_pct_lymphocytes" for a, _, _ in values):
        abs_obs, lym = ctx.latest("dnt_abs"), ctx.latest("lymphocytes_abs")
        t_lym = next((t for t in p["thresholds"] if t["analyte"] == "dnt_pct_lymphocytes"), None)
        if abs_obs is not None and lym is not None and t_lym is not None:
            pct = dnt_percent_from_counts(abs_obs.canonical_value, lym.canonical_value)
            evidence.append(ctx.evidence(abs_obs))
            evidence.append(Evidence(item="dnt_pct_lymphocytes", value=round(pct, 4), unit="%",
                                     date=abs_obs.date, note="derived from dnt_abs and lymphocytes_abs"))
            values.append(("dnt_pct_lymphocytes", pct, compare(pct, op, float(t_lym["value"]))))
    tcrab_missing = any("gamma-delta" in n for n in notes)
    if not values:
        return rule.result(Status.unknown, evidence, threshold, ["DNT not measured"])
    elevated = any(hit for _, _, hit in values)
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
        rs = _range_status(ctx, "lymphocytes_abs", lym.canonical_value)
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
    drugs = [m.name for m in ctx.active_medications() if any(k in m.name for k in _IMMUNOSUPPRESSANTS)]
    if drugs:
        notes.append("measured during immunosuppression (" + ", ".join(drugs) + "): DNT may be lowered")
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
    genes = [str(g) for g in rule.params["genes"]]
    threshold = "pathogenic or likely pathogenic variant in " + ", ".join(genes) + " (a VUS does not count)"
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
    if tested and all(g in tested for g in genes[:1]):
        missing = [g for g in genes if g not in tested]
        if missing:
            notes.append("not tested: " + ", ".join(missing))
        return rule.result(Status.not_met, evidence, threshold, notes)
    return rule.result(Status.unknown, evidence, threshold, notes or ["genetic testing not reported"])


def biomarkers(rule: Rule, ctx: Context) -> RuleResult:
    """At least ``min_count`` biomarkers above their thresholds."""
    p = rule.params
    need = int(p.get("min_count", 1))
    parts = [f"{t['analyte']} {_fmt(t['op'], float(t['value']), t['unit'])}" for t in p["thresholds"]]
    threshold = ("any of " if need == 1 else f"at least {need} of ") + "; ".join(parts)
    evidence: list[Evidence] = []
    above = known = 0
    for t in p["thresholds"]:
        obs = ctx.latest(t["analyte"])
        if obs is None:
            continue
        known += 1
        value = obs.canonical_value
        hit = compare(value, t["op"], float(t["value"]))
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
        rs = _range_status(ctx, "igg", igg.canonical_value)
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
