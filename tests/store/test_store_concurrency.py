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
