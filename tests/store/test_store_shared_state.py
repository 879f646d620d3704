"""The state worker processes share through the registry (CDS JWT ids, sign-in failures), on
SQLite and PostgreSQL. Two ``Registry`` objects on one database stand for two
worker processes (separate engines, separate connections)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from alpsdx.store import Registry, make_engine


def _second(engine: Engine, tmp_path: Path) -> Registry:
    return Registry(make_engine(engine.url.render_as_string(hide_password=False)), tmp_path / "uploads2")


def test_a_jti_is_accepted_once_across_workers(registry: Registry, engine: Engine, tmp_path: Path) -> None:
    other = _second(engine, tmp_path)
    assert registry.record_jti("jti-1", exp=5000.0, now=100.0, forget_before=0.0) is True
    assert other.record_jti("jti-1", exp=5000.0, now=101.0, forget_before=0.0) is False
    assert registry.record_jti("jti-1", exp=5000.0, now=102.0, forget_before=0.0) is False
    assert other.record_jti("jti-2", exp=5000.0, now=103.0, forget_before=0.0) is True


def test_ids_of_expired_tokens_are_purged(registry: Registry) -> None:
    assert registry.record_jti("old", exp=1500.0, now=1000.0, forget_before=0.0) is True
    assert registry.record_jti("new", exp=3000.0, now=1001.0, forget_before=0.0) is True
    # 31 s after the last purge, ids of tokens that expired before 1600 are forgotten (such a
    # token is refused for its expiry anyway); the unexpired one is still a replay
    assert registry.record_jti("other", exp=3000.0, now=1031.0, forget_before=1600.0) is True
    assert registry.record_jti("old", exp=1500.0, now=1032.0, forget_before=1600.0) is True
    assert registry.record_jti("new", exp=3000.0, now=1033.0, forget_before=1600.0) is False


def test_concurrent_replays_let_exactly_one_through(registry: Registry, engine: Engine, tmp_path: Path) -> None:
    workers = [registry, _second(engine, tmp_path)]
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def attempt(i: int) -> None:
        start.wait()
        ok = workers[i % 2].record_jti("same-jti", exp=5000.0, now=100.0, forget_before=0.0)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 7 + [True]


def test_sqlite_ids_live_beside_the_database_file(registry: Registry, engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL keeps the ids in the cds_jti table")
    registry.record_jti("beside", exp=5000.0, now=100.0, forget_before=0.0)
    db = Path(str(engine.url.database)).resolve()
    folder = db.with_name(db.name + "-cds-jti")
    assert len(list(folder.iterdir())) == 1 and oct(folder.stat().st_mode & 0o777) == "0o700"


def test_login_failures_are_counted_across_workers(registry: Registry, engine: Engine, tmp_path: Path) -> None:
    other = _second(engine, tmp_path)
    registry.add_login_failure("10.0.0.1", ["alice", "ANY USER"], at=100.0, forget_before=0.0)
    other.add_login_failure("10.0.0.1", ["alice", "ANY USER"], at=110.0, forget_before=0.0)
    assert registry.login_failures("10.0.0.1", "alice", since=0.0) == [100.0, 110.0]
    assert other.login_failures("10.0.0.1", "alice", since=100.0) == [110.0]
    assert other.login_failures("10.0.0.2", "alice", since=0.0) == []
    registry.clear_login_failures("10.0.0.1", "alice")
    assert other.login_failures("10.0.0.1", "alice", since=0.0) == []
    assert other.login_failures("10.0.0.1", "ANY USER", since=0.0) == [100.0, 110.0]
