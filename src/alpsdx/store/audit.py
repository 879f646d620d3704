"""The audit log: who did what to which record, when and from where, as a hash chain.

Each row stores the SHA-256 of its predecessor (``prev_hash``) and of its own content
(``hash``), so an edited, deleted or re-ordered row breaks the chain at that point. The
database refuses UPDATE and DELETE on the table (triggers, see the initial migration).
Appends are serialised: SQLite by ``BEGIN IMMEDIATE``, PostgreSQL by an advisory lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from alpsdx.store.models import AuditRow, utcnow

__all__ = ["GENESIS", "Actor", "append", "row_hash", "verify_chain"]

GENESIS = "0" * 64
# Arbitrary constant naming the PostgreSQL advisory lock that serialises audit appends.
PG_AUDIT_LOCK_KEY = 0x41_4C_50_53  # "ALPS"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user name and role, and the client address (no patient data)."""

    username: str
    role: str | None = None
    remote_addr: str | None = None


SYSTEM = Actor("system", "system", None)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj if obj is not None else {}, sort_keys=True, separators=(",", ":"), default=str)


def row_hash(
    *, seq: int, at: str, actor: str, role: str | None, action: str, entity: str,
    entity_id: str | None, patient_id: int | None, remote_addr: str | None, detail: str, prev_hash: str,
) -> str:
    """SHA-256 over every column but ``hash`` itself, unit-separated (\\x1f) and in a fixed order."""
    parts = [str(seq), at, actor, role or "", action, entity, entity_id or "",
             "" if patient_id is None else str(patient_id), remote_addr or "", detail, prev_hash]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def append(
    session: Session, actor: Actor, action: str, entity: str, *,
    entity_id: str | int | None = None, patient_id: int | None = None, detail: dict[str, Any] | None = None,
) -> AuditRow:
    """Append one row inside the caller's transaction (it commits or rolls back with the data)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_AUDIT_LOCK_KEY})
    last = session.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first()
    seq = (last.seq + 1) if last else 1
    prev = last.hash if last else GENESIS
    fields: dict[str, Any] = {
        "seq": seq,
        "at": utcnow().isoformat(timespec="microseconds"),
        "actor": actor.username,
        "role": actor.role,
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "patient_id": patient_id,
        "remote_addr": actor.remote_addr,
        "detail": canonical_json(detail),
        "prev_hash": prev,
    }
    row = AuditRow(**fields, hash=row_hash(**fields))
    session.add(row)
    session.flush()
    return row


def _rows(session: Session, batch: int = 1000) -> Iterator[AuditRow]:
    after = 0
    while True:
        chunk = list(session.scalars(select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(batch)))
        if not chunk:
            return
        yield from chunk
        after = chunk[-1].seq


def verify_chain(session: Session, limit: int = 20) -> tuple[int, list[str]]:
    """Walk the chain; returns (rows checked, problems found — at most ``limit``)."""
    problems: list[str] = []
    expected_seq, prev, n = 1, GENESIS, 0
    for row in _rows(session):
        n += 1
        if row.seq != expected_seq:
            problems.append(f"audit row {row.seq}: sequence gap (expected {expected_seq}); rows were deleted")
        if row.prev_hash != prev:
            problems.append(f"audit row {row.seq}: prev_hash does not match row {row.seq - 1}")
        recomputed = row_hash(
            seq=row.seq, at=row.at, actor=row.actor, role=row.role, action=row.action, entity=row.entity,
            entity_id=row.entity_id, patient_id=row.patient_id, remote_addr=row.remote_addr,
            detail=row.detail, prev_hash=row.prev_hash,
        )
        if recomputed != row.hash:
            problems.append(f"audit row {row.seq}: content does not match its hash (row was altered)")
        expected_seq, prev = row.seq + 1, row.hash
        if len(problems) >= limit:
            break
    return n, problems
