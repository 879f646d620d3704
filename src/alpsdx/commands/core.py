"""Core verbs: ``alpsdx evaluate`` and ``alpsdx knowledge``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from alpsdx import knowledge
from alpsdx.criteria import CRITERIA_SETS
from alpsdx.engine import assess
from alpsdx.errors import AlpsdxError, InputError
from alpsdx.model import Case, case_from_dict, load_case, parse_case_text

CASE_SUFFIXES = (".json", ".yaml", ".yml")


class Fmt(StrEnum):
    text = "text"
    json = "json"
    jsonl = "jsonl"


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError("not an ISO date", field="--date", value=value, expected="YYYY-MM-DD") from None


def _expand(paths: list[str]) -> list[str]:
    """Files and folders (recursively, case files only) in a stable order; '-' is stdin."""
    out: list[str] = []
    for p in paths:
        if p == "-":
            out.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            found = sorted(str(f) for f in path.rglob("*") if f.suffix.lower() in CASE_SUFFIXES and f.is_file())
            if not found:
                raise InputError("folder holds no case files", field=p, expected="*.json, *.yaml or *.yml")
            out.extend(found)
        elif path.exists():
            out.append(p)
        else:
            raise InputError("file not found", field=p)
    return out


def _bundle_to_case(data: dict[str, Any], source: str) -> Case | None:
    """A FHIR R4 Bundle becomes a case through the interop importer (issue #7)."""
    if data.get("resourceType") != "Bundle":
        return None
    try:
        from alpsdx.interop.fhir_import import bundle_to_case
    except ImportError:
        raise InputError("FHIR Bundle input needs alpsdx.interop", field=source) from None
    case, warnings = bundle_to_case(data)
    # Unmapped FHIR content is never dropped silently: each item is named on stderr.
    if warnings:
        typer.echo(f"warning: {source}: {len(warnings)} FHIR item(s) not mapped:", err=True)
        for w in warnings:
            typer.echo(f"  - {w}", err=True)
    return case


def load_any(source: str) -> Case:
    """A case from a file or '-' (stdin): case JSON/YAML, or a FHIR Bundle."""
    if source == "-":
        text = sys.stdin.read()
        label = "<stdin>"
    else:
        if not source.lower().endswith(".json"):
            return load_case(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError("file is not UTF-8 text", field=source) from None
        label = source
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                             field=label) from None
        except RecursionError:  # found by fuzzing: deeply nested arrays
            raise InputError("JSON nested too deeply", field=label) from None
        except ValueError as exc:  # found by fuzzing: integers over 4300 digits
            raise InputError(f"not valid JSON: {' '.join(str(exc).split())[:200]}", field=label) from None
        if isinstance(data, dict):
            bundle = _bundle_to_case(data, label)
            if bundle is not None:
                return bundle
        return case_from_dict(data, label)
    return parse_case_text(text, source=label)


_MARK = {"met": ("✔", "green"), "not_met": ("✘", "red"), "unknown": ("?", "yellow")}
_CAT = {"definitive": "bold green", "probable": "bold yellow", "not_met": "bold red", "indeterminate": "bold cyan"}


def _render_set(console: Console, res: dict[str, Any]) -> None:
    head = Text()
    head.append(f"{res['title']}: ", style="bold")
    head.append(res["category"].upper(), style=_CAT.get(res["category"], "bold"))
    if res.get("subtype"):
        head.append(f"   subtype {res['subtype']}", style="bold magenta")
    console.print(head)
    if res.get("category_label"):
        console.print(f"  [dim]{res['category_label']}[/dim]")
    table = Table(show_header=True, header_style="bold", expand=True, show_lines=False)
    table.add_column("", width=2)
    table.add_column("criterion", ratio=3)
    table.add_column("evidence", ratio=3)
    table.add_column("threshold", ratio=3)
    table.add_column("source", ratio=1)
    for c in res["criteria"]:
        mark, colour = _MARK[c["status"]]
        ev = "; ".join(
            f"{e['item']}={e['value']}{(' ' + e['unit']) if e.get('unit') else ''}"
            + (f" ({e['date']})" if e.get("date") else "")
            + (f" [{e['note']}]" if e.get("note") else "")
            for e in c["evidence"]
        )
        if c.get("notes"):
            ev += ("\n" if ev else "") + "\n".join(f"• {n}" for n in c["notes"])
        table.add_row(Text(mark, style=colour), Text.assemble((c["id"], "bold"), "\n" + c["label"]),
                      Text(ev or "—"), Text(c["threshold"]), Text(c["citation"]))
    console.print(table)
    if res.get("subtype_basis"):
        console.print(f"  [bold]Subtype basis:[/bold] {res['subtype_basis']}")


def render_text(console: Console, res: dict[str, Any]) -> None:
    """The readable checklist for one assessed case."""
    console.rule(f"[bold]{res['case_id']}[/bold] — evaluated {res['evaluation_date']}")
    _render_set(console, res)
    for other in res.get("other_sets", []):
        console.print()
        _render_set(console, other)
    if res.get("disagreements"):
        console.print("\n[bold red]Criteria sets disagree:[/bold red] " + "; ".join(res["disagreements"]))
    if res.get("next_tests"):
        console.print("\n[bold]Next tests[/bold] (cheapest first; each could change the category):")
        for t in res["next_tests"]:
            console.print(f"  • {escape(t['test'])} — [dim]{escape(t['why'])}[/dim]")
    if res.get("considerations"):
        console.print("\n[bold]Considerations[/bold]:")
        for c in res["considerations"]:
            console.print("  • " + escape(c))
    if res.get("variants"):
        console.print("\n[bold]Variants[/bold]:")
        for v in res["variants"]:
            desc = " ".join(str(v.get(k) or "") for k in ("gene", "hgvs_c", "hgvs_p")).strip()
            extra = ", ".join(f"{k} {v[k]}" for k in ("domain", "region", "mechanism", "origin", "classification") if v.get(k))
            console.print(f"  • {desc} — {extra}")
    if res.get("care"):
        console.print("\n[bold]Care[/bold]:")
        for item in res["care"]:
            console.print(escape(f"  • [{item.get('severity', 'info')}] {item['message']}") + f" [dim]({escape(str(item['citation']))})[/dim]")
    console.print("\n[bold]Sources[/bold]:")
    for key, text in res["sources"].items():
        console.print(escape(f"  [{key}] {text}"))
    console.print(f"\n[dim]knowledge base {res['kb_version']}; settings {res.get('settings')}. {res['disclaimer']}[/dim]")


def _summary_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="alpsdx evaluation", header_style="bold")
    table.add_column("case")
    sets = [results[0]["criteria_set"]] + [o["criteria_set"] for o in results[0].get("other_sets", [])]
    for s in sets:
        table.add_column(s)
    table.add_column("subtype")
    table.add_column("next test")
    for r in results:
        cats = [r["category"]] + [o["category"] for o in r.get("other_sets", [])]
        nxt = r["next_tests"][0]["test"] if r["next_tests"] else ""
        table.add_row(r["case_id"], *[Text(c, style=_CAT.get(c, "")) for c in cats], r.get("subtype") or "—", nxt)
    return table


def _one(src: str, criteria: str, date: dt.date | None, batch: bool) -> dict[str, Any]:
    """Assess one source; in a batch a bad file becomes an error record instead of stopping."""
    if not batch:
        return assess(load_any(src), criteria, date=date)
    try:
        return assess(load_any(src), criteria, date=date)
    except AlpsdxError as exc:
        return {"source": src, "error": exc.to_dict()}


def _iter_results(sources: list[str], criteria: str, date: dt.date | None,
                  progress: bool) -> Iterator[dict[str, Any]]:
    batch = len(sources) > 1
    if not progress:
        for src in sources:
            yield _one(src, criteria, date, batch)
        return
    with Progress(TextColumn("[bold]evaluating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("cases", total=len(sources))
        for src in sources:
            yield _one(src, criteria, date, batch)
            bar.advance(task)


def evaluate_cmd(
    cases: list[str] = typer.Argument(..., help="Case files (JSON/YAML, FHIR Bundle JSON), folders, or '-' for stdin."),
    criteria: str = typer.Option("nih2009", "--criteria", "-c", help="nih2009 | nih1999 | seif2008 | esid | all"),
    fmt: Fmt = typer.Option(Fmt.text, "--format", "-f", help="text | json | jsonl"),
    date: str | None = typer.Option(None, "--date", help="Evaluation date YYYY-MM-DD (default: the case's evaluation_date, else today)."),
) -> None:
    """Evaluate cases against the ALPS diagnostic criteria."""
    sources = _expand(cases)
    when = _parse_date(date)
    if criteria != "all" and criteria not in CRITERIA_SETS:
        raise InputError("unknown criteria set", field="--criteria", value=criteria,
                         expected=" | ".join([*CRITERIA_SETS, "all"]))
    console = Console(width=160 if not sys.stdout.isatty() else None)
    batch = len(sources) > 1
    results = _iter_results(sources, criteria, when, progress=batch and sys.stderr.isatty())
    failed: list[dict[str, Any]] = []
    if fmt is Fmt.jsonl:
        for r in results:
            if "error" in r:
                failed.append(r)
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        collected = list(results)
        failed = [r for r in collected if "error" in r]
        if fmt is Fmt.json:
            payload: Any = collected if batch else collected[0]
            sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        elif batch:
            ok = [r for r in collected if "error" not in r]
            if ok:
                console.print(_summary_table(ok))
        else:
            render_text(console, collected[0])
    if failed:
        # Every other case was evaluated and printed; the bad ones are named, and the exit
        # code says input was bad.
        for r in failed:
            typer.echo(f"error: {r['source']}: {r['error']['message']}"
                       + (f" (field {r['error']['field']})" if r["error"].get("field") else ""), err=True)
        raise typer.Exit(2)


def knowledge_cmd(
    fmt: str = typer.Option("text", "--format", "-f", help="text | json"),
) -> None:
    """List every rule, threshold and citation in the knowledge base."""
    from alpsdx.criteria import criteria_set

    sets = []
    for name in CRITERIA_SETS:
        cs = criteria_set(name)
        spec = knowledge.load(f"criteria/{name}")
        sets.append({
            "id": name, "title": cs.title, "citation": cs.citation,
            "rules": [{"id": r["id"], "group": r["group"], "label": r["label"], "citation": r["citation"],
                       "params": knowledge.thaw(r.get("params", {}))} for r in spec["rules"]],
        })
    settings = knowledge.thaw(knowledge.load("settings")["settings"])
    ranges = knowledge.thaw(knowledge.load("reference_ranges")["ranges"])
    cites = knowledge.thaw(knowledge.citations())
    if fmt == "json":
        sys.stdout.write(json.dumps({"kb_version": knowledge.kb_version(), "criteria_sets": sets,
                                     "settings": settings,
                                     "reference_ranges": ranges, "citations": cites}, indent=2, ensure_ascii=False) + "\n")
        return
    console = Console()
    console.print(f"[bold]alpsdx knowledge base[/bold] {knowledge.kb_version()}")
    for s in sets:
        table = Table(title=f"{s['title']} [{s['citation']}]", header_style="bold", expand=True)
        table.add_column("rule", ratio=2)
        table.add_column("label", ratio=4)
        table.add_column("thresholds / parameters", ratio=4)
        table.add_column("source", ratio=1)
        for r in s["rules"]:
            table.add_row(Text(r["id"]), Text(r["label"]), Text(json.dumps(r["params"], ensure_ascii=False)),
                          Text(r["citation"]))
        console.print(table)
    table = Table(title="Site settings (conventions, not published figures)", header_style="bold", expand=True)
    table.add_column("setting")
    table.add_column("value")
    table.add_column("note", ratio=4)
    for name, entry in settings.items():
        table.add_row(name, str(entry.get("value")), str(entry.get("note", "")))
    console.print(table)
    table = Table(title="Reference ranges by age (months) and sex", header_style="bold", expand=True)
    for col in ("analyte", "band", "sex", "low", "high", "unit", "source"):
        table.add_column(col)
    for analyte, bands in ranges.items():
        for b in bands:
            table.add_row(analyte, str(b.get("band", "")), str(b.get("sex") or "any"), str(b.get("low")),
                          str(b.get("high")), str(b.get("unit")), str(b.get("citation")))
    console.print(table)
    console.print("[bold]Citations[/bold]")
    for key, c in cites.items():
        console.print(escape(f"  [{key}] {c['text']}" + (f" PMID {c['pmid']}" if c.get("pmid") else "")))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
    app.command("knowledge")(knowledge_cmd)
