"""Alembic migrations from an empty database, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from alpsdx.errors import StoreError
from alpsdx.store import db, make_engine, upgrade
from alpsdx.store.models import Base

TABLES = {
    "patients", "observations", "findings", "variants", "apoptosis_assays", "medications",
    "files", "evaluations", "users", "sessions", "audit_log",
    "cds_jti", "login_failures",  # 0003: state shared by worker processes
}


def test_upgrade_from_empty_creates_every_table_at_head(empty_url: str) -> None:
    eng = make_engine(empty_url)
    try:
        assert db.current_revision(eng) is None
        assert not (TABLES & set(inspect(eng).get_table_names()))
        upgrade(eng)
        assert db.current_revision(eng) == db.head_revision()
        names = set(inspect(eng).get_table_names())
        assert names >= TABLES
        assert names - TABLES == {"alembic_version"}
        # The models name exactly the tables the migrations create.
        assert set(Base.metadata.tables) == TABLES
    finally:
        eng.dispose()


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    """Autogenerate finds nothing to add: models and migrations agree (columns, types, indexes)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, Base.metadata)
        conn.rollback()
    assert diffs == []


def test_upgrade_is_idempotent_and_downgrade_to_base_empties(empty_url: str) -> None:
    eng = make_engine(empty_url)
    try:
        upgrade(eng)
        upgrade(eng)  # a second run on every start changes nothing
        assert db.current_revision(eng) == db.head_revision()
        db.downgrade(eng, "base")
        assert db.current_revision(eng) is None
        assert not (TABLES & set(inspect(eng).get_table_names()))
        upgrade(eng)  # and back up again from empty
        assert set(inspect(eng).get_table_names()) >= TABLES
    finally:
        eng.dispose()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text("INSERT INTO observations (patient_id, analyte, value, unit, canonical_value, canonical_unit, recorded_at) "
                 "VALUES (999, 'igg', 1, 'g/L', 1, 'g/L', :t)"),
            {"t": dt.datetime.now(dt.UTC)},
        )


def test_audit_table_refuses_update_and_delete(engine: Engine) -> None:
    from alpsdx.store import Registry

    reg = Registry(engine)
    reg.create_user("auditor", "correct horse", "admin")
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError) as err, engine.begin() as conn:
            conn.execute(text(stmt))
        assert "append-only" in str(err.value).lower() or "audit" in str(err.value).lower()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 1
        assert conn.execute(text("SELECT actor FROM audit_log")).scalar() == "system"


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(f"sqlite:///{tmp_path / 'x' / 'reg.sqlite3'}")  # parent folder created
    try:
        with eng.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS
        assert (tmp_path / "x" / "reg.sqlite3").exists()
    finally:
        eng.dispose()


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPSDX_DATABASE_URL", raising=False)
    assert db.database_url(None) == "sqlite:///var/alpsdx.sqlite3"
    monkeypatch.setenv("ALPSDX_DATABASE_URL", "postgresql://u@h/d")
    assert db.database_url(None) == "postgresql://u@h/d"
    assert db.database_url("sqlite:///other.db") == "sqlite:///other.db"
    # A plain postgresql:// URL uses the installed psycopg 3 driver.
    eng = make_engine("postgresql://u@127.0.0.1:1/d")
    assert eng.url.drivername == "postgresql+psycopg"
    eng.dispose()


@pytest.mark.parametrize(("url", "field_value"), [
    ("mysql://u@h/d", "mysql"),
    ("not a url at all", None),
])
def test_unsupported_or_malformed_urls_are_typed_errors(url: str, field_value: str | None) -> None:
    with pytest.raises(StoreError) as err:
        make_engine(url)
    assert err.value.field == "ALPSDX_DATABASE_URL"
    assert err.value.value == field_value


def test_upgrade_keeps_rows_written_under_the_previous_revision(empty_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alpsdx.store import Registry

    eng = make_engine(empty_url)
    try:
        db.upgrade(eng, "0001")
        now = dt.datetime.now(dt.UTC)
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO patients (id, external_id, sex, created_at, updated_at) "
                              "VALUES (1, 'old-1', 'female', :t, :t)"), {"t": now})
            conn.execute(text("INSERT INTO observations (patient_id, analyte, value, unit, canonical_value, "
                              "canonical_unit, date, recorded_at) VALUES (1, 'igg', 12.5, 'g/L', 1250, 'mg/dL', :d, :t)"),
                         {"d": dt.date(2025, 1, 2), "t": now})
            conn.execute(text("INSERT INTO variants (patient_id, gene, origin, zygosity, recorded_at) "
                              "VALUES (1, 'FAS', 'germline', 'heterozygous', :t)"), {"t": now})
        upgrade(eng)
        assert db.current_revision(eng) == db.head_revision()
        case = Registry(eng, tmp_path / "up").load_case(1)
        assert case.id == "old-1"
        assert [(o.analyte, o.value, o.unit, o.date, o.tcrab_gated) for o in case.observations] == \
            [("igg", 12.5, "g/L", dt.date(2025, 1, 2), None)]
        assert [(v.gene, v.origin) for v in case.variants] == [("FAS", "germline")]
    finally:
        eng.dispose()
