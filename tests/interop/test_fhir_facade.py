"""The read-only FHIR facade over a real SQLite registry: auth, searches, $everything, audit."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interop_helpers import SECRET, VIEWER, basic, make_registry

from alpsdx.interop.fhir_import import bundle_to_case
from alpsdx.interop.server import create_interop_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, builder: Any) -> Iterator[tuple[TestClient, Any, int]]:
    reg = make_registry(Path(tmp_path_factory.mktemp("facade")))
    reg.create_user(*VIEWER, "viewer")
    case, _ = bundle_to_case(builder.alps_bundle())
    pid = reg.save_case(case)
    with TestClient(create_interop_app(reg, SECRET)) as client:
        yield client, reg, pid


def test_capability_statement_is_valid_r4(env: tuple[TestClient, Any, int]) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    client, _, _ = env
    res = client.get("/fhir/metadata")
    assert res.status_code == 200
    cs = CapabilityStatement.model_validate(res.json())
    types = {r.type for r in cs.rest[0].resource}
    assert {"Patient", "Observation", "Condition"} <= types


def test_patient_needs_auth(env: tuple[TestClient, Any, int]) -> None:
    client, _, pid = env
    assert client.get(f"/fhir/Patient/{pid}").status_code == 401
    assert client.get(f"/fhir/Patient/{pid}", headers=basic(("vera", "wrong-password"))).status_code == 401
    assert client.get(f"/fhir/Patient/{pid}", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    res = client.get(f"/fhir/Patient/{pid}", headers=basic())
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/fhir+json")
    assert res.json()["id"] == str(pid)


def test_bearer_token_from_the_token_endpoint(env: tuple[TestClient, Any, int]) -> None:
    client, _, pid = env
    assert client.post("/fhir/auth/token").status_code == 401
    tok = client.post("/fhir/auth/token", headers=basic()).json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] > 0
    res = client.get(f"/fhir/Patient/{pid}", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert res.status_code == 200
    # a token signed with another key is refused
    import jwt

    forged = jwt.encode({"sub": "vera", "role": "admin", "aud": "alpsdx-fhir", "iss": "alpsdx", "exp": 2 ** 31},
                        "another-secret-another-secret-00", algorithm="HS256")
    assert client.get(f"/fhir/Patient/{pid}", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_observation_search_by_code(env: tuple[TestClient, Any, int]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    client, _, pid = env
    res = client.get(f"/fhir/Observation?patient=Patient/{pid}&code=http://loinc.org|2465-3,sfasl", headers=basic())
    assert res.status_code == 200
    bundle = res.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
    got = sorted(e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"])
    assert got == ["2465-3", "sfasl"]
    # the system must match when given
    res = client.get(f"/fhir/Observation?patient={pid}&code=http://snomed.info/sct|2465-3", headers=basic())
    assert res.json()["total"] == 0


def test_everything_round_trips_to_the_registry_case(env: tuple[TestClient, Any, int]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    client, reg, pid = env
    res = client.get(f"/fhir/Patient/{pid}/$everything", headers=basic())
    assert res.status_code == 200
    bundle = res.json()
    Bundle.model_validate(bundle)
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Observation", "Condition", "MedicationStatement", "DiagnosticReport"} <= types
    case, _ = bundle_to_case(bundle)
    assert case == reg.load_case(pid)


def test_read_one_resource_and_other_searches(env: tuple[TestClient, Any, int]) -> None:
    client, _, pid = env
    conds = client.get(f"/fhir/Condition?patient={pid}", headers=basic()).json()
    assert conds["total"] >= 3
    first = conds["entry"][0]["resource"]
    res = client.get(f"/fhir/Condition/{first['id']}", headers=basic())
    assert res.status_code == 200 and res.json() == first
    meds = client.get(f"/fhir/MedicationStatement?patient={pid}", headers=basic()).json()
    assert [e["resource"]["medicationCodeableConcept"]["text"] for e in meds["entry"]] == ["sirolimus"]
    found = client.get("/fhir/Patient?identifier=" + client.get(f"/fhir/Patient/{pid}", headers=basic())
                       .json()["identifier"][0]["value"], headers=basic()).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [str(pid)]


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/fhir/Patient/999999", 404, "not-found"),
    ("/fhir/Observation", 400, "invalid"),
    ("/fhir/Observation?patient=abc", 400, "invalid"),
    ("/fhir/Encounter?patient=1", 404, "not-supported"),
    ("/fhir/Observation/1-obs-9999", 404, "not-found"),
    ("/fhir/Patient", 400, "invalid"),
])
def test_errors_are_operation_outcomes(env: tuple[TestClient, Any, int], path: str, status: int, code: str) -> None:
    client, _, _ = env
    res = client.get(path, headers=basic())
    assert res.status_code == status
    body = res.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code


def test_reads_are_audited_with_the_user(env: tuple[TestClient, Any, int]) -> None:
    client, reg, pid = env
    before = len(reg.audit_rows(limit=1000, patient_id=pid))
    client.get(f"/fhir/Observation?patient={pid}", headers=basic())
    rows = reg.audit_rows(limit=1000, patient_id=pid)
    assert len(rows) == before + 1
    assert (rows[0]["actor"], rows[0]["action"]) == ("vera", "read")


def test_the_web_app_mounts_the_facade_and_the_cds_service(tmp_path: Path) -> None:
    """The clinician web app serves /fhir and /cds-services with its own auth."""
    from alpsdx.web.app import create_app
    from alpsdx.web.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.sqlite3'}", secret_key=SECRET, env="development",
                        upload_dir=tmp_path / "uploads", cookie_secure=False)
    with TestClient(create_app(settings)) as client:
        assert client.get("/fhir/metadata").json()["resourceType"] == "CapabilityStatement"
        assert {s["id"] for s in client.get("/cds-services").json()["services"]} == {
            "alpsdx-patient-view", "alpsdx-order-select"}
        assert client.get("/fhir/Patient/1").status_code == 401
        # no trusted CDS client keys configured: every hook call is refused
        res = client.post("/cds-services/alpsdx-patient-view", json={})
        assert res.status_code == 401
