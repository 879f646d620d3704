"""The longitudinal registry: SQLAlchemy models, a repository mapping to and from the domain
model (``alpsdx.model.Case``), Alembic migrations and a hash-chained, append-only audit log.

SQLite (WAL, foreign keys on) by default; PostgreSQL by ``ALPSDX_DATABASE_URL``. The store
knows no HTTP; the ORM never leaves this package (callers get domain objects or dicts).
"""

from __future__ import annotations

from alpsdx.store.db import database_url, make_engine, session_factory, upgrade
from alpsdx.store.repository import Actor, Registry

__all__ = ["Actor", "Registry", "database_url", "make_engine", "session_factory", "upgrade"]
