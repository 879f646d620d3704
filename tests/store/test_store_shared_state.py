"""The state worker processes share through the registry (CDS JWT ids, issued cards, sign-in
failures), on SQLite and PostgreSQL. Two ``Registry`` objects on one database stand for two
worker processes (separate engines, separate connections)."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine

from alpsdx.store import Registry, make_engine


def _second(engine: Engine, tmp_path: Path) -> Registry:
    return Registry(make_engine(engine.url.render_as_string(hide_password=False)), tmp_path / "uploads2")


def test_a_jti_is_accepted_once_across_workers(registry: Registry, engine: Engine, tmp_path: Path) -> None:
    other = _second(engine, tmp_path)
    assert registry.remember_jti("jti-1", exp=2000.0, forget_before=1000.0) is True
    assert other.remember_jti("jti-1", exp=2000.0, forget_before=1000.0) is False
    assert registry.remember_jti("jti-1", exp=2000.0, forget_before=1000.0) is False
    # an id whose token expired before the cut-off is forgotten (the token is refused for its expiry anyway)
    assert other.remember_jti("jti-2", exp=1500.0, forget_before=1000.0) is True
    assert registry.remember_jti("jti-3", exp=3000.0, forget_before=1600.0) is True
    assert other.remember_jti("jti-2", exp=1500.0, forget_before=1600.0) is True


def test_concurrent_replays_let_exactly_one_through(registry: Registry, engine: Engine, tmp_path: Path) -> None:
    workers = [registry, _second(engine, tmp_path)]
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def attempt(i: int) -> None:
        start.wait()
        ok = workers[i % 2].remember_jti("same-jti", exp=5000.0, forget_before=0.0)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 7 + [True]


def test_issued_cards_are_known_to_every_worker(registry: Registry, engine: Engine, tmp_path: Path) -> None:
    other = _second(engine, tmp_path)
    registry.remember_cards("alpsdx-patient-view", ["card-a", "card-b"], at=100.0, forget_before=0.0)
    assert other.card_service("card-a") == "alpsdx-patient-view"
    assert other.card_service("card-z") is None
    other.remember_cards("alpsdx-order-select", ["card-c"], at=5000.0, forget_before=4000.0)  # forgets a, b
    assert registry.card_service("card-a") is None
    assert registry.card_service("card-c") == "alpsdx-order-select"


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
