"""``alpsdx serve --workers 2`` as real processes: what one process used to keep in memory
(sessions, CDS JWT ids, issued cards, sign-in failures) must hold whichever worker a request
reaches. Every request here opens a fresh connection, so the kernel spreads them over both
workers; with per-process state the replay and throttle checks below would pass requests
through."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "https://ehr.workers.example"
ADMIN_PASSWORD = "workers-admin-pass-9"
MAX_FAILURES = 3
SERVICE = "alpsdx-patient-view"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to see the worker processes")
    tmp = tmp_path_factory.mktemp("workers")
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="w", alg="ES256", use="sig")
    (tmp / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    port = _free_port()
    env = {**os.environ, "ALPSDX_DATABASE_URL": f"sqlite:///{tmp / 'r.sqlite3'}",
           "ALPSDX_ADMIN_PASSWORD": ADMIN_PASSWORD, "ALPSDX_SECRET_KEY": "workers-secret-" + "k" * 32,
           "ALPSDX_UPLOAD_DIR": str(tmp / "uploads"), "ALPSDX_COOKIE_SECURE": "0",
           "ALPSDX_CDS_JWKS": str(tmp / "jwks.json"), "ALPSDX_CDS_ISSUERS": ISSUER,
           "ALPSDX_LOGIN_MAX_FAILURES": str(MAX_FAILURES)}
    env.pop("ALPSDX_ENV", None)
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "alpsdx.cli", "serve", "--port", str(port), "--workers", "2"],
                            env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200 and len(_children(proc.pid)) >= 2:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"server did not start: {(tmp / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"base": base, "key": key, "proc": proc}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _token(server: dict[str, Any]) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "sub": "ehr", "aud": f"{server['base']}/cds-services/{SERVICE}", "iat": now,
                       "exp": now + 120, "jti": str(uuid.uuid4())}, server["key"], algorithm="ES256",
                      headers={"kid": "w"})


def _hook(server: dict[str, Any], token: str) -> httpx.Response:
    from alpsdx.interop.cds import prefetch_templates
    from alpsdx.interop.fhir_export import case_to_resources, make_bundle
    from alpsdx.model import case_from_dict

    # chronic lymphadenopathy and splenomegaly, raised DNT and B12: probable ALPS, the criteria card
    case = case_from_dict({"id": "w1", "sex": "male", "birth_date": "2018-03-01",
                           "findings": {"lymphadenopathy": {"present": True, "onset": "2025-01-01"},
                                        "splenomegaly": {"present": True, "onset": "2025-01-01"}},
                           "observations": [
                               {"analyte": "dnt_pct_lymphocytes", "value": 4.0, "unit": "%", "date": "2026-10-01",
                                "tcrab_gated": True},
                               {"analyte": "lymphocytes_abs", "value": 4.0, "unit": "10*9/L", "date": "2026-10-01",
                                "reference_range": {"low": 1.5, "high": 6.5}},
                               {"analyte": "vitamin_b12", "value": 2000, "unit": "pg/mL", "date": "2026-10-01"}]})
    resources = case_to_resources(case, "w1")
    prefetch: dict[str, Any] = {k: make_bundle([], bundle_type="searchset") for k in prefetch_templates()}
    prefetch["patient"] = resources[0]
    prefetch["observations"] = make_bundle([r for r in resources if r["resourceType"] == "Observation"],
                                           bundle_type="searchset")
    prefetch["conditions"] = make_bundle([r for r in resources if r["resourceType"] == "Condition"],
                                         bundle_type="searchset")
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "context": {"patientId": "w1"},
            "prefetch": prefetch}
    return httpx.post(f"{server['base']}/cds-services/{SERVICE}", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {token}"})


def test_two_worker_processes_serve(server: dict[str, Any]) -> None:
    assert len(_children(server["proc"].pid)) >= 2


def test_a_replayed_cds_jwt_is_refused_whichever_worker_it_reaches(server: dict[str, Any]) -> None:
    token = _token(server)
    statuses = [_hook(server, token).status_code for _ in range(10)]
    assert statuses.count(200) == 1 and statuses[0] == 200
    assert statuses.count(401) == 9


def test_feedback_finds_a_card_issued_by_any_worker(server: dict[str, Any]) -> None:
    res = _hook(server, _token(server))
    assert res.status_code == 200
    cards = res.json()["cards"]
    assert cards
    card = cards[0]["uuid"]
    for _ in range(4):  # several connections: feedback reaches both workers
        fb = httpx.post(f"{server['base']}/cds-services/{SERVICE}/feedback", timeout=60,
                        headers={"Authorization": f"Bearer {_token(server)}"},
                        json={"feedback": [{"card": card, "outcome": "accepted",
                                            "outcomeTimestamp": "2026-11-27T10:00:00Z"}]})
        assert fb.status_code == 200
    # the admin audit view shows whether each feedback matched a card this deployment issued
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}
    rows = httpx.get(f"{server['base']}/api/audit", params={"action": "cds_feedback", "limit": 50},
                     headers=auth, timeout=30)
    assert rows.status_code == 200, rows.text
    matched = [r for r in rows.json()["rows"] if r["entity_id"] == card]
    assert len(matched) == 4
    assert all(r["detail"]["card_issued_here"] is True for r in matched)


def test_a_replayed_feedback_jwt_is_refused_whichever_worker_it_reaches(server: dict[str, Any]) -> None:
    token = _token(server)
    statuses = [httpx.post(f"{server['base']}/cds-services/{SERVICE}/feedback", timeout=60,
                           headers={"Authorization": f"Bearer {token}"},
                           json={"feedback": [{"card": str(uuid.uuid4()), "outcome": "accepted",
                                               "outcomeTimestamp": "2026-11-27T10:00:00Z"}]}).status_code
                for _ in range(6)]
    assert statuses == [200] + [401] * 5


def test_sign_in_failures_are_counted_across_workers(server: dict[str, Any]) -> None:
    with httpx.Client(base_url=server["base"], timeout=30) as c:
        assert c.post("/api/users", json={"username": "w-target", "password": "right-pass-w1", "role": "viewer"},
                      auth=("admin", ADMIN_PASSWORD)).status_code in (200, 201)
    for _ in range(MAX_FAILURES):
        assert httpx.get(f"{server['base']}/api/me", auth=("w-target", "wrong"), timeout=30).status_code == 401
    res = httpx.get(f"{server['base']}/api/me", auth=("w-target", "right-pass-w1"), timeout=30)
    assert res.status_code == 429


def test_a_session_works_on_every_worker(server: dict[str, Any]) -> None:
    with httpx.Client(base_url=server["base"], timeout=30) as c:
        c.get("/login")
        r = c.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "next": "/patients",
                                   "csrf_token": c.cookies.get("alpsdx_login_csrf") or ""})
        assert r.status_code == 303
        cookie = c.cookies["alpsdx_session"]
    for _ in range(6):
        page = httpx.get(f"{server['base']}/patients", cookies={"alpsdx_session": cookie}, timeout=30)
        assert page.status_code == 200 and re.search(r"sign out|log out", page.text, re.IGNORECASE)
