"""``alpsdx care CASE``: only the care section (cytopenias, FAS probability, dosing, response,
safety, lymphoma surveillance), as text or JSON.

The same items appear under ``care`` in ``alpsdx evaluate --format json``. Site conventions
(dosing, trough range, response and alert thresholds) come from the YAML file named by
``ALPSDX_CARE_SETTINGS``; site reference ranges from ``ALPSDX_SITE_RANGES``.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from alpsdx import knowledge
from alpsdx.care import care_section
from alpsdx.commands.core import _parse_date, load_any
from alpsdx.errors import InputError

_STYLE = {"alert": "bold red", "warning": "yellow", "info": "cyan"}
_TITLES = {"cytopenias": "Cytopenias", "biomarkers": "FAS-mutation probability", "dosing": "Dosing",
           "response": "Response to treatment", "safety": "Splenectomy and infection safety",
           "surveillance": "Lymphoma surveillance"}


class Fmt(StrEnum):
    text = "text"
    json = "json"


def render_care_text(console: Console, res: dict[str, Any]) -> None:
    """The care section as grouped, cited bullet points."""
    console.rule(f"[bold]{escape(res['case_id'])}[/bold] — care as of {res['evaluation_date']}")
    if not res["care"]:
        console.print("No care items: the case holds no counts, medications, events or variants that care reads.")
    cites: list[str] = []
    for cat, title in _TITLES.items():
        group = [i for i in res["care"] if i.get("category") == cat]
        if not group:
            continue
        console.print(f"\n[bold]{title}[/bold]")
        for item in group:
            sev = item.get("severity", "info")
            console.print(f"  [{_STYLE.get(sev, '')}]{sev.upper():7}[/] " + escape(item["message"])
                          + f" [dim]({escape(item['citation'])})[/dim]")
            for key in [item["citation"], *(c["citation"] for c in item.get("extra_citations", []))]:
                if key not in cites:
                    cites.append(key)
    used: dict[str, dict[str, Any]] = {}
    for item in res["care"]:
        for st in item.get("settings", []):
            used.setdefault(str(st["setting"]), st)
    if used:
        console.print("\n[bold]Settings used[/bold] (each labelled cited or convention; a site may change any with ALPSDX_CARE_SETTINGS):")
        for name, st in used.items():
            console.print(escape(f"  {name} = {st['value']}  ({st['label']})"))
    if cites:
        console.print("\n[bold]Sources[/bold]:")
        for key in cites:
            console.print(escape(f"  [{key}] {knowledge.resolve_citation(key)}"))
    console.print(f"\n[dim]{escape(res['disclaimer'])}[/dim]")


def _render_km(console: Console, km: dict[str, Any]) -> None:
    console.rule(f"[bold]Time to {km['level']} response: {km['lineage']}[/bold] ({km['analyte']})")
    med = "not reached" if km["median_days"] is None else f"{km['median_days']:g} days"
    console.print(f"{km['n']} cases, {km['events']} responses; median time to response {med}.")
    for day, p in km["cumulative_response"].items():
        console.print(f"  cumulative response by day {day}: {p:.0%}")
    for ex in km["excluded"]:
        console.print(escape(f"  excluded {ex['case_id']}: {ex['reason']}"))
    console.print(escape(f"[{km['citation']}] {knowledge.resolve_citation(km['citation'])}"))
    console.print(f"[dim]{escape(km['method'])}[/dim]")


def care_cmd(
    cases: list[str] = typer.Argument(..., help="Case files (JSON/YAML, FHIR Bundle JSON), folders, or '-' for stdin."),
    fmt: Fmt = typer.Option(Fmt.text, "--format", "-f", help="text | json"),
    date: str | None = typer.Option(None, "--date", help="Evaluation date YYYY-MM-DD (default: the case's, else today)."),
    pre_test: float | None = typer.Option(
        None, "--pre-test-probability",
        help="Pre-test probability of a FAS mutation, 0-1 exclusive (default: the Rensing-Ehl 2013 cohort's 38/98)."),
    treatment_start: str | None = typer.Option(
        None, "--treatment-start", help="Start of the treatment whose response is assessed (default: sirolimus course)."),
    km: str | None = typer.Option(
        None, "--km", help="Kaplan-Meier time to response across the cases for one lineage: platelets | hemoglobin | anc."),
) -> None:
    """Show the care section: cytopenia grades, FAS probability, dosing, response, safety, surveillance."""
    import datetime as dt

    from alpsdx.commands.core import _expand

    when = _parse_date(date)
    start = None
    if treatment_start is not None:
        try:
            start = dt.date.fromisoformat(treatment_start)
        except ValueError:
            raise InputError("not an ISO date", field="--treatment-start", value=treatment_start,
                             expected="YYYY-MM-DD") from None
    loaded = [load_any(src).at(when) for src in _expand(cases)]
    console = Console(width=160 if not sys.stdout.isatty() else None)
    if km is not None:
        from alpsdx.care.cohort import kaplan_meier_time_to_response

        res_km = kaplan_meier_time_to_response(loaded, km)
        if fmt is Fmt.json:
            sys.stdout.write(json.dumps(res_km, indent=2, ensure_ascii=False) + "\n")
        else:
            _render_km(console, res_km)
        return
    results = []
    for c in loaded:
        res = care_section(c, pre_test_probability=pre_test, treatment_start=start)
        res["kb_version"] = knowledge.kb_version()
        results.append(res)
    if fmt is Fmt.json:
        payload: Any = results[0] if len(results) == 1 else results
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        return
    for res in results:
        render_care_text(console, res)


def register(app: typer.Typer) -> None:
    app.command("care")(care_cmd)
