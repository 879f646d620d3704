"""Exon and intron numbers from c. and p. positions (knowledge/data/protein_domains.yaml exon_table).

The FAS expectations are the junctions the cited sources give for NM_000043.6 (coding exons
c.1-30, 31-196, 197-334, 335-443, 444-505, 506-568, 569-651, 652-676, 677-1008): e.g. ClinVar
c.334+2dupT, GeneBe c.651+312G>A, GAMBL c.197-2A>G / c.652-2A>G / c.676+1G>C, GENCODE exon 6
= c.506-c.568. Each edge is tested on both sides and at the first intronic base.

FASLG (NM_000639.3, 4 exons: c.1-348, 349-394, 395-451, 452-846) and CASP10 (NM_032977.4,
10 exons: untranslated exon 1 to c.-8, then c.-7-347, 348-441, 442-577, 578-684, 685-721,
722-813, 814-922, 923-1415, 1416-1569) come from CCDS1304.1 / CCDS2340.1 with GENCODE V24
and ClinVar g./c. anchors; their tables are checked against the cited GRCh38 segments.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpsdx import knowledge
from alpsdx.genetics import annotate, annotate_all, parse_hgvs, read_vcf_calls
from alpsdx.genetics.domains import CPos, ExonTable, exon_table, gene_map
from alpsdx.model import Variant

FAS_JUNCTIONS = [30, 196, 334, 443, 505, 568, 651, 676]  # last coding base of exons 1-8


@pytest.fixture(scope="module")
def fas() -> ExonTable:
    t = exon_table("FAS")
    assert t is not None
    return t


# --- the cited data ------------------------------------------------------------------------

def test_fas_table_is_contiguous_cited_and_spans_the_cds(fas: ExonTable) -> None:
    m = gene_map("FAS")
    assert fas.transcript == m["mane"]["nm"] == "NM_000043.6"
    assert fas.cds_length == 3 * (int(m["protein_length"]) + 1) == 1008
    assert fas.exon_count == 9
    assert fas.rows[0][1] is None and fas.rows[-1][2] is None  # UTR ends left open
    for (n, _, hi), (n2, lo2, _) in itertools.pairwise(fas.rows):
        assert n2 == n + 1 and hi is not None and lo2 == hi + 1
    assert [hi for _, _, hi in fas.rows[:-1]] == FAS_JUNCTIONS
    for c in fas.citations:
        assert knowledge.resolve_citation(c), c
    evidence = m["exon_table"]["junctions"]
    assert [j["after"] for j in evidence] == FAS_JUNCTIONS and all(j["evidence"] for j in evidence)


def test_fas_table_agrees_with_the_cited_domain_facts(fas: ExonTable) -> None:
    # exon 6 encodes the transmembrane domain (Liu 1995; Agrebi 2017): helix 174-190
    tm = [fas.codon_exons(r) for r in range(174, 190)]
    assert all(list(e) == [6] for e in tm)
    # ALPS mutations in exon 9 affect the death domain (PMID 12732128): DD 230-314
    assert all(list(fas.codon_exons(r)) == [9] for r in range(230, 315))
    # exon 6 skipping (FasTMDel) removes residues 169-189 in frame (UniProt VSP_006489): 63 nt
    assert (568 - 506 + 1) % 3 == 0


def test_every_alps_gene_has_a_cited_table_on_its_mane_transcript() -> None:
    for gene in ("FAS", "FASLG", "CASP10"):
        t = exon_table(gene)
        m = gene_map(gene)
        assert t is not None and t.transcript == m["mane"]["nm"], gene
        assert t.cds_length == 3 * (int(m["protein_length"]) + 1), gene
        assert t.exon_count == int(m["exon_count"]) and knowledge.resolve_citation(m["exon_count_citation"])
        assert not m.get("exon_table_status"), gene


# --- every edge: last base of exon N, first base of exon N+1, c.N+1 and c.N+1-1 ------------

@pytest.mark.parametrize(("n", "last"), list(enumerate(FAS_JUNCTIONS, start=1)))
def test_each_exon_edge(fas: ExonTable, n: int, last: int) -> None:
    total = fas.exon_count
    assert fas.locate(CPos(last)).exon == f"{n}/{total}"
    assert fas.locate(CPos(last + 1)).exon == f"{n + 1}/{total}"
    donor = fas.locate(CPos(last, +1))
    acceptor = fas.locate(CPos(last + 1, -1))
    assert (donor.exon, donor.intron) == (None, f"{n}/{total - 1}")
    assert (acceptor.exon, acceptor.intron) == (None, f"{n}/{total - 1}")
    deep = fas.locate(CPos(last, +312))
    assert deep.intron == f"{n}/{total - 1}"


@pytest.mark.parametrize(
    ("pos", "exon"),
    [(CPos(1), "1/9"), (CPos(-1), "1/9"), (CPos(-250), "1/9"), (CPos(1008), "9/9"),
     (CPos(1, utr3=True), "9/9"), (CPos(800, utr3=True), "9/9")],
)
def test_utr_positions_lie_in_the_first_and_last_exon(fas: ExonTable, pos: CPos, exon: str) -> None:
    assert fas.locate(pos).exon == exon


@pytest.mark.parametrize(
    ("pos", "fragment"),
    [(CPos(506, +40), "c.506 is not the last base of an exon"),
     (CPos(500, -3), "c.500 is not the first base of an exon"),
     (CPos(1, -1), "not the first base of an exon"),  # no intron before exon 1
     (CPos(0), "c.0 does not exist"),
     (CPos(1200), "beyond the coding sequence")],
)
def test_positions_that_name_no_intron_or_exon(fas: ExonTable, pos: CPos, fragment: str) -> None:
    loc = fas.locate(pos)
    assert loc.exon is None and loc.intron is None and fragment in (loc.problem or "")


@pytest.mark.parametrize(
    ("start", "end", "exon", "intron"),
    [(CPos(651, 2), CPos(652, -3), None, "7/8"),          # deletion inside intron 7
     (CPos(650), CPos(653), "7-8/9", "7/8"),              # across the 7/8 junction
     (CPos(500), CPos(510), "5-6/9", "5/8"),
     (CPos(300), CPos(700), "3-9/9", "3-8/8")],           # multi-exon deletion
)
def test_ranges_report_every_exon_and_intron_they_touch(
    fas: ExonTable, start: CPos, end: CPos, exon: str | None, intron: str | None
) -> None:
    loc = fas.locate(start, end)
    assert (loc.exon, loc.intron) == (exon, intron)


@pytest.mark.parametrize(
    ("codon", "exons"),
    [(10, {1: [28, 29, 30]}), (11, {2: [31, 32, 33]}),             # phase-0 junction 30/31
     (66, {2: [196], 3: [197, 198]}), (112, {3: [334], 4: [335, 336]}),
     (148, {4: [442, 443], 5: [444]}), (169, {5: [505], 6: [506, 507]}),
     (190, {6: [568], 7: [569, 570]}), (217, {7: [649, 650, 651]}), (218, {8: [652, 653, 654]}),
     (226, {8: [676], 9: [677, 678]}), (336, {9: [1006, 1007, 1008]})],
)
def test_codons_at_junctions(fas: ExonTable, codon: int, exons: dict[int, list[int]]) -> None:
    assert fas.codon_exons(codon) == exons


# --- through annotate: c. and p. input, VCF agreement ---------------------------------------

@pytest.mark.parametrize(
    ("hgvs", "gene", "exon", "intron"),
    [("NM_000043.6:c.506-1G>A", None, None, "5/8"),
     ("c.651+1G>A", "FAS", None, "7/8"),
     ("c.652G>A", "FAS", "8/9", None),
     ("c.676+2T>C", "FAS", None, "8/8"),
     ("NM_000043.6:c.334del", None, "3/9", None),
     ("NM_000043.5:c.334+2dup", None, None, "3/8"),   # older version: same numbering, noted
     ("c.-20C>T", "FAS", "1/9", None),
     ("c.*30A>G", "FAS", "9/9", None)],
)
def test_annotate_computes_exon_or_intron_from_the_c_change(
    hgvs: str, gene: str | None, exon: str | None, intron: str | None
) -> None:
    a = annotate(parse_hgvs(hgvs, gene))
    assert (a.exon, a.intron) == (exon, intron)
    assert "NM_000043.6" in (a.exon_basis or "") and "cited exon table" in (a.exon_basis or "")
    assert "proteinpaint_fas_nm000043" in a.citations


def test_bare_c_change_says_which_transcript_it_was_read_on() -> None:
    a = annotate(parse_hgvs("c.651+1G>A", "FAS"))
    assert "read on NM_000043.6" in (a.exon_basis or "")


def test_c_change_on_another_transcript_is_not_placed_with_the_mane_table() -> None:
    a = annotate(parse_hgvs("NM_152871.4:c.500A>G"))
    assert a.exon is None and a.intron is None
    assert "NM_152871.4 is not NM_000043.6" in (a.exon_basis or "")


def test_misanchored_intronic_offset_is_flagged_not_guessed() -> None:
    a = annotate(parse_hgvs("c.506+40G>A", "FAS"))
    assert a.exon is None and a.intron is None
    assert any("c.506 is not the last base of an exon" in c for c in a.considerations)


def test_vcf_exon_that_disagrees_with_the_table_is_flagged() -> None:
    v = Variant(gene="FAS", hgvs_c="NM_000043.6:c.779A>G", hgvs_p="p.Asp260Gly")
    bad = annotate(v, exon="8/9")
    assert bad.exon == "8/9"  # the lab's annotation is kept, and questioned
    assert any("VCF annotation gives exon 8/9" in c and "exon 9/9" in c for c in bad.considerations)
    good = annotate(v, exon="9/9")
    assert "agrees with the cited exon table (exon 9/9)" in (good.exon_basis or "")
    assert not any("VCF annotation gives" in c for c in good.considerations)


def test_project_vcfs_exon_and_intron_fields_agree_with_the_table(gdata: Path) -> None:
    checked = 0
    for path in sorted(gdata.glob("*.vcf")):
        try:
            calls = read_vcf_calls(path)
        except Exception:  # the malformed fixtures are tested elsewhere
            continue
        out = annotate_all([c.variant for c in calls], exons={i: c.exon for i, c in enumerate(calls)},
                           introns={i: c.intron for i, c in enumerate(calls)})
        for c, a in zip(calls, out, strict=True):
            if a.gene == "FAS" and (c.exon or c.intron):
                checked += 1
                assert "agrees with the cited exon table" in (a.exon_basis or ""), (path.name, a.exon_basis)
    assert checked >= 3


def test_an_injected_table_replaces_the_cited_one() -> None:
    # A synthetic two-exon table (not clinical data) to show the injection path.
    t = ExonTable(gene="FASLG", transcript="NM_000639.3", cds_length=846,
                  rows=((1, None, 100), (2, 101, None)), citations=("uniprot_p48023",), basis="test")
    a = annotate(Variant(gene="FASLG", hgvs_c="c.101-1G>A"), exon_tables={"FASLG": t})
    assert (a.exon, a.intron) == (None, "1/1")
    plain = annotate(Variant(gene="FASLG", hgvs_c="c.101-1G>A"))  # c.101 is inside cited exon 1
    assert plain.intron is None and (plain.exon_basis or "").startswith("not computed")
    assert "c.101 is not the first base of an exon of NM_000639.3" in (plain.exon_basis or "")
    none = annotate(Variant(gene="FASLG", hgvs_c="c.101-1G>A"), exon_tables={})
    assert none.intron is None and "not computed" in (none.exon_basis or "")


@pytest.mark.parametrize(
    ("hgvs", "fragment"),
    [("c.506-1G>A", "exon 6 is skipped the result is in frame (63 nt, 21 codons; codons 169-190"),
     ("c.568+2T>C", "exon 6 is skipped the result is in frame"),
     ("c.334+2dup", "exon 3 is skipped the result is in frame (138 nt"),
     ("c.335-2A>G", "exon 4 is skipped the result is a frameshift (109 nt"),
     ("c.676+1G>C", "exon 8 is skipped the result is a frameshift (25 nt")],
)
def test_canonical_splice_sites_say_what_skipping_the_exon_would_do(hgvs: str, fragment: str) -> None:
    a = annotate(parse_hgvs(hgvs, "FAS"))
    assert any(fragment in c and "RNA studies" in c for c in a.considerations), a.considerations


@pytest.mark.parametrize("hgvs", ["c.30+1G>A", "c.677-1G>A", "c.506-3C>T", "c.651+312G>A"])
def test_no_skipping_note_for_first_or_last_exon_or_beyond_the_canonical_site(hgvs: str) -> None:
    a = annotate(parse_hgvs(hgvs, "FAS"))
    assert not any("is skipped" in c for c in a.considerations)


# --- FASLG (NM_000639.3) and CASP10 (NM_032977.4) ---------------------------------------------

# last base (c.) of each exon but the last; CASP10 exon 1 is untranslated (ends at c.-8)
JUNCTIONS = {"FASLG": [348, 394, 451],
             "CASP10": [-8, 347, 441, 577, 684, 721, 813, 922, 1415]}
EDGES = [(g, n, last) for g, js in JUNCTIONS.items() for n, last in enumerate(js, start=1)]


def _next(base: int) -> int:
    return base + 1 if base != -1 else 1  # there is no c.0


def test_faslg_and_casp10_tables_are_contiguous_and_every_junction_has_evidence() -> None:
    for gene, js in JUNCTIONS.items():
        t = exon_table(gene)
        assert t is not None
        assert t.rows[0][1] is None and t.rows[-1][2] is None
        for (n, _, hi), (n2, lo2, _) in itertools.pairwise(t.rows):
            assert n2 == n + 1 and hi is not None and lo2 == _next(hi)
        assert [hi for _, _, hi in t.rows[:-1]] == js
        for c in t.citations:
            assert knowledge.resolve_citation(c), c
        ev = gene_map(gene)["exon_table"]["junctions"]
        assert [j["after"] for j in ev] == js and all(j["evidence"] for j in ev)


def _c_of(segments: list[list[int]], g: int) -> int | None:
    """c. position of genomic base g (+ strand) on the cited CDS segments."""
    c = 0
    for a, b in segments:
        if a <= g <= b:
            return c + g - a + 1
        c += b - a + 1
    return None


@pytest.mark.parametrize("gene", ["FAS", "FASLG", "CASP10"])
def test_table_is_the_cumulative_length_of_the_cited_grch38_cds_segments(gene: str) -> None:
    t = exon_table(gene)
    assert t is not None
    cds = gene_map(gene)["exon_table"]["grch38_cds"]
    assert cds["strand"] == "+" and knowledge.resolve_citation(cds["citation"])
    segs = cds["segments"]
    assert sum(b - a + 1 for a, b in segs) == t.cds_length
    coding = [(lo, hi) for _, lo, hi in t.rows if hi is None or hi >= 1]
    assert len(coding) == len(segs)
    ends = [_c_of(segs, b) for _, b in segs]
    starts = [_c_of(segs, a) for a, _ in segs]
    assert starts[1:] == [lo for lo, _ in coding[1:]]
    assert ends[:-1] == [hi for _, hi in coding[:-1]]
    assert ends[-1] == t.cds_length
    for anchor in cds["anchors"]:  # ClinVar g. <-> c. pairs land where ClinVar puts them
        assert _c_of(segs, anchor["g"]) == anchor["c"], anchor
        assert knowledge.resolve_citation(anchor["citation"])


def test_casp10_untranslated_exon_1_and_the_atg_in_exon_2() -> None:
    cds = gene_map("CASP10")["exon_table"]["grch38_cds"]
    (e1_start, e1_end), (e2_start, e2_atg_minus1) = cds["utr5_exons"]
    atg = cds["segments"][0][0]
    assert e2_atg_minus1 == atg - 1
    assert e2_atg_minus1 - e2_start + 1 == 7           # exon 2 starts at c.-7
    t = exon_table("CASP10")
    assert t is not None and t.rows[1] == (2, -7, 347) and t.rows[0] == (1, None, -8)
    assert e1_end < e2_start and e1_start < e1_end


@pytest.mark.parametrize(("gene", "n", "last"), EDGES)
def test_each_faslg_and_casp10_exon_edge(gene: str, n: int, last: int) -> None:
    t = exon_table(gene)
    assert t is not None
    total = t.exon_count
    first = _next(last)
    assert t.locate(CPos(last)).exon == f"{n}/{total}"
    assert t.locate(CPos(first)).exon == f"{n + 1}/{total}"
    donor, acceptor = t.locate(CPos(last, +1)), t.locate(CPos(first, -1))
    assert (donor.exon, donor.intron) == (None, f"{n}/{total - 1}")
    assert (acceptor.exon, acceptor.intron) == (None, f"{n}/{total - 1}")
    assert t.locate(CPos(last, +2)).intron == t.locate(CPos(first, -2)).intron == f"{n}/{total - 1}"
    # one base further into the exon names no intron
    assert t.locate(CPos(last - 1, +1)).problem and t.locate(CPos(_next(first), -1)).problem


@pytest.mark.parametrize(
    ("gene", "pos", "exon"),
    [("FASLG", CPos(-50), "1/4"), ("FASLG", CPos(1), "1/4"), ("FASLG", CPos(846), "4/4"),
     ("FASLG", CPos(200, utr3=True), "4/4"),
     ("CASP10", CPos(-300), "1/10"), ("CASP10", CPos(-7), "2/10"), ("CASP10", CPos(-1), "2/10"),
     ("CASP10", CPos(1), "2/10"), ("CASP10", CPos(1569), "10/10"), ("CASP10", CPos(40, utr3=True), "10/10")],
)
def test_faslg_casp10_utr_and_cds_ends(gene: str, pos: CPos, exon: str) -> None:
    t = exon_table(gene)
    assert t is not None and t.locate(pos).exon == exon


@pytest.mark.parametrize(
    ("gene", "codon", "exons"),
    [("FASLG", 116, {1: [346, 347, 348]}), ("FASLG", 117, {2: [349, 350, 351]}),   # phase 0
     ("FASLG", 132, {2: [394], 3: [395, 396]}), ("FASLG", 151, {3: [451], 4: [452, 453]}),
     ("FASLG", 282, {4: [844, 845, 846]}),
     ("CASP10", 1, {2: [1, 2, 3]}), ("CASP10", 116, {2: [346, 347], 3: [348]}),
     ("CASP10", 147, {3: [439, 440, 441]}), ("CASP10", 148, {4: [442, 443, 444]}),
     ("CASP10", 193, {4: [577], 5: [578, 579]}), ("CASP10", 228, {5: [682, 683, 684]}),
     ("CASP10", 229, {6: [685, 686, 687]}), ("CASP10", 241, {6: [721], 7: [722, 723]}),
     ("CASP10", 271, {7: [811, 812, 813]}), ("CASP10", 272, {8: [814, 815, 816]}), ("CASP10", 308, {8: [922], 9: [923, 924]}),
     ("CASP10", 472, {9: [1414, 1415], 10: [1416]}), ("CASP10", 523, {10: [1567, 1568, 1569]})],
)
def test_faslg_casp10_codons_at_junctions(gene: str, codon: int, exons: dict[int, list[int]]) -> None:
    t = exon_table(gene)
    assert t is not None and t.codon_exons(codon) == exons


def test_faslg_casp10_domain_facts_from_the_tables() -> None:
    faslg, casp10 = exon_table("FASLG"), exon_table("CASP10")
    assert faslg is not None and casp10 is not None
    # FasL cytoplasmic tail and transmembrane helix (1-102) lie in exon 1; the THD (145-281) in exons 3-4
    assert all(list(faslg.codon_exons(r)) == [1] for r in range(1, 103))
    assert {e for r in range(145, 282) for e in faslg.codon_exons(r)} == {3, 4}
    # UniProt VSP_000819: isoform B lacks residues 229-271 = exons 6 and 7 (37 + 92 nt, in frame)
    assert {e for r in range(229, 272) for e in casp10.codon_exons(r)} == {6, 7}
    assert (721 - 685 + 1 + 813 - 722 + 1) == 3 * (271 - 229 + 1)
    # UniProt VSP_000820: isoforms B/D differ from isoform A from residue 473 = exon 10 (alternative last exon)
    assert list(casp10.codon_exons(473)) == [10] and 9 in casp10.codon_exons(472)
    # DED1 (19-97) lies in exon 2, DED2 (114-187) in exons 2-4; the active-site Cys401 in exon 9
    assert {e for r in range(19, 98) for e in casp10.codon_exons(r)} == {2}
    assert {e for r in range(114, 188) for e in casp10.codon_exons(r)} == {2, 3, 4}
    assert list(casp10.codon_exons(401)) == [9]


@pytest.mark.parametrize(
    ("hgvs", "gene", "exon", "intron"),
    [("NM_000639.3:c.466A>G", None, "4/4", None),            # ClinVar VCV 21212
     ("NM_000639.2:c.472_555del", None, "4/4", None),        # ClinVar VCV 16495 (older version)
     ("c.349-1G>A", "FASLG", None, "1/3"),
     ("c.451+1G>A", "FASLG", None, "3/3"),
     ("NP_000630.1:p.Arg202Ser", None, "4/4", None),
     ("NM_032977.4:c.853C>T", None, "8/10", None),           # ClinVar VCV 7764, p.Leu285Phe
     ("NP_116759.2:p.Leu285Phe", None, "8/10", None),
     ("NM_032977.3:c.1042_1043insA", None, "9/10", None),    # ClinVar VCV 7767
     ("c.1228G>A", "CASP10", "9/10", None),                  # p.Val410Ile
     ("c.-8+1G>A", "CASP10", None, "1/9"),
     ("c.-20C>T", "CASP10", "1/10", None),
     ("c.1415+2T>C", "CASP10", None, "9/9"),
     ("c.*10A>G", "CASP10", "10/10", None)],
)
def test_annotate_places_faslg_and_casp10_changes(
    hgvs: str, gene: str | None, exon: str | None, intron: str | None
) -> None:
    a = annotate(parse_hgvs(hgvs, gene))
    assert (a.exon, a.intron) == (exon, intron)
    t = exon_table(a.gene)
    assert t is not None and t.transcript in (a.exon_basis or "") and "cited exon table" in (a.exon_basis or "")
    assert t.citations[0] in a.citations


def test_casp10_codon_across_the_last_junction_is_reported_as_spanning() -> None:
    a = annotate(parse_hgvs("NP_116759.2:p.Val472Ile"))
    assert a.exon == "9-10/10"
    assert any("codon 472 spans the junction of exons 9 and 10" in c for c in a.considerations)


@pytest.mark.parametrize(
    ("hgvs", "gene", "fragment"),
    [("c.349-1G>A", "FASLG", "exon 2 is skipped the result is a frameshift (46 nt"),
     ("c.395-2A>G", "FASLG", "exon 3 is skipped the result is in frame (57 nt, 19 codons; codons 132-151"),
     ("c.684+1G>A", "CASP10", "exon 5 is skipped the result is a frameshift (107 nt"),
     ("c.685-1G>A", "CASP10", "exon 6 is skipped the result is a frameshift (37 nt"),
     ("c.1415+1G>A", "CASP10", "exon 9 is skipped the result is a frameshift (493 nt")],
)
def test_faslg_casp10_splice_site_skipping_notes(hgvs: str, gene: str, fragment: str) -> None:
    a = annotate(parse_hgvs(hgvs, gene))
    assert any(fragment in c and "RNA studies" in c for c in a.considerations), a.considerations


@pytest.mark.parametrize(("hgvs", "gene"), [("c.-7-1G>A", "CASP10"), ("c.347+1G>A", "CASP10"),
                                            ("c.348+1G>A", "FASLG"), ("c.452-1G>A", "FASLG")])
def test_no_skipping_note_for_exons_holding_the_start_codon_or_first_and_last(hgvs: str, gene: str) -> None:
    # CASP10 exon 2 holds the ATG (c.-7-c.347): skipping it is not an in-frame question
    a = annotate(parse_hgvs(hgvs, gene))
    assert a.intron is not None and not any("is skipped" in c for c in a.considerations)


def test_fas_clinvar_intronic_g_position_matches_the_cited_segments() -> None:
    # ClinVar VCV 16498: NC_000010.11:g.89007839dupT = NM_000043.5:c.334+2dupT
    segs = gene_map("FAS")["exon_table"]["grch38_cds"]["segments"]
    exon3_end = segs[2][1]
    assert _c_of(segs, exon3_end) == 334 and 89007839 - exon3_end == 2
    assert _c_of(segs, 89007839) is None  # intronic: not in any CDS segment


def test_casp10_exon_numbers_carry_the_untranslated_exon_1_caveat() -> None:
    a = annotate(parse_hgvs("NP_116759.2:p.Ile406Leu"))
    assert a.exon == "9/10"
    assert any("untranslated exon 1 of NM_032977.4" in c and "one less" in c for c in a.considerations)
    for hgvs in ("NM_000639.3:c.466A>G", "NM_000043.6:c.779A>G"):  # no such caveat for FASLG/FAS
        assert not any("untranslated exon 1" in c for c in annotate(parse_hgvs(hgvs)).considerations)


@pytest.mark.parametrize("gene", ["FAS", "FASLG", "CASP10"])
def test_mane_transcript_extent_encloses_the_cds(gene: str) -> None:
    cds = gene_map(gene)["exon_table"]["grch38_cds"]
    mane = cds["mane_transcript"]
    assert knowledge.resolve_citation(mane["citation"])
    assert mane["start"] < cds["segments"][0][0] and cds["segments"][-1][1] < mane["end"]


def test_casp10_mane_transcript_starts_in_the_untranslated_exon_1() -> None:
    cds = gene_map("CASP10")["exon_table"]["grch38_cds"]
    (e1_start, e1_end), (e2_start, _) = cds["utr5_exons"]
    mane = cds["mane_transcript"]
    # the MANE transcript begins inside GENCODE exon 1, upstream of intron 1 and the ATG exon
    assert e1_start <= mane["start"] <= e1_end < e2_start
    assert e2_start - mane["start"] > 2000


def test_casp10_vcf_exon_checked_against_the_table() -> None:
    v = Variant(gene="CASP10", hgvs_c="NM_032977.4:c.853C>T", hgvs_p="p.Leu285Phe")
    good = annotate(v, exon="8/10")
    assert "agrees with the cited exon table (exon 8/10)" in (good.exon_basis or "")
    coding_only = annotate(v, exon="7/9")  # a coding-exon count, one less
    assert coding_only.exon == "7/9"
    assert any("VCF annotation gives exon 7/9" in c and "exon 8/10" in c for c in coding_only.considerations)
    assert any("one less" in c for c in coding_only.considerations)


# --- codon ranges: one pass over the exon table, same answer as codon by codon ----------------

@settings(max_examples=300, deadline=None, derandomize=True)
@given(gene=st.sampled_from(["FAS", "FASLG", "CASP10"]), first=st.integers(-40, 700),
       length=st.integers(-3, 60))
def test_exons_of_codons_equals_codon_by_codon(gene: str, first: int, length: int) -> None:
    t = exon_table(gene)
    assert t is not None
    last = first + length
    by_codon = sorted({e for r in range(first, last + 1) for e in t.codon_exons(r)})
    assert t.exons_of_codons(first, last) == by_codon


def test_huge_codon_range_is_answered_from_the_table(fas: ExonTable) -> None:
    # found by atheris (hgvs harness): p.Lys125_Ala2525100000del walked every codon, holding
    # three list entries per base (minutes of CPU, 17 GB of memory) before the range rewrite
    assert fas.exons_of_codons(125, 2_525_100_000) == [4, 5, 6, 7, 8, 9]
    assert fas.exons_of_codons(400, 300) == []
