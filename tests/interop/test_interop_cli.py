"""CLI: ``alpsdx import bundle.json`` into a real SQLite registry, ``alpsdx export ID --fhir``,
``alpsdx evaluate bundle.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from interop_helpers import make_registry
from typer.testing import CliRunner

from alpsdx.cli import _register_all, app
from alpsdx.interop.fhir_import import bundle_to_case


@pytest.fixture()
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    reg = make_registry(tmp_path)  # migrated to head
    monkeypatch.setenv("ALPSDX_DATABASE_URL", str(reg.engine.url))
    monkeypatch.setenv("ALPSDX_UPLOAD_DIR", str(tmp_path / "uploads"))
    _register_all()
    return reg


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_import_then_export_round_trip(db: Any, fdata: Path, tmp_path: Path) -> None:
    src = fdata / "synthea_alps_fas.json"
    res = _run("import", str(src), "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    pid = out["patient_id"]
    expected, warnings = bundle_to_case(json.loads(src.read_text()))
    assert out["case_id"] == expected.id
    assert len(out["warnings"]) == len(warnings)
    assert db.load_case(pid) == expected
    files = db.patient_record(pid)["files"]
    assert [f["kind"] for f in files] == ["fhir"]
    # importing the same Bundle again merges into the same patient without duplicates
    res = _run("import", str(src), "--format", "json")
    assert res.exit_code == 0 and json.loads(res.stdout)["patient_id"] == pid
    assert db.count_patients() == 1
    assert db.load_case(pid) == expected

    target = tmp_path / "out.json"
    res = _run("export", str(pid), "--fhir", str(target))
    assert res.exit_code == 0, res.output
    again, _ = bundle_to_case(json.loads(target.read_text()))
    assert again == expected


def test_import_text_lists_unmapped_items_with_their_resources(db: Any, fdata: Path) -> None:
    bundle = json.loads((fdata / "synthea_alps_fas.json").read_text())
    bmi = next(e["resource"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "Observation"
               and e["resource"]["code"]["coding"][0]["code"] == "39156-5")
    res = _run("import", str(fdata / "synthea_alps_fas.json"))
    assert res.exit_code == 0, res.output
    assert f"Observation/{bmi['id']}" in res.stdout
    assert "2 Encounter resource(s) not read" in res.stdout


def test_dry_run_writes_nothing(db: Any, fdata: Path) -> None:
    res = _run("import", str(fdata / "searchset_dnt_missing.json"), "--dry-run", "-f", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["case"]["findings"]["autoimmune_cytopenias"] == ["hemolytic_anemia",
                                                                                 "thrombocytopenia"]
    assert db.count_patients() == 0


def test_invalid_bundle_exits_2_naming_the_resource(db: Any, fdata: Path) -> None:
    bundle = json.loads((fdata / "invalid_observation_value.json").read_text())
    bad_id = bundle["entry"][2]["resource"]["id"]
    res = _run("import", str(fdata / "synthea_alps_fas.json"), str(fdata / "invalid_observation_value.json"))
    assert res.exit_code != 0
    assert bad_id in str(res.exception) or bad_id in res.output
    assert db.count_patients() == 0  # every file is checked before anything is written


def test_import_missing_file(db: Any, tmp_path: Path) -> None:
    res = _run("import", str(tmp_path / "nope.json"))
    assert res.exit_code != 0
    assert "file not found" in str(res.exception)
