"""FHIR verbs: ``alpsdx import BUNDLE.json`` into the registry.

(``alpsdx export PATIENT_ID --fhir out.json`` lives with the registry verbs in
``commands/db.py`` and calls ``alpsdx.interop.fhir_export``; ``alpsdx evaluate
bundle.json`` reads Bundles through ``alpsdx.interop.fhir_import``.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from alpsdx.errors import InputError

__all__ = ["import_cmd", "register"]


def _read_bundle(source: str) -> tuple[dict[str, Any], bytes]:
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise InputError("file not found", field=source) from None
        except IsADirectoryError:
            raise InputError("a folder, not a Bundle file", field=source) from None
    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("file is not UTF-8 text", field=source) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field=source) from None
    if not isinstance(parsed, dict):
        raise InputError("a FHIR Bundle must be a JSON object", field=source)
    return parsed, data


def _summary(warnings: list[Any]) -> list[str]:
    """Warnings grouped by message, each with the resources it names (a Synthea bundle stays readable)."""
    groups: dict[str, list[str]] = {}
    for w in warnings:
        if "/" in w.resource:
            groups.setdefault(f"{w.path}: {w.message}", []).append(w.resource)
        else:
            groups.setdefault(str(w), [])
    return [text + (f" [{', '.join(res)}]" if res else "") for text, res in groups.items()]


def import_cmd(
    bundles: list[str] = typer.Argument(..., help="FHIR R4 Bundle JSON files (collection, searchset or transaction), or '-'."),
    patient: str | None = typer.Option(None, "--patient", help="The Patient id to import when a Bundle holds several."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Map and report, but write nothing to the registry."),
    fmt: str = typer.Option("text", "--format", "-f", help="text | json"),
    url: str | None = typer.Option(None, "--url", help="Database URL (default: $ALPSDX_DATABASE_URL, else sqlite:///var/alpsdx.sqlite3)."),
) -> None:
    """Import FHIR R4 Bundles into the registry (one patient per Bundle); lists what was not mapped."""
    from alpsdx.interop.fhir_import import bundle_to_case

    if fmt not in ("text", "json"):
        raise InputError("unknown format", field="--format", value=fmt, expected="text | json")
    parsed = []
    for source in bundles:
        bundle, raw = _read_bundle(source)
        case, warnings = bundle_to_case(bundle, patient_id=patient)
        parsed.append((source, raw, case, warnings))  # every file is checked before anything is written
    results: list[dict[str, Any]] = []
    reg = None
    if not dry_run:
        from alpsdx.commands.db import cli_actor, open_registry

        reg = open_registry(url)
    try:
        for source, raw, case, warnings in parsed:
            row: dict[str, Any] = {"file": source, "case_id": case.id, "observations": len(case.observations),
                                   "variants": len(case.variants), "medications": len(case.medications),
                                   "warnings": [w.to_dict() for w in warnings]}
            if reg is not None:
                actor = cli_actor()
                pid = reg.save_case(case, actor, trigger="import_fhir")
                reg.add_file(pid, "fhir", Path(source).name if source != "-" else "stdin.json", raw, actor,
                             result={"warnings": row["warnings"]})
                row["patient_id"] = pid
                latest = reg.evaluations(pid, actor)[0]
                row["category"] = latest["category"]
            else:
                row["case"] = case.to_json_dict()
            results.append(row)
    finally:
        if reg is not None:
            reg.engine.dispose()
    if fmt == "json":
        sys.stdout.write(json.dumps(results if len(results) > 1 else results[0], indent=2, ensure_ascii=False) + "\n")
        return
    for (_s, _r, _c, warnings), row in zip(parsed, results, strict=True):
        where = f"registry patient {row['patient_id']} ({row['category']})" if "patient_id" in row else "not written (--dry-run)"
        typer.echo(f"{row['file']}: case {row['case_id']} -> {where}; {row['observations']} observations, "
                   f"{row['variants']} variants, {row['medications']} medications")
        if warnings:
            typer.echo(f"  {len(warnings)} item(s) not mapped:")
            for line in _summary(warnings):
                typer.echo(f"   - {line}")


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
