"""Brute-force protection for sign-in, as a pure ASGI middleware.

Password guesses arrive two ways: the login form (``POST /login``) and HTTP Basic on any
route. ``LoginThrottle`` counts failed attempts per (client address, user name) and per
client address in a sliding window; past the limit the request is refused with
``429 Too Many Requests`` and ``Retry-After`` *before* the password is checked, so a
locked-out guesser gets no answer about the password and costs no argon2 work.

A failure is a ``401`` answer to a request that carried credentials (the login form with a
user name, or an ``Authorization: Basic`` header); a success (``303`` from the form, any
non-401 answer to a Basic request) clears that (address, user) counter. The web app keeps the
counters in the registry database (``RegistryFailures``), so every worker process of
``alpsdx serve --workers N`` sees the same counts; ``MemoryFailures`` keeps them in one
process (tests, apps without a registry).

Limits (``ALPSDX_LOGIN_MAX_FAILURES`` per user name and address, ``ALPSDX_LOGIN_MAX_FAILURES_ADDR``
per address, within ``ALPSDX_LOGIN_WINDOW_S`` seconds): 5, 50, 900 by default.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_FORM_BYTES = 64 * 1024
# The per-address counter's key: names are lower-cased, so none can equal it (and, unlike a
# NUL-marked key, PostgreSQL text can store it).
ALL = "ANY USER"

__all__ = ["WEAK_PASSWORDS", "FailureStore", "LoadShedMiddleware", "LoginThrottle", "LoginThrottleMiddleware",
           "MemoryFailures", "RegistryFailures", "check_admin_password"]

# Passwords that installation guides, demos and guessers try first.
WEAK_PASSWORDS = frozenset({
    "password", "password1", "password123", "passw0rd", "admin", "admin123", "admin1234", "adminadmin",
    "administrator", "alpsdx", "alpsdx123", "changeme", "change-me", "changeit", "default", "secret",
    "12345678", "123456789", "1234567890", "qwerty123", "qwertyuiop", "letmein", "welcome", "welcome1",
    "iloveyou", "trustno1", "abc12345", "test1234", "testtest", "postgres", "root", "toor",
})


def check_admin_password(password: str, *, development: bool) -> None:
    """Outside development, refuse a well-known default or trivially guessable admin password."""
    if development:
        return
    low = password.strip().lower()
    if low in WEAK_PASSWORDS or len(set(low)) < 5:
        from alpsdx.errors import InputError

        raise InputError("this admin password is a well-known default or too easy to guess; it is refused "
                         "outside development (ALPSDX_ENV=development)", field="ALPSDX_ADMIN_PASSWORD",
                         expected="a password of your own: at least 8 characters, not a common default")


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


class FailureStore(Protocol):
    """Where failure times are kept: one process's memory, or the database all workers share."""

    def recent(self, key: tuple[str, str], since: float) -> list[float]: ...
    def add(self, keys: Sequence[tuple[str, str]], at: float, forget_before: float) -> None: ...
    def clear(self, key: tuple[str, str]) -> None: ...


class MemoryFailures:
    """Failure times in this process (tests, and an app without a registry)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fails: dict[tuple[str, str], deque[float]] = {}

    def recent(self, key: tuple[str, str], since: float) -> list[float]:
        with self._lock:
            q = self._fails.get(key)
            if q is None:
                return []
            while q and q[0] <= since:
                q.popleft()
            if not q:
                del self._fails[key]
            return list(q)

    def add(self, keys: Sequence[tuple[str, str]], at: float, forget_before: float) -> None:
        with self._lock:
            for key in keys:
                self._fails.setdefault(key, deque()).append(at)
                if len(self._fails) > 100_000:  # bound memory under a spray of names
                    self._fails.pop(next(iter(self._fails)))

    def clear(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._fails.pop(key, None)


def _storable(text: str) -> str:
    # A guessed name may hold any character; PostgreSQL text cannot hold NUL.
    return text.replace("\x00", "\ufffd")


class RegistryFailures:
    """Failure times in the registry database, shared by every worker process of a deployment."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def recent(self, key: tuple[str, str], since: float) -> list[float]:
        return list(self.registry.login_failures(_storable(key[0]), _storable(key[1]), since))

    def add(self, keys: Sequence[tuple[str, str]], at: float, forget_before: float) -> None:
        for addr in {k[0] for k in keys}:
            self.registry.add_login_failure(_storable(addr), [_storable(k[1]) for k in keys if k[0] == addr], at,
                                            forget_before)

    def clear(self, key: tuple[str, str]) -> None:
        addr, name = _storable(key[0]), _storable(key[1])
        if list(self.registry.login_failures(addr, name, 0.0)):  # most successes have nothing to clear
            self.registry.clear_login_failures(addr, name)


class LoginThrottle:
    """Sliding-window failure counters: per (address, user name) and per address."""

    def __init__(self, max_failures: int | None = None, max_failures_addr: int | None = None,
                 window_s: float | None = None, clock: Callable[[], float] | None = None,
                 store: FailureStore | None = None) -> None:
        self.max_failures = max_failures or _int_env("ALPSDX_LOGIN_MAX_FAILURES", 5)
        self.max_failures_addr = max_failures_addr or _int_env("ALPSDX_LOGIN_MAX_FAILURES_ADDR", 50)
        self.window_s = float(window_s or _int_env("ALPSDX_LOGIN_WINDOW_S", 900))
        self.store: FailureStore = store if store is not None else MemoryFailures()
        # Shared counters need a clock every process agrees on; one process may use monotonic time.
        self._clock = clock or (time.monotonic if isinstance(self.store, MemoryFailures) else time.time)

    def _keys(self, addr: str, username: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return (addr, username.lower()), (addr, ALL)

    def retry_after(self, addr: str, username: str) -> int:
        """Seconds until a new attempt is allowed; 0 when it is allowed now."""
        now = self._clock()
        waits = []
        for key, limit in zip(self._keys(addr, username), (self.max_failures, self.max_failures_addr), strict=True):
            q = self.store.recent(key, now - self.window_s)
            if len(q) >= limit:
                waits.append(q[len(q) - limit] + self.window_s - now)
        return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, addr: str, username: str) -> None:
        now = self._clock()
        self.store.add(self._keys(addr, username), now, now - self.window_s)

    def succeeded(self, addr: str, username: str) -> None:
        self.store.clear(self._keys(addr, username)[0])


def _basic_username(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization" and value[:6].lower() == b"basic ":
            try:
                decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return ""
            return decoded.partition(":")[0]
    return None


def _is_form(scope: Scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/x-www-form-urlencoded"
    return False


class LoginThrottleMiddleware:
    """Refuse sign-in attempts past the failure limit with 429 (see the module docstring)."""

    def __init__(self, app: ASGIApp, throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        addr = str(client[0]) if client else "-"
        form_login = scope["method"] == "POST" and scope["path"] == "/login"
        username: str | None = None
        if form_login:
            body, more = b"", True
            while more and len(body) <= MAX_FORM_BYTES:
                message = await receive()
                body += message.get("body", b"")
                more = bool(message.get("more_body"))
            if _is_form(scope) and len(body) <= MAX_FORM_BYTES:
                values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get("username", [""])
                username = values[0].strip() or None
            replay = [{"type": "http.request", "body": body, "more_body": more}]

            async def replayed() -> Message:
                return replay.pop(0) if replay else await receive()

            receive = replayed
        else:
            username = _basic_username(scope)
        if username is None:
            await self.app(scope, receive, send)
            return
        wait = self.throttle.retry_after(addr, username)
        if wait:
            await self._refuse(scope, send, wait)
            return
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        await self.app(scope, receive, watch)
        if status and status[0] == 401:
            self.throttle.failed(addr, username)
        elif status and (status[0] == 303 or not form_login):
            self.throttle.succeeded(addr, username)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, wait: int) -> None:
        message = f"too many failed sign-in attempts; try again in {wait} s"
        if scope["path"] == "/login":
            body = (f"<!doctype html><title>Too many attempts</title><p>{message}.</p>").encode()
            ctype = b"text/html; charset=utf-8"
        else:
            body = json.dumps({"error": "AuthError", "message": message, "field": "Authorization",
                               "value": None, "expected": None}).encode()
            ctype = b"application/json"
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", ctype), (b"retry-after", str(wait).encode()),
                                (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})


class LoadShedMiddleware:
    """Shed load instead of queueing without bound: at most ``max_in_flight`` requests are
    handled at once (``ALPSDX_MAX_IN_FLIGHT``, default 32); one more is answered at once with
    ``503 Service Unavailable`` and ``Retry-After: 1``, costing no database or CPU work.
    ``/healthz`` is never shed, so a supervisor can tell overloaded from dead."""

    def __init__(self, app: ASGIApp, max_in_flight: int | None = None) -> None:
        self.app = app
        self.max_in_flight = max_in_flight or _int_env("ALPSDX_MAX_IN_FLIGHT", 32)
        self.in_flight = 0
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:  # one event loop: no lock needed
            self.shed += 1
            body = json.dumps({"error": "Overloaded", "message": "the server is at capacity; retry shortly",
                               "field": None, "value": None, "expected": None}).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                    (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
