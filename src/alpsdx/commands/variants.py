"""``alpsdx variants``: HGVS strings or annotated VCFs -> annotated FAS/FASLG/CASP10 variants.

Prints each variant with its domain, region, expected mechanism, origin (and basis),
classification, risk and considerations; ``--case`` appends the variants to a case file
atomically (validated first, written to a temporary file, then renamed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alpsdx import knowledge
from alpsdx.commands.casefile import append_items
from alpsdx.errors import InputError, VariantError
from alpsdx.genetics import VcfCall, annotate_all, parse_hgvs, read_vcf_calls
from alpsdx.model import Variant

VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")


class Fmt(StrEnum):
    table = "table"
    json = "json"


@dataclass
class Collected:
    """What ``collect`` read: the variants and, by index, VCF exon/intron/depth and notes."""

    variants: list[Variant]
    exons: dict[int, str | None]
    introns: dict[int, str | None]
    depths: dict[int, int | None]
    notes: list[list[str]]
    calls: dict[int, VcfCall]


def _is_vcf(arg: str) -> bool:
    low = arg.lower()
    return low.endswith(VCF_SUFFIXES) or (Path(arg).is_file() and ":" not in arg)


def collect(
    inputs: list[str],
    *,
    gene: str | None = None,
    sample: str | None = None,
    classification: str | None = None,
    origin: str | None = None,
    zygosity: str | None = None,
    vaf: float | None = None,
) -> Collected:
    """Variants from the inputs, with exon, intron, depth and reader notes by index."""
    variants: list[Variant] = []
    exons: dict[int, str | None] = {}
    introns: dict[int, str | None] = {}
    calls: dict[int, VcfCall] = {}
    depths: dict[int, int | None] = {}
    notes: list[list[str]] = []
    for arg in inputs:
        if _is_vcf(arg):
            if not Path(arg).is_file():
                raise VariantError("file not found", field="vcf", value=arg)
            for call in read_vcf_calls(arg, sample):
                exons[len(variants)] = call.exon
                introns[len(variants)] = call.intron
                calls[len(variants)] = call
                depths[len(variants)] = call.depth
                notes.append(list(call.notes))
                variants.append(call.variant)
            continue
        v = parse_hgvs(arg, gene)
        update: dict[str, Any] = {}
        if classification:
            update["classification"] = classification
        if origin:
            update["origin"] = origin
        if zygosity:
            update["zygosity"] = zygosity
        if vaf is not None:
            update["vaf"] = vaf
        if sample:
            update["sample"] = sample
        if update:
            try:
                v = Variant.model_validate({**v.model_dump(), **update})
            except Exception as exc:
                raise InputError(str(exc).splitlines()[-1].strip(), field="variant options",
                                 value=update) from None
        notes.append([])
        variants.append(v)
    return Collected(variants, exons, introns, depths, notes, calls)


def _variant_identity(e: dict[str, Any]) -> tuple[Any, ...]:
    return (str(e.get("gene", "")).upper(), e.get("hgvs_c"), e.get("hgvs_p"), e.get("sample"))


def append_to_case(path: str | Path, variants: list[Variant]) -> int:
    """Append ``variants`` to the case file (skipping exact repeats); returns how many were added."""
    items = [v.model_dump(mode="json", exclude_none=True) for v in variants]
    return append_items(path, "variants", items, _variant_identity)


def _table(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        console.print("No variants in FAS, FASLG, CASP10 or the related-disorder genes.")
        return
    t = Table(title="Variants", show_lines=True)
    for col in ("gene", "change", "consequence", "domain / region", "mechanism", "origin", "class", "risk"):
        t.add_column(col, overflow="fold")
    for r in rows:
        change = "\n".join(x for x in (r["hgvs_c"], r["hgvs_p"]) if x)
        where = r["domain_label"] or r["domain"] or "-"
        where = f"{where}\n{r['region'] or '-'}"
        if r.get("protein_position"):
            where += f" (res. {r['protein_position']})"
        if r.get("exon"):
            where += f"\nexon {r['exon']}"
        elif r.get("intron"):
            where += f"\nintron {r['intron']}"
        origin = r["origin"] + (f"\n{r['sample']}" if r.get("sample") else "")
        if r.get("vaf") is not None:
            origin += f" VAF {r['vaf']:.2f}"
        t.add_row(
            escape(r["gene"]), escape(change), escape(r["consequence"] or "-"), escape(where),
            escape(r["mechanism"] or "-"), escape(origin), escape(r["classification"]),
            escape(r["risk"].get("category", "-")),
        )
    console.print(t)
    cited: list[str] = []
    for i, r in enumerate(rows, start=1):
        label = " ".join(x for x in (r["gene"], r["hgvs_p"] or r["hgvs_c"]) if x)
        console.print(f"[bold]{i}. {escape(label)}[/bold]")
        console.print(f"  mechanism: {escape(r['mechanism_basis'] or '-')}")
        console.print(f"  origin: {escape(r['origin_basis'])}")
        console.print(f"  mutation criterion: {'met' if r['meets_mutation_criterion'] else 'not met'}"
                      + (f"; subtype {r['subtype_hint']}" if r.get("subtype_hint") else ""))
        console.print(f"  risk: {escape(r['risk'].get('text', '-'))}")
        for c in r["considerations"]:
            console.print(f"  - {escape(c)}")
        console.print(f"  sources: {', '.join(r['citations'])}")
        cited += [c for c in r["citations"] if c not in cited]
    console.print("[bold]References[/bold]")
    for key in cited:
        try:
            console.print("  " + escape(f"[{key}] {knowledge.resolve_citation(key)}"))
        except Exception:
            console.print("  " + escape(f"[{key}]"))


def register(app: typer.Typer) -> None:
    @app.command("variants")
    def variants_cmd(
        inputs: list[str] = typer.Argument(..., help="VCF files (.vcf, .vcf.gz) or HGVS strings."),
        gene: str | None = typer.Option(None, "--gene", help="Gene for bare c./p. changes (FAS, FASLG, CASP10...)."),
        sample: str | None = typer.Option(None, "--sample", help="VCF sample to read (default: every carrying sample)."),
        case: Path | None = typer.Option(None, "--case", help="Append the variants to this case file (JSON/YAML)."),
        fmt: Fmt = typer.Option(Fmt.table, "--format", help="table or json."),
        classification: str | None = typer.Option(
            None, "--classification", help="ACMG class from the lab report for HGVS input "
            "(pathogenic, likely_pathogenic, vus, likely_benign, benign)."),
        origin: str | None = typer.Option(None, "--origin", help="Reported origin for HGVS input: germline | somatic."),
        zygosity: str | None = typer.Option(None, "--zygosity", help="Reported zygosity for HGVS input."),
        vaf: float | None = typer.Option(None, "--vaf", help="Variant allele fraction (0-1) for HGVS input."),
    ) -> None:
        """Annotate FAS/FASLG/CASP10 variants: domain, mechanism, origin, risk; optionally add them to a case."""
        got = collect(
            inputs, gene=gene, sample=sample, classification=classification, origin=origin,
            zygosity=zygosity, vaf=vaf,
        )
        variants, notes = got.variants, got.notes
        annotated = annotate_all(variants, exons=got.exons, depths=got.depths, introns=got.introns)
        rows = []
        for i, a in enumerate(annotated):
            d = a.to_dict()
            d["considerations"] = list(notes[i]) + d["considerations"]
            call = got.calls.get(i)
            d["vcf"] = (
                {"chrom": call.chrom, "pos": call.pos, "ref": call.ref, "alt": call.alt,
                 "transcript": call.transcript, "genotype": call.genotype, "depth": call.depth,
                 "filter": call.filter, "clnsig": call.clnsig_raw}
                if call is not None else None
            )
            rows.append(d)
        added = append_to_case(case, variants) if case is not None else None
        if fmt is Fmt.json:
            typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        else:
            _table(rows, Console(soft_wrap=True))
        if added is not None:
            typer.echo(f"{added} variant(s) added to {case}", err=fmt is Fmt.json)
