"""Uploads through the pages: FCS runs the DNT pipeline (gate plot shown), VCF adds variants
with their domains, case files create or merge; bad files get a named error, not a traceback."""

from __future__ import annotations

import json
from urllib.parse import unquote

from webtools import new_patient

from alpsdx.flow.pipeline import analyse_fcs


def test_fcs_upload_runs_pipeline_and_shows_gate_plot(app, as_role, fcs_bytes: bytes, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    pid = new_patient(s, "up-fcs", age_years="30")
    r = s.post(f"/patients/{pid}/uploads/fcs", files={"file": ("sample.fcs", fcs_bytes, "application/octet-stream")})
    assert r.status_code == 303, r.text[:500]
    assert "DNT values added" in unquote(r.headers["location"])
    # The stored figures are the pipeline's own for the same bytes.
    path = tmp_path / "same.fcs"
    path.write_bytes(fcs_bytes)
    expected = analyse_fcs(path)
    rec = app.state.registry.patient_record(pid)
    obs = {o["analyte"]: o["value"] for o in rec["observations"]}
    assert obs["dnt_pct_lymphocytes"] == round(expected.dnt_pct_lymphocytes, 4)  # type: ignore[arg-type]
    assert obs["dnt_pct_cd3"] == round(expected.dnt_pct_cd3, 4)  # type: ignore[arg-type]
    f = next(f for f in rec["files"] if f["kind"] == "fcs")
    assert f["filename"] == "sample.fcs" and len(f["sha256"]) == 64
    page = s.get(f"/patients/{pid}").text
    assert f'src="/patients/{pid}/files/{f["id"]}/plot.png"' in page
    png = s.get(f"/patients/{pid}/files/{f['id']}/plot.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    # The original file downloads unchanged.
    assert s.get(f"/patients/{pid}/files/{f['id']}").content == fcs_bytes


def test_bad_fcs_is_a_named_error(app, as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    pid = new_patient(s, "up-fcs-bad")
    r = s.post(f"/patients/{pid}/uploads/fcs", files={"file": ("x.fcs", b"FCS3.1    garbage", "application/octet-stream")})
    assert r.status_code == 422
    assert 'data-field="file"' in r.text
    assert "Traceback" not in r.text
    assert app.state.registry.patient_record(pid)["files"] == []


def test_vcf_upload_adds_variants_with_domains(app, as_role, vcf_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    pid = new_patient(s, "up-vcf")
    r = s.post(f"/patients/{pid}/uploads/vcf", files={"file": ("calls.vep.vcf", vcf_bytes, "text/plain")})
    assert r.status_code == 303, r.text[:500]
    ev = app.state.registry.patient_record(pid)["evaluation"]
    genes = [v["gene"] for v in ev["variants"]]
    assert "FAS" in genes and "BRCA2" not in genes  # panel genes only
    fas = next(v for v in ev["variants"] if v["gene"] == "FAS")
    page = s.get(f"/patients/{pid}").text
    assert fas["domain_label"] and fas["domain_label"] in page


def test_case_upload_creates_then_merges(app, as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    case = {"id": "up-case", "sex": "female", "age_years": 14,
            "observations": [{"analyte": "igg", "value": 1800, "unit": "mg/dL", "date": "2025-02-01"}]}
    r = s.post("/patients/upload", files={"file": ("c.json", json.dumps(case).encode(), "application/json")})
    assert r.status_code == 303
    pid = int(r.headers["location"].rsplit("/", 1)[1])
    more = "id: up-case\nobservations:\n  - {analyte: igg, value: 1900, unit: mg/dL, date: 2025-04-01}\n"
    r = s.post(f"/patients/{pid}/uploads/case", files={"file": ("more.yaml", more.encode(), "application/yaml")})
    assert r.status_code == 303
    values = sorted(o["value"] for o in app.state.registry.patient_record(pid)["observations"])
    assert values == [1800, 1900]
    # Another patient's file is refused, naming the field.
    r = s.post(f"/patients/{pid}/uploads/case", files={"file": ("o.json", b'{"id": "someone-else"}', "application/json")})
    assert r.status_code == 422 and "another patient" in r.text


def test_case_upload_with_unknown_key_is_refused(as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    r = s.post("/patients/upload", files={"file": ("c.json", b'{"id": "typo", "findngs": {}}', "application/json")})
    assert r.status_code == 422
    assert "findngs" in r.text
