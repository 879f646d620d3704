"""The `alpsdx evaluate` and `alpsdx knowledge` verbs, driven through the real CLI entry point."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from alpsdx.cli import main

# What each synthetic example was written to show (category, subtype); see examples/.
EXPECTED = {
    "case-001": ("definitive", "ALPS-FAS"),
    "case-002": ("definitive", "ALPS-sFAS"),
    "case-003": ("definitive", "ALPS-FASLG"),
    "case-004": ("definitive", "ALPS-CASP10"),
    "case-005": ("definitive", "ALPS-U"),
    "case-006": ("probable", None),
    "case-007": ("not_met", None),
    "case-008": ("not_met", None),
    "case-009": ("indeterminate", None),
    "case-010": ("indeterminate", None),
    "case-011": ("probable", None),  # FAS VUS; FASLG/CASP10 untested: subtype pending
    "case-012": ("not_met", None),
    "case-013": ("indeterminate", None),
    "case-014": ("probable", None),
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    code = exc.value.code
    return int(code) if isinstance(code, int) else 1, out, err


def crit(result: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(c for c in result["criteria"] if c["id"] == rule_id)


@pytest.mark.parametrize("case_id", sorted(EXPECTED))
def test_each_example_reaches_its_intended_category(capsys, examples_dir: Path, case_id: str) -> None:
    path = next(examples_dir.glob(f"{case_id}-*"))
    code, out, _ = run(capsys, "evaluate", str(path), "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert (result["category"], result["subtype"]) == EXPECTED[case_id]
    assert result["case_id"] == case_id


def test_examples_cover_every_category_and_subtype() -> None:
    cats = {c for c, _ in EXPECTED.values()}
    subs = {s for _, s in EXPECTED.values() if s}
    assert cats == {"definitive", "probable", "not_met", "indeterminate"}
    assert subs == {"ALPS-FAS", "ALPS-sFAS", "ALPS-FASLG", "ALPS-CASP10", "ALPS-U"}


def test_json_output_matches_the_contract(capsys, examples_dir: Path) -> None:
    code, out, _ = run(capsys, "evaluate", str(examples_dir / "case-001-alps-fas-definitive.json"), "-f", "json")
    r = json.loads(out)
    assert code == 0
    for key in ("case_id", "criteria_set", "category", "subtype", "criteria", "next_tests", "considerations"):
        assert key in r
    ids = [c["id"] for c in r["criteria"]]
    assert ids == ["required.chronic_lymphoproliferation", "required.dnt", "primary.apoptosis", "primary.mutation",
                   "secondary.biomarkers", "secondary.histology", "secondary.cytopenias_igg",
                   "secondary.family_history"]
    for c in r["criteria"]:
        assert c["status"] in {"met", "not_met", "unknown"}
        assert c["citation"] in r["sources"]
        assert isinstance(c["evidence"], list) and c["threshold"]
    # every source the clinician is pointed at is listed with its text
    assert {i["citation"] for i in r["care"]} <= set(r["sources"])
    assert {k for v in r["variants"] for k in v["citations"]} <= set(r["sources"])
    assert "kotylo1993" not in r["sources"]  # the lab's own interval was used, not the table


def test_boundary_example_shows_comparators(capsys, examples_dir: Path) -> None:
    """case-010: DNT exactly 1.5 % counts (>= default); sFASL 200, B12 1500, IL-10 20, IL-18 500 do not (>)."""
    _, out, _ = run(capsys, "evaluate", str(examples_dir / "case-010-boundaries.json"), "-f", "json")
    r = json.loads(out)
    assert crit(r, "required.dnt")["status"] == "met"
    assert crit(r, "secondary.biomarkers")["status"] == "not_met"
    assert r["settings"]["dnt_comparator"] == ">="


def test_undated_observations_are_current_and_the_output_says_so(capsys, examples_dir: Path) -> None:
    _, out, _ = run(capsys, "evaluate", str(examples_dir / "case-014-yaml-undated.yaml"), "-f", "json")
    r = json.loads(out)
    dnt = crit(r, "required.dnt")
    assert dnt["status"] == "met"
    assert any("no date" in (e.get("note") or "") or "undated" in (e.get("note") or "") for e in dnt["evidence"]), dnt


def test_batch_folder_json_and_jsonl(capsys, examples_dir: Path) -> None:
    n = len([p for p in examples_dir.iterdir() if p.suffix in {".json", ".yaml"}])
    code, out, _ = run(capsys, "evaluate", str(examples_dir), "-f", "jsonl")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == n
    assert {r["case_id"] for r in lines} == set(EXPECTED)
    code, out, _ = run(capsys, "evaluate", str(examples_dir), "-f", "json")
    assert code == 0 and len(json.loads(out)) == n


def test_batch_text_is_a_summary_table(capsys, examples_dir: Path) -> None:
    code, out, _ = run(capsys, "evaluate", str(examples_dir))
    assert code == 0
    for case_id, (category, _) in EXPECTED.items():
        line = next(line for line in out.splitlines() if case_id in line)
        assert category in line


def test_a_bad_file_in_a_batch_is_named_and_the_rest_still_evaluated(capsys, examples_dir: Path,
                                                                     tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "b", "observations": [{"analyte": "igg", "value": -1, "unit": "mg/dL"}]}))
    code, out, err = run(capsys, "evaluate", str(examples_dir / "case-002-alps-sfas-definitive.json"), str(bad),
                         "-f", "jsonl")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert lines[0]["case_id"] == "case-002"
    assert lines[1]["error"]["field"].endswith("observations[0].value")
    assert "bad.json" in err and "Traceback" not in err


def test_stdin(capsys, monkeypatch, examples_dir: Path) -> None:
    text = (examples_dir / "case-002-alps-sfas-definitive.json").read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, out, _ = run(capsys, "evaluate", "-", "-f", "json")
    assert code == 0 and json.loads(out)["subtype"] == "ALPS-sFAS"


def test_yaml_on_stdin(capsys, monkeypatch, examples_dir: Path) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO((examples_dir / "case-014-yaml-undated.yaml").read_text()))
    code, out, _ = run(capsys, "evaluate", "-", "-f", "json")
    assert code == 0 and json.loads(out)["case_id"] == "case-014"


def test_date_option_moves_the_evaluation(capsys, examples_dir: Path) -> None:
    """Before the DNT flow of 2025-05-20 existed, case-001 cannot meet the DNT criterion."""
    path = str(examples_dir / "case-001-alps-fas-definitive.json")
    code, out, _ = run(capsys, "evaluate", path, "-f", "json", "--date", "2025-05-01")
    r = json.loads(out)
    assert code == 0 and r["evaluation_date"] == "2025-05-01"
    assert crit(r, "required.dnt")["status"] == "unknown"
    assert r["category"] == "indeterminate"


@pytest.mark.parametrize("argv, field", [
    (["--date", "01/05/2025"], "--date"),
    (["--criteria", "nih2027"], "--criteria"),
])
def test_bad_options_exit_2_with_one_line(capsys, examples_dir: Path, argv: list[str], field: str) -> None:
    code, out, err = run(capsys, "evaluate", str(examples_dir / "case-002-alps-sfas-definitive.json"), *argv)
    assert code == 2 and out == ""
    assert field in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content, field", [
    ('{"id": "x", "findings": {"lymphadenopaty": {"present": true}}}', "lymphadenopaty"),
    ('{"id": "x", "observations": [{"analyte": "dnt_pct_cd3", "value": 140, "unit": "%"}]}', "observations[0]"),
    ('{"id": "x", "birth_date": "2020-01-01", "evaluation_date": "2019-01-01"}', "evaluation_date"),
    ('{"id": "x", "observations": [{"analyte": "igg", "value": 9, "unit": "kg"}]}', "observations[0]"),
    ('{"id": ', "bad.json"),
])
def test_bad_case_exit_2_naming_file_and_field(capsys, tmp_path: Path, content: str, field: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, out, err = run(capsys, "evaluate", str(bad))
    assert code == 2 and out == ""
    assert "bad.json" in err and field in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_file_exit_2(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "evaluate", str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json" in err


def test_text_checklist_names_criteria_and_sources(capsys, examples_dir: Path) -> None:
    code, out, _ = run(capsys, "evaluate", str(examples_dir / "case-006-probable-biomarkers.json"))
    assert code == 0
    assert "PROBABLE" in out and "required.dnt" in out and "[oliveira2010]" in out
    assert "Next tests" in out


def test_knowledge_lists_rules_thresholds_ranges_and_citations(capsys) -> None:
    code, out, _ = run(capsys, "knowledge", "--format", "json")
    kb = json.loads(out)
    assert code == 0
    nih = next(s for s in kb["criteria_sets"] if s["id"] == "nih2009")
    assert any(r["id"] == "required.dnt" for r in nih["rules"])
    cited = {r["citation"] for s in kb["criteria_sets"] for r in s["rules"]}
    assert cited <= set(kb["citations"])
    assert {"lymphocytes_abs", "igg"} <= set(kb["reference_ranges"])
    for bands in kb["reference_ranges"].values():
        assert all(b["citation"] in kb["citations"] for b in bands)
    code, out, _ = run(capsys, "knowledge")
    assert code == 0 and "oliveira2010" in out and "dnt_comparator" in out


def test_fhir_bundle_evaluates_and_names_what_it_did_not_map(capsys) -> None:
    bundle = Path(__file__).resolve().parents[1] / "data" / "fhir" / "synthea_alps_fas.json"
    code, out, err = run(capsys, "evaluate", str(bundle), "-f", "json", "--date", "2025-06-01")
    assert code == 0
    r = json.loads(out)
    assert (r["category"], r["subtype"]) == ("definitive", "ALPS-FAS")
    assert "not mapped" in err and "Encounter" in err
