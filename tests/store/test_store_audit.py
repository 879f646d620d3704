"""The audit trail: every read and write of patient data, who/what/when/where, tamper-evident."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, text

from alpsdx.errors import AuthError, InputError, NotFoundError
from alpsdx.model import ApoptosisAssay, Case, Medication, Observation, Variant
from alpsdx.store import Actor, Registry

WHO = Actor("dr.audit", "clinician", "192.0.2.10")
SECRET_ID = "MRN-SECRET-48151623"


def _last(reg: Registry, n: int) -> list[dict[str, Any]]:
    return list(reversed(reg.audit_rows(limit=n)))


def _newest_seq(reg: Registry) -> int:
    rows = reg.audit_rows(limit=1)
    return rows[0]["seq"] if rows else 0


def _rows_since(reg: Registry, seq: int) -> list[dict[str, Any]]:
    return [r for r in reversed(reg.audit_rows(limit=1000)) if r["seq"] > seq]


def test_every_read_and_write_is_audited_with_who_what_when_where(registry: Registry) -> None:
    start = dt.datetime.now(dt.UTC)
    pid = registry.create_patient(Case(id=SECRET_ID, sex="female", age_years=9), WHO)
    fid_holder: dict[str, int] = {}

    def upload() -> None:
        fid_holder["fid"] = registry.add_file(pid, "vcf", "x.vcf", b"##fileformat=VCFv4.2\n", WHO)

    # (operation, [(action, entity)] it must append, in order)
    ops: list[tuple[str, Callable[[], Any], list[tuple[str, str]]]] = [
        ("load_case", lambda: registry.load_case(pid, WHO), [("read", "case")]),
        ("patient_record", lambda: registry.patient_record(pid, WHO), [("read", "patient")]),
        ("evaluations", lambda: registry.evaluations(pid, WHO), [("read", "evaluation")]),
        ("series", lambda: registry.series(pid, ["igg"], WHO), [("read", "observation")]),
        ("add_observation", lambda: registry.add_observation(pid, Observation(analyte="igg", value=9, unit="g/L"), WHO),
         [("create", "observation"), ("evaluate", "evaluation")]),
        ("set_findings", lambda: registry.set_findings(pid, {"splenomegaly": {"present": True}}, WHO),
         [("update", "finding"), ("evaluate", "evaluation")]),
        ("add_variant", lambda: registry.add_variant(pid, Variant(gene="FAS"), WHO),
         [("create", "variant"), ("evaluate", "evaluation")]),
        ("add_medication", lambda: registry.add_medication(pid, Medication(name="sirolimus"), WHO),
         [("create", "medication"), ("evaluate", "evaluation")]),
        ("add_assay", lambda: registry.add_assay(pid, ApoptosisAssay(result="normal"), WHO),
         [("create", "apoptosis_assay"), ("evaluate", "evaluation")]),
        ("add_file", upload, [("upload", "file"), ("evaluate", "evaluation")]),
        ("file_info", lambda: registry.file_info(pid, fid_holder["fid"], WHO), [("read", "file")]),
        ("evaluate", lambda: registry.evaluate(pid, WHO), [("evaluate", "evaluation")]),
        ("save_case", lambda: registry.save_case(Case(id=SECRET_ID, sex="female", age_years=9), WHO),
         [("update", "patient"), ("evaluate", "evaluation")]),
        ("find_patient_id", lambda: registry.find_patient_id(SECRET_ID, WHO), [("lookup", "patient")]),
    ]
    create_rows = _last(registry, 2)
    assert [(r["action"], r["entity"]) for r in create_rows] == [("create", "patient"), ("evaluate", "evaluation")]
    for name, op, expected in ops:
        before = _newest_seq(registry)
        op()
        rows = _rows_since(registry, before)
        assert [(r["action"], r["entity"]) for r in rows] == expected, name
        for r in rows:
            assert (r["actor"], r["role"], r["remote_addr"]) == ("dr.audit", "clinician", "192.0.2.10"), name
            assert r["patient_id"] == pid, name
            assert start <= dt.datetime.fromisoformat(r["at"]) <= dt.datetime.now(dt.UTC), name
    before = _newest_seq(registry)
    registry.list_patients(WHO, q="SECRET")
    (row,) = _rows_since(registry, before)
    assert (row["action"], row["entity"], row["patient_id"]) == ("list", "patient", None)
    assert json.loads(row["detail"]) == {"count": 1, "search": True}
    n, problems = registry.verify_audit()
    assert problems == [] and n == _newest_seq(registry)


def test_no_patient_identifier_in_audit_rows_or_logs(registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pid = registry.create_patient(Case(id=SECRET_ID, sex="male", birth_date=dt.date(2012, 3, 4)), WHO)
    registry.list_patients(WHO, q=SECRET_ID)
    registry.find_patient_id(SECRET_ID, WHO)
    registry.patient_record(pid, WHO)
    with pytest.raises(InputError):
        registry.create_patient(Case(id=SECRET_ID), WHO)
    dump = json.dumps(registry.audit_rows(limit=1000))
    assert SECRET_ID not in dump and "2012-03-04" not in dump
    assert SECRET_ID not in caplog.text and "2012-03-04" not in caplog.text


def test_failed_writes_leave_no_audit_row(registry: Registry) -> None:
    pid = registry.create_patient(Case(id="p1"), WHO)
    before = _newest_seq(registry)
    with pytest.raises(InputError):
        registry.create_patient(Case(id="p1"), WHO)
    with pytest.raises(NotFoundError):
        registry.add_observation(pid + 7, Observation(analyte="igg", value=9, unit="g/L"), WHO)
    with pytest.raises(InputError):
        registry.set_findings(pid, {"no_such_finding": True}, WHO)
    assert _newest_seq(registry) == before
    assert registry.count_patients() == 1


def test_logins_are_audited_and_per_request_checks_can_skip_success(registry: Registry) -> None:
    registry.create_user("eve", "long enough pw", "viewer")
    before = _newest_seq(registry)
    registry.authenticate("eve", "long enough pw", "198.51.100.1")
    registry.authenticate("eve", "long enough pw", "198.51.100.1", audit_success=False)
    with pytest.raises(AuthError):
        registry.authenticate("eve", "nope nope", "198.51.100.2", audit_success=False)
    with pytest.raises(AuthError):
        registry.authenticate("ghost", "nope nope", "198.51.100.3")
    rows = _rows_since(registry, before)
    assert [(r["actor"], r["action"], r["remote_addr"]) for r in rows] == [
        ("eve", "login", "198.51.100.1"),
        ("eve", "login_failed", "198.51.100.2"),
        ("anonymous", "login_failed", "198.51.100.3"),
    ]
    assert all("nope" not in r["detail"] for r in rows)


def test_audit_rows_filter_by_patient_and_page(registry: Registry) -> None:
    a = registry.create_patient(Case(id="a"), WHO)
    b = registry.create_patient(Case(id="b"), WHO)
    registry.load_case(a, WHO)
    assert {r["patient_id"] for r in registry.audit_rows(patient_id=a)} == {a}
    assert len(registry.audit_rows(patient_id=a)) == 3  # create, evaluate, read
    assert len(registry.audit_rows(patient_id=b)) == 2
    newest = _newest_seq(registry)
    page1 = registry.audit_rows(limit=2)
    page2 = registry.audit_rows(limit=2, before=page1[-1]["seq"])
    assert [r["seq"] for r in page1 + page2] == [newest, newest - 1, newest - 2, newest - 3]


def _allow_tampering(engine: Engine) -> None:
    """What an attacker with database access could do: switch the append-only triggers off."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")


def test_tampering_breaks_the_hash_chain(registry: Registry, engine: Engine) -> None:
    for name in ("p1", "p2", "p3"):
        registry.audit(WHO, "read", "patient", patient_id=None, detail={"name": name})
    assert registry.verify_audit() == (3, [])
    _allow_tampering(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone.else' WHERE seq = 2"))
    n, problems = registry.verify_audit()
    assert n == 3
    assert problems == ["audit row 2: content does not match its hash (row was altered)"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'dr.audit' WHERE seq = 2"))
    assert registry.verify_audit() == (3, [])  # restored exactly: the chain holds again
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    n, problems = registry.verify_audit()
    assert n == 2
    assert problems == ["audit row 3: sequence gap (expected 2); rows were deleted",
                        "audit row 3: prev_hash does not match row 2"]
    assert registry.check()["ok"] is False
