"""``alpsdx demo`` (what ``make run`` does before serving) and ``alpsdx serve`` wiring."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alpsdx import cli
from alpsdx.errors import AuthError
from alpsdx.store import Registry, make_engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture()
def runner_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALPSDX_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    monkeypatch.setenv("ALPSDX_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.delenv("ALPSDX_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ALPSDX_SECRET_KEY", raising=False)
    cli._register_all()
    return tmp_path


def _examples(tmp: Path, n: int = 2) -> Path:
    folder = tmp / "examples"
    folder.mkdir()
    for f in sorted(EXAMPLES.glob("*.json"))[:n]:
        shutil.copy(f, folder / f.name)
    return folder


def _registry(tmp: Path) -> Registry:
    return Registry(make_engine(f"sqlite:///{tmp / 'demo.sqlite3'}"), tmp / "uploads")


def test_demo_loads_examples_once_and_prints_generated_password_once(runner_env: Path) -> None:
    folder = _examples(runner_env)
    runner = CliRunner()
    first = runner.invoke(cli.app, ["demo", "--no-serve", "--examples", str(folder)])
    assert first.exit_code == 0, first.output
    assert "Loaded 2 example patients" in first.output
    m = re.search(r"Created user 'admin' with password: (\S+)", first.output)
    assert m
    reg = _registry(runner_env)
    assert reg.count_patients() == 2
    assert reg.authenticate("admin", m.group(1))["role"] == "admin"
    # Every loaded patient was evaluated and stamped with the knowledge-base version.
    for row in reg.list_patients():
        assert reg.evaluations(row["id"])[0]["kb_version"]
    # The cookie-signing key is kept owner-only, so sessions survive a restart.
    key = runner_env / "var" / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_text()) >= 32
    first_key = key.read_text()
    second = runner.invoke(cli.app, ["demo", "--no-serve", "--examples", str(folder)])
    assert second.exit_code == 0, second.output
    assert "already holds 2 patients" in second.output
    assert "password" not in second.output
    assert reg.count_patients() == 2 and reg.count_users() == 1
    assert key.read_text() == first_key


def test_demo_takes_admin_password_from_env(runner_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPSDX_ADMIN_PASSWORD", "chosen-password-1")
    folder = _examples(runner_env, 1)
    result = CliRunner().invoke(cli.app, ["demo", "--no-serve", "--examples", str(folder)])
    assert result.exit_code == 0, result.output
    assert "chosen-password-1" not in result.output
    reg = _registry(runner_env)
    assert reg.authenticate("admin", "chosen-password-1")["role"] == "admin"
    with pytest.raises(AuthError):
        reg.authenticate("admin", "wrong-password")


def test_demo_names_a_missing_examples_folder(runner_env: Path) -> None:
    result = CliRunner().invoke(cli.app, ["demo", "--no-serve", "--examples", str(runner_env / "nope")])
    assert result.exit_code != 0
    assert "examples folder not found" in str(result.exception)


def test_serve_and_demo_verbs_are_registered() -> None:
    cli._register_all()
    names = {c.name for c in cli.app.registered_commands}
    assert {"serve", "demo", "report"} <= names


def test_serve_migrates_an_empty_database_and_serves_openapi(tmp_path: Path) -> None:
    import json
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from alpsdx.store.db import current_revision, head_revision

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    env = {**os.environ, "ALPSDX_DATABASE_URL": url, "ALPSDX_ADMIN_PASSWORD": "served-admin-1",
           "ALPSDX_UPLOAD_DIR": str(tmp_path / "up")}
    env.pop("ALPSDX_SECRET_KEY", None)
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "alpsdx.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        spec = None
        while spec is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2) as r:
                    spec = json.loads(r.read())
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert spec["openapi"].startswith("3.")
        engine = make_engine(url)
        assert current_revision(engine) == head_revision()
        assert Registry(engine, tmp_path / "up").authenticate("admin", "served-admin-1")["role"] == "admin"
        engine.dispose()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
