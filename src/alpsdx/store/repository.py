"""The registry repository: domain objects in, domain objects out; every call audited.

Each public method runs in its own transaction and writes its audit row(s) in that same
transaction, so data and audit commit together or not at all. Every change re-evaluates
the patient (``alpsdx.engine.assess``) and stores the evaluation with the knowledge-base
version that produced it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from alpsdx.errors import AuthError, InputError, NotFoundError, StoreError
from alpsdx.model import (
    ApoptosisAssay,
    Case,
    Findings,
    Medication,
    Observation,
    Variant,
    case_from_dict,
    today,
)
from alpsdx.store import audit as _audit
from alpsdx.store.audit import SYSTEM, Actor
from alpsdx.store.db import READ_ONLY, session_factory
from alpsdx.store.models import (
    AssayRow,
    AuditRow,
    CdsJtiRow,
    EvaluationRow,
    FileRow,
    FindingRow,
    LoginFailureRow,
    MedicationRow,
    ObservationRow,
    Patient,
    SessionRow,
    User,
    VariantRow,
    utcnow,
)
from alpsdx.store.shared import PURGE_EVERY_S, JtiFiles, sqlite_state_dir
from alpsdx.store.users import DUMMY_HASH, ROLES, hash_password, verify_password

__all__ = ["SYSTEM", "Actor", "Registry"]

FINDING_NAMES = tuple(Findings.model_fields)
# Case fields with columns or tables of their own; any other field goes to ``patients.extra``.
MAPPED_FIELDS = frozenset({
    "id", "sex", "birth_date", "age_years", "evaluation_date", "height_cm", "weight_kg",
    "findings", "observations", "apoptosis_assays", "variants", "medications",
})
FILE_KINDS = ("case", "fcs", "vcf", "fhir")
DEFAULT_CRITERIA = "all"
SESSION_TTL = dt.timedelta(hours=12)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fits(ident: Any) -> bool:
    """An id a 64-bit integer column can hold (anything else cannot name a row)."""
    return isinstance(ident, int) and not isinstance(ident, bool) and -(2**63) <= ident < 2**63


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    """UTC-aware; SQLite hands back naive datetimes (stored as UTC), PostgreSQL aware ones."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC)


def _iso(t: dt.datetime | None) -> str | None:
    a = _aware(t)
    return a.isoformat() if a else None


def _jsonable(obj: Any) -> Any:
    """A plain-JSON copy (dates as ISO strings) for JSON columns."""
    return json.loads(json.dumps(obj, default=str))


def _finding_value(findings: Findings, name: str) -> Any:
    value = getattr(findings, name)
    if value is None:
        return None
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [str(getattr(v, "value", v)) for v in value]
    return value


def _present(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, dict):
        p = value.get("present")
        return None if p is None else bool(p)
    if isinstance(value, list):
        return bool(value)
    return bool(value)


def _obs_key(o: Observation) -> tuple[Any, ...]:
    return (o.analyte, float(o.value), o.unit, o.date, o.source)


_NOT_ITEM_COLUMNS = frozenset({"id", "patient_id", "extra", "recorded_at", "recorded_by", "file_id"})


def _columns(row_cls: Any) -> frozenset[str]:
    return frozenset(c.name for c in row_cls.__table__.columns) - _NOT_ITEM_COLUMNS


def _item_row(item: Any, row_cls: Any, **more: Any) -> Any:
    """A row for a domain item: fields with a column go there, the rest (as case-format JSON)
    to ``extra``, so a field added to the model later still round-trips."""
    cols = _columns(row_cls)
    data = item.model_dump(mode="python")
    extra = {k: v for k, v in item.model_dump(mode="json", exclude_none=True).items() if k not in cols}
    return row_cls(**{k: v for k, v in data.items() if k in cols}, extra=extra or None, **more)


def _item_data(row: Any, model: Any) -> dict[str, Any]:
    """The case-format fields of a stored item (columns plus ``extra``), unset ones left out."""
    fields = model.model_fields
    data = {k: getattr(row, k) for k in _columns(type(row)) if k in fields}
    data.update({k: v for k, v in (row.extra or {}).items() if k in fields})
    return {k: v for k, v in data.items() if v is not None}


def _item_json(row: Any, model: Any) -> Any:
    return _jsonable(_item_data(row, model))


class Registry:
    """The patient registry over one SQLAlchemy engine and one upload directory."""

    def __init__(self, engine: Engine, upload_dir: str | Path | None = None) -> None:
        self.engine = engine
        self.Session = session_factory(engine)
        # Transactions that never write (session checks, listings of users, the audit log)
        # do not queue behind writers on SQLite.
        self.ReadSession = session_factory(engine.execution_options(**{READ_ONLY: True}))
        self.upload_dir = Path(upload_dir) if upload_dir else Path("var") / "uploads"
        self._last_purge = 0.0  # of expired CDS JWT ids (record_jti)
        self._jti_files = JtiFiles(sqlite_state_dir(engine, "cds-jti"))

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Session]:
        """One transaction; SQLAlchemy errors become ``StoreError`` (never leaked).

        ``read_only`` transactions must not write (on SQLite they take no write lock, so a
        write would fail if another writer got there first).
        """
        session = self.ReadSession() if read_only else self.Session()
        try:
            with session.begin():
                yield session
        except IntegrityError as exc:
            raise StoreError("the database refused the write (a constraint failed)", value=type(exc.orig).__name__) from None
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {type(exc).__name__}") from None
        finally:
            session.close()

    def _patient(self, s: Session, patient_id: int) -> Patient:
        p = s.get(Patient, patient_id) if _fits(patient_id) else None
        if p is None:
            raise NotFoundError("no such patient", field="patient_id", value=patient_id)
        return p

    # ------------------------------------------------------------------ mapping
    @staticmethod
    def _current_findings(p: Patient) -> dict[str, Any]:
        latest: dict[str, Any] = {}
        for row in p.findings:  # ordered by id: later rows win
            latest[row.name] = row.data
        return {k: v for k, v in latest.items() if v is not None}

    def _to_case(self, p: Patient) -> Case:
        data: dict[str, Any] = {"id": p.external_id, "sex": p.sex}
        for key in ("birth_date", "age_years", "evaluation_date", "height_cm", "weight_kg"):
            val = getattr(p, key)
            if val is not None:
                data[key] = val
        for key, val in (p.extra or {}).items():
            if key in Case.model_fields and key not in MAPPED_FIELDS:
                data[key] = val
        data["findings"] = self._current_findings(p)
        data["observations"] = [_item_data(o, Observation) for o in p.observations]
        data["apoptosis_assays"] = [_item_data(a, ApoptosisAssay) for a in p.assays]
        data["variants"] = [_item_data(v, Variant) for v in p.variants]
        data["medications"] = [_item_data(m, Medication) for m in p.medications]
        return case_from_dict(data, source="registry")

    # ------------------------------------------------------------------ writes (internal)
    def _add_observation(self, s: Session, p: Patient, o: Observation, actor: Actor, file_id: int | None = None) -> ObservationRow:
        row = _item_row(o, ObservationRow, canonical_value=o.canonical_value, canonical_unit=o.canonical_unit,
                        recorded_by=actor.username, file_id=file_id)
        p.observations.append(row)
        return row

    def _set_findings(self, s: Session, p: Patient, values: dict[str, Any], actor: Actor) -> list[str]:
        """Append a row for each finding whose value changes; returns the names changed."""
        current = self._current_findings(p)
        changed = []
        for name, value in values.items():
            if name not in FINDING_NAMES:
                raise InputError("unknown finding", field=f"findings.{name}", value=name, expected=", ".join(FINDING_NAMES))
            value = _jsonable(value)
            if current.get(name) == value:
                continue
            p.findings.append(FindingRow(name=name, present=_present(value), data=value, recorded_by=actor.username))
            changed.append(name)
        return changed

    def _merge_case(self, s: Session, p: Patient, case: Case, actor: Actor) -> dict[str, int]:
        """Add what ``case`` has that the record lacks (exact duplicates are skipped)."""
        counts = {"observations": 0, "findings": 0, "variants": 0, "medications": 0, "apoptosis_assays": 0}
        p.sex = case.sex.value
        for key in ("birth_date", "age_years", "evaluation_date", "height_cm", "weight_kg"):
            val = getattr(case, key)
            if val is not None or key == "evaluation_date":
                setattr(p, key, val)
        extra = dict(p.extra or {})
        dumped = case.model_dump(mode="json")
        for key in Case.model_fields:
            if key in MAPPED_FIELDS or dumped.get(key) in (None, []):
                continue
            new = dumped[key]
            old = extra.get(key)
            if isinstance(new, list) and isinstance(old, list):
                # Longitudinal lists (e.g. clinical_events) grow; exact duplicates are skipped.
                new = old + [item for item in new if item not in old]
            extra[key] = new
        p.extra = extra or None
        have = {(o.analyte, float(o.value), o.unit, o.date, o.source) for o in p.observations}
        for o in case.observations:
            if _obs_key(o) not in have:
                self._add_observation(s, p, o, actor)
                have.add(_obs_key(o))
                counts["observations"] += 1
        fvals = {n: _finding_value(case.findings, n) for n in FINDING_NAMES if getattr(case.findings, n) is not None}
        counts["findings"] = len(self._set_findings(s, p, fvals, actor))
        # Items already on record (compared as case-format JSON) are not added twice.
        for key, model, row_cls, rows, new in (
            ("variants", Variant, VariantRow, p.variants, case.variants),
            ("medications", Medication, MedicationRow, p.medications, case.medications),
            ("apoptosis_assays", ApoptosisAssay, AssayRow, p.assays, case.apoptosis_assays),
        ):
            seen: list[Any] = [_item_json(r, model) for r in rows]
            for item in new:
                f = item.model_dump(mode="json", exclude_none=True)
                if f not in seen:
                    rows.append(_item_row(item, row_cls, recorded_by=actor.username))
                    seen.append(f)
                    counts[key] += 1
        return counts

    def _evaluate(self, s: Session, p: Patient, actor: Actor, trigger: str) -> dict[str, Any]:
        """Run the engine on the record as it stands in this transaction and keep the result."""
        try:
            from alpsdx.engine import assess
        except ImportError as exc:
            raise StoreError("the evaluation engine (alpsdx.engine) is not available") from exc
        from alpsdx.knowledge import kb_version

        s.flush()
        s.refresh(p)
        case = self._to_case(p)
        as_of = p.evaluation_date or today()
        result = _jsonable(assess(case, criteria=DEFAULT_CRITERIA, date=as_of))
        case_json = case.to_json_dict()
        row = EvaluationRow(
            created_by=actor.username, trigger=trigger, evaluation_date=as_of,
            criteria_set=str(result.get("criteria_set") or DEFAULT_CRITERIA),
            category=str(result.get("category") or "indeterminate"),
            subtype=result.get("subtype"),
            kb_version=str(result.get("kb_version") or kb_version()),
            case_sha256=_sha256(json.dumps(case_json, sort_keys=True).encode()),
            case_json=case_json, result=result,
        )
        p.evaluations.append(row)
        p.current_category = row.category
        p.current_subtype = row.subtype
        p.updated_at = utcnow()
        s.flush()
        _audit.append(s, actor, "evaluate", "evaluation", entity_id=row.id, patient_id=p.id,
                      detail={"trigger": trigger, "category": row.category, "kb_version": row.kb_version})
        return result

    # ------------------------------------------------------------------ public: patients
    def create_patient(self, case: Case, actor: Actor = SYSTEM) -> int:
        """A new patient from a case (its ``id`` must be new); evaluates it; returns the internal id."""
        with self.transaction() as s:
            if s.scalar(select(Patient.id).where(Patient.external_id == case.id)) is not None:
                raise InputError("a patient with this id already exists", field="id", expected="a new patient id")
            p = Patient(external_id=case.id)
            s.add(p)
            s.flush()
            counts = self._merge_case(s, p, case, actor)
            _audit.append(s, actor, "create", "patient", entity_id=p.id, patient_id=p.id, detail=counts)
            self._evaluate(s, p, actor, "create")
            return p.id

    def save_case(self, case: Case, actor: Actor = SYSTEM, trigger: str = "save_case") -> int:
        """Create the patient, or merge the case into the existing record of the same id."""
        with self.transaction() as s:
            pid = s.scalar(select(Patient.id).where(Patient.external_id == case.id))
            if pid is None:
                p = Patient(external_id=case.id)
                s.add(p)
                s.flush()
                action = "create"
            else:
                p = self._patient(s, pid)
                action = "update"
            counts = self._merge_case(s, p, case, actor)
            _audit.append(s, actor, action, "patient", entity_id=p.id, patient_id=p.id, detail=counts)
            self._evaluate(s, p, actor, trigger)
            return p.id

    def load_case(self, patient_id: int, actor: Actor = SYSTEM) -> Case:
        """The patient's whole record as one domain ``Case`` (audited as a read)."""
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            _audit.append(s, actor, "read", "case", entity_id=p.id, patient_id=p.id)
            return self._to_case(p)

    def find_patient_id(self, external_id: str, actor: Actor = SYSTEM) -> int | None:
        """Internal id for a case identifier (audited: the lookup reveals presence)."""
        with self.transaction() as s:
            pid = s.scalar(select(Patient.id).where(Patient.external_id == external_id))
            _audit.append(s, actor, "lookup", "patient", entity_id=pid, patient_id=pid, detail={"found": pid is not None})
            return pid

    def count_patients(self) -> int:
        """How many patients (no identifiers; not audited)."""
        with self.transaction(read_only=True) as s:
            return int(s.scalar(select(func.count(Patient.id))) or 0)

    def list_patients(self, actor: Actor = SYSTEM, q: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Patients (newest first) with current category; ``q`` matches id, sex, category or subtype."""
        with self.transaction() as s:
            stmt = select(Patient).order_by(Patient.updated_at.desc(), Patient.id.desc()).limit(limit)
            if q:
                like = f"%{q.strip().lower()}%"
                stmt = stmt.where(or_(
                    func.lower(Patient.external_id).like(like),
                    func.lower(Patient.current_category).like(like),
                    func.lower(Patient.current_subtype).like(like),
                    func.lower(Patient.sex) == q.strip().lower(),
                ))
            rows = list(s.scalars(stmt))
            # The search text may itself be an identifier: record only that a search happened.
            _audit.append(s, actor, "list", "patient", detail={"count": len(rows), "search": bool(q)})
            return [
                {"id": p.id, "external_id": p.external_id, "sex": p.sex,
                 "birth_date": p.birth_date.isoformat() if p.birth_date else None,
                 "category": p.current_category, "subtype": p.current_subtype,
                 "updated_at": _iso(p.updated_at)}
                for p in rows
            ]

    def patient_record(self, patient_id: int, actor: Actor = SYSTEM) -> dict[str, Any]:
        """Everything the patient page shows: the case, row ids and provenance, latest evaluation, history."""
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            _audit.append(s, actor, "read", "patient", entity_id=p.id, patient_id=p.id)
            case = self._to_case(p)
            latest = p.evaluations[-1] if p.evaluations else None
            return {
                "id": p.id,
                "external_id": p.external_id,
                "case": case,
                "observations": [
                    {"id": o.id, "analyte": o.analyte, "value": o.value, "unit": o.unit,
                     "canonical_value": o.canonical_value, "canonical_unit": o.canonical_unit,
                     "date": o.date, "source": o.source, "tcrab_gated": o.tcrab_gated,
                     "reference_range": (o.extra or {}).get("reference_range"),
                     "recorded_by": o.recorded_by, "file_id": o.file_id}
                    for o in p.observations
                ],
                "findings_history": [
                    {"id": f.id, "name": f.name, "present": f.present, "data": f.data,
                     "recorded_at": _aware(f.recorded_at), "recorded_by": f.recorded_by}
                    for f in p.findings
                ],
                "files": [
                    {"id": f.id, "kind": f.kind, "filename": f.filename, "sha256": f.sha256, "size": f.size,
                     "recorded_at": _aware(f.recorded_at), "recorded_by": f.recorded_by, "result": f.result}
                    for f in p.files
                ],
                "evaluation": latest.result if latest else None,
                "evaluation_id": latest.id if latest else None,
                "history": [self._eval_summary(e) for e in reversed(p.evaluations)],
            }

    @staticmethod
    def _eval_summary(e: EvaluationRow) -> dict[str, Any]:
        return {"id": e.id, "created_at": _iso(e.created_at),
                "created_by": e.created_by, "trigger": e.trigger,
                "evaluation_date": e.evaluation_date.isoformat(), "criteria_set": e.criteria_set,
                "category": e.category, "subtype": e.subtype, "kb_version": e.kb_version,
                "case_sha256": e.case_sha256}

    def evaluations(self, patient_id: int, actor: Actor = SYSTEM, full: bool = False) -> list[dict[str, Any]]:
        """The evaluation history, newest first (``full`` adds the stored result and input)."""
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            _audit.append(s, actor, "read", "evaluation", patient_id=p.id)
            out = []
            for e in reversed(p.evaluations):
                d = self._eval_summary(e)
                if full:
                    d["result"] = e.result
                    d["case"] = e.case_json
                out.append(d)
            return out

    def latest_evaluation(self, patient_id: int, actor: Actor = SYSTEM) -> dict[str, Any] | None:
        """The newest stored evaluation (summary plus ``result``), or ``None``; audited as a read."""
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            e = s.scalar(select(EvaluationRow).where(EvaluationRow.patient_id == p.id)
                         .order_by(EvaluationRow.id.desc()).limit(1))
            _audit.append(s, actor, "read", "evaluation", entity_id=e.id if e else None, patient_id=p.id)
            return {**self._eval_summary(e), "result": e.result} if e else None

    def files(self, patient_id: int, actor: Actor = SYSTEM) -> list[dict[str, Any]]:
        """The patient's uploaded files (metadata, oldest first); audited as a read."""
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            _audit.append(s, actor, "read", "file", patient_id=p.id, detail={"list": True})
            return [{"id": f.id, "kind": f.kind, "filename": f.filename, "sha256": f.sha256, "size": f.size,
                     "recorded_at": _aware(f.recorded_at), "recorded_by": f.recorded_by, "result": f.result}
                    for f in p.files]

    def export_records(self, actor: Actor = SYSTEM, purpose: str = "export"
                       ) -> Iterator[tuple[Case, dict[str, Any] | None]]:
        """Each patient's case and newest evaluation (summary plus ``result``), one transaction
        and one ``export`` audit row per patient."""
        with self.transaction() as s:
            ids = list(s.scalars(select(Patient.id).order_by(Patient.id)))
        for pid in ids:
            with self.transaction() as s:
                p = s.get(Patient, pid)
                if p is None:  # removed since the id list was read
                    continue
                latest = s.scalar(select(EvaluationRow).where(EvaluationRow.patient_id == pid)
                                  .order_by(EvaluationRow.id.desc()).limit(1))
                ev = {**self._eval_summary(latest), "result": latest.result} if latest else None
                case = self._to_case(p)
                _audit.append(s, actor, "export", "patient", entity_id=p.id, patient_id=p.id, detail={"purpose": purpose})
            yield case, ev

    def evaluate(self, patient_id: int, actor: Actor = SYSTEM, trigger: str = "manual") -> dict[str, Any]:
        """Re-evaluate now (e.g. after a knowledge-base update) and keep the result."""
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            return self._evaluate(s, p, actor, trigger)

    def series(self, patient_id: int, analytes: Sequence[str], actor: Actor = SYSTEM) -> list[dict[str, Any]]:
        """Dated canonical values of ``analytes`` for trend plots (audited as a read)."""
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            rows = s.execute(
                select(ObservationRow.analyte, ObservationRow.date, ObservationRow.canonical_value, ObservationRow.canonical_unit)
                .where(ObservationRow.patient_id == p.id, ObservationRow.analyte.in_(list(analytes)))
                .order_by(ObservationRow.date, ObservationRow.id)
            ).all()
            _audit.append(s, actor, "read", "observation", patient_id=p.id, detail={"series": sorted(analytes)})
            return [{"analyte": r.analyte, "date": r.date, "value": r.canonical_value, "unit": r.canonical_unit} for r in rows]

    # ------------------------------------------------------------------ public: additions
    def add_observations(self, patient_id: int, observations: Iterable[Observation], actor: Actor = SYSTEM,
                         file_id: int | None = None) -> dict[str, Any]:
        """Add dated measurements (original value + unit kept; canonical value derived); re-evaluates."""
        obs = list(observations)
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            ids = []
            for o in obs:
                row = self._add_observation(s, p, o, actor, file_id)
                s.flush()
                ids.append(row.id)
                _audit.append(s, actor, "create", "observation", entity_id=row.id, patient_id=p.id, detail={"analyte": o.analyte})
            return self._evaluate(s, p, actor, "observation")

    def add_observation(self, patient_id: int, observation: Observation, actor: Actor = SYSTEM) -> dict[str, Any]:
        return self.add_observations(patient_id, [observation], actor)

    def set_findings(self, patient_id: int, values: dict[str, Any], actor: Actor = SYSTEM) -> dict[str, Any]:
        """Record new states of findings (validated through ``Findings``); re-evaluates."""
        try:
            validated = Findings.model_validate(values)
        except Exception:
            # Re-validate through the case parser for the field-naming InputError.
            case_from_dict({"id": "x", "findings": values}, source=None)
            raise
        clean = {n: _finding_value(validated, n) for n in values}
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            changed = self._set_findings(s, p, clean, actor)
            s.flush()
            _audit.append(s, actor, "update", "finding", patient_id=p.id, detail={"changed": changed})
            return self._evaluate(s, p, actor, "finding")

    def add_variant(self, patient_id: int, variant: Variant, actor: Actor = SYSTEM, file_id: int | None = None) -> dict[str, Any]:
        return self.add_variants(patient_id, [variant], actor, file_id)

    def add_variants(self, patient_id: int, variants: Iterable[Variant], actor: Actor = SYSTEM, file_id: int | None = None) -> dict[str, Any]:
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            for v in variants:
                row = _item_row(v, VariantRow, recorded_by=actor.username, file_id=file_id)
                p.variants.append(row)
                s.flush()
                _audit.append(s, actor, "create", "variant", entity_id=row.id, patient_id=p.id, detail={"gene": v.gene})
            return self._evaluate(s, p, actor, "variant")

    def add_medication(self, patient_id: int, medication: Medication, actor: Actor = SYSTEM) -> dict[str, Any]:
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            row = _item_row(medication, MedicationRow, recorded_by=actor.username)
            p.medications.append(row)
            s.flush()
            _audit.append(s, actor, "create", "medication", entity_id=row.id, patient_id=p.id, detail={"name": medication.name})
            return self._evaluate(s, p, actor, "medication")

    def add_assay(self, patient_id: int, assay: ApoptosisAssay, actor: Actor = SYSTEM) -> dict[str, Any]:
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            row = _item_row(assay, AssayRow, recorded_by=actor.username)
            p.assays.append(row)
            s.flush()
            _audit.append(s, actor, "create", "apoptosis_assay", entity_id=row.id, patient_id=p.id, detail={"result": assay.result})
            return self._evaluate(s, p, actor, "apoptosis_assay")

    # ------------------------------------------------------------------ public: files
    def write_blob(self, data: bytes) -> tuple[str, str]:
        """Store bytes content-addressed (temp file, fsync, rename); returns (sha256, relative path).

        Written before the database row that references it commits, so a committed
        reference always points at a complete file.
        """
        digest = _sha256(data)
        rel = f"{digest[:2]}/{digest}"
        final = self.upload_dir / rel
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return digest, rel

    def blob_path(self, rel: str) -> Path:
        return self.upload_dir / rel

    def add_file(
        self, patient_id: int, kind: str, filename: str, data: bytes, actor: Actor = SYSTEM, *,
        result: Any = None, observations: Sequence[Observation] = (), variants: Sequence[Variant] = (),
    ) -> int:
        """Keep an uploaded file and what was derived from it (observations, variants); re-evaluates."""
        if kind not in FILE_KINDS:
            raise InputError("unknown file kind", field="kind", value=kind, expected=", ".join(FILE_KINDS))
        digest, rel = self.write_blob(data)
        with self.transaction() as s:
            p = self._patient(s, patient_id)
            f = FileRow(kind=kind, filename=Path(filename).name[:300] or kind, sha256=digest, size=len(data),
                        stored_path=rel, result=_jsonable(result), recorded_by=actor.username)
            p.files.append(f)
            s.flush()
            for o in observations:
                self._add_observation(s, p, o, actor, f.id)
            for v in variants:
                p.variants.append(_item_row(v, VariantRow, recorded_by=actor.username, file_id=f.id))
            _audit.append(s, actor, "upload", "file", entity_id=f.id, patient_id=p.id,
                          detail={"kind": kind, "sha256": digest, "observations": len(observations), "variants": len(variants)})
            self._evaluate(s, p, actor, f"upload_{kind}")
            return f.id

    def file_info(self, patient_id: int, file_id: int, actor: Actor = SYSTEM) -> dict[str, Any]:
        """An uploaded file's metadata and absolute path (audited as a read)."""
        with self.transaction() as s:
            f = s.get(FileRow, file_id) if _fits(file_id) else None
            if f is None or f.patient_id != patient_id:
                raise NotFoundError("no such file for this patient", field="file_id", value=file_id)
            _audit.append(s, actor, "read", "file", entity_id=f.id, patient_id=patient_id)
            return {"id": f.id, "kind": f.kind, "filename": f.filename, "sha256": f.sha256, "size": f.size,
                    "path": self.blob_path(f.stored_path), "result": f.result}

    # ------------------------------------------------------------------ users and sessions
    def create_user(self, username: str, password: str, role: str, actor: Actor = SYSTEM) -> int:
        username = username.strip()
        if not username or len(username) > 100:
            raise InputError("user name must be 1-100 characters", field="username", value=username)
        if role not in ROLES:
            raise InputError("unknown role", field="role", value=role, expected=" | ".join(ROLES))
        if len(password) < 8:
            raise InputError("password must have at least 8 characters", field="password")
        with self.transaction() as s:
            if s.scalar(select(User.id).where(User.username == username)) is not None:
                raise InputError("user name already taken", field="username", value=username)
            u = User(username=username, password_hash=hash_password(password), role=role)
            s.add(u)
            s.flush()
            _audit.append(s, actor, "create", "user", entity_id=u.id, detail={"role": role})
            return u.id

    def set_role(self, user_id: int, role: str, actor: Actor = SYSTEM, active: bool | None = None) -> None:
        if role not in ROLES:
            raise InputError("unknown role", field="role", value=role, expected=" | ".join(ROLES))
        with self.transaction() as s:
            u = s.get(User, user_id) if _fits(user_id) else None
            if u is None:
                raise NotFoundError("no such user", field="user_id", value=user_id)
            u.role = role
            if active is not None:
                u.active = active
            _audit.append(s, actor, "update", "user", entity_id=u.id, detail={"role": role, "active": u.active})

    def list_users(self) -> list[dict[str, Any]]:
        with self.transaction(read_only=True) as s:
            return [{"id": u.id, "username": u.username, "role": u.role, "active": u.active,
                     "created_at": _iso(u.created_at)}
                    for u in s.scalars(select(User).order_by(User.id))]

    # --- state shared by the worker processes of one deployment -------------------------

    def record_jti(self, jti: str, exp: float, now: float, forget_before: float) -> bool:
        """Record a CDS client JWT id; False when it was recorded before (a replay).

        Every worker process sees the record. On PostgreSQL it is a row of ``cds_jti``. On
        SQLite it is a file created with O_EXCL in a directory beside the database file: a row
        would make every hook call a write transaction, and SQLite writers from several
        processes queue on one lock (measured: p99 of seconds at 200 calls/s). ``exp`` is the
        token's expiry (epoch seconds); ids of tokens that expired before ``forget_before``
        are purged at most every 30 s per process (such a token is refused for its expiry).
        """
        if self.engine.dialect.name == "sqlite":
            return self._jti_files.record(jti, exp, now, forget_before)
        try:
            with self.engine.begin() as conn:
                if now - self._last_purge > PURGE_EVERY_S:
                    conn.execute(delete(CdsJtiRow).where(CdsJtiRow.exp < forget_before))
                    self._last_purge = now
                conn.execute(insert(CdsJtiRow).values(jti=jti[:255], exp=exp))
        except IntegrityError:
            return False  # this id was recorded before, by this or another worker process
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {type(exc).__name__}") from None
        return True

    def add_login_failure(self, addr: str, usernames: Sequence[str], at: float, forget_before: float) -> None:
        """Count one failed sign-in under each key (address + name, address + ALL marker)."""
        with self.transaction() as s:
            s.execute(delete(LoginFailureRow).where(LoginFailureRow.at < forget_before))
            for name in usernames:
                s.add(LoginFailureRow(addr=addr[:64], username=name[:255], at=at))

    def login_failures(self, addr: str, username: str, since: float) -> list[float]:
        """Times (epoch seconds, oldest first) of failures under one key since ``since``."""
        with self.transaction(read_only=True) as s:
            return list(s.scalars(select(LoginFailureRow.at).where(
                LoginFailureRow.addr == addr[:64], LoginFailureRow.username == username[:255],
                LoginFailureRow.at > since).order_by(LoginFailureRow.at)))

    def clear_login_failures(self, addr: str, username: str) -> None:
        with self.transaction() as s:
            s.execute(delete(LoginFailureRow).where(LoginFailureRow.addr == addr[:64],
                                                    LoginFailureRow.username == username[:255]))

    def count_users(self) -> int:
        with self.transaction(read_only=True) as s:
            return int(s.scalar(select(func.count(User.id))) or 0)

    def authenticate(self, username: str, password: str, remote_addr: str | None = None,
                     audit_success: bool = True) -> dict[str, Any]:
        """Check a password (argon2id); audits failures (and successes unless told not to).

        Raises ``AuthError`` on a wrong name or password or a disabled account.
        """
        with self.transaction() as s:
            u = s.scalar(select(User).where(User.username == username))
            ok = verify_password(u.password_hash if u else DUMMY_HASH, password) and u is not None and u.active
            who = Actor(u.username if u else "anonymous", u.role if u else None, remote_addr)
            if not ok or audit_success:
                _audit.append(s, who, "login" if ok else "login_failed", "user", entity_id=u.id if u else None)
        if not ok or u is None:
            raise AuthError("wrong user name or password")
        return {"id": u.id, "username": u.username, "role": u.role}

    def create_session(self, user_id: int, ttl: dt.timedelta = SESSION_TTL) -> tuple[str, str]:
        """A new server-side session; returns (token for the cookie, CSRF token)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self.transaction() as s:
            s.add(SessionRow(token_sha256=_sha256(token.encode()), user_id=user_id, csrf_token=csrf,
                             expires_at=utcnow() + ttl))
        return token, csrf

    def session_user(self, token: str) -> tuple[dict[str, Any], str] | None:
        """The (user, CSRF token) of a live session, else ``None``."""
        key = _sha256(token.encode())
        with self.transaction(read_only=True) as s:
            row = s.get(SessionRow, key)
            if row is None:
                return None
            exp = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
            expired = exp < utcnow()
            u = None if expired else s.get(User, row.user_id)
            if u is not None and u.active:
                return {"id": u.id, "username": u.username, "role": u.role}, row.csrf_token
        if expired:
            with self.transaction() as s:
                s.execute(delete(SessionRow).where(SessionRow.token_sha256 == key))
        return None

    def delete_session(self, token: str, actor: Actor = SYSTEM) -> None:
        with self.transaction() as s:
            row = s.get(SessionRow, _sha256(token.encode()))
            if row is not None:
                s.delete(row)
                _audit.append(s, actor, "logout", "user", entity_id=row.user_id)

    # ------------------------------------------------------------------ audit and checks
    def audit_rows(self, limit: int = 200, before: int | None = None, patient_id: int | None = None,
                   action: str | None = None, actor: str | None = None) -> list[dict[str, Any]]:
        """Newest audit rows first, optionally only one patient's, one action's or one user's."""
        with self.transaction(read_only=True) as s:
            stmt = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
            if before is not None:
                stmt = stmt.where(AuditRow.seq < before)
            if patient_id is not None:
                stmt = stmt.where(AuditRow.patient_id == patient_id)
            if action is not None:
                stmt = stmt.where(AuditRow.action == action)
            if actor is not None:
                stmt = stmt.where(AuditRow.actor == actor)
            return [{c: getattr(r, c) for c in ("seq", "at", "actor", "role", "action", "entity", "entity_id",
                                                 "patient_id", "remote_addr", "detail", "hash")}
                    for r in s.scalars(stmt)]

    def audit(self, actor: Actor, action: str, entity: str, *, patient_id: int | None = None,
              entity_id: str | int | None = None, detail: dict[str, Any] | None = None) -> None:
        """Append an audit row on its own (e.g. a stateless evaluation through the API)."""
        with self.transaction() as s:
            _audit.append(s, actor, action, entity, entity_id=entity_id, patient_id=patient_id, detail=detail)

    def verify_audit(self) -> tuple[int, list[str]]:
        with self.transaction(read_only=True) as s:
            return _audit.verify_chain(s)

    def check(self, reproduce: bool = False) -> dict[str, Any]:
        """Integrity report: foreign keys, audit chain, stored files, optionally evaluations."""
        problems: list[str] = []
        with self.transaction(read_only=True) as s:
            if s.get_bind().dialect.name == "sqlite":
                for r in s.execute(text("PRAGMA foreign_key_check")).all():
                    problems.append(f"foreign key: table {r[0]} row {r[1]} points at a missing {r[2]} row")
                integrity = s.execute(text("PRAGMA quick_check")).scalar()
                if integrity != "ok":
                    problems.append(f"sqlite quick_check: {integrity}")
            else:
                # PostgreSQL enforces foreign keys always; check orphans anyway in case they were disabled.
                for table in ("observations", "findings", "variants", "apoptosis_assays", "medications", "files", "evaluations"):
                    n = s.execute(text(f"SELECT count(*) FROM {table} t LEFT JOIN patients p ON p.id = t.patient_id WHERE p.id IS NULL")).scalar()
                    if n:
                        problems.append(f"foreign key: {n} rows in {table} point at missing patients")
            n_audit, audit_problems = _audit.verify_chain(s)
            problems += audit_problems
            files = list(s.scalars(select(FileRow)))
            for f in files:
                path = self.blob_path(f.stored_path)
                if not path.exists():
                    problems.append(f"file {f.id}: stored file is missing")
                elif _sha256(path.read_bytes()) != f.sha256:
                    problems.append(f"file {f.id}: content does not match its SHA-256")
            reproduced = mismatched = 0
            if reproduce:
                from alpsdx.engine import assess
                from alpsdx.knowledge import kb_version

                current_kb = kb_version()
                for e in s.scalars(select(EvaluationRow).where(EvaluationRow.kb_version == current_kb)):
                    again = _jsonable(assess(case_from_dict(e.case_json, "stored evaluation"), criteria=DEFAULT_CRITERIA,
                                             date=e.evaluation_date))
                    reproduced += 1
                    if again.get("category") != e.category or again.get("subtype") != e.subtype:
                        mismatched += 1
                        problems.append(f"evaluation {e.id}: re-running gives {again.get('category')}, stored {e.category}")
        return {"ok": not problems, "problems": problems, "audit_rows": n_audit, "files": len(files),
                "evaluations_reproduced": reproduced, "evaluations_mismatched": mismatched}
