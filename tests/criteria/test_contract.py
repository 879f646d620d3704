"""One contract suite over every registered criteria set (DESIGN.md: a set is data + a short class)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from criteria_cases import BASE, case

from alpsdx import knowledge
from alpsdx.criteria import (
    CRITERIA_SETS,
    Category,
    Settings,
    Status,
    criteria_set,
    evaluate,
    evaluate_all,
)
from alpsdx.engine import assess
from alpsdx.model import case_from_dict

SETS = list(CRITERIA_SETS)
ALPSDX = str(Path(sys.executable).with_name("alpsdx"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script as a real process (exit codes and stderr as a user sees them)."""
    return subprocess.run([ALPSDX, *args], capture_output=True, text=True, timeout=120, check=False)


def test_registry_holds_the_four_named_sets() -> None:
    assert SETS == ["nih2009", "nih1999", "seif2008", "esid"]


@pytest.mark.parametrize("name", SETS)
def test_rules_cite_known_sources_and_have_stable_ids(name: str) -> None:
    cs = criteria_set(name)
    cites = knowledge.citations()
    assert cs.citation in cites
    ids = [r.id for r in cs.rules]
    assert len(ids) == len(set(ids))
    for r in cs.rules:
        assert r.citation in cites, r.id
        assert re.fullmatch(r"[a-z_0-9]+\.[a-z_0-9]+", r.id), r.id
        assert r.id.startswith(r.group + "."), r.id
        assert r.tests, f"{r.id}: no test would settle it when unknown"


@pytest.mark.parametrize("name", SETS)
def test_site_settings_named_by_a_set_exist(name: str) -> None:
    spec = knowledge.thaw(knowledge.load(f"criteria/{name}"))
    text = json.dumps(spec)
    declared = set(knowledge.load("settings")["settings"])
    for setting in re.findall(r'"[a-z_]+_setting": "([a-z0-9_]+)"', text):
        assert setting in declared, setting
        assert setting in Settings.__dataclass_fields__, setting


@pytest.mark.parametrize("name", SETS)
def test_missing_data_is_unknown_never_not_met(name: str) -> None:
    empty = case_from_dict({"id": "empty", "age_years": 10, "evaluation_date": "2025-01-01"})
    ev = evaluate(empty, name)
    assert all(r.status is Status.unknown for r in ev.criteria), [(r.id, r.status) for r in ev.criteria]
    assert ev.category is Category.indeterminate
    assert ev.next_tests, "an empty case must say what to measure"


@pytest.mark.parametrize("name", SETS)
def test_results_carry_threshold_citation_and_serialise(name: str) -> None:
    ev = evaluate(case(), name)
    d = ev.to_dict()
    json.dumps(d)
    assert d["criteria_set"] == name and d["category"] in {c.value for c in Category}
    for r in d["criteria"]:
        assert r["threshold"] and r["citation_text"], r["id"]


@pytest.mark.parametrize("name", SETS)
def test_more_met_data_never_lowers_the_category(name: str) -> None:
    """Monotonicity over the category order not_met < indeterminate < probable < definitive."""
    order = {Category.not_met: 0, Category.indeterminate: 1, Category.probable: 2, Category.definitive: 3}
    cs = criteria_set(name)
    ids = [r.id for r in cs.rules]
    for bits in range(3 ** min(len(ids), 7)):
        statuses: dict[str, Status] = {}
        x = bits
        for i in ids:
            statuses[i] = (Status.not_met, Status.unknown, Status.met)[x % 3] if i in ids[:7] else Status.unknown
            x //= 3 if i in ids[:7] else 1
        base = order[cs.categorize(statuses)]
        for i in ids[:7]:
            if statuses[i] is Status.met:
                continue
            up = Status.unknown if statuses[i] is Status.not_met else Status.met
            assert order[cs.categorize({**statuses, i: up})] >= base, (statuses, i)


def test_evaluate_all_and_assess_side_by_side() -> None:
    c = case(apoptosis_assays=[{"result": "defective"}])
    evs = evaluate_all(c)
    assert list(evs) == SETS
    out: dict[str, Any] = assess(c, "all", care=False)
    assert [o["criteria_set"] for o in out["other_sets"]] == SETS[1:]
    cats = {out["criteria_set"]: out["category"], **{o["criteria_set"]: o["category"] for o in out["other_sets"]}}
    # NIH 1999: all three required with one defective assay -> definitive; NIH 2009 needs two assays.
    assert cats["nih1999"] == "definitive" and cats["nih2009"] != "definitive"
    assert out["disagreements"]


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI entry point in-process (the console script calls exactly this)."""
    from alpsdx.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.mark.parametrize("name", SETS)
def test_cli_evaluate_each_criteria_option(name: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps(BASE))
    code, out, err = run_main(capsys, "evaluate", str(p), "--criteria", name, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["criteria_set"] == name


def test_cli_evaluate_all_text_shows_disagreement(tmp_path: Any) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps({**BASE, "apoptosis_assays": [{"result": "defective"}]}))
    res = run_cli("evaluate", str(p), "--criteria", "all")
    assert res.returncode == 0, res.stderr
    for title in ("Revised NIH criteria", "Original NIH criteria", "CHOP criteria", "ESID Registry"):
        assert title in res.stdout
    assert "Criteria sets disagree" in res.stdout and "nih1999: definitive" in res.stdout


def test_cli_rejects_unknown_set(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps(BASE))
    code, _, err = run_main(capsys, "evaluate", str(p), "--criteria", "nih2099")
    assert code == 2
    assert "nih2009 | nih1999 | seif2008 | esid | all" in err and "Traceback" not in err


def test_cli_knowledge_lists_every_set_and_setting(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "knowledge", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert [s["id"] for s in data["criteria_sets"]] == SETS
    seif = next(s for s in data["criteria_sets"] if s["id"] == "seif2008")
    assert any(r["id"] == "major.dnt" and r["params"]["thresholds"][0]["value"] == 5 for r in seif["rules"])
    for name in ("nih1999_dnt_pct_cd3", "seif2008_dnt_denominator", "esid_apoptosis_placement"):
        assert data["settings"][name]["citation"] == "site_setting"
