"""``alpsdx screen``: rank the persons of an OMOP CDM v5.4 warehouse for undiagnosed ALPS.

    alpsdx screen --omop DIR|DB --backend duckdb|spark [--top K] [--out ranked.csv|parquet]
    alpsdx screen evaluate --omop DIR [--truth truth.csv] [--k 10 --k 50]
    alpsdx screen synth OUT_DIR [--persons N] [--alps-rate R] [--vocabulary] [--format csv]

A progress display shows each stage on stderr; the ranked list (rank, person_id, score,
flagged, flag_date, evidence, next_test, citations, then every feature) goes to ``--out``;
the counts of persons scanned, ranked, flagged and excluded (with reasons) are printed,
and written as JSON with ``--summary``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from alpsdx.errors import InputError


class Backend(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


class Fmt(StrEnum):
    parquet = "parquet"
    csv = "csv"


def _console() -> Console:
    return Console(stderr=True)


@contextmanager
def _stages(total: int, enabled: bool) -> Iterator[Any]:
    """A progress bar over named stages; yields a callback ``step(stage_name)``."""
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        console=_console(), disable=not enabled, transient=False)
    with progress:
        task = progress.add_task("opening OMOP tables", total=total)
        state = {"first": True}

        def step(stage: str) -> None:
            if not state["first"]:
                progress.advance(task)
            state["first"] = False
            progress.update(task, description=stage)

        yield step
        progress.update(task, completed=total, description="done")


def _open(omop: str, backend: Backend, spark_master: str, database: str | None) -> Any:
    from alpsdx.screening.backends import open_omop

    return open_omop(omop, backend=backend.value, spark_master=spark_master, database=database)


def _run(omop: str, backend: Backend, top: int | None, spark_master: str, database: str | None,
         dnt_codes: list[str], progress: bool) -> Any:
    from alpsdx.screening.screen import STAGES, run_screen

    with _stages(len(STAGES) + 1, progress) as step:
        tables = _open(omop, backend, spark_master, database)
        return run_screen(tables, top=top, extra_dnt_codes=dnt_codes, progress=step)


def _print_counts(console: Console, summary: dict[str, Any]) -> None:
    t = Table(title=f"ALPS screen of {summary['source']} ({summary['backend']}, "
                    f"{summary['concept_matching']} matching)")
    t.add_column("count")
    t.add_column("persons / rows", justify="right")
    for k, v in summary["counts"].items():
        t.add_row(k.replace("_", " "), str(v))
    console.print(t)
    for ex in summary["exclusions"]:
        console.print(f"excluded: {ex['persons']} - {ex['reason']}")
    for u in summary["unconverted_measurements"]:
        console.print(f"not converted: {u['rows']} {u['analyte']} rows in unit {u['unit']!r} ({u['reason']})")
    for n in summary["notes"]:
        console.print(f"note: {n}")


OMOP_HELP = ("OMOP CDM v5.4 input: a folder of Parquet/CSV tables, a DuckDB file, (spark) a catalog "
             "database, or an Ibis connection URL (postgres://user@host/db, trino://...).")


def register(app: typer.Typer) -> None:
    screen = typer.Typer(
        name="screen", no_args_is_help=False, invoke_without_command=True,
        help="Screen an OMOP CDM v5.4 warehouse for undiagnosed ALPS (ranked persons with evidence).",
    )

    @screen.callback()
    def screen_main(
        ctx: typer.Context,
        omop: str | None = typer.Option(None, "--omop", help=OMOP_HELP),
        backend: Backend = typer.Option(Backend.duckdb, "--backend", help="duckdb (embedded) or spark."),
        top: int | None = typer.Option(None, "--top", help="Keep the K highest-ranked persons."),
        out: Path | None = typer.Option(None, "--out", help="Write the ranked list (.csv or .parquet)."),
        summary: Path | None = typer.Option(None, "--summary", help="Write counts and exclusions as JSON."),
        spark_master: str = typer.Option("local[2]", "--spark-master", help="Spark master URL."),
        database: str | None = typer.Option(None, "--database",
                                            help="Schema holding the OMOP tables (DuckDB file or URL)."),
        dnt_code: list[str] = typer.Option([], "--dnt-code",
                                           help="Local measurement_source_value of DNT % of lymphocytes (repeatable)."),
        show: int = typer.Option(10, "--show", help="Rows of the ranked list to print."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress display on stderr."),
    ) -> None:
        if ctx.invoked_subcommand is not None:
            return
        if omop is None:
            raise InputError("missing --omop", field="omop", value=None, expected=OMOP_HELP)
        if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
            raise InputError("unknown output format", field="out", value=str(out),
                             expected="a file name ending in .csv or .parquet")
        from alpsdx.screening.screen import write_ranked

        result = _run(omop, backend, top, spark_master, database, dnt_code, progress)
        console = Console()
        summ = result.summary()
        _print_counts(console, summ)
        if show > 0 and len(result.ranked):
            t = Table(title=f"top {min(show, len(result.ranked))} undiagnosed (flag at score >= "
                            f"{summ['flag_threshold']})")
            for c in ("rank", "person_id", "score", "flag_date", "evidence"):
                t.add_column(c, overflow="fold")
            for r in result.ranked.head(show).itertuples():
                t.add_row(str(r.rank), str(r.person_id), str(r.score), str(r.flag_date or ""), r.evidence)
            console.print(t)
        if out is not None:
            write_ranked(result.ranked, out)
            console.print(f"wrote {len(result.ranked)} rows to {out}")
        if summary is not None:
            summary.write_text(json.dumps(summ, indent=2, default=str), encoding="utf-8")

    @screen.command("evaluate")
    def evaluate_cmd(
        omop: str = typer.Option(..., "--omop", help=OMOP_HELP),
        truth: Path | None = typer.Option(None, "--truth",
                                          help="CSV of true cases (person_id[,onset_date,diagnosis_date]); "
                                               "default: OMOP_DIR/truth.csv if present, else D89.82 codes."),
        k: list[int] = typer.Option([10, 50, 100], "--k", help="k for precision@k (repeatable)."),
        backend: Backend = typer.Option(Backend.duckdb, "--backend"),
        spark_master: str = typer.Option("local[2]", "--spark-master"),
        as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
        progress: bool = typer.Option(True, "--progress/--no-progress"),
    ) -> None:
        """Sensitivity among true cases, precision at top-k and lead time before diagnosis."""
        from alpsdx.screening.evaluate import evaluate, read_truth

        if truth is None and Path(omop).is_dir() and (Path(omop) / "truth.csv").is_file():
            truth = Path(omop) / "truth.csv"
        truth_df = read_truth(truth) if truth is not None else None
        result = _run(omop, backend, None, spark_master, None, [], progress)
        ev = evaluate(result, truth=truth_df, ks=k)
        d = ev.to_dict()
        if as_json:
            typer.echo(json.dumps(d, indent=2))
            return
        console = Console()
        t = Table(title=f"ALPS screen evaluation (truth: {d['truth']})")
        t.add_column("metric")
        t.add_column("value", justify="right")
        sens = "n/a" if ev.sensitivity is None else f"{ev.sensitivity:.3f}"
        t.add_row("cases", str(ev.cases))
        t.add_row(f"sensitivity (score >= {ev.flag_threshold})", f"{sens} ({ev.flagged_cases}/{ev.cases})")
        for kk, v in ev.precision_at_k.items():
            t.add_row(f"precision@{kk}", "n/a" if v is None else f"{v:.3f}")
        t.add_row("diagnosed cases (D89.82)", str(ev.diagnosed_cases))
        t.add_row("flagged before diagnosis", str(ev.flagged_before_diagnosis))
        for name, v in ev.lead_time_months.items():
            t.add_row(f"lead time {name} (months)", "n/a" if v is None else f"{v:.1f}")
        console.print(t)
        for n in ev.notes:
            console.print(f"note: {n}")

    @screen.command("synth")
    def synth_cmd(
        out: Path = typer.Argument(..., help="New folder for the synthetic OMOP tables."),
        persons: int = typer.Option(1000, "--persons"),
        alps_rate: float = typer.Option(0.01, "--alps-rate", help="Share of persons planted ALPS-like."),
        diagnosed_fraction: float = typer.Option(0.5, "--diagnosed-fraction",
                                                 help="Share of planted persons later coded D89.82."),
        measurements: float = typer.Option(20.0, "--measurements-per-person"),
        seed: int = typer.Option(0, "--seed"),
        fmt: Fmt = typer.Option(Fmt.parquet, "--format"),
        vocabulary: bool = typer.Option(False, "--vocabulary/--source-only",
                                        help="Write concept ids and vocabulary tables (synthetic ids)."),
        progress: bool = typer.Option(True, "--progress/--no-progress"),
    ) -> None:
        """Write a synthetic OMOP warehouse with planted ALPS-like persons (and truth.csv)."""
        from alpsdx.screening.synthetic import generate

        bar = Progress(TextColumn("generating persons"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                       TimeElapsedColumn(), console=_console(), disable=not progress)
        with bar:
            task = bar.add_task("persons", total=persons)
            s = generate(out, persons=persons, alps_rate=alps_rate, diagnosed_fraction=diagnosed_fraction,
                         measurements_per_person=measurements, seed=seed, fmt=fmt.value,
                         vocabulary=vocabulary, chunk_persons=max(1000, min(100_000, persons // 10 or 1)),
                         progress=lambda n: bar.advance(task, n))
        typer.echo(f"wrote {s.persons} persons ({s.planted} planted ALPS-like, {s.diagnosed} coded D89.82) "
                   f"to {s.path}: " + ", ".join(f"{k} {v}" for k, v in s.rows.items()))

    app.add_typer(screen)
