"""App-wide behaviour: security headers, privacy-safe logs, the admin audit page, settings."""

from __future__ import annotations

import logging

import pytest
from webtools import new_patient

from alpsdx.errors import AuthError
from alpsdx.web.settings import DEV_SECRET, Settings


def test_security_headers(as_role) -> None:  # type: ignore[no-untyped-def]
    r = as_role(None).get("/login")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["strict-transport-security"].startswith("max-age=")


def test_logs_name_routes_not_patients(as_role, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    with caplog.at_level(logging.INFO, logger="alpsdx.web"):
        pid = new_patient(s, "PRIVATE-NAME-77")
        s.get(f"/patients/{pid}")
        s.get("/patients?q=PRIVATE-NAME-77")
    text = caplog.text
    assert "PRIVATE-NAME-77" not in text
    assert "GET /patients/{patient_id} 200" in text
    assert f"/patients/{pid} " not in text


def test_admin_audit_page_lists_reads_and_writes(app, as_role) -> None:  # type: ignore[no-untyped-def]
    clin = as_role("clinician")
    pid = new_patient(clin, "audit-1")
    as_role("viewer").get(f"/patients/{pid}")
    page = as_role("admin").get(f"/admin/audit?patient={pid}").text
    assert "hash chain <b class=\"good\">intact</b>" in page
    rows = app.state.registry.audit_rows(limit=50, patient_id=pid)
    actions = {(r["actor"], r["action"]) for r in rows}
    assert ("clinician", "create") in actions
    assert ("viewer", "read") in actions
    for r in rows[:5]:
        assert f"<td>{r['seq']}</td>" in page
    assert "testclient" in page  # where from


def test_openapi_is_served(as_role) -> None:  # type: ignore[no-untyped-def]
    spec = as_role(None).get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    # Pages are not API operations.
    assert "/patients/{patient_id}/observations" not in spec["paths"]


def test_secret_key_rules() -> None:
    with pytest.raises(AuthError) as err:
        Settings(secret_key=None, env="production").effective_secret()
    assert err.value.field == "ALPSDX_SECRET_KEY"
    with pytest.raises(AuthError):
        Settings(secret_key="short", env="production").effective_secret()
    with pytest.raises(AuthError):
        Settings(secret_key=DEV_SECRET, env="production").effective_secret()
    assert Settings(secret_key=None, env="development").effective_secret() == DEV_SECRET
    assert Settings(secret_key="k" * 32).effective_secret() == "k" * 32


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALPSDX_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("ALPSDX_ENV", "development")
    monkeypatch.delenv("ALPSDX_COOKIE_SECURE", raising=False)
    s = Settings.from_env()
    assert s.database_url.endswith("x.db") and s.development and s.cookie_secure is False
    monkeypatch.setenv("ALPSDX_ENV", "production")
    assert Settings.from_env().cookie_secure is True
