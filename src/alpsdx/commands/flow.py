"""``alpsdx dnt``: double-negative T cells from raw FCS files.

    alpsdx dnt FILE_OR_DIR... [--gates gates.xml|ws.wsp --dnt-gate ID] [--plots DIR]
               [--format table|csv|json] [--case CASE.json] [--channel CD3=R780-A]...
               [--comp matrix.csv] [--dataset N] [--jobs N] [--export-gates DIR]
               [--ignore-offset-error]

A folder runs every FCS file in it (recursively) as a batch across cores with a progress
bar on stderr. Gating (``alpsdx.flow.pipeline``) and plotting (``alpsdx.flow.plots``) are
separate library calls; this module only wires them to the command line. ``--case``
appends the DNT observations, dated from each file's $DATE, to a case file atomically, so
``alpsdx evaluate`` uses them. Bad input exits 2 with a one-line error per file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from alpsdx.commands.casefile import append_items
from alpsdx.errors import AlpsdxError, InputError

FCS_SUFFIXES = (".fcs", ".lmd")


class DntFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def expand_inputs(items: list[str]) -> list[Path]:
    """Files as given; folders expanded to their FCS files (recursively, sorted)."""
    out: list[Path] = []
    for raw in items:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in FCS_SUFFIXES)
            if not found:
                raise InputError("folder holds no FCS files", field=raw, expected="*.fcs or *.lmd files")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError("file not found", field=raw, expected="an FCS file or a folder of them")
    seen: set[Path] = set()
    unique = []
    for p in out:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(p)
    return unique


def _plot_name(path: Path, dataset: int) -> str:
    return f"{path.stem}.dnt.png" if dataset == 0 else f"{path.stem}.ds{dataset}.dnt.png"


def run_one(path: str, options: dict[str, Any]) -> dict[str, Any]:
    """Analyse one file (in a worker process): the JSON summary, its observations, plot path.

    Returns ``{"error": {...}}`` instead of raising for alpsdx errors, so a batch can report
    every bad file.
    """
    from alpsdx.flow.pipeline import analyse_fcs

    try:
        res = analyse_fcs(
            path, gates=options.get("gates"), dnt_gate=options.get("dnt_gate"),
            channel_overrides=options.get("channels") or None, spill_csv=options.get("comp"),
            dataset=int(options.get("dataset", 0)),
            keep_columns=bool(options.get("plots")),
            ignore_offset_error=bool(options.get("ignore_offset_error")),
        )
        summary = res.to_dict()
        if options.get("plots"):
            out = Path(options["plots"]) / _plot_name(Path(path), int(options.get("dataset", 0)))
            if options.get("gates"):
                from alpsdx.flow.gatingml import gate_steps, load_gates
                from alpsdx.flow.plots import plot_gate_steps

                steps = gate_steps(load_gates(options["gates"]), path, options["dnt_gate"])
                summary["plot"] = str(plot_gate_steps(steps, summary, out))
            else:
                from alpsdx.flow.plots import plot_dnt

                summary["plot"] = str(plot_dnt(res, out))
        if options.get("export_gates") and res.gating is not None:
            from alpsdx.flow.compensation import load_spill_csv
            from alpsdx.flow.gatingml import export_gatingml

            spill = load_spill_csv(options["comp"]) if options.get("comp") else None
            gml = Path(options["export_gates"]) / f"{Path(path).stem}.gating-ml.xml"
            gml.parent.mkdir(parents=True, exist_ok=True)
            export_gatingml(res.gating.gates, res.xf, gml, spill=spill)
            summary["gating_ml"] = str(gml)
        obs = ([o.model_dump(mode="json", exclude_none=True) for o in res.to_observations()]
               if options.get("case") else [])
        return {"summary": summary, "observations": obs}
    except AlpsdxError as exc:
        return {"error": {**exc.to_dict(), "file": path, "message": str(exc)}}


def analyse_paths(paths: list[Path], options: dict[str, Any], jobs: int | None = None,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Run every file, in input order; in parallel when there are several files."""
    n = len(paths)
    workers = max(1, min(jobs or (os.cpu_count() or 1), n))
    if n == 1 or workers == 1:
        return [run_one(str(p), options) for p in paths]
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    results: list[dict[str, Any] | None] = [None] * n
    console = Console(file=sys.stderr)
    with ProcessPoolExecutor(max_workers=workers) as pool, Progress(
        TextColumn("[bold]dnt[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not progress, transient=True,
    ) as bar:
        task = bar.add_task("files", total=n)
        futs = {pool.submit(run_one, str(p), options): i for i, p in enumerate(paths)}
        for fut in as_completed(futs):
            results[futs[fut]] = fut.result()
            bar.advance(task)
    return [r for r in results if r is not None]


# ------------------------------------------------------------------------------ output


def _fmt_pct(v: float | None, ci: list[float] | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f}\n({ci[0]:.2f}–{ci[1]:.2f})" if ci else f"{v:.2f}"


CSV_COLUMNS = [
    "file", "events", "date", "method", "dnt_definition", "lymphocytes", "cd3", "tcrab", "dnt",
    "dnt_pct_lymphocytes", "dnt_pct_lymphocytes_ci_low", "dnt_pct_lymphocytes_ci_high",
    "dnt_pct_cd3", "dnt_pct_cd3_ci_low", "dnt_pct_cd3_ci_high",
    "dnt_pct_tcrab", "dnt_pct_tcrab_ci_low", "dnt_pct_tcrab_ci_high",
    "b220_pct_dnt", "compensation", "qc",
]


def to_csv(summaries: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for s in summaries:
        row: dict[str, Any] = {k: s.get(k) for k in CSV_COLUMNS if k in s}
        for k in ("lymphocytes", "cd3", "tcrab", "dnt"):
            row[k] = s.get("counts", {}).get(k)
        for k in ("dnt_pct_lymphocytes", "dnt_pct_cd3", "dnt_pct_tcrab"):
            ci = s.get(k + "_ci")
            row[k + "_ci_low"] = ci[0] if ci else None
            row[k + "_ci_high"] = ci[1] if ci else None
        row["qc"] = ";".join(f["code"] for f in s.get("qc", []))
        w.writerow(row)
    return buf.getvalue()


def print_table(summaries: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 132)
    t = Table(title="Double-negative T cells (95 % Wilson CI)", show_lines=True)
    for col in ("file", "events", "lymphocytes", "% of lymphocytes", "% of CD3+", "% of TCRαβ+",
                "QC"):
        t.add_column(col)
    for s in summaries:
        c = s.get("counts", {})
        flags = "\n".join(f"{f['severity']}: {f['code']}" for f in s.get("qc", [])) or "none"
        name = Path(s["file"]).name
        if s.get("date"):
            name += f"\n{s['date']}"
        t.add_row(
            escape(name), f"{s['events']:,}", f"{c.get('lymphocytes', 0):,}" if "lymphocytes" in c else "n/a",
            _fmt_pct(s.get("dnt_pct_lymphocytes"), s.get("dnt_pct_lymphocytes_ci")),
            _fmt_pct(s.get("dnt_pct_cd3"), s.get("dnt_pct_cd3_ci")),
            _fmt_pct(s.get("dnt_pct_tcrab"), s.get("dnt_pct_tcrab_ci")),
            escape(flags),
        )
    console.print(t)
    for s in summaries:
        console.print(f"[bold]{escape(Path(s['file']).name)}[/bold]: DNT = {escape(s.get('dnt_definition', 'the user-named gate'))}"
                      + (f"; plot {escape(s['plot'])}" if s.get("plot") else ""))
        for f in s.get("qc", []):
            console.print(f"  {escape('[' + f['severity'] + ']')} {escape(f['message'])}"
                          + (f" [dim]({escape(f['citation'])})[/dim]" if f.get("citation") else ""))


# ------------------------------------------------------------------------------ case file


def append_observations(path: str | Path, observations: list[dict[str, Any]]) -> int:
    """Append DNT observations to a case file (exact repeats skipped); returns how many."""
    return append_items(path, "observations", observations, lambda o: json.dumps(o, sort_keys=True))


# ------------------------------------------------------------------------------ command


def register(app: typer.Typer) -> None:
    @app.command("dnt")
    def dnt_cmd(
        inputs: list[str] = typer.Argument(..., help="FCS files or folders of FCS files (a folder runs as a batch)."),
        gates: Path | None = typer.Option(None, "--gates", help="The lab's gates: Gating-ML 2.0 .xml or FlowJo .wsp (applied by FlowKit)."),
        dnt_gate: str | None = typer.Option(None, "--dnt-gate", help="With --gates: the id (or a/b/id path) of the DNT gate."),
        plots: Path | None = typer.Option(None, "--plots", help="Write one gate-plot PNG per sample into this folder."),
        fmt: DntFormat = typer.Option(DntFormat.table, "--format", help="table, csv or json."),
        case: Path | None = typer.Option(None, "--case", help="Append the DNT observations (dated from $DATE) to this case file."),
        channel: list[str] = typer.Option([], "--channel", help="Marker=channel override, e.g. CD3=R780-A (repeatable)."),
        comp: Path | None = typer.Option(None, "--comp", help="Spillover matrix CSV (FlowJo export) instead of the file's $SPILLOVER."),
        dataset: int = typer.Option(0, "--dataset", min=0, help="Data set to analyse in a multi-data-set file (0 = first)."),
        jobs: int | None = typer.Option(None, "--jobs", min=1, help="Worker processes for a batch (default: all cores)."),
        export_gates: Path | None = typer.Option(None, "--export-gates", help="Write the automated gates of each sample as Gating-ML 2.0 into this folder."),
        ignore_offset_error: bool = typer.Option(False, "--ignore-offset-error", help="Accept a DATA end offset one byte too far (a common writer bug)."),
    ) -> None:
        """Double-negative T cells (CD3+ TCRαβ+ CD4− CD8−) from raw FCS files, with gate plots."""
        if dnt_gate and gates is None:
            raise InputError("--dnt-gate needs --gates", field="--dnt-gate", value=dnt_gate)
        if gates is not None and export_gates is not None:
            raise InputError("--export-gates writes the automated gates; the lab's gates are "
                             "already a file", field="--export-gates")
        if gates is not None and not gates.is_file():
            raise InputError("gate file not found", field="--gates", value=str(gates))
        if comp is not None and not comp.is_file():
            raise InputError("compensation matrix file not found", field="--comp", value=str(comp))
        if case is not None and not case.is_file():
            raise InputError("case file not found", field="--case", value=str(case))
        from alpsdx.flow.markers import parse_overrides

        parse_overrides(channel)  # fail fast on a malformed override, before any worker runs
        paths = expand_inputs(inputs)
        options: dict[str, Any] = {
            "gates": str(gates) if gates else None, "dnt_gate": dnt_gate, "channels": list(channel),
            "comp": str(comp) if comp else None, "dataset": dataset,
            "plots": str(plots) if plots else None,
            "export_gates": str(export_gates) if export_gates else None,
            "ignore_offset_error": ignore_offset_error,
            "case": str(case) if case else None,
        }
        if plots is not None:
            plots.mkdir(parents=True, exist_ok=True)
        results = analyse_paths(paths, options, jobs=jobs, progress=sys.stderr.isatty())
        ok = [r for r in results if "summary" in r]
        errors = [r["error"] for r in results if "error" in r]
        summaries = [r["summary"] for r in ok]
        if summaries:
            if fmt is DntFormat.json:
                typer.echo(json.dumps(summaries, indent=2, ensure_ascii=False))
            elif fmt is DntFormat.csv:
                typer.echo(to_csv(summaries), nl=False)
            else:
                print_table(summaries)
        if case is not None and ok:
            obs = [o for r in ok for o in r["observations"]]
            added = append_observations(case, obs)
            undated = sum(1 for s in summaries if not s.get("date"))
            typer.echo(f"{added} observation(s) added to {case}"
                       + (f" ({undated} file(s) without $DATE: observations undated)" if undated else ""),
                       err=True)
        for e in errors:
            typer.echo(f"error: {Path(e['file']).name}: {e['message']}", err=True)
        if errors:
            raise typer.Exit(2)
