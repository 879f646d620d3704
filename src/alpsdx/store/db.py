"""Engine factory and migrations.

SQLite is the default (a file, WAL journal so readers do not block the writer, foreign
keys enforced, every transaction ``BEGIN IMMEDIATE`` so concurrent writers queue on the
busy timeout instead of failing half-way); PostgreSQL is chosen by ``ALPSDX_DATABASE_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from alpsdx.errors import StoreError

__all__ = ["DEFAULT_SQLITE_PATH", "database_url", "make_engine", "session_factory", "upgrade"]

DEFAULT_SQLITE_PATH = Path("var") / "alpsdx.sqlite3"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option marking an engine whose transactions only read (SQLite: deferred BEGIN).
READ_ONLY = "alpsdx_read_only"


def database_url(url: str | None = None) -> str:
    """The database URL: the argument, else ``ALPSDX_DATABASE_URL``, else ./var/alpsdx.sqlite3."""
    if url:
        return url
    env = os.environ.get("ALPSDX_DATABASE_URL")
    if env:
        return env
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def _normalise(url: str) -> str:
    """Plain ``postgresql://`` URLs use psycopg 3 (the driver installed)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (see :func:`database_url`), SQLite tuned for concurrent use."""
    raw = _normalise(database_url(url))
    try:
        parsed = make_url(raw)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError
        raise StoreError("not a database URL", field="ALPSDX_DATABASE_URL", expected="sqlite:///path or postgresql://...") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(raw, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        _tune_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(raw, pool_pre_ping=True, **kwargs)
    raise StoreError("unsupported database", field="ALPSDX_DATABASE_URL", value=parsed.get_backend_name(), expected="sqlite or postgresql")


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is switched off; we emit BEGIN IMMEDIATE below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only work (see READ_ONLY) starts a deferred transaction: under WAL it reads a
        # snapshot without waiting for a writer. Everything else takes the write lock up front.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (Alembic ``upgrade``); safe to run on every start."""
    from alembic import command

    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Alembic ``downgrade`` to ``revision`` (``base`` drops everything)."""
    from alembic import command

    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision stamped in the database (``None`` when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn)
        rev = ctx.get_current_revision()
        conn.rollback()
        return rev


def head_revision() -> str:
    """The newest revision the package ships."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head
