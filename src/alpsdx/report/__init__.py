"""Patient reports: one HTML document (and its PDF through WeasyPrint) with the criteria
checklist of every set, subtype, next tests, care items, variants, DNT results, trend plots
and the full text of every source cited, dated and stamped with the knowledge-base version.

``build_html(registry, patient_id, actor)`` reads the record (audited as a read) and renders
it; ``html_to_pdf(html)`` prints it. The plots are embedded as data URIs, so the HTML is a
single self-contained file.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from alpsdx import __version__, knowledge
from alpsdx.errors import AlpsdxError, KnowledgeError
from alpsdx.store import Actor, Registry
from alpsdx.store.audit import SYSTEM

__all__ = ["build_html", "html_to_pdf", "render_html"]

HERE = Path(__file__).resolve().parent


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]))
    env.globals["version"] = __version__
    return env


def _citation_keys(ev: dict[str, Any], extra: Iterable[str]) -> list[str]:
    keys: list[str] = []

    def add(k: Any) -> None:
        if isinstance(k, str) and k and k not in keys:
            keys.append(k)

    for s in [ev, *(ev.get("other_sets") or [])]:
        for c in s.get("criteria") or []:
            add(c.get("citation"))
    for item in ev.get("care") or []:
        add(item.get("citation"))
        for x in item.get("extra_citations") or []:
            add(x.get("citation"))
    for v in ev.get("variants") or []:
        for k in v.get("citations") or []:
            add(k)
    for k in extra:
        add(k)
    return keys


def _sources(keys: list[str]) -> list[dict[str, str]]:
    out = []
    for k in keys:
        try:
            text = knowledge.resolve_citation(k)
        except KnowledgeError:
            text = "(citation key not in the knowledge base)"
        out.append({"key": k, "text": text})
    return out


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(record: dict[str, Any], plots: dict[str, tuple[str, bytes]],
                gate_plots: dict[int, bytes], *, generated: dt.datetime, user: str | None,
                plot_citations: Iterable[str] = ()) -> str:
    """The report HTML for a ``Registry.patient_record`` dict and pre-rendered PNGs."""
    ev = record.get("evaluation") or {}
    ctx = {
        "rec": record,
        "case": record["case"],
        "ev": ev,
        "plots": {g: (title, _png_uri(png)) for g, (title, png) in plots.items()},
        "gate_plots": {fid: _png_uri(png) for fid, png in gate_plots.items()},
        "sources": _sources(_citation_keys(ev, plot_citations)),
        "generated": generated.strftime("%Y-%m-%d %H:%M UTC"),
        "user": user,
        "kb_version": ev.get("kb_version") or knowledge.kb_version(),
    }
    return _env().get_template("report.html").render(**ctx)


def build_html(reg: Registry, patient_id: int, actor: Actor = SYSTEM, *, now: dt.datetime | None = None) -> str:
    """Read patient ``patient_id`` from the registry and render the report HTML."""
    from alpsdx.report import plots as trend

    record = reg.patient_record(patient_id, actor)
    case = record["case"]
    sex = case.sex.value if case.sex.value in ("female", "male") else None
    pngs: dict[str, tuple[str, bytes]] = {}
    cites: list[str] = []
    for group, (title, analytes) in trend.PLOTS.items():
        pts = reg.series(patient_id, analytes, actor)
        if not pts:
            continue
        pngs[group] = (title, trend.render(group, pts, birth_date=case.birth_date, age_years=case.age_years,
                                           sex=sex, as_of=case.as_of))
        for a in analytes:
            cites += [ln.citation for ln in trend.knowledge_lines().get(a, ()) if ln.citation]
    gate: dict[int, bytes] = {}
    for f in record["files"]:
        rel = (f.get("result") or {}).get("gate_plot") if isinstance(f.get("result"), dict) else None
        if f["kind"] == "fcs" and rel:
            path = reg.blob_path(rel)
            if path.exists():
                gate[f["id"]] = path.read_bytes()
    return render_html(record, pngs, gate, generated=now or dt.datetime.now(dt.UTC),
                       user=actor.username, plot_citations=cites)


def html_to_pdf(html: str) -> bytes:
    """Print the report HTML to PDF (WeasyPrint; no network: every image is inline)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: the Pango/Cairo libraries are missing
        raise AlpsdxError("PDF output needs WeasyPrint and its system libraries (Pango)",
                          field="--pdf", value=type(exc).__name__) from None

    from weasyprint.urls import URLFetcher

    # Only inline data: URIs are read; nothing is fetched from the network or the disk.
    fetcher = URLFetcher(allowed_protocols=["data"])
    pdf = HTML(string=html, url_fetcher=fetcher).write_pdf()
    return bytes(pdf or b"")
