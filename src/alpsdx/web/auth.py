"""Authentication, roles and CSRF.

Browsers: ``POST /login`` checks the argon2id hash and opens a server-side session; the
``alpsdx_session`` cookie (HttpOnly, SameSite=Lax, Secure outside development) carries an
itsdangerous-signed random token whose SHA-256 is the session key in the database, so a
logout or a disabled account ends the session at once. Every state-changing form carries
the session's CSRF token (hidden ``csrf_token`` field; ``X-CSRF-Token`` header for
``fetch`` calls made with the cookie).

API clients: HTTP Basic (``Authorization: Basic``) with a user name and password, over
HTTPS. Basic-authenticated calls carry no cookie, so they need no CSRF token.

Roles: viewer (read), clinician (read and write patient data), admin (also users and
the audit log).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer

from alpsdx.errors import AuthError
from alpsdx.store import Actor, Registry
from alpsdx.store.users import role_at_least

SESSION_COOKIE = "alpsdx_session"
LOGIN_CSRF_COOKIE = "alpsdx_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Principal:
    """The authenticated user of one request."""

    id: int
    username: str
    role: str
    via: str  # "session" | "basic"
    csrf: str | None = None
    token: str | None = None

    def can(self, role: str) -> bool:
        return role_at_least(self.role, role)


class LoginRequired(Exception):
    """No (valid) credentials: pages redirect to /login, the API answers 401."""


class Forbidden(Exception):
    """Authenticated but the role is too low: 403."""

    def __init__(self, needed: str) -> None:
        super().__init__(needed)
        self.needed = needed


class CSRFError(Exception):
    """A state-changing request without the session's CSRF token: 403."""


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def actor_for(request: Request, p: Principal | None) -> Actor:
    if p is None:
        return Actor("anonymous", None, client_addr(request))
    return Actor(p.username, p.role, client_addr(request))


def _serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(request.app.state.secret, salt="alpsdx-session")


def cookie_value(request: Request, token: str) -> str:
    return _serializer(request).dumps(token)


def _registry(request: Request) -> Registry:
    reg: Registry = request.app.state.registry
    return reg


def _from_cookie(request: Request) -> Principal | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        token = _serializer(request).loads(raw)
    except BadSignature:
        return None
    if not isinstance(token, str):
        return None
    found = _registry(request).session_user(token)
    if found is None:
        return None
    user, csrf = found
    return Principal(user["id"], user["username"], user["role"], "session", csrf, token)


def _from_basic(request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise LoginRequired() from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise LoginRequired()
    try:
        user = _registry(request).authenticate(username, password, client_addr(request), audit_success=False)
    except AuthError:
        raise LoginRequired() from None
    return Principal(user["id"], user["username"], user["role"], "basic")


def principal(request: Request) -> Principal | None:
    """The request's user, from the session cookie or HTTP Basic; cached on the request."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    p = _from_cookie(request) or _from_basic(request)
    request.state.principal = p
    return p


def require(role: str):  # type: ignore[no-untyped-def]
    """A dependency: the user must have at least ``role``."""

    def dependency(request: Request) -> Principal:
        p = principal(request)
        if p is None:
            raise LoginRequired()
        if not p.can(role):
            raise Forbidden(role)
        return p

    dependency.__name__ = f"require_{role}"
    return dependency


def check_csrf(request: Request, p: Principal, submitted: str | None) -> None:
    """Session-authenticated writes need the session's CSRF token (form field or header)."""
    if p.via != "session":
        return
    token = submitted or request.headers.get(CSRF_HEADER)
    if not token or not p.csrf or not hmac.compare_digest(token, p.csrf):
        raise CSRFError()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
