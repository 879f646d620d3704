"""Lymphoma risk and related-disorder flags (knowledge/data/related_genes.yaml).

FAS germline carriers: Straus 2001 (NHL x14, Hodgkin x51); intracellular (dominant-
negative) mutations carry the highest risk (Rao & Oliveira 2011; Teachey 2012; Price 2014).
Genes of ALPS-like disorders (RALD, CEDS, CTLA4, LRBA, STAT3 GOF, APDS, NF-kB1...) are
flagged as differential diagnoses, never as ALPS.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from alpsdx import knowledge

__all__ = ["fas_lymphoma_risk", "panel_genes", "related_gene", "risk_for"]


@lru_cache(maxsize=1)
def _table() -> dict[str, Mapping[str, Any]]:
    return {str(e["gene"]).upper(): e for e in knowledge.load("related_genes")["genes"]}


def related_gene(gene: str) -> Mapping[str, Any] | None:
    """The related_genes.yaml row for ``gene`` (None when the gene is not in the table)."""
    return _table().get(gene.upper())


def panel_genes() -> tuple[str, ...]:
    """Every gene alpsdx keeps from a VCF: the ALPS genes and the related-disorder genes."""
    return tuple(_table())


def fas_lymphoma_risk(key: str) -> dict[str, Any]:
    row = knowledge.load("related_genes")["fas_lymphoma_risk"][key]
    return {"category": str(row["category"]), "text": str(row["text"]), "citations": list(row["citations"])}


def risk_for(gene: str, origin: str, region: str | None, classification: str | None) -> dict[str, Any]:
    """Risk annotation: ``{category, text, citations}``.

    A VUS, benign or unclassified variant gets no risk figure: the risk attaches to
    carriers of disease-causing FAS mutations.
    """
    g = gene.upper()
    row = related_gene(g)
    if classification in ("vus", "likely_benign", "benign"):
        out = fas_lymphoma_risk("vus")
        if classification != "vus":
            out["text"] = f"{classification.replace('_', ' ')} variant: no risk estimate is attached to it."
        return out
    if g == "FAS":
        if classification is None:
            base = {"category": "unclassified", "citations": ["straus2001"],
                    "text": "Not classified by the lab: no risk is attached until it is. If pathogenic and "
                            "germline, lymphoma risk is x14 (NHL) and x51 (Hodgkin) (Straus 2001)."}
            return base
        if origin == "somatic":
            return fas_lymphoma_risk("somatic")
        if region == "intracellular":
            out = fas_lymphoma_risk("germline_intracellular")
        elif region in ("extracellular", "signal_peptide"):
            out = fas_lymphoma_risk("germline_extracellular")
        else:
            out = fas_lymphoma_risk("germline_unknown_location")
            if region == "transmembrane":
                out["text"] = out["text"].replace(
                    "the position of this variant in the protein is not known",
                    "this variant is in the transmembrane helix, which the sources place in neither "
                    "the intracellular nor the extracellular group",
                )
        if origin != "germline":
            out["text"] = "Origin unknown; if germline: " + out["text"]
        return out
    if row is not None and bool(row.get("is_alps")):
        return {
            "category": "not_established",
            "text": f"No lymphoma risk figures for {g} variants were found in the project's sources.",
            "citations": [str(row["citation"])],
        }
    if row is not None:
        return {
            "category": "differential_diagnosis",
            "text": f"Not ALPS: consider {row['disorder']}; its own risks apply.",
            "citations": [str(row["citation"])],
        }
    return {"category": "not_assessed", "text": f"{g} is not on the ALPS panel.", "citations": []}
