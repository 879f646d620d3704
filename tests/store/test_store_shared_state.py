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


def _call(reg: Registry, jti: str, exp: float = 5000.0, cards: tuple[str, ...] = (), at: float = 100.0,
          service: str = "alpsdx-patient-view", jti_cut: float = 0.0, card_cut: float = 0.0) -> bool:
    return reg.record_cds_call(jti, exp, service, list(cards), at, jti_forget_before=jti_cut,
                               card_forget_before=card_cut)


def test_a_jti_is_accepted_once_across_workers(registry: Registry, engine: Engine, tmp_path: Path) -> None:
    other = _second(engine, tmp_path)
    assert _call(registry, "jti-1", cards=("card-1",)) is True
    assert _call(other, "jti-1", cards=("card-2",)) is False
    assert _call(registry, "jti-1") is False
    assert other.card_service("card-2") is None  # a refused replay stores nothing


def test_expired_ids_and_old_cards_are_purged(registry: Registry) -> None:
    assert _call(registry, "old", exp=1500.0, cards=("c-old",), at=1000.0) is True
    # 31 s later (past the purge interval): ids of tokens expired before 1600 and cards
    # issued before 1020 are forgotten
    assert _call(registry, "new", exp=3000.0, cards=("c-new",), at=1031.0, jti_cut=1600.0, card_cut=1020.0) is True
    assert registry.card_service("c-old") is None and registry.card_service("c-new") == "alpsdx-patient-view"
    assert _call(registry, "old", exp=1500.0, at=1032.0) is True  # forgotten (its token is refused for expiry anyway)


def test_concurrent_replays_let_exactly_one_through(registry: Registry, engine: Engine, tmp_path: Path) -> None:
    workers = [registry, _second(engine, tmp_path)]
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def attempt(i: int) -> None:
        start.wait()
        ok = _call(workers[i % 2], "same-jti", cards=(f"card-{i}",))
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
    assert _call(registry, "j1", cards=("card-a", "card-b"))
    assert other.card_service("card-a") == "alpsdx-patient-view"
    assert other.card_service("card-z") is None
    assert _call(other, "j2", cards=("card-c",), service="alpsdx-order-select")
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
