"""Protein-domain maps of FAS, FASLG and CASP10 (knowledge/data/protein_domains.yaml).

Positions are residues on the MANE Select protein (Met1 = 1). ``locate`` gives the
topological region (signal_peptide / extracellular / transmembrane / intracellular) and
the most specific named domain for one residue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alpsdx import knowledge

__all__ = [
    "ALPS_GENES",
    "Location",
    "accession_gene",
    "exon_for",
    "gene_map",
    "has_domain_map",
    "locate",
    "residue_notes",
]

ALPS_GENES = ("FAS", "FASLG", "CASP10")


@dataclass(frozen=True)
class Location:
    """Where a residue sits: topological region and the most specific named domain."""

    gene: str
    position: int
    region: str | None  # signal_peptide / extracellular / transmembrane / intracellular
    region_label: str | None
    domain: str | None  # e.g. "death_domain"
    domain_label: str | None
    citation: str
    beyond_end: bool = False


def _genes() -> Mapping[str, Any]:
    genes: Mapping[str, Any] = knowledge.load("protein_domains")["genes"]
    return genes


def has_domain_map(gene: str) -> bool:
    return gene.upper() in _genes()


def gene_map(gene: str) -> Mapping[str, Any]:
    """The domain map of one gene (KeyError for a gene without one)."""
    return _genes()[gene.upper()]


def accession_gene(accession: str) -> tuple[str, str | None] | None:
    """Gene for a RefSeq/Ensembl accession of the panel, and a note if the version is not MANE.

    ``NM_000043.6`` -> ("FAS", None); ``NM_000043.5`` -> ("FAS", "older version ...");
    an accession of a non-MANE transcript of the gene is accepted with a note too.
    """
    base, _, version = accession.partition(".")
    for gene, m in _genes().items():
        mane = m["mane"]
        for kind in ("nm", "np", "ensembl_transcript", "ensembl_protein"):
            acc = str(mane[kind])
            mbase, _, mver = acc.partition(".")
            if base == mbase:
                if not version or version == mver:
                    return gene, None
                return gene, (
                    f"{accession} is not the MANE Select version {acc}; positions are assumed "
                    f"unchanged between versions (check the lab's transcript)"
                )
        for acc in m.get("other_refseq", ()):
            if base == str(acc).partition(".")[0]:
                return gene, (
                    f"{accession} is not the MANE Select transcript of {gene} "
                    f"({mane['nm']}); domain positions are on the MANE protein and may not apply"
                )
    return None


def locate(gene: str, position: int) -> Location:
    """Region and domain of residue ``position`` of ``gene`` (which must have a map)."""
    m = gene_map(gene)
    region = region_label = domain = domain_label = None
    beyond = position > int(m["protein_length"]) or position < 1
    for r in m["regions"]:
        if int(r["start"]) <= position <= int(r["end"]):
            region, region_label = str(r["region"]), str(r["label"])
            break
    for d in m["domains"]:
        if int(d["start"]) <= position <= int(d["end"]):
            domain, domain_label = str(d["name"]), str(d["label"])
            break
    return Location(
        gene=gene.upper(),
        position=position,
        region=region,
        region_label=region_label,
        domain=domain,
        domain_label=domain_label,
        citation=str(m["citation"]),
        beyond_end=beyond,
    )


@dataclass(frozen=True)
class ExonCall:
    """The exon of a residue where a cited source pins it."""

    exon: int
    exon_count: int | None
    basis: str
    citations: tuple[str, ...]


def exon_for(gene: str, position: int) -> ExonCall | None:
    """The exon encoding residue ``position`` when the knowledge data pins it, else None."""
    if not has_domain_map(gene):
        return None
    m = gene_map(gene)
    for e in m.get("exons", ()) or ():
        if int(e["start"]) <= position <= int(e["end"]):
            count = m.get("exon_count")
            return ExonCall(
                exon=int(e["exon"]),
                exon_count=int(count) if count is not None else None,
                basis=str(e["basis"]),
                citations=tuple(str(c) for c in e["citations"]),
            )
    return None


def residue_notes(gene: str, position: int) -> list[tuple[str, str]]:
    """(text, citation) notes the knowledge data attaches to residue ``position``."""
    if not has_domain_map(gene):
        return []
    return [
        (str(n["text"]), str(n["citation"]))
        for n in gene_map(gene).get("residue_notes", ()) or ()
        if int(n["start"]) <= position <= int(n["end"])
    ]
