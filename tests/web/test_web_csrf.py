"""CSRF: every state-changing page form needs the session's token; login needs its own."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from webtools import PASSWORDS, login

from alpsdx.model import case_from_dict


@pytest.fixture(scope="module")
def pid(app) -> int:  # type: ignore[no-untyped-def]
    return app.state.registry.create_patient(case_from_dict({"id": "csrf-1", "sex": "male", "age_years": 20}))


def _n_observations(app, pid: int) -> int:  # type: ignore[no-untyped-def]
    return len(app.state.registry.patient_record(pid)["observations"])


OBS = {"analyte": "igg", "value": "1500", "unit": "mg/dL", "date": "2025-01-01"}


@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["absent", "empty", "wrong"])
def test_write_without_the_session_token_is_refused(app, as_role, pid: int, token: str | None) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    before = _n_observations(app, pid)
    data = dict(OBS)
    if token is not None:
        data["csrf_token"] = token
    r = s.client.post(f"/patients/{pid}/observations", data=data, follow_redirects=False)
    assert r.status_code == 403
    assert "CSRF" in r.text
    assert _n_observations(app, pid) == before


def test_write_with_the_token_is_accepted(app, as_role, pid: int) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    before = _n_observations(app, pid)
    r = s.post(f"/patients/{pid}/observations", OBS)
    assert r.status_code == 303
    assert _n_observations(app, pid) == before + 1


def test_header_token_is_accepted(app, as_role, pid: int) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    before = _n_observations(app, pid)
    r = s.client.post(f"/patients/{pid}/observations", data=OBS, headers={"X-CSRF-Token": s.csrf},
                      follow_redirects=False)
    assert r.status_code == 303
    assert _n_observations(app, pid) == before + 1


def test_another_sessions_token_is_refused(app, pid: int) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as a, TestClient(app, base_url="https://testserver") as b:
        login(a, "clinician", PASSWORDS["clinician"])
        token_b = login(b, "clinician", PASSWORDS["clinician"])
        r = a.post(f"/patients/{pid}/observations", data={**OBS, "csrf_token": token_b}, follow_redirects=False)
        assert r.status_code == 403


def test_upload_without_token_is_refused(app, as_role, pid: int) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    files_before = len(app.state.registry.patient_record(pid)["files"])
    r = s.client.post(f"/patients/{pid}/uploads/case", files={"file": ("c.json", b'{"id": "csrf-1"}', "application/json")},
                      follow_redirects=False)
    assert r.status_code == 403
    assert len(app.state.registry.patient_record(pid)["files"]) == files_before


def test_basic_auth_cannot_post_page_forms(app, pid: int) -> None:  # type: ignore[no-untyped-def]
    """Browsers replay HTTP Basic credentials on their own, so Basic must not bypass CSRF."""
    cred = base64.b64encode(f"clinician:{PASSWORDS['clinician']}".encode()).decode()
    with TestClient(app, base_url="https://testserver") as c:
        before = _n_observations(app, pid)
        r = c.post(f"/patients/{pid}/observations", data=OBS, headers={"Authorization": f"Basic {cred}"},
                   follow_redirects=False)
        assert r.status_code == 403
        assert _n_observations(app, pid) == before


def test_login_needs_its_csrf_cookie(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as c:
        r = c.post("/login", data={"username": "admin", "password": PASSWORDS["admin"], "csrf_token": "forged"},
                   follow_redirects=False)
        assert r.status_code == 403
        assert "alpsdx_session" not in r.cookies


def test_logout_needs_token_and_ends_the_session(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as c:
        token = login(c, "viewer", PASSWORDS["viewer"])
        assert c.post("/logout", data={}, follow_redirects=False).status_code == 403
        assert c.get("/patients", follow_redirects=False).status_code == 200
        r = c.post("/logout", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303
        assert c.get("/patients", follow_redirects=False).status_code == 303


def test_session_cookie_flags(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as c:
        c.get("/login")
        r = c.post("/login", data={"username": "viewer", "password": PASSWORDS["viewer"],
                                   "csrf_token": c.cookies.get("alpsdx_login_csrf")}, follow_redirects=False)
        header = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("alpsdx_session="))
        flags = {part.strip().lower() for part in header.split(";")}
        assert "httponly" in flags
        assert "secure" in flags
        assert "samesite=lax" in flags


def test_wrong_password_is_refused_and_audited(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as c:
        c.get("/login")
        r = c.post("/login", data={"username": "viewer", "password": "nope-nope",
                                   "csrf_token": c.cookies.get("alpsdx_login_csrf")}, follow_redirects=False)
        assert r.status_code == 401
        assert "Wrong user name or password" in r.text
    rows = app.state.registry.audit_rows(limit=5)
    assert any(row["action"] == "login_failed" for row in rows)


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example", "https://evil.example/", "/pa\ntients"])
def test_login_never_redirects_off_site(app, target: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as c:
        c.get("/login")
        r = c.post("/login", data={"username": "viewer", "password": PASSWORDS["viewer"], "next": target,
                                   "csrf_token": c.cookies.get("alpsdx_login_csrf")}, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/patients"


def test_login_returns_to_the_page_asked_for(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as c:
        c.get("/login")
        r = c.post("/login", data={"username": "viewer", "password": PASSWORDS["viewer"], "next": "/patients?q=x",
                                   "csrf_token": c.cookies.get("alpsdx_login_csrf")}, follow_redirects=False)
        assert r.headers["location"] == "/patients?q=x"
