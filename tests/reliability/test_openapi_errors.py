"""Regressions found by schemathesis: every documented response names the media type the app
really sends (errors are JSON, FHIR errors OperationOutcome), and every status the routes
really answer with is documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alpsdx.web.app import create_app
from alpsdx.web.settings import Settings

PASSWORD = "openapi-admin-pass-1"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    application = create_app(Settings(database_url=f"sqlite:///{tmp / 'r.sqlite3'}", secret_key="s" * 40,
                                      upload_dir=tmp / "uploads"))
    application.state.registry.create_user("admin", PASSWORD, "admin")
    return application


@pytest.fixture(scope="module")
def spec(app: Any) -> dict[str, Any]:
    with TestClient(app) as c:
        return dict(c.get("/openapi.json").json())


def _responses(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return dict(spec["paths"][path][method]["responses"])


def test_api_errors_are_documented_as_json_even_on_html_routes(spec: dict[str, Any]) -> None:
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in ops.items():
            for status in ("401", "403", "404", "422"):
                content = op["responses"][status].get("content", {})
                assert list(content) == ["application/json"], (method, path, status, list(content))


def test_report_404_is_json_as_documented(app: Any, spec: dict[str, Any]) -> None:
    import base64

    auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    with TestClient(app, base_url="https://testserver", headers={"Authorization": f"Basic {auth}"}) as c:
        r = c.get("/api/patients/987654/report")
    assert r.status_code == 404
    assert r.headers["content-type"].split(";")[0] == "application/json"
    assert r.json()["error"] == "NotFoundError"
    ok = _responses(spec, "/api/patients/{patient_id}/report", "get")["200"]["content"]
    assert list(ok) == ["text/html"]


def test_fhir_facade_documents_its_media_type_and_error_statuses(app: Any, spec: dict[str, Any]) -> None:
    """schemathesis found 400/404 OperationOutcomes and application/fhir+json bodies undocumented."""
    import base64

    for path, ops in spec["paths"].items():
        if not path.startswith("/fhir/"):
            continue
        for method, op in ops.items():
            res = op["responses"]
            want_200 = "application/json" if path == "/fhir/auth/token" else "application/fhir+json"
            assert list(res["200"]["content"]) == [want_200], (method, path)
            assert list(res["400"]["content"]) == ["application/fhir+json"], (method, path)
            assert list(res["404"]["content"]) == ["application/fhir+json"], (method, path)
            assert list(res["401"]["content"]) == ["application/json"], (method, path)
    auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    with TestClient(app, base_url="https://testserver", headers={"Authorization": f"Basic {auth}"}) as c:
        unsupported = c.get("/fhir/Basic")
        bad = c.get("/fhir/Observation")  # no patient
        meta = c.get("/fhir/metadata")
    assert unsupported.status_code == 404 and unsupported.json()["resourceType"] == "OperationOutcome"
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    for r in (unsupported, bad, meta):
        assert r.headers["content-type"].split(";")[0] == "application/fhir+json"


def test_cds_hook_calls_document_their_error_statuses(app: Any, spec: dict[str, Any]) -> None:
    """schemathesis found 401/404 answers of the hook endpoints undocumented."""
    for path in ("/cds-services/{service_id}", "/cds-services/{service_id}/feedback"):
        res = _responses(spec, path, "post")
        for status in ("400", "401", "404", "412"):
            assert list(res[status]["content"]) == ["application/json"], (path, status)
    with TestClient(app, base_url="https://testserver") as c:
        assert c.post("/cds-services/no-such-service", json={}).status_code == 404
        assert c.post("/cds-services/alpsdx-patient-view", json={}).status_code == 401  # unsigned
