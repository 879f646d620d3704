"""Helpers for the interop tests: a registry on SQLite, HTTP Basic headers, uvicorn on loopback."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# --- a registry and real HTTP servers on loopback --------------------------------------------

VIEWER = ("vera", "viewer-pass-1")
SECRET = "interop-test-secret-0123456789abcdef"


def make_registry(path: Path) -> Any:
    from alpsdx.store import Registry, make_engine, upgrade

    engine = make_engine(f"sqlite:///{path / 'registry.sqlite3'}")
    upgrade(engine)
    return Registry(engine, path / "uploads")


def basic(user: tuple[str, str] = VIEWER) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()}


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
