"""Fuzz the HGVS reader (parse_hgvs + annotate) and the VCF reader (read_vcf via htslib/cyvcf2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_helpers import REPO, fuzz_settings, mutated, outcome
from hypothesis import given
from hypothesis import strategies as st

from alpsdx.errors import VariantError
from alpsdx.genetics import annotate
from alpsdx.genetics.hgvs_input import parse_hgvs
from alpsdx.genetics.vcf import read_vcf, read_vcf_calls

HGVS_SEEDS = sorted(set(re.findall(
    r'"((?:N[MP]_\d+\.\d+(?:\([A-Z0-9]+\))?:)?[cp]\.[^"]{1,60})"',
    (REPO / "tests" / "genetics" / "test_hgvs.py").read_text(encoding="utf-8"))))
GENES = st.sampled_from([None, "FAS", "FASLG", "CASP10", "NRAS", "CASP8"])


def hgvs(text: str, gene: str | None) -> None:
    annotate(parse_hgvs(text, gene)).to_dict()


@fuzz_settings(150)
@given(st.text(max_size=60), GENES)
def test_hgvs_any_text(text: str, gene: str | None) -> None:
    assert outcome(hgvs, text, gene) in ("valid", "typed error")


@fuzz_settings(250)
@given(mutated([s.encode() for s in HGVS_SEEDS], max_edits=4), GENES)
def test_hgvs_mutated(data: bytes, gene: str | None) -> None:
    assert outcome(hgvs, data.decode("utf-8", errors="replace"), gene) in ("valid", "typed error")


# --- VCF -------------------------------------------------------------------------------------

VCF_DIR = REPO / "tests" / "data" / "genetics"
VCF_SEEDS = [p.read_bytes() for p in sorted(VCF_DIR.glob("*.vcf"))]
BASE = (VCF_DIR / "multi_sample_dnt.vep.vcf").read_bytes()


@pytest.fixture(scope="module")
def tmp_vcf() -> Iterator[Path]:
    fd, name = tempfile.mkstemp(suffix=".vcf")
    os.close(fd)
    yield Path(name)
    Path(name).unlink(missing_ok=True)


def vcf(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    for v in read_vcf(path):
        v.model_dump()


@fuzz_settings(150)
@given(data=mutated(VCF_SEEDS, max_edits=6))
def test_vcf_mutated(tmp_vcf: Path, data: bytes) -> None:
    # any bytes, NUL and non-UTF-8 included: the reader validates panel lines before cyvcf2
    assert outcome(vcf, tmp_vcf, data) in ("valid", "typed error")


# --- regressions: bugs found by fuzzing in alpsdx.genetics.vcf, fixed --------------------------
# Fixed by validating header and panel lines before htslib/cyvcf2 parse them (NUL bytes,
# non-UTF-8 bytes, FORMAT/sample shape and typed values) and by mapping every exception cyvcf2
# raises while a record is read to VariantError.

KNOWN = {
    "non-UTF-8 sample name (cyvcf2 VCF.samples)": BASE.replace(b"\tsorted_DNT\t", b"\tsorted_\xffDNT\t"),
    "non-UTF-8 ALT allele (cyvcf2 Variant.ALT)": BASE.replace(b"\tG\tA\t60", b"\tG\tA\x86\t60"),
    "non-UTF-8 REF allele (cyvcf2 Variant.REF)": BASE.replace(b"\tG\tA\t60", b"\tG\xa1\tA\t60"),
    "FORMAT without GT (cyvcf2 'error parsing genotypes')": BASE.replace(b"GT:AD:DP\t0/1:190", b"GV:AD:DP\t0/1:190"),
}


@pytest.mark.parametrize("what", list(KNOWN))
def test_regression_vcf_bytes_give_typed_error(tmp_vcf: Path, what: str) -> None:
    tmp_vcf.write_bytes(KNOWN[what])
    assert outcome(read_vcf, tmp_vcf) in ("valid", "typed error")


def test_regression_non_utf8_alt_names_the_line_and_field(tmp_vcf: Path) -> None:
    tmp_vcf.write_bytes(KNOWN["non-UTF-8 ALT allele (cyvcf2 Variant.ALT)"])
    with pytest.raises(VariantError) as exc:
        read_vcf(tmp_vcf)
    assert exc.value.field == "line 16 ALT" and "0x86" in str(exc.value) and "UTF-8" in str(exc.value)


def test_regression_format_without_gt_is_read_without_genotypes(tmp_vcf: Path) -> None:
    tmp_vcf.write_bytes(KNOWN["FORMAT without GT (cyvcf2 'error parsing genotypes')"])
    calls = read_vcf_calls(tmp_vcf)
    no_gt = [c for c in calls if c.pos == 88991000]
    # no GT: the carrier is found from AD (190,10 -> VAF 0.05), genotype and zygosity unknown
    assert no_gt and all(c.genotype is None and c.variant.zygosity == "unknown" for c in no_gt)
    assert {c.variant.sample for c in no_gt} == {"whole_blood", "sorted_DNT"}
    assert [c.variant.vaf for c in no_gt if c.variant.sample == "whole_blood"] == [0.05]


# Inputs libFuzzer saved (mutations of multi_sample_dnt.vep.vcf) that kill the process inside
# cyvcf2 ``Variant.format()``: NUL bytes in FORMAT values, and malformed FORMAT values in a
# record whose parse htslib does not reject.
SEGFAULTS = sorted((Path(__file__).parent / "data").glob("vcf_*.vcf"))


@pytest.mark.parametrize("path", SEGFAULTS, ids=[p.stem for p in SEGFAULTS])
def test_regression_vcf_does_not_kill_the_process(path: Path) -> None:
    code = ("import sys\nfrom alpsdx.genetics.vcf import read_vcf\nfrom alpsdx.errors import AlpsdxError\n"
            "try:\n    read_vcf(sys.argv[1])\nexcept AlpsdxError:\n    pass\n")
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120, check=False)
    assert res.returncode == 0, f"process died with {res.returncode}: {res.stderr[-300:]!r}"


def test_regression_huge_protein_range_is_annotated_without_walking_it() -> None:
    # atheris (hgvs harness, 2026-11-27): "NP_000:p.Lys125_A25251del" took 2 s of CPU under
    # instrumentation, and a longer range (below) took minutes and 17 GB: the exon of every
    # codon was looked up one by one. Now a pass over the exon table, whatever the length.
    v = parse_hgvs("NP_000:p.Lys125_A2525100000del", "FAS")
    d = annotate(v).to_dict()
    assert d["exon"] is None or "/9" in str(d["exon"])


@pytest.mark.parametrize(("gt", "why"), [("/0000", "not a genotype"), ("|0/1", "not a genotype"),
                                         ("0/5", "names an allele"), ("0/" + "3" * 120, "names an allele")])
def test_regression_genotypes_htslib_cannot_parse_are_refused_naming_the_sample(
        tmp_path: Path, gt: str, why: str) -> None:
    # atheris (vcf harness, 2026-11-27 second run): without a ##contig line htslib fails to
    # parse these GT values, hands over the record anyway, and reading its FORMAT values
    # segfaulted (the two files above); now refused before htslib sees them
    src = (REPO / "tests" / "fuzz" / "data" / "vcf_segfault_leading_phase_gt.vcf").read_text()
    f = tmp_path / "gt.vcf"
    f.write_text(src.replace("/0000:80,0:80", f"{gt}:80,0:80"))
    with pytest.raises(VariantError) as e:
        read_vcf(f)
    assert e.value.field == "line 7 sample 'relative'" and why in str(e.value)
