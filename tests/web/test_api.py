"""The JSON API end to end over a real app and SQLite registry: what the pages do, as JSON."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from webtools import PASSWORDS

from alpsdx import knowledge
from alpsdx.engine import assess
from alpsdx.model import case_from_dict, load_case
from alpsdx.web import api

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
VCF = REPO / "tests" / "data" / "genetics" / "germline_dd_missense.vep.vcf"


def _basic(app: Any, role: str) -> TestClient:
    token = base64.b64encode(f"{role}:{PASSWORDS[role]}".encode()).decode()
    return TestClient(app, base_url="https://testserver", headers={"Authorization": f"Basic {token}"})


@pytest.fixture(scope="module")
def doc(app: Any) -> Any:
    """A clinician session with the CSRF header set (as the page's fetch calls would send)."""
    from webtools import login

    c = TestClient(app, base_url="https://testserver")
    csrf = login(c, "clinician", PASSWORDS["clinician"])
    c.headers["X-CSRF-Token"] = csrf
    yield c
    c.close()


@pytest.fixture(scope="module")
def boss(app: Any) -> Any:
    c = _basic(app, "admin")
    yield c
    c.close()


def _raw(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


def test_patient_built_up_through_the_api_gets_the_engines_answer_at_every_step(doc: TestClient) -> None:
    full = _raw("case-001-alps-fas-definitive.json")
    full["id"] = "api-flow-001"
    steps: list[tuple[str, str, Any]] = [
        ("variants", "/variants", full.pop("variants")),
        ("apoptosis_assays", "/apoptosis-assays", full.pop("apoptosis_assays")),
        ("medications", "/medications", full.pop("medications")),
    ]
    r = doc.post("/api/patients", json=full)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["category"] == assess(case_from_dict(full), criteria="all")["category"]
    so_far = dict(full)
    categories = [r.json()["category"]]
    for key, path, items in steps:
        for item in items:
            body = item if key != "variants" else [item]
            r = doc.post(f"/api/patients/{pid}{path}", json=body)
            assert r.status_code == 200, r.text
            so_far[key] = [*so_far.get(key, []), item]
        expected = assess(case_from_dict(so_far), criteria="all")
        got = r.json()
        assert got["kb_version"] == knowledge.kb_version()
        assert (got["category"], got["subtype"]) == (expected["category"], expected["subtype"]), key
        assert [(c["id"], c["status"]) for c in got["criteria"]] == [(c["id"], c["status"]) for c in expected["criteria"]]
        categories.append(got["category"])
    assert len(set(categories)) > 1  # the answer moved as data arrived
    # The stored record is the whole case, identical to the file it came from.
    case = doc.get(f"/api/patients/{pid}/case").json()
    original = _raw("case-001-alps-fas-definitive.json")
    original["id"] = "api-flow-001"
    assert case_from_dict(case) == case_from_dict(original)
    record = doc.get(f"/api/patients/{pid}").json()
    assert record["external_id"] == "api-flow-001"
    assert record["evaluation"]["category"] == categories[-1]
    assert len(record["history"]) == 1 + sum(len(items) for _, _, items in steps)
    assert [h["trigger"] for h in record["history"]][-1] == "create"
    hist = doc.get(f"/api/patients/{pid}/evaluations?full=true").json()
    assert hist[0]["result"]["category"] == categories[-1] and hist[0]["case"]["id"] == "api-flow-001"
    assert doc.get(f"/api/patients/{pid}/evaluation").json()["category"] == categories[-1]
    listed = doc.get("/api/patients", params={"q": "api-flow"}).json()
    assert [(p["id"], p["category"]) for p in listed] == [(pid, categories[-1])]


def test_observations_findings_and_series(doc: TestClient) -> None:
    pid = doc.post("/api/patients", json={"id": "api-obs", "sex": "female", "age_years": 11}).json()["id"]
    r = doc.post(f"/api/patients/{pid}/observations", json=[
        {"analyte": "hemoglobin", "value": 95, "unit": "g/L", "date": "2025-03-01", "source": "lab"},
        {"analyte": "hemoglobin", "value": 8.1, "unit": "g/dL", "date": "2025-01-01"},
    ])
    assert r.status_code == 200
    pts = doc.get(f"/api/patients/{pid}/series", params={"analyte": ["hemoglobin", "igg"]}).json()
    assert [(p["date"], p["value"], p["unit"]) for p in pts] == [("2025-01-01", pytest.approx(8.1), "g/dL"),
                                                                  ("2025-03-01", pytest.approx(9.5), "g/dL")]
    obs = doc.get(f"/api/patients/{pid}").json()["observations"]
    assert [(o["value"], o["unit"], o["canonical_value"]) for o in obs] == [(95, "g/L", pytest.approx(9.5)),
                                                                           (8.1, "g/dL", pytest.approx(8.1))]
    r = doc.post(f"/api/patients/{pid}/findings", json={"splenomegaly": {"present": True, "onset": "2024-02-01"},
                                                        "autoimmune_cytopenias": ["hemolytic_anemia"]})
    assert r.status_code == 200
    findings = doc.get(f"/api/patients/{pid}/case").json()["findings"]
    assert findings == {"splenomegaly": {"present": True, "onset": "2024-02-01"},
                        "autoimmune_cytopenias": ["hemolytic_anemia"]}
    r = doc.post(f"/api/patients/{pid}/evaluate", json={})
    assert r.status_code == 200 and r.json()["case_id"] == "api-obs"


@pytest.mark.parametrize(("path", "body", "field", "status"), [
    ("/observations", {"analyte": "igg", "value": 9, "unit": "furlongs"}, "unit", 422),
    ("/observations", [{"analyte": "igg", "value": 9, "unit": "g/L"}, {"analyte": "igg", "value": 9, "unit": "g/L", "vlaue": 1}],
     "[1].vlaue", 422),
    ("/observations", {"analyte": "igg", "value": 9, "unit": "g/L", "date": "2999-01-01"}, "date", 422),
    ("/observations", {"analyte": "not_an_analyte", "value": 9, "unit": "g/L"}, "analyte", 422),
    ("/observations", [], "body", 422),
    ("/findings", {}, "body", 422),
    ("/findings", {"splenomegaly": {"present": "perhaps"}}, "splenomegaly.present", 422),
    ("/variants", {"gene": "FAS", "vaf": 1.5}, "vaf", 422),
    ("/medications", {"name": "sirolimus", "start": "2025-02-01", "end": "2025-01-01"}, None, 422),
    ("/apoptosis-assays", {"result": "weird"}, "result", 422),
    ("/case", {"id": "someone-else"}, "id", 422),
])
def test_bad_input_is_a_typed_error_naming_the_field(doc: TestClient, path: str, body: Any, field: str | None,
                                                     status: int) -> None:
    pid = doc.post("/api/patients", json={"id": f"api-bad-{abs(hash((path, json.dumps(body)))) % 10**9}"}).json()["id"]
    r = doc.post(f"/api/patients/{pid}{path}", json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["error"] in ("InputError", "UnitError")
    assert set(err) == {"error", "message", "field", "value", "expected"}
    if field is not None:
        assert err["field"] == field, err
    assert "Traceback" not in r.text


def test_unit_error_says_what_is_accepted(doc: TestClient) -> None:
    pid = doc.post("/api/patients", json={"id": "api-unit"}).json()["id"]
    err = doc.post(f"/api/patients/{pid}/observations", json={"analyte": "igg", "value": 9, "unit": "mg"}).json()
    assert err["field"] == "unit" and err["value"] == "'mg'"
    assert "canonical mg/dL" in err["expected"]


def test_missing_things_are_404_and_duplicates_422(doc: TestClient) -> None:
    r = doc.get("/api/patients/987654")
    assert r.status_code == 404
    assert r.json() == {"error": "NotFoundError", "message": "no such patient", "field": "patient_id",
                        "value": "987654", "expected": None}
    assert doc.post("/api/patients/987654/observations", json={"analyte": "igg", "value": 9, "unit": "g/L"}).status_code == 404
    doc.post("/api/patients", json={"id": "api-dup"})
    r = doc.post("/api/patients", json={"id": "api-dup"})
    assert r.status_code == 422 and r.json()["field"] == "id"
    assert doc.get("/api/patients/not-a-number").json()["field"] == "patient_id"
    huge = doc.get(f"/api/patients/{2**70}")
    assert huge.status_code == 422 and huge.json()["field"] == "patient_id"


@pytest.mark.parametrize("name", ["case-001-alps-fas-definitive.json", "case-006-probable-biomarkers.json",
                                  "case-007-not-met-not-chronic.json"])
def test_stateless_evaluate_matches_the_cli(app: Any, name: str) -> None:
    with _basic(app, "viewer") as c:
        r = c.post("/api/evaluate", json=_raw(name))
        assert r.status_code == 200, r.text
        expected = assess(load_case(EXAMPLES / name), criteria="nih2009")
        got = r.json()
        assert (got["category"], got["subtype"], got["criteria_set"]) == (expected["category"], expected["subtype"], "nih2009")
        all_sets = c.post("/api/evaluate", params={"criteria": "all"}, json=_raw(name)).json()
        assert {o["criteria_set"] for o in all_sets["other_sets"]} == {"nih1999", "seif2008", "esid"}
    # Evaluated, not stored; audited without the case identifier.
    reg = app.state.registry
    assert reg.find_patient_id(_raw(name)["id"]) is None
    rows = [r for r in reg.audit_rows(limit=20) if r["action"] == "evaluate" and r["entity"] == "case"]
    assert rows and all(_raw(name)["id"] not in json.dumps(r) for r in rows)


def test_stateless_evaluate_reads_yaml_and_names_errors(app: Any) -> None:
    text = (EXAMPLES / "case-014-yaml-undated.yaml").read_text()
    with _basic(app, "viewer") as c:
        r = c.post("/api/evaluate", content=text, headers={"Content-Type": "application/yaml"})
        assert r.status_code == 200, r.text
        assert r.json()["category"] == assess(load_case(EXAMPLES / "case-014-yaml-undated.yaml"))["category"]
        r = c.post("/api/evaluate", json={"id": "x", "findings": {"splenomegally": {"present": True}}})
        assert r.status_code == 422 and r.json()["field"] == "findings.splenomegally"
        r = c.post("/api/evaluate", content=b"{", headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["message"].startswith("not valid JSON")
        r = c.post("/api/evaluate", params={"date": "June"}, json={"id": "x"})
        assert r.status_code == 422 and (r.json()["field"], r.json()["value"]) == ("date", "'June'")
        r = c.post("/api/evaluate", content=b"id: x", headers={"Content-Type": "text/csv"})
        assert r.status_code == 422 and r.json()["field"] == "Content-Type"


def test_vcf_upload_keeps_the_file_and_adds_its_variants(doc: TestClient) -> None:
    pid = doc.post("/api/patients", json={"id": "api-vcf", "sex": "male", "age_years": 9}).json()["id"]
    data = VCF.read_bytes()
    r = doc.post(f"/api/patients/{pid}/files", params={"kind": "vcf", "filename": "patient.vcf"}, content=data,
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["file"]["sha256"] == hashlib.sha256(data).hexdigest() and up["file"]["size"] == len(data)
    assert up["file"]["filename"] == "patient.vcf" and up["file"]["kind"] == "vcf"
    variants = doc.get(f"/api/patients/{pid}/case").json()["variants"]
    assert variants and all(v["gene"] == "FAS" for v in variants)
    assert up["file"]["result"] == {"variants": len(variants)}
    content = doc.get(f"/api/patients/{pid}/files/{up['file']['id']}/content")
    assert content.content == data
    assert [f["id"] for f in doc.get(f"/api/patients/{pid}/files").json()] == [up["file"]["id"]]
    # Multipart (what a cross-site form sends) and unknown kinds are refused.
    r = doc.post(f"/api/patients/{pid}/files", params={"kind": "vcf", "filename": "x.vcf"},
                 files={"file": ("x.vcf", data, "text/plain")})
    assert r.status_code == 422 and r.json()["field"] == "Content-Type"
    r = doc.post(f"/api/patients/{pid}/files", params={"kind": "pdf", "filename": "x.pdf"}, content=b"%PDF",
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 422 and (r.json()["field"], r.json()["value"]) == ("kind", "'pdf'")


def test_fcs_upload_runs_the_dnt_pipeline(doc: TestClient, fcs_bytes: bytes) -> None:
    pid = doc.post("/api/patients", json={"id": "api-fcs", "sex": "female", "age_years": 14}).json()["id"]
    r = doc.post(f"/api/patients/{pid}/files", params={"kind": "fcs", "filename": "tube.fcs"}, content=fcs_bytes,
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    obs = doc.get(f"/api/patients/{pid}").json()["observations"]
    dnt = [o for o in obs if o["analyte"] == "dnt_pct_lymphocytes"]
    assert len(dnt) == 1 and dnt[0]["file_id"] == r.json()["file"]["id"]
    assert dnt[0]["value"] == pytest.approx(3.0, abs=0.6)  # the synthetic file was made with 3 % DNT
    fid = r.json()["file"]["id"]
    plot = doc.get(f"/api/patients/{pid}/files/{fid}/plot.png")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.content.startswith(b"\x89PNG")
    trend = doc.get(f"/api/patients/{pid}/plots/dnt.png")
    assert trend.status_code == 200 and trend.content.startswith(b"\x89PNG")
    bad = doc.get(f"/api/patients/{pid}/plots/cholesterol.png")
    assert bad.status_code == 422 and (bad.json()["field"], bad.json()["value"]) == ("group", "'cholesterol'")


def test_admin_reads_the_audit_trail_of_api_calls(doc: TestClient, boss: TestClient) -> None:
    pid = doc.post("/api/patients", json={"id": "api-audited", "age_years": 5}).json()["id"]
    doc.get(f"/api/patients/{pid}")
    doc.post(f"/api/patients/{pid}/observations", json={"analyte": "igg", "value": 1500, "unit": "mg/dL"})
    page = boss.get("/api/audit", params={"patient_id": pid}).json()
    rows = list(reversed(page["rows"]))
    assert [(r["action"], r["entity"]) for r in rows] == [
        ("create", "patient"), ("evaluate", "evaluation"), ("read", "evaluation"),  # POST answers with the evaluation
        ("read", "patient"), ("create", "observation"), ("evaluate", "evaluation"),
    ]
    for r in rows:
        assert (r["actor"], r["role"], r["remote_addr"], r["patient_id"]) == ("clinician", "clinician", "testclient", pid)
        assert r["at"].endswith("+00:00") and len(r["hash"]) == 64
    assert rows[4]["detail"] == {"analyte": "igg"}
    only_reads = boss.get("/api/audit", params={"patient_id": pid, "action": "read"}).json()["rows"]
    assert {r["action"] for r in only_reads} == {"read"} and len(only_reads) == 2
    first = boss.get("/api/audit", params={"limit": 3}).json()
    second = boss.get("/api/audit", params={"limit": 3, "before": first["next_before"]}).json()
    assert first["next_before"] == first["rows"][-1]["seq"]
    assert second["rows"][0]["seq"] < first["rows"][-1]["seq"]
    # Looking at the log is itself in the log.
    mine = boss.get("/api/audit", params={"actor": "admin", "action": "read"}).json()["rows"]
    assert mine and mine[0]["entity"] == "audit_log"
    assert boss.get("/api/audit/verify").json() == {"rows": boss.get("/api/audit/verify").json()["rows"], "ok": True,
                                                    "problems": []}
    text = json.dumps(boss.get("/api/audit", params={"limit": 1000}).json())
    assert "api-audited" not in text  # the case identifier never enters the log


def test_no_patient_identifier_in_application_logs(doc: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pid = doc.post("/api/patients", json={"id": "MRN-API-55501", "birth_date": "2013-05-06"}).json()["id"]
    doc.get(f"/api/patients/{pid}")
    doc.get("/api/patients", params={"q": "MRN-API-55501"})
    doc.post("/api/patients", json={"id": "MRN-API-55501"})  # a failure, logged or not
    # The test client's own request log (httpx) is not the application's.
    server = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "POST /patients 201" in server  # the app did log: route templates only
    assert "MRN-API-55501" not in server and "2013-05-06" not in server


def test_users_admin_api(app: Any, boss: TestClient) -> None:
    r = boss.post("/api/users", json={"username": "api-nurse", "password": "nurse-pass-1", "role": "viewer"})
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    assert r.json()["role"] == "viewer" and r.json()["active"] is True
    assert boss.post("/api/users", json={"username": "api-nurse", "password": "nurse-pass-1", "role": "viewer"}).json()["field"] == "username"
    assert boss.post("/api/users", json={"username": "x", "password": "nurse-pass-1", "role": "god"}).json()["field"] == "role"
    assert boss.post("/api/users", json={"username": "y", "password": "short", "role": "viewer"}).json()["field"] == "password"
    token = base64.b64encode(b"api-nurse:nurse-pass-1").decode()
    with TestClient(app, base_url="https://testserver", headers={"Authorization": f"Basic {token}"}) as nurse:
        assert nurse.get("/api/me").json()["role"] == "viewer"
        r = boss.patch(f"/api/users/{uid}", json={"role": "clinician"})
        assert r.status_code == 200 and r.json()["role"] == "clinician"
        assert nurse.get("/api/me").json()["role"] == "clinician"
        boss.patch(f"/api/users/{uid}", json={"active": False})
        assert nurse.get("/api/me").status_code == 401
    assert boss.patch("/api/users/999999", json={"role": "viewer"}).status_code == 404
    assert "password" not in json.dumps(boss.get("/api/users").json()).lower()


def test_openapi_describes_every_api_route(app: Any) -> None:
    with TestClient(app, base_url="https://testserver") as c:
        spec = c.get("/openapi.json").json()
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item if p.startswith("/api/")}
    declared = {(m, "/api" + r.path) for r in api.router.routes if isinstance(r, APIRoute) for m in r.methods}
    assert declared <= ops
    for method, path in declared:
        op = spec["paths"][path][method.lower()]
        assert {"401", "403", "422"} <= set(op["responses"]), (method, path)
    schemas = spec["components"]["schemas"]
    assert {"Case", "Observation", "Variant", "ErrorBody", "AuditEntry", "PatientRecord"} <= set(schemas)
    upload = spec["paths"]["/api/patients/{patient_id}/files"]["post"]
    assert "application/octet-stream" in upload["requestBody"]["content"]
    evaluate = spec["paths"]["/api/evaluate"]["post"]
    assert {"application/json", "application/yaml"} <= set(evaluate["requestBody"]["content"])


def test_stateless_evaluate_reads_a_fhir_bundle(app: Any) -> None:
    fhir_export = pytest.importorskip("alpsdx.interop.fhir_export")
    from alpsdx.interop.fhir_import import bundle_to_case

    bundle = fhir_export.export_bundle(load_case(EXAMPLES / "case-006-probable-biomarkers.json"))
    with _basic(app, "viewer") as c:
        r = c.post("/api/evaluate", json=bundle)
    assert r.status_code == 200, r.text
    expected = assess(bundle_to_case(bundle).case)
    assert (r.json()["category"], r.json()["case_id"]) == (expected["category"], expected["case_id"])
