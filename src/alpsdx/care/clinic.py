"""Care items from the cytopenia grading and the FAS-mutation prediction.

Thin adapters that turn :mod:`alpsdx.cytopenias` grades (age-specific anaemia, neutropenia,
thrombocytopenia, IgG; Evans syndrome; the NIH 2009 'autoimmune cytopenias AND elevated
IgG' criterion) and :mod:`alpsdx.biomarkers` (Rensing-Ehl 2013 post-test probability and
the sequencing recommendation) into care items with their evidence and source.
"""

from __future__ import annotations

from typing import Any

from alpsdx import cytopenias
from alpsdx.biomarkers import predict_fas_mutation
from alpsdx.care.items import CareItem
from alpsdx.care.settings import CareSettings
from alpsdx.cytopenias import observation_evidence
from alpsdx.model import Case

__all__ = ["biomarker_items", "cytopenia_items"]

_BIOMARKERS = ("vitamin_b12", "sfasl", "dnt_pct_lymphocytes", "dnt_pct_cd3")


def cytopenia_items(case: Case) -> list[CareItem]:
    items: list[CareItem] = []
    for g in cytopenias.assess(case):
        if g.present is None:
            sev: Any = "info"
        elif g.present and (g.severity in ("moderate", "severe") or g.kind == "thrombocytopenia"):
            sev = "warning"
        else:
            sev = "info"
        details = {"kind": g.kind, "present": g.present, "severity": g.severity,
                   "reference": None if g.reference is None else g.reference.to_dict()}
        extra = (g.reference.citation,) if g.reference is not None and g.reference.citation != g.citation else ()
        items.append(CareItem(f"cytopenia.{g.kind}", g.message[0].upper() + g.message[1:] + ".", g.citation, sev,
                              g.evidence, "cytopenias", extra_citations=extra, details=details))
    status, evidence = cytopenias.cytopenia_igg_status(case)
    if case.findings.autoimmune_cytopenias is not None or cytopenias.newest(case, "igg") is not None:
        word = {"met": "met", "not_met": "not met", "unknown": "unknown (data missing)"}[status]
        items.append(CareItem(
            "cytopenia.nih2009_secondary", f"NIH 2009 secondary criterion 'autoimmune cytopenias AND elevated IgG "
            f"(polyclonal hypergammaglobulinaemia)': {word}.", "oliveira2010", "info", tuple(evidence),
            "cytopenias", details={"status": status}))
    ev = cytopenias.evans_syndrome(case)
    if ev is not None:
        evid = () if ev.dnt is None else (observation_evidence(ev.dnt),)
        items.append(CareItem("cytopenia.evans_syndrome", f"{ev.message} {ev.recommendation}", ev.citation,
                              "warning" if ev.dnt_band in (None, "high", "intermediate") else "info",
                              ({"finding": "autoimmune_cytopenias", "value": list(ev.lineages)}, *evid),
                              "cytopenias", details={"lineages": list(ev.lineages), "dnt_band": ev.dnt_band}))
    return items


def biomarker_items(case: Case, settings: CareSettings | None = None,
                    pre_test_probability: float | None = None) -> list[CareItem]:
    """The FAS-mutation probability item when any of B12, sFASL or DNT is recorded."""
    if not any(cytopenias.newest(case, a) is not None for a in _BIOMARKERS):
        return []
    s = settings or CareSettings()
    thr = float(s.get("fas_sequencing_threshold")) if "fas_sequencing_threshold" in s.overrides else None
    p = predict_fas_mutation(case, pre_test_probability=pre_test_probability, threshold=thr)
    evidence: list[dict[str, Any]] = []
    for r in p.rules:
        evidence.extend(r.evidence)
    sev: Any = "warning" if p.sequencing_recommended else "info"
    msg = p.recommendation
    known = p.sequencing_recommended is False and "already recorded" in p.recommendation
    if p.primary is not None and not known:
        msg += (f" Pre-test probability {p.pre_test_probability:.0%} ({p.pre_test_source}); likelihood ratio "
                f"{p.primary.lr:.3g} derived from the published PPV {p.primary.ppv:.0%} / NPV {p.primary.npv:.0%}.")
    return [CareItem("biomarkers.fas_mutation_probability", msg, "rensingehl2013", sev, tuple(evidence),
                     "biomarkers", settings=({"setting": "fas_sequencing_threshold", "value": p.threshold,
                                              "label": p.threshold_label, "citation": "site_setting"},),
                     details=p.to_dict())]
