"""Overload: past ``ALPSDX_MAX_IN_FLIGHT`` concurrent requests the app answers 503 with
Retry-After at once (shedding), never a crash or a half-done write; /healthz is never shed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alpsdx.web.app import create_app
from alpsdx.web.security import LoadShedMiddleware
from alpsdx.web.settings import Settings


def _held_app(release: asyncio.Event, entered: list[int]) -> Starlette:
    async def slow(request: Request) -> JSONResponse:
        entered.append(1)
        await release.wait()
        return JSONResponse({"ok": True})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/slow", slow), Route("/healthz", healthz)])


def test_requests_past_the_limit_are_shed_with_503_and_the_rest_complete() -> None:
    async def run() -> tuple[list[int], int, LoadShedMiddleware]:
        release = asyncio.Event()
        entered: list[int] = []
        shedder = LoadShedMiddleware(_held_app(release, entered), max_in_flight=3)
        transport = httpx.ASGITransport(app=shedder)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            held = [asyncio.create_task(c.get("/slow")) for _ in range(3)]
            while len(entered) < 3:
                await asyncio.sleep(0.001)
            extra = [await c.get("/slow") for _ in range(4)]  # answered while the 3 are held
            health = await c.get("/healthz")
            release.set()
            done = [await t for t in held]
            after = await c.get("/slow")  # capacity is back once they finish
        statuses = [r.status_code for r in done + extra] + [after.status_code]
        for r in extra:
            assert r.headers["retry-after"] == "1" and r.json()["error"] == "Overloaded"
        return statuses, health.status_code, shedder

    statuses, health, shedder = asyncio.run(run())
    assert statuses == [200, 200, 200, 503, 503, 503, 503, 200]
    assert health == 200
    assert shedder.shed == 4 and shedder.in_flight == 0


def test_the_app_sheds_with_its_security_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wired into create_app inside the headers middleware: when it is full, every route but
    /healthz answers 503 at once, with the security headers; nothing is written meanwhile."""
    monkeypatch.setenv("ALPSDX_MAX_IN_FLIGHT", "4")
    app: Any = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", secret_key="k" * 40,
                                   upload_dir=tmp_path / "u"))
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://t") as c:
        assert c.get("/healthz").status_code == 200  # builds the middleware stack
        layer: Any = app.middleware_stack
        while not isinstance(layer, LoadShedMiddleware):
            layer = layer.app
        assert layer.max_in_flight == 4
        audit_before = len(app.state.registry.audit_rows(limit=1000))
        layer.in_flight = layer.max_in_flight  # as if 4 slow requests were being served
        responses = [c.get("/login"), c.get("/api/patients"), c.post("/login", data={"username": "x"}),
                     c.get("/fhir/metadata")]
        health = c.get("/healthz")
        layer.in_flight = 0
        assert c.get("/login").status_code == 200
    for r in responses:
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.headers["x-frame-options"] == "DENY" and "content-security-policy" in r.headers
    assert health.status_code == 200
    assert len(app.state.registry.audit_rows(limit=1000)) == audit_before  # the shed login was not tried
