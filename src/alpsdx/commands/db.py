"""Registry verbs: ``alpsdx db upgrade|current|check`` and ``alpsdx export``.

The database is ``--url``, else ``ALPSDX_DATABASE_URL``, else the SQLite file
``./var/alpsdx.sqlite3``. Output never shows a database password or a patient identifier
unless the user asked for that patient's record.
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from alpsdx.errors import InputError, NotFoundError, StoreError
from alpsdx.store import Actor, Registry, db, make_engine
from alpsdx.store.deidentify import deidentify_cohort

db_app = typer.Typer(help="The registry database: migrate, inspect, check.", no_args_is_help=True)

URL_OPTION = typer.Option(None, "--url", help="Database URL (default: $ALPSDX_DATABASE_URL, else sqlite:///var/alpsdx.sqlite3).")


def _shown(engine: Engine) -> str:
    return make_url(str(engine.url)).render_as_string(hide_password=True)


def cli_actor() -> Actor:
    """The operating-system user running the command (the audit's 'who' for CLI access)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(f"cli:{user}"[:100], "cli", "localhost")


def open_registry(url: str | None, upload_dir: str | None = None) -> Registry:
    """The registry at ``url``; a database not migrated to head is an error naming the fix."""
    engine = make_engine(url)
    try:
        current = db.current_revision(engine)
    except Exception as exc:  # cannot connect: name the database, never the password
        raise StoreError(f"cannot open the database: {type(exc).__name__}", field="ALPSDX_DATABASE_URL",
                         value=_shown(engine)) from None
    head = db.head_revision()
    if current != head:
        raise StoreError("the database is not migrated", field="ALPSDX_DATABASE_URL", value=_shown(engine),
                         expected=f"revision {head}: run `alpsdx db upgrade` first (found {current or 'an empty database'})")
    import os

    return Registry(engine, upload_dir or os.environ.get("ALPSDX_UPLOAD_DIR") or Path("var") / "uploads")


@db_app.command("upgrade")
def upgrade_cmd(
    url: str | None = URL_OPTION,
    revision: str = typer.Option("head", "--revision", help="Target revision (default: the newest)."),
) -> None:
    """Create or migrate the registry schema (Alembic); safe to run on every start."""
    engine = make_engine(url)
    try:
        before = db.current_revision(engine)
        db.upgrade(engine, revision)
        after = db.current_revision(engine)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"migration failed: {type(exc).__name__}: {exc}".splitlines()[0], field="ALPSDX_DATABASE_URL",
                         value=_shown(engine)) from None
    finally:
        engine.dispose()
    head = db.head_revision()
    note = "up to date" if before == after else f"was {before or 'empty'}"
    typer.echo(f"{_shown(engine)}: revision {after}{' (head)' if after == head else ''}; {note}")


@db_app.command("current")
def current_cmd(url: str | None = URL_OPTION) -> None:
    """Print the schema revision of the database and the newest one this version ships."""
    engine = make_engine(url)
    try:
        current = db.current_revision(engine)
    finally:
        engine.dispose()
    typer.echo(f"{_shown(engine)}: revision {current or 'none (empty database)'}; head {db.head_revision()}")


@db_app.command("check")
def check_cmd(
    url: str | None = URL_OPTION,
    reproduce: bool = typer.Option(False, "--reproduce", help="Also re-run every stored evaluation made with the current knowledge base."),
    fmt: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Integrity: foreign keys, the audit hash chain, stored files; exit 1 when anything is wrong."""
    if fmt not in ("text", "json"):
        raise InputError("unknown format", field="--format", value=fmt, expected="text | json")
    reg = open_registry(url)
    try:
        report = reg.check(reproduce=reproduce)
    finally:
        reg.engine.dispose()
    if fmt == "json":
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"audit rows checked: {report['audit_rows']}; files: {report['files']}"
                   + (f"; evaluations reproduced: {report['evaluations_reproduced']}" if reproduce else ""))
        for p in report["problems"]:
            typer.echo(f"PROBLEM {p}")
        typer.echo("ok" if report["ok"] else f"{len(report['problems'])} problem(s)")
    if not report["ok"]:
        raise typer.Exit(1)


def _write(text: str, out: str) -> None:
    if out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(out)
    if path.parent and not path.parent.exists():
        raise InputError("output folder does not exist", field="--out", value=out)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _find(reg: Registry, patient: str, actor: Actor) -> int:
    """A patient by case identifier, else by internal registry id (digits)."""
    pid = reg.find_patient_id(patient, actor)
    if pid is None and patient.isdigit():
        pid = int(patient)
    if pid is None:
        raise NotFoundError("no such patient", field="PATIENT_ID", value=patient)
    return pid


def export_cmd(
    patient: str | None = typer.Argument(None, metavar="PATIENT_ID",
                                         help="A patient (case id or registry id) for --fhir."),
    deidentify: bool = typer.Option(False, "--deidentify",
                                    help="Export every patient as a de-identified research cohort (JSON Lines)."),
    fhir: str | None = typer.Option(None, "--fhir", help="Write PATIENT_ID's record and evaluation as a FHIR R4 Bundle to this file."),
    out: str = typer.Option("-", "--out", "-o", help="Output file for --deidentify ('-' = stdout)."),
    url: str | None = URL_OPTION,
) -> None:
    """Export from the registry: a de-identified cohort (--deidentify) or one patient as FHIR (--fhir).

    --deidentify writes one JSON object per line, {"case": ..., "evaluation": ...}: random pseudonyms, every date of a patient shifted back by the same random 365-1095 days, free-text sources/labs/notes removed, ages of 90 and over capped. Each line's "case" is a valid case file.

    Every exported patient gets an audit row.
    """
    if deidentify == bool(fhir):
        raise InputError("say what to export", field="export", expected="--deidentify, or PATIENT_ID --fhir FILE")
    actor = cli_actor()
    reg = open_registry(url)
    try:
        if deidentify:
            if patient is not None:
                raise InputError("--deidentify exports the whole cohort; drop PATIENT_ID", field="PATIENT_ID", value=patient)
            rows = deidentify_cohort(reg.export_records(actor, purpose="deidentified_cohort"))
            _write("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), out)
            if out != "-":
                typer.echo(f"{len(rows)} patients written to {out} (de-identified)", err=True)
            return
        if patient is None:
            raise InputError("--fhir needs a patient", field="PATIENT_ID", expected="a case id or registry id")
        try:
            from alpsdx.interop.fhir_export import export_bundle
        except ImportError:
            raise InputError("FHIR export needs alpsdx.interop", field="--fhir") from None
        pid = _find(reg, patient, actor)
        case = reg.load_case(pid, actor)
        history = reg.evaluations(pid, actor, full=True)
        assessment: dict[str, Any] | None = history[0]["result"] if history else None
        bundle = export_bundle(case, assessment)
        _write(json.dumps(bundle, indent=2) + "\n", fhir or "-")
        if fhir != "-":
            typer.echo(f"FHIR Bundle with {len(bundle.get('entry', []))} resources written to {fhir}", err=True)
    finally:
        reg.engine.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("export")(export_cmd)
