"""``alpsdx variants``: the JSON contract, --sample, --case, and ``alpsdx evaluate`` using the result.

(The CLI module is src/alpsdx/commands/variants.py; its tests sit with the genetics tests.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alpsdx.cli import main

CONTRACT_KEYS = {"gene", "hgvs_c", "hgvs_p", "consequence", "domain", "region", "mechanism",
                 "origin", "classification", "considerations"}
REGIONS = {"extracellular", "transmembrane", "intracellular", "signal_peptide", "non_coding", None}

# Required NIH 2009 criteria met (chronic lymphadenopathy, DNT 4.0% of lymphocytes, normal
# lymphocyte count for age 2): the variants decide definitive vs probable and the subtype.
CASE: dict[str, Any] = {
    "id": "genetics-cli", "sex": "female", "birth_date": "2023-01-01", "evaluation_date": "2025-03-01",
    "findings": {
        "lymphadenopathy": {"present": True, "duration_months": 12, "malignancy_excluded": True,
                            "infection_excluded": True},
        "splenomegaly": {"present": False},
    },
    "observations": [
        {"analyte": "dnt_pct_lymphocytes", "value": 4.0, "unit": "%", "date": "2025-02-01"},
        {"analyte": "lymphocytes_abs", "value": 4.5, "unit": "10*9/L", "date": "2025-02-01"},
    ],
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def variants_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "variants", *args, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list)
    return rows


def test_json_contract_for_every_fixture(gdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = ["germline_dd_missense.vep.vcf", "extracellular_nonsense.snpeff.vcf", "splice_site.vep.vcf",
             "multi_sample_dnt.vep.vcf", "somatic_low_vaf.vep.vcf", "nras_somatic.vep.vcf", "vus.vep.vcf"]
    rows = variants_json(capsys, *(str(gdata / n) for n in names))
    assert len(rows) == 10
    for r in rows:
        assert set(r) >= CONTRACT_KEYS
        assert r["region"] in REGIONS and isinstance(r["considerations"], list)
        assert r["origin"] in ("germline", "somatic", "unknown")


def test_vcf_rows_carry_genotype_depth_and_position(gdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (r,) = variants_json(capsys, str(gdata / "germline_dd_missense.vep.vcf"))
    assert r["vcf"] == {"chrom": "chr10", "pos": 88990000, "ref": "A", "alt": "G",
                        "transcript": "NM_000043.6", "genotype": "0/1", "depth": 38,
                        "filter": "PASS", "clnsig": "Pathogenic"}
    assert r["vaf"] == pytest.approx(18 / 38, abs=1e-4) and r["sample"] == "proband"
    (h,) = variants_json(capsys, "p.D260G", "--gene", "FAS")
    assert h["vcf"] is None


def test_hgvs_strings_with_gene_and_report_fields(capsys: pytest.CaptureFixture[str]) -> None:
    rows = variants_json(capsys, "p.D260G", "c.506-1G>A", "--gene", "FAS", "--classification",
                         "pathogenic", "--origin", "germline")
    assert [r["hgvs_p"] for r in rows] == ["p.Asp260Gly", None]
    assert rows[0]["domain"] == "death_domain" and rows[0]["mechanism"] == "dominant_negative"
    assert rows[1]["consequence"] == "splice_acceptor_variant"
    assert all(r["origin"] == "germline" and r["subtype_hint"] == "ALPS-FAS" for r in rows)


def test_table_output_names_domain_and_sources(gdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "variants", str(gdata / "germline_dd_missense.vep.vcf"))
    assert code == 0
    assert "mechanism: intracellular (death domain) missense" in out and "References" in out
    assert "mutation criterion: met; subtype ALPS-FAS" in out
    assert "uniprot_p25445" in out and "UniProtKB/Swiss-Prot P25445" in out


def test_sample_option(gdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = variants_json(capsys, str(gdata / "multi_sample_dnt.vep.vcf"), "--sample", "whole_blood")
    assert {r["sample"] for r in rows} == {"whole_blood"} and len(rows) == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["NM_000043.6:c.779A>"], "not valid HGVS"),
        (["c.779A>G"], "needs a gene"),
        (["no_annotation.vcf"], "no CSQ or ANN"),
        (["malformed_pos.vcf"], "line 16"),
        (["multi_sample_dnt.vep.vcf", "--sample", "tumour"], "sample not in the VCF"),
        (["p.D260G", "--gene", "FAS", "--classification", "probably"], "variant options"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    gdata: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    args = [str(gdata / a) if a.endswith(".vcf") else a for a in args]
    code, out, err = run(capsys, "variants", *args)
    assert code == 2 and fragment in err and "Traceback" not in err + out


def _case(tmp_path: Path) -> Path:
    p = tmp_path / "case.json"
    p.write_text(json.dumps(CASE))
    return p


def evaluate(capsys: pytest.CaptureFixture[str], case: Path) -> dict[str, Any]:
    code, out, err = run(capsys, "evaluate", str(case), "--format", "json")
    assert code == 0, err
    res: dict[str, Any] = json.loads(out)
    return res


def _mutation(res: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in res["criteria"] if c["id"] == "primary.mutation")


def test_case_then_evaluate_germline_death_domain_is_definitive_alps_fas(
    gdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    before = evaluate(capsys, case)
    assert before["category"] == "probable" or _mutation(before)["status"] != "met"
    code, _, err = run(capsys, "variants", str(gdata / "germline_dd_missense.vep.vcf"), "--case", str(case))
    assert code == 0 and "1 variant(s) added" in (err + _)
    stored = json.loads(case.read_text())["variants"]
    assert [v["hgvs_p"] for v in stored] == ["NP_000034.1:p.Asp260Gly"]
    # Adding the same file again adds nothing.
    run(capsys, "variants", str(gdata / "germline_dd_missense.vep.vcf"), "--case", str(case))
    assert len(json.loads(case.read_text())["variants"]) == 1
    res = evaluate(capsys, case)
    assert _mutation(res)["status"] == "met"
    assert res["category"] == "definitive" and res["subtype"] == "ALPS-FAS"
    (v,) = res["variants"]
    assert v["domain"] == "death_domain" and v["mechanism"] == "dominant_negative"


def test_case_then_evaluate_vus_does_not_satisfy_the_mutation_criterion(
    gdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    run(capsys, "variants", str(gdata / "vus.vep.vcf"), "--case", str(case))
    res = evaluate(capsys, case)
    assert _mutation(res)["status"] != "met"
    assert res["subtype"] not in ("ALPS-FAS", "ALPS-sFAS")
    (v,) = res["variants"]
    assert v["classification"] == "vus" and v["region"] == "transmembrane"
    assert any("uncertain significance" in c for c in res["considerations"])


def test_case_then_evaluate_nras_is_a_differential(
    gdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    run(capsys, "variants", str(gdata / "nras_somatic.vep.vcf"), "--case", str(case))
    res = evaluate(capsys, case)
    assert res["subtype"] not in ("ALPS-FAS", "ALPS-sFAS", "ALPS-FASLG", "ALPS-CASP10")
    assert any("RALD" in c or "RAS-associated" in c for c in res["considerations"])


def test_case_then_evaluate_sorted_dnt_gives_alps_sfas(
    gdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    run(capsys, "variants", str(gdata / "multi_sample_dnt.vep.vcf"), "--sample", "whole_blood",
        "--case", str(case))
    run(capsys, "variants", str(gdata / "multi_sample_dnt.vep.vcf"), "--sample", "sorted_DNT",
        "--case", str(case))
    data = json.loads(case.read_text())
    data["variants"] = [v for v in data["variants"] if v["hgvs_p"].endswith("Ile310Ser")]
    case.write_text(json.dumps(data))
    res = evaluate(capsys, case)
    assert res["subtype"] == "ALPS-sFAS"


def test_evaluate_annotates_one_change_in_two_samples_consistently(
    gdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    run(capsys, "variants", str(gdata / "multi_sample_dnt.vep.vcf"), "--case", str(case))
    res = evaluate(capsys, case)
    dd = [v for v in res["variants"] if (v.get("hgvs_p") or "").endswith("Ile310Ser")]
    assert len(dd) == 2 and {v["origin"] for v in dd} == {"somatic"}


def test_case_file_left_untouched_on_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = _case(tmp_path)
    before = case.read_text()
    code, _, _ = run(capsys, "variants", "NM_000043.6:c.779A>", "--case", str(case))
    assert code == 2 and case.read_text() == before
