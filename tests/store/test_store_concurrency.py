"""Concurrent writers, each with its own engine (own connections), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, text

from alpsdx.model import Case, Observation
from alpsdx.store import Actor, Registry, make_engine

WRITERS = 4
AUDIT_ONLY = 8  # cheap appends per writer: these race hardest for the next audit seq


def test_concurrent_writers_lose_nothing_and_keep_the_chain(engine: Engine, empty_url: str, tmp_path: Path) -> None:
    shared = Registry(engine, tmp_path / "up").create_patient(Case(id="shared", age_years=7))
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []
    created: dict[int, int] = {}

    def writer(i: int) -> None:
        eng = make_engine(empty_url)
        reg = Registry(eng, tmp_path / "up")
        who = Actor(f"writer{i}", "clinician", f"10.0.0.{i}")
        try:
            barrier.wait(timeout=30)
            created[i] = reg.create_patient(Case(id=f"w{i}", age_years=5 + i), who)
            for k in range(AUDIT_ONLY):
                reg.audit(who, "read", "patient", patient_id=shared, detail={"k": k})
            reg.add_observations(shared, [Observation(analyte="igg", value=10 + i, unit="g/L")], who)
            reg.add_observations(created[i], [Observation(analyte="hemoglobin", value=9 + i, unit="g/dL")], who)
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    reg = Registry(engine, tmp_path / "up")
    assert reg.count_patients() == WRITERS + 1
    assert len(set(created.values())) == WRITERS
    shared_igg = sorted(o.value for o in reg.load_case(shared).observations)
    assert shared_igg == [10 + i for i in range(WRITERS)]
    for i, pid in created.items():
        assert [(o.analyte, o.value) for o in reg.load_case(pid).observations] == [("hemoglobin", 9 + i)]
    # One evaluation per write, none lost: shared = create + WRITERS observations.
    assert len(reg.evaluations(shared)) == 1 + WRITERS
    n, problems = reg.verify_audit()
    assert problems == []
    with engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_log ORDER BY seq"))]
        actors = Counter(r[0] for r in conn.execute(text("SELECT actor FROM audit_log")))
    assert seqs == list(range(1, n + 1))
    # Per writer: create+evaluate, AUDIT_ONLY reads, 2 x (create observation + evaluate).
    for i in range(WRITERS):
        assert actors[f"writer{i}"] == 2 + AUDIT_ONLY + 4


def test_sqlite_read_only_work_does_not_wait_for_a_writer(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Session checks and log listings read a WAL snapshot; audited patient reads are writes and queue."""
    import sqlite3

    import pytest

    from alpsdx.errors import StoreError
    from alpsdx.store import db, upgrade

    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    path = tmp_path / "r.sqlite3"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    reg = Registry(eng, tmp_path / "up")
    uid = reg.create_user("reader", "long enough pw", "viewer")
    token, _ = reg.create_session(uid)
    pid = reg.create_patient(Case(id="locked", age_years=3))
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        user, _ = reg.session_user(token)
        assert user["username"] == "reader"
        assert reg.count_patients() == 1
        assert reg.audit_rows(limit=1)[0]["action"] == "evaluate"
        assert reg.verify_audit()[1] == []
        with pytest.raises(StoreError):  # the read is audited, so it needs the write lock
            reg.load_case(pid)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        eng.dispose()
    assert reg.load_case(pid).id == "locked"
