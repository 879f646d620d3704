"""``alpsdx serve`` as a real child process on a free loopback port, and logged-in HTTP clients."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ADMIN_PASSWORD = "reliability-admin-pass-1"
SECRET = "reliability-secret-key-" + "x" * 24
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """One ``alpsdx serve`` process; ``kill()`` sends SIGKILL (no shutdown handlers run)."""

    def __init__(self, database_url: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.upload_dir = workdir / "uploads"
        self.extra_env = env or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        self.port = free_port()
        env = {**os.environ, "ALPSDX_DATABASE_URL": self.database_url, "ALPSDX_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "ALPSDX_SECRET_KEY": SECRET, "ALPSDX_UPLOAD_DIR": str(self.upload_dir), "ALPSDX_COOKIE_SECURE": "0",
               "ALPSDX_ENV": "production", **self.extra_env}
        cmd = [sys.executable, "-m", "alpsdx.cli", "serve", "--host", "127.0.0.1",
               "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alpsdx serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"alpsdx serve did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def session(self, username: str = "admin", password: str = ADMIN_PASSWORD, timeout: float = 60.0) -> httpx.Client:
        """A client signed in through the login form, sending the session's CSRF header on every call."""
        c = httpx.Client(base_url=self.base_url, timeout=timeout)
        c.get("/login")
        token = c.cookies.get("alpsdx_login_csrf")
        r = c.post("/login", data={"username": username, "password": password, "csrf_token": token or "",
                                   "next": "/patients"})
        if r.status_code != 303:
            raise RuntimeError(f"login failed: {r.status_code} {r.text[:200]}")
        m = CSRF_RE.search(c.get("/patients").text)
        if not m:
            raise RuntimeError("no CSRF token on the patient list")
        c.headers["X-CSRF-Token"] = m.group(1)
        return c
