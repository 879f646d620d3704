"""HGVS input: accepted forms, normalisation, inferred consequence, typed errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpsdx.errors import VariantError
from alpsdx.genetics import parse_hgvs
from alpsdx.genetics.hgvs_input import interpret
from alpsdx.model import Variant


@pytest.mark.parametrize(
    ("text", "gene", "exp_gene", "exp_c", "exp_p", "consequence"),
    [
        ("NM_000043.6:c.779A>G", None, "FAS", "NM_000043.6:c.779A>G", None, "coding_sequence_variant"),
        ("NP_000034.1:p.(Ile310Ser)", None, "FAS", None, "NP_000034.1:p.(Ile310Ser)", "missense_variant"),
        ("c.506-1G>A", "FAS", "FAS", "c.506-1G>A", None, "splice_acceptor_variant"),
        ("c.506+2T>C", "FAS", "FAS", "c.506+2T>C", None, "splice_donor_variant"),
        ("c.506+5G>A", "FAS", "FAS", "c.506+5G>A", None, "splice_region_variant"),
        ("c.506+40G>A", "FAS", "FAS", "c.506+40G>A", None, "intron_variant"),
        ("p.(Arg234*)", "FAS", "FAS", None, "p.(Arg234Ter)", "stop_gained"),
        ("p.Asp260Gly", "fas", "FAS", None, "p.Asp260Gly", "missense_variant"),
        ("p.D260G", "FAS", "FAS", None, "p.Asp260Gly", "missense_variant"),
        ("p.Arg234GlyfsTer5", "FAS", "FAS", None, "p.Arg234GlyfsTer5", "frameshift_variant"),
        ("NM_000043.6:c.100_101del", None, "FAS", "NM_000043.6:c.100_101del", None, "frameshift_variant"),
        ("NM_000043.6:c.100_102del", None, "FAS", "NM_000043.6:c.100_102del", None, "inframe_deletion"),
        ("NM_000043.6:c.100dup", None, "FAS", "NM_000043.6:c.100dup", None, "frameshift_variant"),
        ("NP_000034.1:p.Lys250_Arg251del", None, "FAS", None, "NP_000034.1:p.Lys250_Arg251del", "inframe_deletion"),
        ("NM_000043.6:c.1A>G", None, "FAS", "NM_000043.6:c.1A>G", None, "start_lost"),
        ("p.Met1?", "FAS", "FAS", None, "p.Met1?", "start_lost"),
        ("p.Arg234=", "FAS", "FAS", None, "p.Arg234=", "synonymous_variant"),
        ("c.-12C>T", "FAS", "FAS", "c.-12C>T", None, "5_prime_UTR_variant"),
        ("c.*30C>T", "FAS", "FAS", "c.*30C>T", None, "3_prime_UTR_variant"),
        ("NM_000639.3:c.604T>A", None, "FASLG", "NM_000639.3:c.604T>A", None, "coding_sequence_variant"),
        ("NP_116759.2:p.Leu285Phe", None, "CASP10", None, "NP_116759.2:p.Leu285Phe", "missense_variant"),
        ("NM_000043.6(FAS):c.779A>G", None, "FAS", "NM_000043.6:c.779A>G", None, "coding_sequence_variant"),
        ("NM_000043.6:c.779A>G (p.Asp260Gly)", None, "FAS", "NM_000043.6:c.779A>G", "p.Asp260Gly", "missense_variant"),
        ("c.35G>A; p.(Gly12Asp)", "NRAS", "NRAS", "c.35G>A", "p.(Gly12Asp)", "missense_variant"),
    ],
)
def test_accepted_forms(text: str, gene: str | None, exp_gene: str, exp_c: str | None,
                        exp_p: str | None, consequence: str) -> None:
    v = parse_hgvs(text, gene)
    assert isinstance(v, Variant)
    assert (v.gene, v.hgvs_c, v.hgvs_p, v.consequence) == (exp_gene, exp_c, exp_p, consequence)


def test_c_position_maps_to_residue_by_ceil_div_3() -> None:
    # c.778, c.779, c.780 are the three bases of codon 260; c.781 starts codon 261.
    for c, res in ((778, 260), (779, 260), (780, 260), (781, 261)):
        ci, _ = interpret(f"c.{c}A>G", None, "FAS")
        assert ci is not None and ci.protein_start == res and ci.position_from_c


def test_intronic_change_takes_nearest_exon_base() -> None:
    ci, _ = interpret("c.506-1G>A", None, "FAS")
    assert ci is not None and ci.protein_start == 169 and ci.intronic_offset == -1
    assert any("nearest coding base c.506" in n for n in ci.notes)


def test_older_transcript_version_is_accepted_with_a_note() -> None:
    v = parse_hgvs("NM_000043.5:c.779A>G")
    assert v.gene == "FAS"
    ci, _ = interpret(v.hgvs_c, None, "FAS")
    assert ci is not None and any("not the MANE Select version NM_000043.6" in n for n in ci.notes)


def test_non_mane_refseq_of_the_gene_is_accepted_with_a_note() -> None:
    ci, _ = interpret("NM_152871.4:c.100A>G", None, None)
    assert ci is not None and ci.gene == "FAS"
    assert any("not the MANE Select transcript" in n for n in ci.notes)


@pytest.mark.parametrize(
    ("text", "gene", "fragment"),
    [
        ("", None, "empty"),
        ("hello", "FAS", "not an HGVS"),
        ("NM_000043.6:c.779A>", None, "not valid HGVS"),
        ("NM_000043.6:c.779A>G", "FASLG", "belongs to FAS"),
        ("c.779A>G", None, "needs a gene"),
        ("p.Asp999Gly", "FAS", "beyond the end of FAS"),
        ("NC_000010.11:g.88990000A>G", None, "genomic"),
        ("NP_000034.1:p.Xyz260Gly", None, "not valid HGVS"),
        ("c.779A>G c.780A>G", "FAS", "two changes"),
        ("NM_000043.6:c.779A>G NP_000630.1:p.Asp260Gly", None, "different genes"),
    ],
)
def test_bad_syntax_is_a_typed_error_naming_string_and_expectation(text: str, gene: str | None, fragment: str) -> None:
    with pytest.raises(VariantError) as exc:
        parse_hgvs(text, gene)
    msg = str(exc.value)
    assert fragment in msg
    assert "expected" in msg


def test_error_names_the_string() -> None:
    with pytest.raises(VariantError) as exc:
        parse_hgvs("NM_000043.6:c.779A>", None)
    assert exc.value.value == "NM_000043.6:c.779A>"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.sampled_from([None, "FAS", "NRAS", "casp10"]))
def test_random_strings_give_a_variant_or_a_variant_error(text: str, gene: str | None) -> None:
    try:
        out = parse_hgvs(text, gene)
    except VariantError:
        return
    assert isinstance(out, Variant)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["c.", "p.", "NM_000043.6:c.", "NP_000034.1:p.", "c.(", "p.("]),
    st.text(alphabet="0123456789ACGTacgt>_+-*delinsupfsTerMetAspGly?=()", max_size=20),
)
def test_hgvs_like_strings_give_a_variant_or_a_variant_error(prefix: str, rest: str) -> None:
    try:
        out = parse_hgvs(prefix + rest, "FAS")
    except VariantError:
        return
    assert isinstance(out, Variant)


@pytest.mark.parametrize(
    ("text", "exp_p", "consequence"),
    [
        ("p.R234*", "p.Arg234Ter", "stop_gained"),
        ("p.(D260G)", "p.(Asp260Gly)", "missense_variant"),
        ("p.Arg234fs", "p.Arg234fs", "frameshift_variant"),
        ("p.M1?", "p.Met1?", "start_lost"),
        ("p.Cys82_Ile83insAla", "p.Cys82_Ile83insAla", "inframe_insertion"),
    ],
)
def test_one_letter_and_short_forms(text: str, exp_p: str, consequence: str) -> None:
    v = parse_hgvs(text, "FAS")
    assert (v.hgvs_p, v.consequence) == (exp_p, consequence)


def test_older_version_note_reaches_the_annotation_when_a_p_change_is_given() -> None:
    from alpsdx.genetics import annotate

    a = annotate(parse_hgvs("NM_000043.5:c.779A>G (p.Asp260Gly)"))
    assert a.domain == "death_domain"
    assert any("NM_000043.5 is not the MANE Select version NM_000043.6" in c for c in a.considerations)


def test_cached_parses_are_independent_copies() -> None:
    a, _ = interpret("NM_000043.5:c.779A>G", None, "FAS")
    assert a is not None
    a.notes.append("changed by a caller")
    b, _ = interpret("NM_000043.5:c.779A>G", None, "FAS")
    assert b is not None and "changed by a caller" not in b.notes and b.notes
