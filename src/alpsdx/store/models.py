"""SQLAlchemy 2 tables of the registry. Internal to ``alpsdx.store``: callers get domain objects.

Patients are addressed by an internal integer ``id``; the case identifier a clinic uses
(``external_id``, often a medical record number) appears only where a clinician sees it,
never in URLs of logs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    """Aware UTC now (one place)."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the registry tables."""


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    sex: Mapped[str] = mapped_column(String(16), default="unknown")
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    age_years: Mapped[float | None] = mapped_column(Float)
    evaluation_date: Mapped[dt.date | None] = mapped_column(Date)  # pinned as-of date; usually NULL
    height_cm: Mapped[float | None] = mapped_column(Float)
    weight_kg: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Denormalised from the newest evaluation so the patient list needs no JSON parsing.
    current_category: Mapped[str | None] = mapped_column(String(32))
    current_subtype: Mapped[str | None] = mapped_column(String(32))
    # Case fields without a table of their own (clinical_events, genes_tested, later
    # additions to the model), kept as case-format JSON so the round trip stays lossless.
    extra: Mapped[Any] = mapped_column(JSON, nullable=True)

    observations: Mapped[list[ObservationRow]] = relationship(back_populates="patient", order_by="ObservationRow.id", cascade="all, delete-orphan")
    findings: Mapped[list[FindingRow]] = relationship(back_populates="patient", order_by="FindingRow.id", cascade="all, delete-orphan")
    variants: Mapped[list[VariantRow]] = relationship(back_populates="patient", order_by="VariantRow.id", cascade="all, delete-orphan")
    assays: Mapped[list[AssayRow]] = relationship(back_populates="patient", order_by="AssayRow.id", cascade="all, delete-orphan")
    medications: Mapped[list[MedicationRow]] = relationship(back_populates="patient", order_by="MedicationRow.id", cascade="all, delete-orphan")
    files: Mapped[list[FileRow]] = relationship(back_populates="patient", order_by="FileRow.id", cascade="all, delete-orphan")
    evaluations: Mapped[list[EvaluationRow]] = relationship(back_populates="patient", order_by="EvaluationRow.id", cascade="all, delete-orphan")


class _Child:
    """Columns every dated patient record has: who recorded it and when."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    recorded_by: Mapped[str | None] = mapped_column(String(100))


class _Extra:
    """Model fields without a column of their own, as case-format JSON (lossless round trip)."""

    extra: Mapped[Any] = mapped_column(JSON, nullable=True)


class ObservationRow(_Child, _Extra, Base):
    __tablename__ = "observations"
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    analyte: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)  # as reported
    unit: Mapped[str] = mapped_column(String(32))  # as reported (UCUM)
    canonical_value: Mapped[float] = mapped_column(Float)  # derived, in canonical_unit
    canonical_unit: Mapped[str] = mapped_column(String(32))
    date: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(200))
    tcrab_gated: Mapped[bool | None] = mapped_column(Boolean)  # False: DNT gated without TCRab
    file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id", ondelete="SET NULL"))
    patient: Mapped[Patient] = relationship(back_populates="observations")

    __table_args__ = (Index("ix_observations_patient_analyte_date", "patient_id", "analyte", "date"),)


class FindingRow(_Child, Base):
    """One documented state of a finding; the newest row per ``name`` is current."""

    __tablename__ = "findings"
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    present: Mapped[bool | None] = mapped_column(Boolean)
    data: Mapped[Any] = mapped_column(JSON, nullable=True)  # the case-format value (object/list/bool/null)
    patient: Mapped[Patient] = relationship(back_populates="findings")


class VariantRow(_Child, _Extra, Base):
    __tablename__ = "variants"
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    gene: Mapped[str] = mapped_column(String(32))
    hgvs_c: Mapped[str | None] = mapped_column(String(300))
    hgvs_p: Mapped[str | None] = mapped_column(String(300))
    origin: Mapped[str] = mapped_column(String(16), default="unknown")
    zygosity: Mapped[str] = mapped_column(String(32), default="unknown")
    classification: Mapped[str | None] = mapped_column(String(32))
    vaf: Mapped[float | None] = mapped_column(Float)
    sample: Mapped[str | None] = mapped_column(String(64))
    consequence: Mapped[str | None] = mapped_column(String(128))
    date: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(200))
    file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id", ondelete="SET NULL"))
    patient: Mapped[Patient] = relationship(back_populates="variants")


class AssayRow(_Child, _Extra, Base):
    __tablename__ = "apoptosis_assays"
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    result: Mapped[str] = mapped_column(String(16))
    date: Mapped[dt.date | None] = mapped_column(Date)
    pct_of_control: Mapped[float | None] = mapped_column(Float)
    lab: Mapped[str | None] = mapped_column(String(200))
    patient: Mapped[Patient] = relationship(back_populates="assays")


class MedicationRow(_Child, _Extra, Base):
    __tablename__ = "medications"
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    dose_mg: Mapped[float | None] = mapped_column(Float)
    frequency: Mapped[str | None] = mapped_column(String(64))
    start: Mapped[dt.date | None] = mapped_column(Date)
    end: Mapped[dt.date | None] = mapped_column(Date)
    route: Mapped[str | None] = mapped_column(String(64))
    patient: Mapped[Patient] = relationship(back_populates="medications")


class FileRow(_Child, Base):
    """An uploaded file, content-addressed by SHA-256 under the upload directory."""

    __tablename__ = "files"
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # case | fcs | vcf | fhir
    filename: Mapped[str] = mapped_column(String(300))  # as uploaded (shown to clinicians only)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    stored_path: Mapped[str] = mapped_column(String(500))  # relative to the upload directory
    result: Mapped[Any] = mapped_column(JSON, nullable=True)  # e.g. the DNT pipeline summary
    patient: Mapped[Patient] = relationship(back_populates="files")


class EvaluationRow(Base):
    """One evaluation of the patient's record, with the knowledge-base version that made it."""

    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))
    trigger: Mapped[str | None] = mapped_column(String(64))
    evaluation_date: Mapped[dt.date] = mapped_column(Date)
    criteria_set: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(32))
    subtype: Mapped[str | None] = mapped_column(String(32))
    kb_version: Mapped[str] = mapped_column(String(64))
    case_sha256: Mapped[str] = mapped_column(String(64))
    case_json: Mapped[Any] = mapped_column(JSON)  # the exact input, so the result can be reproduced
    result: Mapped[Any] = mapped_column(JSON)
    patient: Mapped[Patient] = relationship(back_populates="evaluations")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id
    role: Mapped[str] = mapped_column(String(16))  # admin | clinician | viewer
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SessionRow(Base):
    """A server-side login session; the cookie carries a signed random token, we keep its hash."""

    __tablename__ = "sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """Append-only (database triggers refuse UPDATE/DELETE); each row hashes its predecessor.

    ``at`` is ISO-8601 text so the hash input reads back identically on every database.
    """

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))  # read | list | create | update | upload | evaluate | login ...
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(Integer, index=True)  # no FK: the log outlives records
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# --- state shared by the worker processes of one deployment (alpsdx serve --workers N) ---------


class CdsJtiRow(Base):
    """A CDS client JWT id already accepted (replay protection across worker processes)."""

    __tablename__ = "cds_jti"
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    exp: Mapped[float] = mapped_column(Float, index=True)  # the JWT's expiry, seconds since the epoch


class LoginFailureRow(Base):
    """One failed sign-in (for the brute-force throttle): client address and lower-cased name."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    addr: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(255))  # ALL marker for the per-address counter
    at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
    __table_args__ = (Index("ix_login_failures_key", "addr", "username", "at"), Index("ix_login_failures_at", "at"))
