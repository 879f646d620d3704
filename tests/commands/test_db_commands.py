"""``alpsdx db upgrade|current|check`` and ``alpsdx export`` through the real CLI entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from alpsdx.cli import main
from alpsdx.commands.db import open_registry
from alpsdx.model import load_case
from alpsdx.store.db import head_revision

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "reg.sqlite3"
    monkeypatch.setenv("ALPSDX_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("ALPSDX_UPLOAD_DIR", str(tmp_path / "uploads"))
    return path


def test_db_upgrade_from_empty_then_up_to_date(capsys: pytest.CaptureFixture[str], db_env: Path) -> None:
    code, out, _ = run(capsys, "db", "current")
    assert code == 0 and "none (empty database)" in out
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0
    head = head_revision()
    assert f"revision {head} (head); was empty" in out
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and "up to date" in out
    code, out, _ = run(capsys, "db", "current")
    assert f"revision {head}; head {head}" in out


@pytest.mark.postgres
def test_db_upgrade_on_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    url = os.environ.get("ALPSDX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ALPSDX_TEST_POSTGRES_URL is not set")
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"alpsdx_cli_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        target = make_url(url).set(database=name).render_as_string(hide_password=False)
        code, out, _ = run(capsys, "db", "upgrade", "--url", target)
        assert code == 0 and f"revision {head_revision()} (head); was empty" in out and out.startswith("postgresql")
        code, out, _ = run(capsys, "db", "check", "--url", target)
        assert code == 0 and out.strip().endswith("ok")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_password_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "export", "--deidentify", "--url", "postgresql://alice:s3cr3t-pw@127.0.0.1:9/none")
    assert code == 2
    assert "s3cr3t-pw" not in out + err
    assert "cannot open the database" in err


def test_export_needs_a_migrated_database(capsys: pytest.CaptureFixture[str], db_env: Path) -> None:
    code, _, err = run(capsys, "export", "--deidentify")
    assert code == 2
    assert "not migrated" in err and "alpsdx db upgrade" in err
    assert "Traceback" not in err


def test_export_deidentify_writes_the_cohort(capsys: pytest.CaptureFixture[str], db_env: Path, tmp_path: Path) -> None:
    run(capsys, "db", "upgrade")
    reg = open_registry(None)
    cases = [load_case(EXAMPLES / n) for n in ("case-001-alps-fas-definitive.json", "case-014-yaml-undated.yaml")]
    for c in cases:
        reg.save_case(c)
    out_file = tmp_path / "cohort.jsonl"
    code, out, err = run(capsys, "export", "--deidentify", "--out", str(out_file))
    assert code == 0, err
    assert "2 patients written" in err
    lines = out_file.read_text().splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    text = out_file.read_text()
    assert "case-001" not in text and "case-014" not in text
    assert "2025-05-20" not in text  # case-001's observation date moved
    assert all(r["case"]["id"].startswith("deid-") and r["evaluation"]["kb_version"] for r in rows)
    # stdout form, and the export was audited per patient with the OS user as actor.
    code, out, _ = run(capsys, "export", "--deidentify")
    assert code == 0 and len(out.splitlines()) == 2
    exports = [a for a in reg.audit_rows(limit=100) if a["action"] == "export"]
    assert len(exports) == 4 and all(a["actor"].startswith("cli:") for a in exports)


def test_export_usage_errors(capsys: pytest.CaptureFixture[str], db_env: Path) -> None:
    run(capsys, "db", "upgrade")
    code, _, err = run(capsys, "export")
    assert code == 2 and "--deidentify" in err
    code, _, err = run(capsys, "export", "x", "--deidentify")
    assert code == 2 and "PATIENT_ID" in err
    code, _, err = run(capsys, "export", "no-such-patient", "--fhir", "-")
    assert code == 2 and "no such patient" in err


def test_db_check_reports_a_tampered_file(capsys: pytest.CaptureFixture[str], db_env: Path) -> None:
    run(capsys, "db", "upgrade")
    reg = open_registry(None)
    pid = reg.save_case(load_case(EXAMPLES / "case-014-yaml-undated.yaml"))
    fid = reg.add_file(pid, "case", "c.yaml", b"id: case-014\n")
    code, out, _ = run(capsys, "db", "check", "--format", "json")
    assert code == 0 and json.loads(out)["ok"] is True
    reg.file_info(pid, fid)["path"].write_bytes(b"changed")
    code, out, _ = run(capsys, "db", "check")
    assert code == 1
    assert f"PROBLEM file {fid}: content does not match its SHA-256" in out


def test_export_one_patient_as_fhir(capsys: pytest.CaptureFixture[str], db_env: Path, tmp_path: Path) -> None:
    pytest.importorskip("alpsdx.interop.fhir_export")
    from alpsdx.interop.fhir_import import bundle_to_case

    run(capsys, "db", "upgrade")
    reg = open_registry(None)
    case = load_case(EXAMPLES / "case-001-alps-fas-definitive.json")
    pid = reg.save_case(case)
    out = tmp_path / "bundle.json"
    code, _, err = run(capsys, "export", "case-001", "--fhir", str(out))
    assert code == 0, err
    bundle = json.loads(out.read_text())
    assert bundle["resourceType"] == "Bundle"
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Observation", "DiagnosticReport"} <= types
    back = bundle_to_case(bundle).case
    assert [(o.analyte, o.value, o.unit, o.date) for o in back.observations] == \
        [(o.analyte, o.value, o.unit, o.date) for o in case.observations]
    # The registry id works too and gives the same Bundle.
    code, _, _ = run(capsys, "export", str(pid), "--fhir", str(tmp_path / "b2.json"))
    assert code == 0 and json.loads((tmp_path / "b2.json").read_text()) == bundle
    reads = [(a["action"], a["entity"]) for a in reg.audit_rows(limit=6) if a["patient_id"] == pid]
    assert ("read", "case") in reads and ("read", "evaluation") in reads
