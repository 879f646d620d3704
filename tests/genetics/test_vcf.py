"""VCF input: VEP CSQ and SnpEff ANN, CLNSIG, genotype/depth/VAF, --sample, bgzip, errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from alpsdx.errors import VariantError
from alpsdx.genetics import read_vcf, read_vcf_calls
from alpsdx.genetics.vcf import panel_regex


def test_vep_csq_germline_death_domain_missense(gdata: Path) -> None:
    calls = read_vcf_calls(gdata / "germline_dd_missense.vep.vcf")
    assert len(calls) == 1  # the BRCA2 record is not on the panel
    c = calls[0]
    v = c.variant
    assert (v.gene, v.hgvs_c, v.hgvs_p) == ("FAS", "NM_000043.6:c.779A>G", "NP_000034.1:p.Asp260Gly")
    # The MANE transcript entry is picked over the NM_152871.4 entry listed first.
    assert c.transcript == "NM_000043.6" and c.exon == "9/9"
    assert v.consequence == "missense_variant"
    assert v.classification == "pathogenic" and c.clnsig_raw == "Pathogenic"
    assert v.zygosity == "heterozygous" and c.genotype == "0/1"
    assert c.depth == 38 and v.vaf == pytest.approx(18 / 38, abs=1e-4)
    assert v.sample == "proband" and (c.chrom, c.pos, c.ref, c.alt) == ("chr10", 88990000, "A", "G")


def test_bgzipped_vcf_reads_the_same(gdata: Path, bgzipped: Path) -> None:
    with open(bgzipped, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"
    def strip(vs: list) -> list:  # the source names the file, which differs
        return [v.model_copy(update={"source": None}) for v in vs]

    plain = read_vcf(gdata / "germline_dd_missense.vep.vcf")
    assert strip(read_vcf(bgzipped)) == strip(plain) and len(plain) == 1


def test_plain_gzip_is_read_too(gdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.vcf.gz"
    out.write_bytes(gzip.compress((gdata / "splice_site.vep.vcf").read_bytes()))
    assert [v.hgvs_c for v in read_vcf(out)] == ["NM_000043.6:c.506-1G>A"]


def test_snpeff_ann_extracellular_nonsense(gdata: Path) -> None:
    (c,) = read_vcf_calls(gdata / "extracellular_nonsense.snpeff.vcf")
    v = c.variant
    assert v.gene == "FAS" and v.consequence == "stop_gained"
    # SnpEff writes c. without the transcript and p.Arg121*: the transcript is prefixed and
    # '*' written as Ter (HGVS).
    assert v.hgvs_c == "NM_000043.6:c.361C>T" and v.hgvs_p == "p.Arg121Ter"
    assert v.classification == "likely_pathogenic"


def test_splice_site_keeps_the_intron_number(gdata: Path) -> None:
    (c,) = read_vcf_calls(gdata / "splice_site.vep.vcf")
    assert c.variant.consequence == "splice_acceptor_variant"
    assert c.variant.hgvs_p is None and c.exon is None and c.intron == "5/8"
    assert c.variant.classification == "pathogenic"  # from VEP CLIN_SIG (no CLNSIG INFO)


def test_multi_sample_every_carrier_and_not_the_non_carrier(gdata: Path) -> None:
    calls = read_vcf_calls(gdata / "multi_sample_dnt.vep.vcf")
    got = sorted((c.variant.hgvs_p, c.variant.sample, c.variant.vaf) for c in calls)
    assert got == [
        ("NP_000034.1:p.Arg121Gln", "sorted_DNT", 0.55),
        ("NP_000034.1:p.Arg121Gln", "whole_blood", 0.48),
        ("NP_000034.1:p.Ile310Ser", "sorted_DNT", 0.4),
        ("NP_000034.1:p.Ile310Ser", "whole_blood", 0.05),
    ]
    assert all(c.variant.sample != "relative" for c in calls)


def test_sample_selects_one_sample(gdata: Path) -> None:
    calls = read_vcf_calls(gdata / "multi_sample_dnt.vep.vcf", sample="sorted_DNT")
    assert {c.variant.sample for c in calls} == {"sorted_DNT"} and len(calls) == 2
    assert read_vcf_calls(gdata / "multi_sample_dnt.vep.vcf", sample="relative") == []


def test_unknown_sample_names_the_samples_there(gdata: Path) -> None:
    with pytest.raises(VariantError) as exc:
        read_vcf(gdata / "multi_sample_dnt.vep.vcf", sample="tumour")
    assert exc.value.field == "--sample" and exc.value.value == "tumour"
    assert "whole_blood, sorted_DNT, relative" in str(exc.value)


def test_vaf_from_af_when_no_ad(gdata: Path) -> None:
    (c,) = read_vcf_calls(gdata / "somatic_low_vaf.vep.vcf")
    assert c.variant.vaf == pytest.approx(0.12) and c.depth == 250


def test_somatic_flag_sets_origin(gdata: Path) -> None:
    (v,) = read_vcf(gdata / "nras_somatic.vep.vcf")
    assert v.gene == "NRAS" and v.origin == "somatic" and v.vaf == pytest.approx(0.08)


def test_vus_from_clnsig(gdata: Path) -> None:
    (v,) = read_vcf(gdata / "vus.vep.vcf")
    assert v.classification == "vus" and v.hgvs_p == "NP_000034.1:p.Val180Met"


def test_vcf_without_annotation_says_what_is_needed(gdata: Path) -> None:
    with pytest.raises(VariantError) as exc:
        read_vcf(gdata / "no_annotation.vcf")
    msg = str(exc.value)
    assert "no CSQ or ANN" in msg and "vep" in msg and "snpEff" in msg


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("malformed_pos.vcf", "line 16: POS 'POS' is not a positive integer"),
        ("malformed_columns.vcf", "line 16: 4 tab-separated columns"),
        ("not_a_vcf.vcf", "not a readable VCF"),
    ],
)
def test_malformed_files_are_typed_errors_naming_the_line(gdata: Path, name: str, fragment: str) -> None:
    with pytest.raises(VariantError) as exc:
        read_vcf(gdata / name)
    assert fragment in str(exc.value)


def test_a_short_line_outside_the_panel_is_still_an_error(gdata: Path, tmp_path: Path) -> None:
    text = (gdata / "germline_dd_missense.vep.vcf").read_text()
    bad = tmp_path / "short.vcf"
    bad.write_text(text + "chr13\t32340100\t.\tC\tT\t60\n")
    with pytest.raises(VariantError) as exc:
        read_vcf(bad)
    assert "line 17" in str(exc.value) and "6 tab-separated columns" in str(exc.value)


def test_missing_file() -> None:
    with pytest.raises(VariantError) as exc:
        read_vcf("/nonexistent/x.vcf")
    assert "file not found" in str(exc.value)


def test_panel_regex_matches_whole_symbols_only() -> None:
    rx = panel_regex()
    assert rx.search("G|missense_variant|MODERATE|FAS|ENSG")
    assert rx.search("G|missense_variant|MODERATE|FASLG|ENSG")
    assert not rx.search("G|missense_variant|MODERATE|FASN|ENSG")
    assert not rx.search("G|missense_variant|MODERATE|XFAS|ENSG")


def test_many_records_line_numbers_stay_right_across_blocks(gdata: Path, tmp_path: Path) -> None:
    """A panel record far into a file (past several scan blocks) is found and counted."""
    from alpsdx.genetics import vcf as vcfmod

    src = (gdata / "germline_dd_missense.vep.vcf").read_text().splitlines(keepends=True)
    header = [ln for ln in src if ln.startswith("#")]
    fas, brca = [ln for ln in src if not ln.startswith("#")]
    body = [brca] * 3000 + [fas] + [brca] * 10
    p = tmp_path / "big.vcf"
    p.write_text("".join(header + body))
    linenos, lines, records = vcfmod._scan_panel_lines(
        p, 10, vcfmod.panel_regex_bytes(), chunk_size=4096
    )
    assert records == 3011 and linenos == [len(header) + 3001]
    assert lines[0].decode() == fas.rstrip("\n")


def test_truncated_bgzip_is_a_typed_error(gdata: Path, tmp_path: Path) -> None:
    import pysam

    src = (gdata / "germline_dd_missense.vep.vcf").read_text().splitlines(keepends=True)
    header = [ln for ln in src if ln.startswith("#")]
    body = [ln for ln in src if not ln.startswith("#")]
    plain = tmp_path / "big.vcf"
    plain.write_text("".join(header + body * 2000))
    gz = tmp_path / "big.vcf.gz"
    pysam.tabix_compress(str(plain), str(gz), force=True)
    data = gz.read_bytes()
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VariantError) as exc:
        read_vcf(cut)
    assert exc.value.field == "vcf"
    assert len(read_vcf(gz)) == 2000


def test_bcf_reads_the_same_calls(gdata: Path, tmp_path: Path) -> None:
    import pysam

    src = pysam.VariantFile(str(gdata / "multi_sample_dnt.vep.vcf"))
    out = tmp_path / "multi.bcf"
    with pysam.VariantFile(str(out), "wb", header=src.header) as dst:
        for rec in src:
            dst.write(rec)
    src.close()
    with open(out, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"  # BGZF-compressed BCF

    def key(vs: list) -> list:
        return sorted((v.hgvs_p, v.sample, v.vaf, v.classification) for v in vs)

    assert key(read_vcf(out)) == key(read_vcf(gdata / "multi_sample_dnt.vep.vcf"))
    assert len(read_vcf(out, sample="sorted_DNT")) == 2


def test_windows_line_endings(gdata: Path, tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.vcf"
    crlf.write_bytes((gdata / "multi_sample_dnt.vep.vcf").read_bytes().replace(b"\n", b"\r\n"))
    got = sorted((v.hgvs_p, v.sample, v.vaf) for v in read_vcf(crlf))
    assert got == sorted((v.hgvs_p, v.sample, v.vaf) for v in read_vcf(gdata / "multi_sample_dnt.vep.vcf"))


def test_sites_only_vcf_gives_one_call_without_sample(gdata: Path, tmp_path: Path) -> None:
    out = []
    for ln in (gdata / "germline_dd_missense.vep.vcf").read_text().splitlines():
        out.append(ln if ln.startswith("##") else "\t".join(ln.split("\t")[:8]))
    p = tmp_path / "sites.vcf"
    p.write_text("\n".join(out) + "\n")
    (c,) = read_vcf_calls(p)
    assert c.variant.sample is None and c.variant.vaf is None and c.variant.zygosity == "unknown"
    assert c.variant.hgvs_p == "NP_000034.1:p.Asp260Gly"
    with pytest.raises(VariantError) as exc:
        read_vcf(p, sample="proband")
    assert "no samples" in str(exc.value)


# --- values cyvcf2 would crash or raise untyped on: validated before htslib sees the line -------

_L15 = b"GT:AD:DP\t0/1:190,10:200\t0/1:60,40:100\t0/0:80,0:80"


@pytest.mark.parametrize(
    ("replacement", "field", "fragment"),
    [
        (b"GT:AD:DP\t0/1:190,10:20\x00\x000\t0/1:60,40:100\t0/0:80,0:80",
         "line 15 sample 'whole_blood'", "NUL byte"),
        (b"GT:AD:DP\t0/1:190,10:200\t0/1:60,40:100\t%0/0:80,0:80",
         "line 15 sample 'relative'", "GT '%0/0' is not a genotype"),
        (b"GT:AD:DP\t0/1:190,10:200\t0/1:60,40:100\t0/0:80,relative",
         "line 15 sample 'relative'", "AD '80,relative' is not a list of integers"),
        (b"GT:AD:DP\t0/1:190,10:200:7:8\t0/1:60,40:100\t0/0:80,0:80",
         "line 15 sample 'whole_blood'", "5 ':'-separated values but FORMAT has 3 keys"),
        (b"GT:AD:DP\t0/1:190,10,5:200\t0/1:60,40:100\t0/0:80,0:80",
         "line 15 sample 'whole_blood'", "AD has 3 values"),
        (b"GT:AD:DP\t0/1:190,10:2.5\t0/1:60,40:100\t0/0:80,0:80",
         "line 15 sample 'whole_blood'", "DP '2.5' is not a list of integers"),
        (b"GT:AD:DP\t0/1:190,10:2147483648\t0/1:60,40:100\t0/0:80,0:80",
         "line 15 sample 'whole_blood'", "DP '2147483648' is not a list of integers"),
        (b"GT::DP\t0/1:190,10:200\t0/1:60,40:100\t0/0:80,0:80", "line 15 FORMAT", "'' is not a FORMAT key"),
        (b"AD:GT:DP\t190,10:0/1:200\t60,40:0/1:100\t80,0:0/0:80", "line 15 FORMAT", "GT is not the first key"),
        (b"GT:AD:DP\t0/1:190,10:200\t0/1:60,40:100\t0/0:80,0:\xe980",
         "line 15 sample 'relative'", "byte 0xe9 is not UTF-8"),
    ],
    ids=["nul", "gt", "ad-text", "too-many-values", "ad-count", "dp-float", "dp-int32", "empty-key",
         "gt-not-first", "non-utf8"],
)
def test_malformed_sample_values_are_typed_errors_naming_line_and_column(
    gdata: Path, tmp_path: Path, replacement: bytes, field: str, fragment: str
) -> None:
    base = (gdata / "multi_sample_dnt.vep.vcf").read_bytes()
    assert base.count(_L15) == 1
    bad = tmp_path / "bad.vcf"
    bad.write_bytes(base.replace(_L15, replacement))
    with pytest.raises(VariantError) as exc:
        read_vcf(bad)
    assert exc.value.field == field and fragment in str(exc.value)


def test_missing_values_and_the_int32_edge_are_accepted(gdata: Path, tmp_path: Path) -> None:
    base = (gdata / "multi_sample_dnt.vep.vcf").read_bytes()
    ok = tmp_path / "ok.vcf"
    ok.write_bytes(base.replace(_L15, b"GT:AD:DP\t0/1:190,10:2147483647\t0/1:.:.\t0/0"))
    calls = [c for c in read_vcf_calls(ok) if c.pos == 88991000]
    by = {c.variant.sample: c for c in calls}
    assert by["whole_blood"].depth == 2147483647 and by["whole_blood"].variant.vaf == 0.05
    assert by["sorted_DNT"].depth is None and by["sorted_DNT"].variant.vaf is None
    assert "relative" not in by  # 0/0 with no AD: not a carrier


def test_nul_byte_in_the_header_is_a_typed_error(gdata: Path, tmp_path: Path) -> None:
    base = (gdata / "multi_sample_dnt.vep.vcf").read_bytes()
    bad = tmp_path / "bad.vcf"
    bad.write_bytes(base.replace(b"\tsorted_DNT\t", b"\tsorted\x00DNT\t"))
    with pytest.raises(VariantError) as exc:
        read_vcf(bad)
    assert exc.value.field.startswith("header line ") and "NUL byte" in str(exc.value)


@pytest.mark.parametrize(("origin", "expected"), [("abc", None), ("1.5", None), ("2147483648", None),
                                                  ("1", "germline"), ("2", "somatic"), (".", "unknown")])
def test_numeric_info_values_are_checked_against_the_header_type(
    gdata: Path, tmp_path: Path, origin: str, expected: str | None
) -> None:
    base = (gdata / "multi_sample_dnt.vep.vcf").read_bytes()
    base = base.replace(b"##INFO=<ID=CSQ", b'##INFO=<ID=ORIGIN,Number=.,Type=Integer,Description="o">\n'
                        b"##INFO=<ID=CSQ", 1)
    f = tmp_path / "origin.vcf"
    f.write_bytes(base.replace(b"PASS\tCSQ=C|", b"PASS\tORIGIN=" + origin.encode() + b";CSQ=C|"))
    if expected is None:  # htslib would read '1.5' as 1 (germline) and 'abc' as missing: refused
        with pytest.raises(VariantError) as exc:
            read_vcf(f)
        assert exc.value.field == "line 16 INFO" and f"ORIGIN {origin!r} is not a list of integers" in str(exc.value)
    else:
        origins = {c.variant.origin for c in read_vcf_calls(f) if c.pos == 88991000}
        assert origins == {expected}
