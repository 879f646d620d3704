"""Genetic subtype (2009 nomenclature) and the related disorders and caveats to consider.

Subtypes (Oliveira et al., Blood 2010; GeneReviews NBK1108 Table 1): ALPS-FAS (germline
FAS), ALPS-sFAS (somatic FAS), ALPS-FASLG, ALPS-CASP10, ALPS-U (criteria met, no
pathogenic variant found in the genes tested). A VUS is reported as such, never as a
mutation. Pathogenic variants in related genes (knowledge/data/related_genes.yaml) are
differential diagnoses, not ALPS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from alpsdx import knowledge
from alpsdx.criteria.base import Category, Evaluation, Status
from alpsdx.model import Case, Variant

__all__ = ["Classification", "classify", "related_genes"]

ALPS_GENES = ("FAS", "FASLG", "CASP10")


@dataclass(frozen=True)
class Classification:
    subtype: str | None
    basis: str
    considerations: tuple[str, ...]


@cache
def related_genes() -> Mapping[str, Mapping[str, Any]]:
    """Gene symbol -> entry of the cited gene-disorder table."""
    return {str(g["gene"]).upper(): g for g in knowledge.load("related_genes")["genes"]}


def _cite(key: str | None) -> str:
    return f" [{key}]" if key else ""


@lru_cache(maxsize=4096)
def _origins(variants: tuple[Variant, ...]) -> tuple[tuple[str, str], ...]:
    """Each variant's (origin, basis): reported, else inferred from VAF by the genetics module,
    which sees every sample of the same change together (blood vs sorted DNT)."""
    from alpsdx.genetics import annotate_all

    out: list[tuple[str, str]] = []
    for v, ann in zip(variants, annotate_all(variants), strict=True):
        if v.origin != "unknown":
            out.append((v.origin, "reported origin"))
        else:
            d = ann.to_dict()
            out.append((str(d.get("origin") or "unknown"), str(d.get("origin_basis") or "origin not reported")))
    return tuple(out)


def _origin(case: Case, i: int) -> tuple[str, str]:
    return _origins(tuple(case.variants))[i]


def _describe(v: Variant) -> str:
    return " ".join(x for x in (v.gene, v.hgvs_c, v.hgvs_p) if x)


def _subtype(case: Case, ev: Evaluation) -> tuple[str | None, str]:
    if ev.category not in (Category.definitive, Category.probable):
        return None, f"no subtype: {ev.criteria_set} category is {ev.category.value}"
    genes = related_genes()
    for gene in ALPS_GENES:
        for i, v in enumerate(case.variants):
            if v.gene != gene or not v.is_pathogenic:
                continue
            entry = genes.get(gene, {})
            origin, basis = _origin(case, i)
            if origin == "somatic" and entry.get("subtype_somatic"):
                return str(entry["subtype_somatic"]), f"somatic pathogenic {_describe(v)} ({basis})"
            sub = str(entry.get("subtype_germline") or f"ALPS-{gene}")
            if origin == "unknown":
                return sub, f"pathogenic {_describe(v)}; origin not reported, germline assumed ({basis})"
            return sub, f"{origin} pathogenic {_describe(v)} ({basis})"
    try:
        mutation = ev.status_of("primary.mutation")
    except KeyError:
        mutation = Status.unknown
    tested = {g.upper() for g in (case.genes_tested or [])} | {v.gene for v in case.variants}
    if mutation is Status.not_met:
        return "ALPS-U", "criteria met, no pathogenic variant in " + ", ".join(g for g in ALPS_GENES if g in tested)
    untested = [g for g in ALPS_GENES if g not in tested]
    if len(untested) < len(ALPS_GENES):
        return None, "subtype pending: " + ", ".join(untested) + " not tested (ALPS-U needs all three negative)"
    return None, "subtype pending: genetic testing of FAS, FASLG and CASP10 not reported"


# Notes in which the criteria raise a caveat about how DNT were measured.
_DNT_CAVEAT = re.compile("gamma-delta|lymphopenia|immunosuppression")


@cache
def _alps_like_disorders() -> tuple[str, ...]:
    """The related disorders that are neither ALPS nor defined by somatic variants, sorted."""
    return tuple(sorted({str(g["disorder"]) for g in related_genes().values()
                         if not g.get("is_alps") and not g.get("somatic")}))


def _considerations(case: Case, ev: Evaluation) -> list[str]:
    out: list[str] = []
    genes = related_genes()
    for v in case.variants:
        entry = genes.get(v.gene)
        if v.classification == "vus":
            where = "an ALPS gene" if v.gene in ALPS_GENES else "a related gene"
            out.append(f"{_describe(v)} is a variant of uncertain significance in {where}: "
                       "reported as VUS, not counted as a mutation")
            continue
        if entry is None or entry.get("is_alps") or not v.is_pathogenic:
            if entry is not None and entry.get("is_alps") and v.is_pathogenic and entry.get("note") and v.gene == "CASP10":
                out.append(f"CASP10: {entry['note']}{_cite(entry.get('citation'))}")
            continue
        somatic_note = ""
        if entry.get("somatic") and v.origin == "germline":
            somatic_note = " (the disorder is defined by somatic variants; a germline report needs review)"
        out.append(f"Consider {entry['disorder']}: pathogenic {_describe(v)} — a differential "
                   f"diagnosis, not ALPS{somatic_note}{_cite(entry.get('citation'))}")
    # Caveats the criteria raised about how DNT were measured.
    for r in ev.criteria:
        for note in r.notes:
            if _DNT_CAVEAT.search(note):
                out.append(f"{r.id}: {note}")
    # A fitting presentation without elevated DNT points to the ALPS-like disorders.
    lp = _status(ev, "required.chronic_lymphoproliferation")
    dnt = _status(ev, "required.dnt")
    autoimmune = bool(case.findings.autoimmune_cytopenias)
    if lp is Status.met and dnt is Status.not_met and autoimmune:
        like = _alps_like_disorders()
        if like:
            out.append("Lymphoproliferation and autoimmunity without elevated DNT: consider ALPS-like "
                       "immune dysregulation disorders (" + "; ".join(like) + ")")
    return list(dict.fromkeys(out))


def _status(ev: Evaluation, rule_id: str) -> Status | None:
    try:
        return ev.status_of(rule_id)
    except KeyError:
        return None


def classify(case: Case, ev: Evaluation) -> Classification:
    """Subtype and considerations for a case already evaluated under ``ev``'s set."""
    subtype, basis = _subtype(case, ev)
    return Classification(subtype=subtype, basis=basis, considerations=tuple(_considerations(case, ev)))


def differential_genes(variants: Sequence[Variant]) -> list[str]:
    """Genes among ``variants`` that point to a related disorder rather than ALPS."""
    genes = related_genes()
    return [v.gene for v in variants if v.gene in genes and not genes[v.gene].get("is_alps")]
