"""Store fixtures: a fresh, empty database on SQLite (a temp file) and on PostgreSQL.

PostgreSQL tests need ``ALPSDX_TEST_POSTGRES_URL`` (``.ci/pg-start`` starts a throwaway
cluster and prints it); without it they skip. Each test gets its own new database on that
server, dropped afterwards, so migrations really start from empty.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from alpsdx.store import Registry, make_engine, upgrade

PG_ENV = "ALPSDX_TEST_POSTGRES_URL"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def _pg_admin_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set (run `eval \"$(.ci/pg-start)\"` to start a throwaway PostgreSQL)")
    return url


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database; every test using it runs on both backends."""
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        return
    admin_url = make_url(_pg_admin_url())
    name = f"alpsdx_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # a configured but unreachable server is a failure, not a skip
        admin.dispose()
        raise RuntimeError(f"cannot create a test database on {admin_url.render_as_string()}: {exc}") from exc
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    """An engine on the empty database, migrated to head."""
    eng = make_engine(empty_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> Registry:
    return Registry(engine, tmp_path / "uploads")


@pytest.fixture(scope="session")
def repo_examples() -> Path:
    return Path(__file__).resolve().parents[2] / "examples"
