"""Protein-domain maps and exon tables of FAS, FASLG and CASP10 (knowledge/data/protein_domains.yaml).

Positions are residues on the MANE Select protein (Met1 = 1). ``locate`` gives the
topological region (signal_peptide / extracellular / transmembrane / intracellular) and
the most specific named domain for one residue.

``ExonTable`` holds the exons of a MANE transcript in c. (coding DNA) numbering, where a
cited source gives them; it places a c. position in its exon or intron (HGVS: c.N+k lies
in the intron after the exon ending at c.N, c.N-k in the intron before the exon starting
at c.N) and a codon in its exon, or across an exon junction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alpsdx import knowledge

__all__ = [
    "ALPS_GENES",
    "CPos",
    "ExonLocation",
    "ExonTable",
    "Location",
    "accession_gene",
    "exon_table",
    "exon_table_status",
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
    m: Mapping[str, Any] = _genes()[gene.upper()]
    return m


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
class CPos:
    """One c. position: ``base`` as written (c.-14 -> -14; c.*5 -> 5 with ``utr3``) and
    the intronic ``offset`` (c.506-1 -> base 506, offset -1)."""

    base: int
    offset: int = 0
    utr3: bool = False

    def __str__(self) -> str:
        b = f"*{self.base}" if self.utr3 else str(self.base)
        return f"c.{b}{self.offset:+d}" if self.offset else f"c.{b}"


@dataclass(frozen=True)
class ExonLocation:
    """Where a c. position (or range) lies on a transcript.

    ``exon``/``intron``: VEP-style labels ("6/9", "5-6/9", "5/8"); None when the position
    is not in one. ``problem``: why it could not be placed (then both are None)."""

    exon: str | None
    intron: str | None
    problem: str | None = None


@dataclass(frozen=True)
class ExonTable:
    """Exons of one transcript in c. numbering. ``rows``: (exon, c_start, c_end) with
    None for the open UTR end of the first/last exon (the extent of the UTRs is not
    in the table); ``cds_length`` counts the stop codon."""

    gene: str
    transcript: str
    cds_length: int
    rows: tuple[tuple[int, int | None, int | None], ...]
    citations: tuple[str, ...]
    basis: str
    note: str | None = None  # shown with every exon computed from the table (numbering caveats)

    @property
    def exon_count(self) -> int:
        return len(self.rows)

    def _linear(self, base: int, utr3: bool) -> int:
        return self.cds_length + base if utr3 else base

    def exon_of_base(self, base: int, utr3: bool = False) -> int | None:
        """The exon holding the (exonic) base c.``base`` (c.*``base`` with ``utr3``)."""
        if base == 0 and not utr3:
            return None  # there is no c.0
        lin = self._linear(base, utr3)
        for n, lo, hi in self.rows:
            if (lo is None or lin >= lo) and (hi is None or lin <= hi):
                return n
        return None

    def _point(self, pos: CPos) -> tuple[str, int] | str:
        """('exon', n) / ('intron', n) for one position, or a problem sentence."""
        if pos.base == 0 and not pos.utr3:
            return "c.0 does not exist"
        lin = self._linear(pos.base, pos.utr3)
        if lin > self.cds_length and self.rows[-1][2] is None and not pos.utr3:
            return f"{pos} lies beyond the coding sequence of {self.transcript} (c.1-c.{self.cds_length})"
        if not pos.offset:
            n = self.exon_of_base(pos.base, pos.utr3)
            return ("exon", n) if n is not None else f"{pos} is outside the exons of {self.transcript}"
        for n, lo, hi in self.rows:
            if pos.offset > 0 and hi is not None and lin == hi and n < self.exon_count:
                return ("intron", n)
            if pos.offset < 0 and lo is not None and lin == lo and n > 1:
                return ("intron", n - 1)
        anchor = "last" if pos.offset > 0 else "first"
        return (
            f"{pos}: c.{'*' if pos.utr3 else ''}{pos.base} is not the {anchor} base of an exon "
            f"of {self.transcript}, so the offset {pos.offset:+d} does not name an intron of it"
        )

    def locate(self, start: CPos, end: CPos | None = None) -> ExonLocation:
        """Exon or intron of a c. position or range (a range gets every exon and intron it touches)."""
        a = self._point(start)
        b = self._point(end) if end is not None and end != start else a
        for p in (a, b):
            if isinstance(p, str):
                return ExonLocation(None, None, p)
        assert not isinstance(a, str) and not isinstance(b, str)
        exons: set[int] = set()
        introns: set[int] = set()
        for kind, n in (a, b):
            (exons if kind == "exon" else introns).add(n)
        if a != b:  # every exon/intron strictly between the two ends
            ka, na = a
            kb, nb = b
            # order on the transcript: exon n < intron n < exon n+1
            ra = 2 * na - (1 if ka == "exon" else 0)
            rb = 2 * nb - (1 if kb == "exon" else 0)
            lo, hi = min(ra, rb), max(ra, rb)
            for r in range(lo, hi + 1):
                (exons if r % 2 else introns).add((r + 1) // 2 if r % 2 else r // 2)
        n = self.exon_count
        return ExonLocation(_label(exons, n), _label(introns, n - 1))

    def exons_of_codons(self, first: int, last: int) -> list[int]:
        """Exons holding any base of codons ``first``..``last`` (the c. bases 3*first-2 to
        3*last), ascending; the same exons as :meth:`codon_exons` over every codon of the
        range, found from the table's rows, so a range of any length costs one pass over
        the exons (a fuzzed p.Lys125_Ala2525100000del once took minutes and gigabytes)."""
        if last < first:
            return []
        lo_q, hi_q = 3 * first - 2, 3 * last
        out: list[int] = []
        for n, lo, hi in self.rows:
            # c.0 does not exist: an exon whose only overlap is base 0 holds no base of the range
            a = lo_q if lo is None else max(lo_q, lo)
            b = hi_q if hi is None else min(hi_q, hi)
            if a <= b and not (a == b == 0):
                out.append(n)
        return out

    def codon_exons(self, residue: int) -> dict[int, list[int]]:
        """Exon -> c. bases of codon ``residue`` (two exons when it spans a junction)."""
        out: dict[int, list[int]] = {}
        for base in range(3 * residue - 2, 3 * residue + 1):
            e = self.exon_of_base(base)
            if e is not None:
                out.setdefault(e, []).append(base)
        return out


def _label(numbers: set[int], total: int) -> str | None:
    if not numbers:
        return None
    lo, hi = min(numbers), max(numbers)
    return f"{lo}/{total}" if lo == hi else f"{lo}-{hi}/{total}"


def exon_table(gene: str) -> ExonTable | None:
    """The cited exon table of ``gene``'s MANE transcript, or None where none was sourced."""
    if not has_domain_map(gene):
        return None
    t = gene_map(gene).get("exon_table")
    if not t or not t.get("exons"):
        return None
    rows = tuple(
        (int(e["exon"]), _opt_int(e.get("c_start")), _opt_int(e.get("c_end"))) for e in t["exons"]
    )
    return ExonTable(
        gene=gene.upper(),
        transcript=str(t["transcript"]),
        cds_length=int(t["cds_length"]),
        rows=rows,
        citations=tuple(str(c) for c in t["citations"]),
        basis=str(t["basis"]),
        note=str(t["note"]) if t.get("note") else None,
    )


def exon_table_status(gene: str) -> str | None:
    """Why a gene has no exon table (what was searched), from the knowledge data."""
    if not has_domain_map(gene):
        return None
    status = gene_map(gene).get("exon_table_status")
    return str(status) if status else None


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def residue_notes(gene: str, position: int) -> list[tuple[str, str]]:
    """(text, citation) notes the knowledge data attaches to residue ``position``."""
    if not has_domain_map(gene):
        return []
    return [
        (str(n["text"]), str(n["citation"]))
        for n in gene_map(gene).get("residue_notes", ()) or ()
        if int(n["start"]) <= position <= int(n["end"])
    ]
