"""The patient report: HTML and PDF (WeasyPrint), checked by rendering the PDF to PNG
(pdftoppm) and reading its text (pdftotext); and ``alpsdx report PATIENT_ID --pdf``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from webtools import new_patient

from alpsdx import knowledge
from alpsdx.model import load_case

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "case-001-alps-fas-definitive.json"
needs_poppler = pytest.mark.skipif(not (shutil.which("pdftoppm") and shutil.which("pdftotext")),
                                   reason="poppler-utils (pdftoppm, pdftotext) not installed")


def _pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def _pdf_pages_png(pdf: Path, out: Path) -> list[Path]:
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(out / "page")], check=True)
    return sorted(out.glob("page*.png"))


@needs_poppler
def test_pdf_report_from_the_patient_page(app, as_role, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reg = app.state.registry
    pid = reg.save_case(load_case(EXAMPLE))
    s = as_role("viewer")
    assert f'href="/patients/{pid}/report.pdf"' in s.get(f"/patients/{pid}").text
    r = s.get(f"/patients/{pid}/report.pdf")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert "case-001" not in r.headers["content-disposition"]  # no identifier in the file name
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(r.content)
    pages = _pdf_pages_png(pdf, tmp_path)
    assert pages and all(p.read_bytes()[:4] == b"\x89PNG" for p in pages)
    text = _pdf_text(pdf)
    ev = reg.patient_record(pid)["evaluation"]
    flat = " ".join(text.split())
    assert "ALPS decision-support report: case-001" in flat
    assert ev["category"].replace("_", " ").upper() in flat
    assert f"knowledge base {ev['kb_version']}" in flat
    assert "Criteria sets side by side" in flat
    assert "Sources" in flat
    # The full text of the primary source is printed, not just its key.
    first = knowledge.resolve_citation(ev["criteria"][0]["citation"])
    assert " ".join(first.split())[:40] in flat
    # Dated: the generation date appears.
    assert "Generated 20" in flat
    # The report read is audited.
    assert any(row["patient_id"] == pid and row["action"] == "read" for row in reg.audit_rows(limit=20))


def test_html_report_is_self_contained(app, as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    pid = new_patient(s, "report-html", age_years="10")
    s.post(f"/patients/{pid}/observations", {"analyte": "igg", "value": "2100", "unit": "mg/dL", "date": "2025-03-01"})
    r = s.get(f"/patients/{pid}/report")
    assert r.status_code == 200
    assert "data:image/png;base64," in r.text  # the IgG trend plot is inline
    assert 'src="http' not in r.text and 'href="http' not in r.text
    assert "img-src data:" in r.headers["content-security-policy"]


@needs_poppler
def test_cli_report_writes_pdf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from alpsdx import cli
    from alpsdx.store import Registry, make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    monkeypatch.setenv("ALPSDX_DATABASE_URL", url)
    monkeypatch.setenv("ALPSDX_UPLOAD_DIR", str(tmp_path / "up"))
    engine = make_engine(url)
    upgrade(engine)
    Registry(engine, tmp_path / "up").save_case(load_case(EXAMPLE))
    engine.dispose()
    out = tmp_path / "out.pdf"
    with pytest.raises(SystemExit) as done:
        cli.main(["report", "case-001", "--pdf", str(out)])
    assert done.value.code == 0, capsys.readouterr().err
    assert out.read_bytes()[:5] == b"%PDF-"
    assert "ALPS decision-support report: case-001" in " ".join(_pdf_text(out).split())
    with pytest.raises(SystemExit) as missing:
        cli.main(["report", "nobody", "--pdf", str(out)])
    assert missing.value.code == 2
    err = capsys.readouterr().err
    assert "no such patient" in err and "Traceback" not in err
