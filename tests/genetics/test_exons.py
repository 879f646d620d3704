"""Exon and intron numbers from c. and p. positions (knowledge/data/protein_domains.yaml exon_table).

The FAS expectations are the junctions the cited sources give for NM_000043.6 (coding exons
c.1-30, 31-196, 197-334, 335-443, 444-505, 506-568, 569-651, 652-676, 677-1008): e.g. ClinVar
c.334+2dupT, GeneBe c.651+312G>A, GAMBL c.197-2A>G / c.652-2A>G / c.676+1G>C, GENCODE exon 6
= c.506-c.568. Each edge is tested on both sides and at the first intronic base.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

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


def test_genes_without_a_source_have_no_table_and_a_search_record() -> None:
    for gene in ("FASLG", "CASP10"):
        assert exon_table(gene) is None
        status = gene_map(gene)["exon_table_status"]
        assert status.startswith("not computed") and gene_map(gene)["mane"]["nm"] in status


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


def test_an_injected_table_is_used_for_a_gene_without_one() -> None:
    # A synthetic two-exon table (not clinical data) to show the injection path.
    t = ExonTable(gene="FASLG", transcript="NM_000639.3", cds_length=846,
                  rows=((1, None, 100), (2, 101, None)), citations=("uniprot_p48023",), basis="test")
    a = annotate(Variant(gene="FASLG", hgvs_c="c.101-1G>A"), exon_tables={"FASLG": t})
    assert (a.exon, a.intron) == (None, "1/1")
    plain = annotate(Variant(gene="FASLG", hgvs_c="c.101-1G>A"))
    assert plain.intron is None and (plain.exon_basis or "").startswith("not computed")


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
