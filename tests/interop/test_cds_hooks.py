"""The CDS Hooks 2.0 service as a real HTTP server on loopback, with the project's own FHIR
facade (another real server) as the client's ``fhirServer``; JWTs signed with keys
generated here (ES256, ES384, RS384)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from interop_helpers import SECRET, VIEWER, basic, make_registry, serve

from alpsdx.interop import cds
from alpsdx.interop.fhir_import import bundle_to_case
from alpsdx.interop.server import create_interop_app
from alpsdx.model import case_from_dict

ISSUER = "https://ehr.example.org"


@dataclass
class Key:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algo = jwt.algorithms.RSAAlgorithm if self.alg.startswith("RS") else jwt.algorithms.ECAlgorithm
        out: dict[str, Any] = json.loads(algo.to_jwk(self.private.public_key()))
        out.update(kid=self.kid, alg=self.alg, use="sig")
        return out


def _key(alg: str) -> Key:
    if alg == "RS384":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1() if alg == "ES256" else ec.SECP384R1())
    return Key(f"{alg.lower()}-{secrets.token_hex(4)}", alg, private)


@dataclass
class Env:
    fhir: str
    cds: str
    fhir_registry: Any
    cds_registry: Any
    keys: dict[str, Key]
    jku_key: Key
    jku_url: str
    alps_pid: int
    dnt_pid: int
    cache: dict[Any, Any]

    def token(self, service: str, key: Key | None = None, *, jku: str | None = None, **overrides: Any) -> str:
        key = key or self.keys["ES256"]
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "ehr-client", "aud": f"{self.cds}/cds-services/{service}",
                  "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        headers = {"kid": key.kid, "typ": "JWT"}
        if jku:
            headers["jku"] = jku
        return jwt.encode(claims, key.private, algorithm=key.alg, headers=headers)

    def call(self, service: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
        tok = token if token is not None else self.token(service)
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.post(f"{self.cds}/cds-services/{service}", json=body, headers=headers, timeout=30)

    def access_token(self) -> str:
        if "token" not in self.cache:
            res = httpx.post(f"{self.fhir}/fhir/auth/token", headers=basic(), timeout=30)
            res.raise_for_status()
            self.cache["token"] = str(res.json()["access_token"])
        return str(self.cache["token"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, builder: Any) -> Iterator[Env]:
    base = Path(tmp_path_factory.mktemp("cds"))
    (base / "fhir").mkdir()
    (base / "cds").mkdir()
    fhir_reg = make_registry(base / "fhir")
    fhir_reg.create_user(*VIEWER, "viewer")
    anchor = dt.date.today() - dt.timedelta(days=2)
    # trough 3.1 ng/mL (low), fever 10 days ago (a recent B symptom), DNT measured
    alps, _ = bundle_to_case(builder.alps_bundle(anchor, trough=3.1, fever_days_ago=10, seed="cds-alps"))
    dnt, _ = bundle_to_case(builder.dnt_missing_bundle(anchor, seed="cds-dnt"))
    alps_pid = fhir_reg.save_case(alps)
    dnt_pid = fhir_reg.save_case(dnt)
    cds_reg = make_registry(base / "cds")
    keys = {alg: _key(alg) for alg in cds.ALGORITHMS}
    jku_key = _key("ES256")
    jwks_host = FastAPI()

    @jwks_host.get("/.well-known/jwks.json")
    def jwks() -> dict[str, Any]:
        return {"keys": [jku_key.jwk()]}

    with serve(create_interop_app(fhir_reg, SECRET)) as fhir_url, serve(jwks_host) as jwks_url:
        jku_url = f"{jwks_url}/.well-known/jwks.json"
        config = cds.CDSConfig(jwks={"keys": [k.jwk() for k in keys.values()]}, jku_allowlist=(jku_url,),
                               issuers=(ISSUER,))
        with serve(create_interop_app(cds_reg, SECRET[::-1], config)) as cds_url:
            yield Env(fhir_url, cds_url, fhir_reg, cds_reg, keys, jku_key, jku_url, alps_pid, dnt_pid, {})


def _prefetch(env: Env, pid: int) -> dict[str, Any]:
    """What an EHR would prefetch: each discovery template rendered and run on the FHIR server."""
    if ("prefetch", pid) in env.cache:
        return dict(env.cache[("prefetch", pid)])
    headers = {"Authorization": f"Bearer {env.access_token()}"}
    templates = httpx.get(f"{env.cds}/cds-services", timeout=30).json()["services"][0]["prefetch"]
    out = {}
    for key, tpl in templates.items():
        res = httpx.get(f"{env.fhir}/fhir/" + tpl.replace("{{context.patientId}}", str(pid)), headers=headers,
                        timeout=30)
        assert res.status_code == 200, (key, res.text)
        out[key] = res.json()
    env.cache[("prefetch", pid)] = out
    return dict(out)


def _pv_body(pid: int, **extra: Any) -> dict[str, Any]:
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/example", "patientId": str(pid)}, **extra}


def _check_card(c: dict[str, Any]) -> None:
    assert 0 < len(c["summary"]) <= 140
    assert c["indicator"] in ("info", "warning", "critical")
    assert c["source"]["label"].startswith("alpsdx")
    uuid.UUID(c["uuid"])
    if "suggestions" in c:
        assert c["selectionBehavior"] == "at-most-one"
        for s in c["suggestions"]:
            for a in s["actions"]:
                assert a["type"] in ("create", "update", "delete")
                from alpsdx.interop.validation import validate_resource

                validate_resource(a["resource"], "suggestion")


def test_discovery(env: Env) -> None:
    res = httpx.get(f"{env.cds}/cds-services", timeout=30)
    assert res.status_code == 200
    services = {s["id"]: s for s in res.json()["services"]}
    assert {s["hook"] for s in services.values()} == {"patient-view", "order-select"}
    pre = services["alpsdx-patient-view"]["prefetch"]
    assert pre["patient"] == "Patient/{{context.patientId}}"
    for code in ("http://loinc.org|80699-2", "http://loinc.org|2465-3", "http://loinc.org|29247-4",
                 "http://loinc.org|69548-6"):
        assert code in pre["observations"]
    assert {"conditions", "medicationRequests", "medicationStatements"} <= set(pre)


def test_patient_view_with_prefetch(env: Env) -> None:
    res = env.call("alpsdx-patient-view", _pv_body(env.alps_pid, prefetch=_prefetch(env, env.alps_pid)))
    assert res.status_code == 200, res.text
    cards = res.json()["cards"]
    for c in cards:
        _check_card(c)
    by_topic = {c["source"]["topic"]["code"]: c for c in cards}
    met = by_topic["alps-criteria"]
    assert met["summary"].startswith("ALPS criteria met (definitive")
    assert met["source"]["url"] == "https://doi.org/10.1182/blood-2010-04-280347"
    cond = met["suggestions"][0]["actions"][0]["resource"]
    assert cond["code"]["coding"][0]["code"] == "D89.82"
    assert cond["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert cond["subject"]["reference"] == f"Patient/{env.alps_pid}"
    trough = by_topic["sirolimus-trough"]
    assert "3.1 ng/mL below" in trough["summary"]
    assert by_topic["lymphoma-warning"]["summary"].startswith("Lymphoma warning sign")
    assert "dnt-not-measured" not in by_topic  # DNT was measured


def test_patient_view_fetches_from_the_fhir_server_without_prefetch(env: Env) -> None:
    with_prefetch = env.call("alpsdx-patient-view", _pv_body(env.alps_pid, prefetch=_prefetch(env, env.alps_pid)))
    before = len(env.fhir_registry.audit_rows(limit=5000, patient_id=env.alps_pid))
    body = _pv_body(env.alps_pid, fhirServer=f"{env.fhir}/fhir",
                    fhirAuthorization={"access_token": env.access_token(), "token_type": "Bearer",
                                       "expires_in": 300, "scope": "patient/*.read", "subject": "alpsdx-cds"})
    res = env.call("alpsdx-patient-view", body)
    assert res.status_code == 200, res.text
    assert sorted(c["summary"] for c in res.json()["cards"]) == sorted(
        c["summary"] for c in with_prefetch.json()["cards"])
    rows = env.fhir_registry.audit_rows(limit=5000, patient_id=env.alps_pid)
    assert len(rows) > before and rows[0]["actor"] == VIEWER[0]  # the facade saw the token's user


def test_patient_view_without_data_is_412(env: Env) -> None:
    res = env.call("alpsdx-patient-view", _pv_body(env.alps_pid))
    assert res.status_code == 412
    bad = _pv_body(env.alps_pid, fhirServer=f"{env.fhir}/fhir",
                   fhirAuthorization={"access_token": "wrong", "token_type": "Bearer", "expires_in": 300,
                                      "scope": "patient/*.read", "subject": "x"})
    res = env.call("alpsdx-patient-view", bad)
    assert res.status_code == 412
    assert "401" in res.json()["message"]


def test_dnt_not_measured_card(env: Env) -> None:
    res = env.call("alpsdx-patient-view", _pv_body(env.dnt_pid, prefetch=_prefetch(env, env.dnt_pid)))
    assert res.status_code == 200, res.text
    cards = {c["source"]["topic"]["code"]: c for c in res.json()["cards"]}
    dnt = cards["dnt-not-measured"]
    _check_card(dnt)
    assert dnt["summary"] == "DNT not measured — order TCRαβ+ DNT flow cytometry"
    order = dnt["suggestions"][0]["actions"][0]["resource"]
    assert order["resourceType"] == "ServiceRequest"
    assert order["code"]["coding"][0]["code"] == "80699-2"
    assert "Evans" in dnt["detail"]
    assert "alps-criteria" not in cards


def _draft(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


SPLENECTOMY = {"resourceType": "ServiceRequest", "id": "sr-1", "status": "draft", "intent": "order",
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "234319005",
                                    "display": "Splenectomy"}]}, "subject": {"reference": "Patient/x"}}
SIROLIMUS = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "draft", "intent": "order",
             "medicationCodeableConcept": {"text": "Sirolimus 1 mg/mL oral solution"},
             "subject": {"reference": "Patient/x"},
             "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 2, "unit": "mg",
                                                                      "system": "http://unitsofmeasure.org",
                                                                      "code": "mg"}}]}]}


@pytest.mark.parametrize(("selected", "topic", "citation_url"), [
    ("ServiceRequest/sr-1", "splenectomy", "https://pubmed.ncbi.nlm.nih.gov/24398331/"),
    ("MedicationRequest/mr-1", "sirolimus", "https://pubmed.ncbi.nlm.nih.gov/26504182/"),
])
def test_order_select(env: Env, selected: str, topic: str, citation_url: str) -> None:
    body = {"hook": "order-select", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/example", "patientId": str(env.alps_pid),
                        "selections": [selected], "draftOrders": _draft(SPLENECTOMY, SIROLIMUS)},
            "prefetch": _prefetch(env, env.alps_pid)}
    res = env.call("alpsdx-order-select", body)
    assert res.status_code == 200, res.text
    cards = res.json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == [topic]
    _check_card(cards[0])
    assert cards[0]["source"]["url"] == citation_url


def test_order_select_needs_selections(env: Env) -> None:
    body = {"hook": "order-select", "hookInstance": str(uuid.uuid4()),
            "context": {"patientId": str(env.alps_pid), "draftOrders": _draft(SPLENECTOMY)},
            "prefetch": _prefetch(env, env.alps_pid)}
    res = env.call("alpsdx-order-select", body)
    assert res.status_code == 400
    assert res.json()["field"] == "context.selections"


@pytest.mark.parametrize("alg", cds.ALGORITHMS)
def test_each_accepted_algorithm(env: Env, alg: str) -> None:
    tok = env.token("alpsdx-patient-view", env.keys[alg])
    res = env.call("alpsdx-patient-view", _pv_body(env.alps_pid, prefetch=_prefetch(env, env.alps_pid)), tok)
    assert res.status_code == 200, res.text


def test_jku_on_the_allow_list(env: Env) -> None:
    tok = env.token("alpsdx-patient-view", env.jku_key, jku=env.jku_url)
    res = env.call("alpsdx-patient-view", _pv_body(env.alps_pid, prefetch=_prefetch(env, env.alps_pid)), tok)
    assert res.status_code == 200, res.text


def _refused(env: Env, tok: str) -> str:
    res = env.call("alpsdx-patient-view", _pv_body(env.alps_pid, prefetch={}), tok)
    assert res.status_code == 401, res.text
    return str(res.json()["message"])


def test_jwt_refusals(env: Env) -> None:
    svc = "alpsdx-patient-view"
    now = int(time.time())
    assert "signed JWT is required" in _refused(env, "")
    assert "algorithm" in _refused(env, jwt.encode({"iss": ISSUER}, "x" * 32, algorithm="HS256"))
    assert _refused(env, env.token(svc, exp=now - 120, iat=now - 400))  # expired
    assert _refused(env, env.token(svc, aud=f"{env.cds}/cds-services/other"))  # wrong audience
    assert "issuer" in _refused(env, env.token(svc, iss="https://evil.example.org"))
    assert "too far" in _refused(env, env.token(svc, exp=now + 1800))
    assert _refused(env, env.token(svc, jti=None))  # jti missing
    stranger = _key("ES256")
    assert "no trusted key" in _refused(env, env.token(svc, stranger))
    assert "allow-list" in _refused(env, env.token(svc, stranger, jku="https://evil.example.org/jwks.json"))
    # a key from an allowed jku cannot sign for another kid of the configured set
    forged = env.token(svc, Key(env.keys["ES256"].kid, "ES256", stranger.private))
    assert _refused(env, forged)


def test_jti_replay_is_refused(env: Env) -> None:
    tok = env.token("alpsdx-patient-view")
    body = _pv_body(env.alps_pid, prefetch=_prefetch(env, env.alps_pid))
    assert env.call("alpsdx-patient-view", body, tok).status_code == 200
    again = env.call("alpsdx-patient-view", body, tok)
    assert again.status_code == 401 and "replayed" in again.json()["message"]


def test_feedback_is_accepted_and_stored(env: Env) -> None:
    res = env.call("alpsdx-patient-view", _pv_body(env.alps_pid, prefetch=_prefetch(env, env.alps_pid)))
    card = res.json()["cards"][0]
    fb = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T10:00:00Z",
                        "overrideReason": {"reason": {"code": "not-applicable", "system": "https://example.org"},
                                           "userComment": "discussed"}}]}
    url = f"{env.cds}/cds-services/alpsdx-patient-view/feedback"
    tok = env.token("alpsdx-patient-view", aud=f"{env.cds}/cds-services/alpsdx-patient-view/feedback")
    assert httpx.post(url, json=fb).status_code == 401
    ok = httpx.post(url, json=fb, headers={"Authorization": f"Bearer {tok}"}, timeout=30)
    assert ok.status_code == 200, ok.text
    rows = [r for r in env.cds_registry.audit_rows(limit=100) if r["action"] == "cds_feedback"]
    assert rows and rows[0]["entity_id"] == card["uuid"]
    detail = rows[0]["detail"]
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert (detail["outcome"], detail["overrideReason"], detail["card_issued_here"]) == (
        "overridden", "not-applicable", True)
    bad = {"feedback": [{"card": card["uuid"], "outcome": "maybe", "outcomeTimestamp": "2026-01-01T10:00:00Z"}]}
    res = httpx.post(url, json=bad, headers={"Authorization": f"Bearer {env.token('alpsdx-patient-view')}"},
                     timeout=30)
    assert res.status_code == 400 and res.json()["field"] == "feedback[0].outcome"


def test_request_errors(env: Env) -> None:
    res = env.call("alpsdx-patient-view", {"hook": "order-select", "hookInstance": str(uuid.uuid4()),
                                           "context": {"patientId": "1"}})
    assert res.status_code == 400 and res.json()["field"] == "hook"
    res = env.call("alpsdx-patient-view", {"hook": "patient-view", "hookInstance": "nope",
                                           "context": {"patientId": "1"}})
    assert res.status_code == 400 and res.json()["field"] == "hookInstance"
    res = env.call("no-such-service", {}, env.token("no-such-service"))
    assert res.status_code == 404


# --- card rules without HTTP ----------------------------------------------------------------


def _trough_case(value: float) -> Any:
    return case_from_dict({"id": "t", "evaluation_date": "2025-06-01",
                           "observations": [{"analyte": "sirolimus_trough", "value": value, "unit": "ng/mL",
                                             "date": "2025-05-30"}]})


@pytest.mark.parametrize(("value", "card_expected"), [(3.99, True), (4.0, False), (15.0, False), (15.01, True)])
def test_trough_fallback_uses_the_care_settings_bounds(value: float, card_expected: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without care items the care settings' target trough is used (Teachey 2009: 4-15 ng/mL), bounds inclusive."""
    monkeypatch.delenv("ALPSDX_CARE_SETTINGS", raising=False)
    case = _trough_case(value)
    cards = cds.patient_view_cards(case, {"category": "indeterminate", "criteria": []}, "t")
    trough = [c for c in cards if c["source"]["topic"]["code"] == "sirolimus-trough"]
    assert bool(trough) is card_expected
    if trough:
        assert "Teachey" in trough[0]["source"]["label"]


def test_summary_is_cut_to_140_characters() -> None:
    c = cds.card("x" * 300, "info", "oliveira2010", "t")
    assert len(c["summary"]) == 140 and c["summary"].endswith("…")


def test_order_select_mycophenolate_and_unrelated_orders(env: Env) -> None:
    mmf = {"resourceType": "MedicationRequest", "id": "mr-2", "status": "draft", "intent": "order",
           "medicationCodeableConcept": {"text": "mycophenolate mofetil 250 MG Oral Capsule"},
           "subject": {"reference": "Patient/x"}}
    other = {"resourceType": "MedicationRequest", "id": "mr-3", "status": "draft", "intent": "order",
             "medicationCodeableConcept": {"text": "amoxicillin 250 MG Oral Capsule"},
             "subject": {"reference": "Patient/x"}}
    body = {"hook": "order-select", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/example", "patientId": str(env.alps_pid),
                        "selections": ["MedicationRequest/mr-2", "MedicationRequest/mr-3"],
                        "draftOrders": _draft(SPLENECTOMY, mmf, other)},
            "prefetch": _prefetch(env, env.alps_pid)}
    res = env.call("alpsdx-order-select", body)
    assert res.status_code == 200, res.text
    cards = res.json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["mmf"]  # amoxicillin: no card; splenectomy not selected
    _check_card(cards[0])
    assert "mg per dose" in cards[0]["detail"]


def test_no_suggestion_when_alps_is_already_recorded(env: Env) -> None:
    pre = _prefetch(env, env.alps_pid)
    recorded = {"resourceType": "Condition", "id": "alps-existing",
                "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                   "code": "confirmed"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "D89.82"}]},
                "subject": {"reference": f"Patient/{env.alps_pid}"}}
    conditions = dict(pre["conditions"])
    conditions["entry"] = [*conditions["entry"], {"resource": recorded}]
    res = env.call("alpsdx-patient-view", _pv_body(env.alps_pid, prefetch={**pre, "conditions": conditions}))
    assert res.status_code == 200, res.text
    met = next(c for c in res.json()["cards"] if c["source"]["topic"]["code"] == "alps-criteria")
    assert "suggestions" not in met and met["indicator"] == "info"
    assert "already recorded" in met["detail"]


def test_issued_card_ids_are_uuids_that_authenticate_their_service() -> None:
    a = cds.issued_card_id("k" * 32, "alpsdx-patient-view")
    assert uuid.UUID(a).version == 4 and uuid.UUID(a).variant == uuid.RFC_4122
    assert cds.card_issued_by("k" * 32, "alpsdx-patient-view", a)
    assert not cds.card_issued_by("k" * 32, "alpsdx-order-select", a)  # another service
    assert not cds.card_issued_by("x" * 32, "alpsdx-patient-view", a)  # another deployment's key
    assert not cds.card_issued_by("k" * 32, "alpsdx-patient-view", str(uuid.uuid4()))  # not ours
    assert not cds.card_issued_by("k" * 32, "alpsdx-patient-view", "not-a-uuid")
    flipped = a[:-1] + ("0" if a[-1] != "0" else "1")
    assert not cds.card_issued_by("k" * 32, "alpsdx-patient-view", flipped)
    assert len({cds.issued_card_id("k" * 32, "alpsdx-patient-view") for _ in range(100)}) == 100
