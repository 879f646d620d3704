"""Helpers for the web tests: sign in through the form, post with the session's CSRF token."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

PASSWORDS = {"admin": "admin-pass-1", "clinician": "clinician-pass-1", "viewer": "viewer-pass-1"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(client: TestClient, username: str, password: str) -> str:
    """Sign in through the form; returns the session's CSRF token (read from a page)."""
    client.get("/login")
    token = client.cookies.get("alpsdx_login_csrf")
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                    "next": "/patients"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/patients")
    m = CSRF_RE.search(page.text)
    assert m, "no CSRF token on the patient list"
    return m.group(1)


class Session:
    def __init__(self, client: TestClient, csrf: str | None) -> None:
        self.client = client
        self.csrf = csrf

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        data = dict(data or {})
        if self.csrf is not None:
            data.setdefault("csrf_token", self.csrf)
        kw.setdefault("follow_redirects", False)
        return self.client.post(url, data=data, **kw)

    def get(self, url: str, **kw: Any) -> Any:
        kw.setdefault("follow_redirects", False)
        return self.client.get(url, **kw)


def new_patient(s: Session, pid: str, **fields: str) -> int:
    r = s.post("/patients", {"id": pid, **fields})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])
