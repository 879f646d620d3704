"""Web verbs: ``alpsdx serve``, ``alpsdx demo`` (what ``make run`` starts) and ``alpsdx report``.

- ``serve [--host H] [--port P]``: reads ``ALPSDX_DATABASE_URL`` (default SQLite
  ./var/alpsdx.sqlite3) and ``ALPSDX_ADMIN_PASSWORD`` (creates the ``admin`` account when
  the database has no user), migrates the database and serves the app; FastAPI's spec is
  at ``/openapi.json``.
- ``demo``: the same on 127.0.0.1:8000, after loading the synthetic example patients
  from ``examples/`` into an empty database and creating ``admin`` with the password from
  ``ALPSDX_ADMIN_PASSWORD`` or a generated one, printed once.
- ``report PATIENT_ID [--pdf out.pdf] [--html out.html]``: the patient report.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from alpsdx.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from alpsdx.store import Actor

DEMO_HOST = "127.0.0.1"
DEMO_PORT = 8000
ADMIN_USER = "admin"


def _cli_actor() -> Actor:
    from alpsdx.store import Actor

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(f"cli:{who}", "admin", "cli")


def _settings(keep_secret: Path | None = None):  # type: ignore[no-untyped-def]
    """Settings from the environment. Without ``ALPSDX_SECRET_KEY`` a random key signs the
    cookies: kept in ``keep_secret`` (owner-only file) when given, so sessions survive a
    restart, else for this process only."""
    from alpsdx.web.settings import Settings

    settings = Settings.from_env()
    if settings.secret_key:
        return settings
    if keep_secret is not None:
        if keep_secret.exists():
            settings.secret_key = keep_secret.read_text().strip()
        else:
            keep_secret.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(32)
            fd = os.open(keep_secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key)
            settings.secret_key = key
        return settings
    settings.secret_key = secrets.token_urlsafe(32)
    typer.echo("note: ALPSDX_SECRET_KEY is not set; a random key signs this run's sessions", err=True)
    return settings


def _ensure_admin(reg, *, generate: bool) -> None:  # type: ignore[no-untyped-def]
    """Create ``admin`` when there is no user: the env password, else (``generate``) a new one."""
    if reg.count_users() > 0:
        return
    password = os.environ.get("ALPSDX_ADMIN_PASSWORD") or ""
    if not password:
        if not generate:
            typer.echo("note: no user exists; set ALPSDX_ADMIN_PASSWORD to create the admin account", err=True)
            return
        password = secrets.token_urlsafe(12)
        reg.create_user(ADMIN_USER, password, "admin", _cli_actor())
        # Printed once: it is stored only as an argon2 hash.
        typer.echo(f"Created user '{ADMIN_USER}' with password: {password}")
        typer.echo("(shown once; set ALPSDX_ADMIN_PASSWORD to choose it)")
        return
    from alpsdx.web.security import check_admin_password

    check_admin_password(password, development=os.environ.get("ALPSDX_ENV", "").strip().lower() == "development")
    reg.create_user(ADMIN_USER, password, "admin", _cli_actor())
    typer.echo(f"Created user '{ADMIN_USER}' with the password from ALPSDX_ADMIN_PASSWORD")


def _example_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".json", ".yaml", ".yml") and p.is_file())


def load_examples(reg, folder: Path) -> int:  # type: ignore[no-untyped-def]
    """Load every case file in ``folder`` into an empty registry; returns how many."""
    from alpsdx.model import load_case

    if reg.count_patients() > 0:
        return 0
    n = 0
    for path in _example_files(folder):
        reg.save_case(load_case(path), _cli_actor(), trigger="demo_load")
        n += 1
    return n


def _default_examples() -> Path:
    here = Path("examples")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[3] / "examples"


def _run(app, host: str, port: int, workers: int = 1) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn's access log prints the full path and query string (a search may hold an
    # identifier); alpsdx.web logs the route template instead.
    if workers == 1:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="info", proxy_headers=False)
        return
    # Several processes: each builds its app from the environment (same key, same database);
    # state they must share (sessions, CDS JWT ids, login failures, the audit chain) is in the database.
    os.environ["ALPSDX_SECRET_KEY"] = app.state.settings.secret_key or app.state.secret
    app.state.engine.dispose()
    uvicorn.run("alpsdx.web.app:app_from_env", factory=True, workers=workers, host=host, port=port,
                access_log=False, log_level="info", proxy_headers=False)


def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, max=64,
                                help="Worker processes (one per core serves CDS Hooks and pages under load)."),
) -> None:
    """Serve the clinician web app and the JSON API (migrating the database first)."""
    from alpsdx.web.app import create_app

    app = create_app(_settings())
    _ensure_admin(app.state.registry, generate=False)
    typer.echo(f"alpsdx serving on http://{host}:{port}/  (API spec: /openapi.json; {workers} worker"
               f"{'s' if workers > 1 else ''})")
    _run(app, host, port, workers)


def demo_cmd(
    examples: Path = typer.Option(None, "--examples", help="Folder of case files to load into an empty database."),
    host: str = typer.Option(DEMO_HOST, "--host", help="Interface to listen on."),
    port: int = typer.Option(DEMO_PORT, "--port", min=1, max=65535, help="TCP port."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Set up only; do not start the server."),
) -> None:
    """Set up a local registry (migrate, load examples/ if empty, create admin) and serve it."""
    from alpsdx.web.app import create_app

    app = create_app(_settings(keep_secret=Path("var") / "secret_key"))
    reg = app.state.registry
    folder = examples or _default_examples()
    if not folder.is_dir():
        raise InputError("examples folder not found", field="--examples", value=str(folder))
    n = load_examples(reg, folder)
    typer.echo(f"Loaded {n} example patients from {folder}" if n else
               f"Database already holds {reg.count_patients()} patients; examples not loaded")
    _ensure_admin(reg, generate=True)
    if no_serve:
        return
    typer.echo(f"alpsdx demo on http://{host}:{port}/  (sign in as '{ADMIN_USER}')")
    _run(app, host, port)


def report_cmd(
    patient_id: str = typer.Argument(..., metavar="PATIENT_ID", help="The patient's id (as in the case file) or registry number."),
    pdf: Path = typer.Option(None, "--pdf", help="Write the PDF report here."),
    html: Path = typer.Option(None, "--html", help="Write the HTML report here."),
) -> None:
    """The patient report (checklist, subtype, care, plots, sources) as PDF and/or HTML."""
    from alpsdx.report import build_html, html_to_pdf
    from alpsdx.store import Registry, make_engine, upgrade
    from alpsdx.web.settings import Settings

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    reg = Registry(engine, settings.upload_dir)
    actor = _cli_actor()
    pid = reg.find_patient_id(patient_id, actor)
    if pid is None and patient_id.isdigit():
        pid = int(patient_id)
    if pid is None:
        raise NotFoundError("no such patient", field="PATIENT_ID", value=patient_id)
    text = build_html(reg, pid, actor)
    if html is not None:
        html.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {html}", err=True)
    if pdf is not None:
        data = html_to_pdf(text)
        tmp = pdf.with_name(pdf.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(pdf)
        typer.echo(f"wrote {pdf} ({len(data)} bytes)", err=True)
    if html is None and pdf is None:
        sys.stdout.write(text)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
    app.command("demo")(demo_cmd)
    app.command("report")(report_cmd)
