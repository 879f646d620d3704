"""Annotation: domain, region, mechanism, origin, subtype hint and considerations per scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpsdx import knowledge
from alpsdx.errors import VariantError
from alpsdx.genetics import annotate, annotate_all, parse_hgvs, read_vcf_calls
from alpsdx.genetics.annotate import consequence_class, mechanism_for
from alpsdx.genetics.domains import locate
from alpsdx.model import Variant


def _vcf(gdata: Path, name: str, sample: str | None = None) -> list:
    calls = read_vcf_calls(gdata / name, sample)
    return annotate_all(
        [c.variant for c in calls],
        exons={i: c.exon for i, c in enumerate(calls)},
        introns={i: c.intron for i, c in enumerate(calls)},
        depths={i: c.depth for i, c in enumerate(calls)},
    )


# --- the scenarios of issue 4, item 7 ------------------------------------------------------

def test_germline_death_domain_missense(gdata: Path) -> None:
    (a,) = _vcf(gdata, "germline_dd_missense.vep.vcf")
    assert (a.domain, a.region, a.protein_position) == ("death_domain", "intracellular", 260)
    assert a.mechanism == "dominant_negative" and "price2014" in a.citations
    assert a.origin == "germline" and "heterozygous band" in a.origin_basis
    assert a.meets_mutation_criterion and a.subtype_hint == "ALPS-FAS"
    assert a.exon == "9/9" and "VCF annotation" in (a.exon_basis or "")
    assert a.risk["category"] == "highest" and "straus2001" in a.risk["citations"]


def test_extracellular_nonsense(gdata: Path) -> None:
    (a,) = _vcf(gdata, "extracellular_nonsense.snpeff.vcf")
    assert (a.domain, a.region) == ("CRD2", "extracellular")
    assert a.mechanism == "haploinsufficiency" and a.consequence == "stop_gained"
    assert a.origin == "germline" and a.subtype_hint == "ALPS-FAS"
    assert a.risk["category"] == "elevated"


def test_splice_site(gdata: Path) -> None:
    (a,) = _vcf(gdata, "splice_site.vep.vcf")
    assert a.consequence == "splice_acceptor_variant" and a.mechanism == "uncertain"
    assert a.intron == "5/8" and a.exon is None and "intron 5/8" in (a.exon_basis or "")
    # c.506-1 also lies in intron 5 of the cited NM_000043.6 exon table: VEP and the table agree
    assert "agrees with the cited exon table (intron 5/8)" in (a.exon_basis or "")
    assert any("nearest coding base c.506" in c for c in a.considerations)
    assert a.subtype_hint == "ALPS-FAS"  # pathogenic (CLIN_SIG), germline by VAF


def test_somatic_low_vaf_single_sample(gdata: Path) -> None:
    (a,) = _vcf(gdata, "somatic_low_vaf.vep.vcf")
    assert a.origin == "somatic" and "sorted DNT would confirm" in a.origin_basis
    assert a.subtype_hint == "ALPS-sFAS"
    assert a.risk["category"] == "not_established" and a.risk["citations"] == ["genereviews_alps"]


def test_multi_sample_sorted_dnt_suggests_sfas(gdata: Path) -> None:
    anns = _vcf(gdata, "multi_sample_dnt.vep.vcf")
    dd = [a for a in anns if a.hgvs_p == "NP_000034.1:p.Ile310Ser"]
    assert {a.sample for a in dd} == {"whole_blood", "sorted_DNT"}
    for a in dd:
        assert a.origin == "somatic" and a.subtype_hint == "ALPS-sFAS"
        assert "whole blood" in a.origin_basis and "sorted DNT" in a.origin_basis
        assert any("pattern of ALPS-sFAS" in c for c in a.considerations)
    ec = [a for a in anns if a.hgvs_p == "NP_000034.1:p.Arg121Gln"]
    assert {a.origin for a in ec} == {"germline"} and {a.subtype_hint for a in ec} == {"ALPS-FAS"}
    # extracellular missense: dominant interference in vitro, lower penetrance (Genet Med 2012)
    assert {a.mechanism for a in ec} == {"dominant_negative"}


def test_same_change_alone_in_sorted_dnt_is_not_called_somatic(gdata: Path) -> None:
    """Without the blood sample, a DNT VAF of 0.40 looks heterozygous germline."""
    (a, _) = _vcf(gdata, "multi_sample_dnt.vep.vcf", sample="sorted_DNT")
    assert a.hgvs_p == "NP_000034.1:p.Ile310Ser" and a.origin == "germline"


def test_nras_somatic_is_a_differential_not_alps(gdata: Path) -> None:
    (a,) = _vcf(gdata, "nras_somatic.vep.vcf")
    assert not a.is_alps_gene and not a.meets_mutation_criterion and a.subtype_hint is None
    assert a.related_disorder and "RALD" in a.related_disorder
    assert "not an ALPS gene" in a.considerations[0] and "not ALPS" in a.considerations[0]
    assert a.risk["category"] == "differential_diagnosis"
    assert a.origin == "somatic" and a.origin_basis == "reported by the lab"


def test_vus_is_shown_with_its_domain_but_never_meets_the_criterion(gdata: Path) -> None:
    (a,) = _vcf(gdata, "vus.vep.vcf")
    assert a.classification == "vus" and a.region == "transmembrane" and a.protein_position == 180
    assert a.exon == "6/9"  # the VCF gives no exon; codon 180 (c.538-c.540) lies in exon 6
    assert "proteinpaint_fas_nm000043" in a.citations
    assert not a.meets_mutation_criterion and a.subtype_hint is None
    assert any("does NOT satisfy the mutation criterion" in c for c in a.considerations)
    assert a.risk["category"] == "not_applicable"


# --- HGVS input -----------------------------------------------------------------------------

def test_hgvs_d260g_reported_germline() -> None:
    v = parse_hgvs("p.D260G", "FAS").model_copy(
        update={"origin": "germline", "classification": "pathogenic"}
    )
    a = annotate(v)
    assert (a.hgvs_p, a.domain, a.mechanism, a.origin, a.subtype_hint) == (
        "p.Asp260Gly", "death_domain", "dominant_negative", "germline", "ALPS-FAS")
    assert a.origin_basis == "reported by the lab"


def test_hgvs_c_only_places_domain_from_c_position_with_a_note() -> None:
    a = annotate(parse_hgvs("NM_000043.6:c.779A>G"))
    assert a.protein_position == 260 and a.domain == "death_domain"
    assert a.consequence == "coding_sequence_variant"
    assert "assuming a missense effect" in (a.mechanism_basis or "")
    assert any("placed from the c. position" in c for c in a.considerations)
    assert a.classification == "not_reported" and not a.meets_mutation_criterion


def test_exon_computed_from_the_cited_exon_table() -> None:
    a = annotate(parse_hgvs("NP_000034.1:p.(Leu180Phe)"))
    assert a.exon == "6/9" and "proteinpaint_fas_nm000043" in a.citations
    assert "codon 180" in (a.exon_basis or "") and "NM_000043.6" in (a.exon_basis or "")
    b = annotate(parse_hgvs("NP_000034.1:p.(Ile310Ser)"))
    assert b.exon == "9/9" and b.intron is None
    assert not any(c.startswith("exon not computed") for c in b.considerations)


def test_codon_across_a_junction_is_reported_as_spanning_both_exons() -> None:
    # codon 169 = c.505 (last base of exon 5) + c.506-c.507 (exon 6)
    a = annotate(parse_hgvs("p.Gly169Asp", "FAS"))
    assert a.exon == "5-6/9"
    assert any("codon 169 spans the junction of exons 5 and 6" in c and "c.505 in exon 5" in c
               and "c.506-c.507 in exon 6" in c for c in a.considerations)


def test_faslg_and_casp10_exons_from_their_cited_tables() -> None:
    a = annotate(Variant(gene="FASLG", hgvs_p="p.Arg202Ser"))   # codon 202 = c.604-606, exon 4 (c.452-846)
    assert (a.exon, a.intron) == ("4/4", None) and "NM_000639.3" in (a.exon_basis or "")
    assert "ccds_faslg_1304" in a.citations
    b = annotate(Variant(gene="CASP10", hgvs_c="c.1228G>A"))    # exon 9 = c.923-1415 of NM_032977.4
    assert (b.exon, b.intron) == ("9/10", None) and "NM_032977.4" in (b.exon_basis or "")
    assert "ccds_casp10_2340" in b.citations


def test_r250_note_from_price_2014() -> None:
    a = annotate(parse_hgvs("NP_000034.1:p.Arg250Gln"))
    assert any(c.startswith("R250") and "[price2014]" in c for c in a.considerations)


@pytest.mark.parametrize(
    ("hgvs", "mechanism", "region"),
    [
        ("p.(Arg234*)", "dominant_negative", "intracellular"),     # removes most of the death domain
        ("p.Arg234GlyfsTer5", "dominant_negative", "intracellular"),
        ("p.Gln320Ter", "uncertain", "intracellular"),            # after the death domain (ends 314)
        ("p.Cys82Arg", "dominant_negative", "extracellular"),     # Genet Med 2012: DN in vitro
        ("p.Ala16Asp", "haploinsufficiency", "signal_peptide"),   # no surface FAS (Genet Med 2012)
        ("p.Arg121*", "haploinsufficiency", "extracellular"),     # before exon 7: mRNA haploinsufficiency
        ("p.Val180Ter", "haploinsufficiency", "transmembrane"),
        ("p.Met1?", "haploinsufficiency", "signal_peptide"),       # start loss
        ("p.Val180Met", "uncertain", "transmembrane"),
        ("p.Lys250_Arg251del", "dominant_negative", "intracellular"),
        ("p.Arg234=", "none_expected", "intracellular"),
        ("c.-12C>T", "none_expected", "non_coding"),
    ],
)
def test_fas_mechanism_by_consequence_and_place(hgvs: str, mechanism: str, region: str) -> None:
    a = annotate(parse_hgvs(hgvs, "FAS"))
    assert (a.mechanism, a.region) == (mechanism, region)


@pytest.mark.parametrize(
    ("pos", "region", "domain"),
    [
        (1, "signal_peptide", None), (25, "signal_peptide", None),
        (26, "extracellular", None), (46, "extracellular", None), (47, "extracellular", "CRD1"),
        (83, "extracellular", "CRD1"), (84, "extracellular", "CRD2"), (166, "extracellular", "CRD3"),
        (167, "extracellular", None), (173, "extracellular", None),
        (174, "transmembrane", None), (190, "transmembrane", None),
        (191, "intracellular", None), (229, "intracellular", None),
        (230, "intracellular", "death_domain"), (314, "intracellular", "death_domain"),
        (315, "intracellular", None), (335, "intracellular", None),
    ],
)
def test_fas_uniprot_boundaries(pos: int, region: str, domain: str | None) -> None:
    loc = locate("FAS", pos)
    assert (loc.region, loc.domain) == (region, domain) and loc.citation == "uniprot_p25445"


@pytest.mark.parametrize(
    ("gene", "pos", "region", "domain"),
    [
        ("FASLG", 43, "intracellular", "proline_rich"), ("FASLG", 70, "intracellular", "proline_rich"),
        ("FASLG", 80, "intracellular", None), ("FASLG", 81, "transmembrane", None),
        ("FASLG", 102, "transmembrane", None), ("FASLG", 103, "extracellular", None),
        ("FASLG", 145, "extracellular", "THD"), ("FASLG", 281, "extracellular", "THD"),
        ("CASP10", 19, "intracellular", "DED1"), ("CASP10", 114, "intracellular", "DED2"),
        ("CASP10", 219, "intracellular", "prodomain"), ("CASP10", 220, "intracellular", "p23_17"),
        ("CASP10", 416, "intracellular", "p12"),
    ],
)
def test_faslg_and_casp10_maps(gene: str, pos: int, region: str, domain: str | None) -> None:
    loc = locate(gene, pos)
    assert (loc.region, loc.domain) == (region, domain)


def test_faslg_and_casp10_mechanisms_and_caveats() -> None:
    f = annotate(Variant(gene="FASLG", hgvs_p="NP_000630.1:p.Ala247Glu", classification="pathogenic",
                         zygosity="heterozygous", origin="germline"))
    assert f.mechanism == "loss_of_function" and f.domain == "THD" and f.subtype_hint == "ALPS-FASLG"
    assert any("usually biallelic" in c for c in f.considerations)
    c = annotate(Variant(gene="CASP10", hgvs_p="NP_116759.2:p.Ile406Leu", classification="pathogenic",
                         origin="germline"))
    assert c.mechanism == "not_established" and c.subtype_hint == "ALPS-CASP10"
    assert any("causality is disputed" in x for x in c.considerations)


def test_unknown_origin_pathogenic_fas_gives_no_subtype_and_says_why() -> None:
    a = annotate(Variant(gene="FAS", hgvs_p="p.Asp260Gly", classification="pathogenic"))
    assert a.origin == "unknown" and a.subtype_hint is None
    assert any("sequence a second tissue or sorted DNT" in c for c in a.considerations)
    assert a.risk["text"].startswith("Origin unknown; if germline")


def test_bad_stored_hgvs_is_a_typed_error_naming_the_gene() -> None:
    with pytest.raises(VariantError) as exc:
        annotate(Variant(gene="FAS", hgvs_c="c.779A>"))
    assert exc.value.field == "variant FAS" and exc.value.value == "c.779A>"


def test_every_citation_in_an_annotation_resolves(gdata: Path) -> None:
    anns = []
    for name in ("germline_dd_missense.vep.vcf", "nras_somatic.vep.vcf", "multi_sample_dnt.vep.vcf",
                 "somatic_low_vaf.vep.vcf", "vus.vep.vcf", "splice_site.vep.vcf"):
        anns += _vcf(gdata, name)
    keys = {k for a in anns for k in a.citations} | {k for a in anns for k in a.risk["citations"]}
    assert "uniprot_p25445" in keys and "oliveira2010" in keys
    for k in keys:
        assert knowledge.resolve_citation(k)


def test_consequence_class_reads_vep_lists() -> None:
    assert consequence_class("splice_region_variant&intron_variant") == "splice"
    assert consequence_class("stop_gained&splice_region_variant") == "truncating"
    assert consequence_class("missense_variant&splice_region_variant") == "non_truncating"
    assert consequence_class(None) == "unknown"
    assert mechanism_for("NRAS", "missense_variant", None, None, 12)[0] is None


def test_related_gene_variants_show_their_iuis_2022_row() -> None:
    nras = annotate(Variant(gene="NRAS", hgvs_c="c.35G>A", hgvs_p="p.Gly12Asp", classification="pathogenic"))
    assert any("IUIS 2022 classification, Table 10" in c and "somatic mutation (GOF)" in c
               for c in nras.considerations)
    assert "tangye2022" in nras.citations and nras.related_disorder is not None
    casp8 = annotate(Variant(gene="CASP8", hgvs_p="p.Arg248Trp", classification="pathogenic"))
    assert any("Table 4.6: ALPS-Caspase 8 (CASP8, AR)" in c for c in casp8.considerations)
    assert casp8.is_alps_gene is False and casp8.meets_mutation_criterion is False


def test_fas_mechanism_bases_cite_the_non_death_domain_study() -> None:
    stop = annotate(parse_hgvs("p.Arg121*", "FAS"))
    assert "before exon 7" in (stop.mechanism_basis or "") and "exon 4 of NM_000043.6" in (stop.mechanism_basis or "")
    assert "genetmed2012_fas_nondd" in stop.citations
    mis = annotate(parse_hgvs("p.Cys82Arg", "FAS"))
    assert "lower penetrance" in (mis.mechanism_basis or "") and "genetmed2012_fas_nondd" in mis.citations
