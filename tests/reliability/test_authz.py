"""Authorization beyond the page and /api matrices (tests/web/test_web_authz.py,
tests/web/test_api_authz.py): the FHIR facade and CDS Hooks routes x role, session fixation,
CSRF on sign-in and sign-out, brute-force throttling of the login form and of HTTP Basic,
security headers on every response, and secrets refused at their defaults outside development.

The registry has no sites (every clinician sees every patient), so there is no object-level
rule to test beyond "a file belongs to its patient" (tests/web).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from alpsdx.errors import AuthError
from alpsdx.interop import cds, facade
from alpsdx.model import case_from_dict
from alpsdx.store import Registry, make_engine, upgrade
from alpsdx.web.app import create_app
from alpsdx.web.security import LoginThrottle, MemoryFailures, RegistryFailures
from alpsdx.web.settings import DEV_SECRET, Settings

PASSWORDS = {"viewer": "viewer-pass-11", "clinician": "clinician-pass-11", "admin": "admin-pass-11"}
ROLES = ("viewer", "clinician", "admin")
RANK = {None: -1, "viewer": 0, "clinician": 1, "admin": 2}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
MAX_FAILURES = 3
HEADERS = {
    "content-security-policy": None,  # any policy; checked for frame-ancestors below
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("authz")
    mp = pytest.MonkeyPatch()
    mp.setenv("ALPSDX_LOGIN_MAX_FAILURES", str(MAX_FAILURES))
    mp.setenv("ALPSDX_LOGIN_MAX_FAILURES_ADDR", "1000")
    # The throttle reads these when the app is built.
    try:
        application = create_app(Settings(database_url=f"sqlite:///{tmp / 'r.sqlite3'}", secret_key="k" * 40,
                                          env="production", upload_dir=tmp / "uploads", cookie_secure=True))
        reg = application.state.registry
        for role, pw in PASSWORDS.items():
            reg.create_user(role, pw, role)
        application.state.test_pid = reg.create_patient(case_from_dict({"id": "authz-fhir-1", "sex": "male",
                                                                         "age_years": 8}))
        with _client(application) as c:
            assert c.get("/healthz").status_code == 200
    finally:
        mp.undo()
    yield application


def _client(app: Any, **kw: Any) -> TestClient:
    return TestClient(app, base_url="https://testserver", **kw)


def _login(c: TestClient, user: str, password: str) -> Any:
    c.get("/login")
    return c.post("/login", data={"username": user, "password": password,
                                  "csrf_token": c.cookies.get("alpsdx_login_csrf") or "", "next": "/patients"},
                  follow_redirects=False)


@pytest.fixture(scope="module")
def sessions(app: Any) -> Iterator[Callable[[str | None], TestClient]]:
    made: dict[str | None, TestClient] = {}

    def get(role: str | None) -> TestClient:
        if role not in made:
            c = _client(app)
            if role:
                assert _login(c, role, PASSWORDS[role]).status_code == 303
                m = CSRF_RE.search(c.get("/patients").text)
                assert m
                c.headers["X-CSRF-Token"] = m.group(1)
            made[role] = c
        return made[role]

    yield get
    for c in made.values():
        c.close()


# --------------------------------------------------------------- FHIR facade + CDS Hooks x role
# (method, route path) -> (minimum role or "public" or "ehr", path to call, status when allowed)
INTEROP: dict[tuple[str, str], tuple[str, str, int]] = {
    ("GET", "/fhir/metadata"): ("public", "/fhir/metadata", 200),
    ("POST", "/fhir/auth/token"): ("viewer", "/fhir/auth/token", 200),
    ("GET", "/fhir/Patient"): ("viewer", "/fhir/Patient?_id={pid}", 200),
    ("GET", "/fhir/Patient/{patient_id}/$everything"): ("viewer", "/fhir/Patient/{pid}/$everything", 200),
    ("GET", "/fhir/{resource_type}"): ("viewer", "/fhir/Observation?patient=Patient/{pid}", 200),
    ("GET", "/fhir/{resource_type}/{resource_id}"): ("viewer", "/fhir/Patient/{pid}", 200),
    ("GET", "/cds-services"): ("public", "/cds-services", 200),
    # Hook calls come from an EHR with its own signed JWT: no user, whatever the role, gets in.
    ("POST", "/cds-services/{service_id}"): ("ehr", "/cds-services/alpsdx-patient-view", 200),
    ("POST", "/cds-services/{service_id}/feedback"): ("ehr", "/cds-services/alpsdx-patient-view/feedback", 200),
}


def test_interop_matrix_covers_every_route() -> None:
    routes = {(m, r.path) for router in (facade.router, cds.router) for r in router.routes
              if isinstance(r, APIRoute) for m in r.methods}
    assert routes == set(INTEROP)


@pytest.mark.parametrize("role", [None, *ROLES], ids=["anonymous", *ROLES])
@pytest.mark.parametrize("key", list(INTEROP), ids=[f"{m} {p}" for m, p in INTEROP])
def test_interop_route_role(app: Any, sessions: Callable[[str | None], TestClient], key: tuple[str, str],
                            role: str | None) -> None:
    needed, path, ok = INTEROP[key]
    c = sessions(role)
    url = path.format(pid=app.state.test_pid)
    r = c.post(url, json={"hook": "patient-view", "hookInstance": "x", "context": {}}) if key[0] == "POST" else c.get(url)
    if needed == "public":
        assert r.status_code == ok, r.text[:300]
    elif needed == "ehr" or role is None:
        assert r.status_code == 401, r.text[:300]
    elif RANK[role] < RANK[needed]:
        assert r.status_code == 403, r.text[:300]
    else:
        assert r.status_code == ok, r.text[:300]
        if key[1].startswith("/fhir/") and key[1] != "/fhir/auth/token":
            body = r.json()
            assert body["resourceType"] in ("Bundle", "Patient")


def test_fhir_bearer_token_is_bound_to_the_app_secret(app: Any, sessions: Callable[[str | None], TestClient]) -> None:
    token = sessions("viewer").post("/fhir/auth/token").json()["access_token"]
    with _client(app, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get(f"/fhir/Patient/{app.state.test_pid}").status_code == 200
    forged = facade.issue_access_token("another-secret-" + "z" * 30,
                                       facade.Principal(1, "admin", "admin", "session"))
    with _client(app, headers={"Authorization": f"Bearer {forged}"}) as c:
        assert c.get(f"/fhir/Patient/{app.state.test_pid}").status_code == 401


# --------------------------------------------------------------- session fixation, CSRF
def test_login_issues_a_new_session_whatever_cookie_was_planted(app: Any) -> None:
    with _client(app) as attacker:
        assert _login(attacker, "viewer", PASSWORDS["viewer"]).status_code == 303
        planted = attacker.cookies.get("alpsdx_session")
    with _client(app) as victim:
        victim.cookies.set("alpsdx_session", planted, domain="testserver.local")
        victim.cookies.set("alpsdx_session", "attacker-chosen-value")
        r = _login(victim, "admin", PASSWORDS["admin"])
        assert r.status_code == 303
        issued = r.cookies.get("alpsdx_session")
        assert issued and issued not in (planted, "attacker-chosen-value")
    # The planted session is still only the attacker's own (viewer), never the victim's admin.
    with _client(app, cookies={"alpsdx_session": planted}) as c:
        assert c.get("/api/me").json()["username"] == "viewer"
    with _client(app, cookies={"alpsdx_session": issued}) as c:
        assert c.get("/api/me").json()["username"] == "admin"


def test_logout_ends_the_session_on_the_server(app: Any) -> None:
    with _client(app) as c:
        assert _login(c, "clinician", PASSWORDS["clinician"]).status_code == 303
        cookie = c.cookies.get("alpsdx_session")
        csrf = CSRF_RE.search(c.get("/patients").text)
        assert csrf
        # Logout is a state change: without the CSRF token it is refused and the session lives.
        assert c.post("/logout", data={}, follow_redirects=False).status_code == 403
        assert c.get("/api/me").status_code == 200
        assert c.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False).status_code == 303
    # Replaying the old cookie (e.g. copied before logout) no longer works.
    with _client(app, cookies={"alpsdx_session": cookie}) as c:
        assert c.get("/api/me").status_code == 401


@pytest.mark.parametrize("token", [None, "forged-token"], ids=["no-token", "wrong-token"])
def test_login_form_needs_its_csrf_token(app: Any, token: str | None) -> None:
    """Login CSRF: a cross-site form cannot sign the victim in to the attacker's account."""
    with _client(app) as c:
        c.get("/login")
        data = {"username": "viewer", "password": PASSWORDS["viewer"], "next": "/patients"}
        if token:
            data["csrf_token"] = token
        r = c.post("/login", data=data, follow_redirects=False)
        assert r.status_code == 403
        assert "alpsdx_session" not in r.cookies


# --------------------------------------------------------------- brute-force throttling
def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _failed_logins(app: Any, user: str) -> int:
    return sum(1 for r in app.state.registry.audit_rows(limit=1000, action="login_failed") if r["actor"] == user)


def test_login_form_is_throttled_after_repeated_failures(app: Any) -> None:
    app.state.registry.create_user("form-target", "right-pass-123", "viewer")
    with _client(app) as c:
        for _ in range(MAX_FAILURES):
            assert _login(c, "form-target", "wrong-guess").status_code == 401
        audited = _failed_logins(app, "form-target")
        assert audited == MAX_FAILURES
        # Past the limit even the right password is refused, before it is checked (not audited).
        r = _login(c, "form-target", "right-pass-123")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        assert "alpsdx_session" not in r.cookies
        for name, value in HEADERS.items():
            assert name in r.headers and (value is None or r.headers[name] == value)
        assert _failed_logins(app, "form-target") == audited
        # Another account from the same address is not locked by this one's failures.
        assert _login(c, "viewer", PASSWORDS["viewer"]).status_code == 303


def test_basic_auth_is_throttled_and_success_resets_the_count(app: Any) -> None:
    app.state.registry.create_user("basic-target", "right-pass-456", "viewer")
    with _client(app) as c:
        for _ in range(MAX_FAILURES - 1):
            assert c.get("/api/me", headers=_basic("basic-target", "nope")).status_code == 401
        assert c.get("/api/me", headers=_basic("basic-target", "right-pass-456")).status_code == 200
        for _ in range(MAX_FAILURES - 1):  # the success cleared the count: still below the limit
            assert c.get("/api/me", headers=_basic("basic-target", "nope")).status_code == 401
        assert c.get("/api/me", headers=_basic("basic-target", "nope")).status_code == 401
        r = c.get("/api/me", headers=_basic("basic-target", "right-pass-456"))
        assert r.status_code == 429
        assert r.json()["error"] == "AuthError" and int(r.headers["retry-after"]) > 0


@pytest.fixture(params=["memory", "registry"])
def failure_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """One process's memory, and the registry table the worker processes of a deployment share."""
    if request.param == "memory":
        return MemoryFailures()
    engine = make_engine(f"sqlite:///{tmp_path / 'throttle.sqlite3'}")
    upgrade(engine)
    return RegistryFailures(Registry(engine, tmp_path / "uploads"))


def test_throttle_window_slides(failure_store: Any) -> None:
    now = [1000.0]
    t = LoginThrottle(max_failures=2, max_failures_addr=3, window_s=60, clock=lambda: now[0], store=failure_store)
    t.failed("10.0.0.1", "Alice")
    now[0] += 30
    t.failed("10.0.0.1", "alice")  # user names compare case-insensitively
    assert t.retry_after("10.0.0.1", "ALICE") == 31
    assert t.retry_after("10.0.0.2", "alice") == 0  # another address
    t.failed("10.0.0.1", "bob")  # the address limit: 3 failures over any names
    assert t.retry_after("10.0.0.1", "carol") > 0
    now[0] += 31
    assert t.retry_after("10.0.0.1", "alice") == 0  # the first failure left the window
    assert t.retry_after("10.0.0.1", "carol") == 0
    t.failed("10.0.0.3", "dave")
    t.succeeded("10.0.0.3", "dave")
    t.failed("10.0.0.3", "dave")
    assert t.retry_after("10.0.0.3", "dave") == 0
    t.failed("10.0.0.4", "nul\x00name")  # any guessed name is counted, NUL included
    t.failed("10.0.0.4", "nul\x00name")
    assert t.retry_after("10.0.0.4", "NUL\x00name") > 0


# --------------------------------------------------------------- security headers everywhere
def _every_route(app: Any) -> list[tuple[str, str]]:
    pid = app.state.test_pid
    fill = {"patient_id": str(pid), "file_id": "1", "user_id": "1", "group": "dnt", "resource_type": "Patient",
            "resource_id": str(pid), "service_id": "alpsdx-patient-view"}
    from alpsdx.web import api, pages

    routes = [(r, "") for r in app.routes if isinstance(r, APIRoute) or type(r).__name__ == "Route"]
    routes += [(r, "") for r in pages.router.routes] + [(r, "/api") for r in api.router.routes]
    routes += [(r, "") for r in facade.router.routes] + [(r, "") for r in cds.router.routes]
    out = []
    for r, prefix in routes:
        path = prefix + getattr(r, "path", "")
        for m in sorted(getattr(r, "methods", None) or {"GET"}):
            if m == "HEAD":
                continue
            out.append((m, re.sub(r"\{(\w+)(:\w+)?\}", lambda g: fill.get(g.group(1), "x"), path)))
    out += [("GET", "/static/app.css"), ("GET", "/no/such/page"), ("GET", "/api/no-such-route"), ("DELETE", "/patients")]
    return out


@pytest.mark.parametrize("role", [None, "admin"], ids=["anonymous", "admin"])
def test_every_response_carries_the_security_headers(app: Any, sessions: Callable[[str | None], TestClient],
                                                     role: str | None) -> None:
    c = sessions(role)
    seen = 0
    for method, path in _every_route(app):
        if path.endswith("report.pdf") or path == "/patients/upload" or "/uploads/" in path:
            continue  # slow (PDF) or multipart-only; same middleware
        if method != "GET" and role is not None and path.startswith(("/logout", "/admin")):
            continue  # would end this shared session or change users
        r = c.request(method, path, follow_redirects=False) if method == "GET" else \
            c.request(method, path, json={}, follow_redirects=False)
        for name, value in HEADERS.items():
            assert name in r.headers, (method, path, r.status_code, name)
            if value is not None:
                assert r.headers[name] == value, (method, path, name)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], (method, path)
        seen += 1
    assert seen >= 50


# --------------------------------------------------------------- secrets at their defaults
@pytest.mark.parametrize("key", [None, "", DEV_SECRET, "short"])
def test_production_refuses_missing_default_or_short_secret(tmp_path: Path, key: str | None) -> None:
    s = Settings(database_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", secret_key=key, env="production",
                 upload_dir=tmp_path / "u")
    with pytest.raises(AuthError) as err:
        s.effective_secret()
    assert err.value.field == "ALPSDX_SECRET_KEY"
    with pytest.raises(AuthError):
        create_app(s)
    dev = Settings(database_url=s.database_url, secret_key=key or None, env="development", upload_dir=s.upload_dir)
    if key in (None, "", DEV_SECRET):
        assert dev.effective_secret() == DEV_SECRET  # allowed only for a local trial


def test_serve_refuses_the_development_secret_in_production(tmp_path: Path) -> None:
    env = {**os.environ, "ALPSDX_DATABASE_URL": f"sqlite:///{tmp_path / 'r.sqlite3'}", "ALPSDX_SECRET_KEY": DEV_SECRET,
           "ALPSDX_ENV": "production", "ALPSDX_UPLOAD_DIR": str(tmp_path / "u")}
    env.pop("ALPSDX_ADMIN_PASSWORD", None)
    p = subprocess.run([sys.executable, "-m", "alpsdx.cli", "serve", "--port", "1"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "ALPSDX_SECRET_KEY" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("password", ["password", "Admin123", "changeme", "aaaaaaaaaaaa", "12121212"])
def test_admin_password_defaults_are_refused_outside_development(password: str) -> None:
    from alpsdx.errors import InputError
    from alpsdx.web.security import check_admin_password

    with pytest.raises(InputError) as err:
        check_admin_password(password, development=False)
    assert err.value.field == "ALPSDX_ADMIN_PASSWORD"
    check_admin_password(password, development=True)  # a local trial may use anything
    check_admin_password("a-password-of-my-own-7", development=False)


def test_serve_refuses_a_default_admin_password(tmp_path: Path) -> None:
    env = {**os.environ, "ALPSDX_DATABASE_URL": f"sqlite:///{tmp_path / 'r.sqlite3'}", "ALPSDX_SECRET_KEY": "q" * 40,
           "ALPSDX_ENV": "production", "ALPSDX_UPLOAD_DIR": str(tmp_path / "u"), "ALPSDX_ADMIN_PASSWORD": "changeme"}
    p = subprocess.run([sys.executable, "-m", "alpsdx.cli", "serve", "--port", "1"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "ALPSDX_ADMIN_PASSWORD" in p.stderr and "Traceback" not in p.stderr
    from alpsdx.store import Registry, make_engine

    engine = make_engine(env["ALPSDX_DATABASE_URL"])
    try:
        assert Registry(engine, tmp_path / "u").count_users() == 0  # no admin was created
    finally:
        engine.dispose()
