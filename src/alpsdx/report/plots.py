"""Trend plots (matplotlib PNG) of the analytes clinicians follow, shown on the patient page
and in the report, with reference bands and threshold lines read from the knowledge base
(never literals here).

- reference bands: ``alpsdx.reference_ranges.reference_range`` at the patient's age on
  each observation date (shaded);
- threshold lines: every ``{analyte, value, unit}`` threshold in the criteria YAML files
  and any ``{analyte, low, high}`` target range elsewhere in the knowledge base (e.g. a
  sirolimus trough target), converted to the canonical unit and labelled with the citation.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from alpsdx import knowledge, units
from alpsdx.errors import AlpsdxError

# Which analytes go on which figure (one panel per analyte: their units differ).
PLOTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dnt": ("Double-negative T cells", ("dnt_pct_lymphocytes", "dnt_pct_cd3")),
    "blood": ("Haemoglobin, neutrophils, platelets", ("hemoglobin", "anc", "platelets")),
    "igg": ("Immunoglobulin G", ("igg",)),
    "biomarkers": ("Vitamin B12 and soluble FAS ligand", ("vitamin_b12", "sfasl")),
    "sirolimus": ("Sirolimus trough", ("sirolimus_trough",)),
}


@dataclass(frozen=True)
class Line:
    """A horizontal threshold (``value``) or target band (``low``-``high``) in the canonical unit."""

    analyte: str
    label: str
    citation: str | None
    value: float | None = None
    low: float | None = None
    high: float | None = None


def _walk(node: Any, context: dict[str, Any]) -> Iterator[tuple[Mapping[str, Any], dict[str, Any]]]:
    if isinstance(node, Mapping):
        ctx = dict(context)
        if "citation" in node and isinstance(node["citation"], str):
            ctx["citation"] = node["citation"]
        if "id" in node and isinstance(node["id"], str):
            ctx["id"] = node["id"]
        yield node, ctx
        for v in node.values():
            yield from _walk(v, ctx)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _walk(v, context)


def _knowledge_names() -> list[str]:
    root = resources.files("alpsdx.knowledge").joinpath("data")
    names: list[str] = []

    def rec(node: Any, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                rec(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".yaml") and child.name not in ("citations.yaml", "reference_ranges.yaml", "analytes.yaml"):
                names.append(prefix + child.name[:-5])

    rec(root, "")
    return names


def _ordered_names() -> list[str]:
    """Criteria sets first (NIH 2009 leading), then the other knowledge files."""
    names = _knowledge_names()
    crit = sorted((n for n in names if n.startswith("criteria/")), key=lambda n: (n != "criteria/nih2009", n))
    return crit + [n for n in names if not n.startswith("criteria/")]


def _care_target_lines() -> list[Line]:
    """The sirolimus target trough range in force (care site settings or the knowledge default)."""
    try:
        from alpsdx.care.settings import CareSettings
    except ImportError:
        return []
    try:
        cs = CareSettings.from_env()
        lo, hi = float(cs.get("sirolimus_trough_low")), float(cs.get("sirolimus_trough_high"))
        cite = cs.citation("sirolimus_trough_low")
    except (AlpsdxError, KeyError):
        return []
    return [Line("sirolimus_trough", "target trough (site setting)" if cite == "site_setting" else "target trough",
                 cite, low=lo, high=hi)]


@lru_cache(maxsize=1)
def knowledge_lines() -> dict[str, tuple[Line, ...]]:
    """Thresholds and target ranges per analyte, gathered from every knowledge file.

    The same value stated by several sources is one line whose label names each source
    (criteria sets first), so the plot shows every citation behind it.
    """
    found: dict[str, list[Line]] = {}
    for name in _ordered_names():
        try:
            data = knowledge.load(name)
        except AlpsdxError:
            continue
        for node, ctx in _walk(data, {}):
            analyte = node.get("analyte")
            if not isinstance(analyte, str):
                continue
            try:
                key = units.resolve_analyte(analyte)
            except AlpsdxError:
                continue
            unit = node.get("unit") or units.canonical_unit(key)

            def conv(v: Any, key: str = key, unit: str = unit) -> float | None:
                if v is None or isinstance(v, bool) or not isinstance(v, int | float):
                    return None
                try:
                    return units.to_canonical(key, float(v), str(unit))
                except AlpsdxError:
                    return None

            where = f"{name.removeprefix('criteria/')} {ctx.get('id') or ''}".strip()
            if "value" in node and conv(node.get("value")) is not None:
                op = str(node.get("op") or "")
                line = Line(key, f"{where} {op}{node['value']:g} {unit}".replace("  ", " "), ctx.get("citation"),
                            value=conv(node["value"]))
            elif ("low" in node or "high" in node) and (conv(node.get("low")) is not None or conv(node.get("high")) is not None):
                line = Line(key, f"{where} target", ctx.get("citation"), low=conv(node.get("low")), high=conv(node.get("high")))
            else:
                continue
            _merge(found.setdefault(key, []), line)
    for line in _care_target_lines():
        _merge(found.setdefault(line.analyte, []), line)
    return {k: tuple(v) for k, v in found.items()}


def _same(a: Line, b: Line) -> bool:
    def close(x: float | None, y: float | None) -> bool:
        return (x is None and y is None) or (x is not None and y is not None and abs(x - y) <= 1e-9 * max(1.0, abs(x)))

    return close(a.value, b.value) and close(a.low, b.low) and close(a.high, b.high)


def _merge(bucket: list[Line], line: Line) -> None:
    for i, have in enumerate(bucket):
        if _same(have, line):
            cites = [c for c in (have.citation or "").split("; ") if c]
            if line.citation and line.citation not in cites:
                cites.append(line.citation)
            bucket[i] = Line(have.analyte, have.label, "; ".join(cites) or None, have.value, have.low, have.high)
            return
    bucket.append(line)


def _age_at(birth: dt.date | None, age_years: float | None, as_of: dt.date, when: dt.date) -> float | None:
    if birth is not None:
        return (when - birth).days / 365.25
    if age_years is not None:
        return age_years - (as_of - when).days / 365.25
    return None


def _bands(analyte: str, dates: Sequence[dt.date], birth: dt.date | None, age_years: float | None,
           sex: str | None, as_of: dt.date) -> list[tuple[dt.date, float | None, float | None, str]]:
    try:
        from alpsdx.reference_ranges import reference_range
    except ImportError:
        return []
    out = []
    for d in dates:
        age = _age_at(birth, age_years, as_of, d)
        if age is None or age < 0:
            continue
        try:
            rng = reference_range(analyte, age, sex)
        except AlpsdxError:
            rng = None
        if rng is not None:
            out.append((d, rng.low, rng.high, rng.citation))
    return out


def render(group: str, points: Sequence[Mapping[str, Any]], *, birth_date: dt.date | None,
           age_years: float | None, sex: str | None, as_of: dt.date) -> bytes:
    """The PNG for one plot group from ``points`` ({analyte, date, value, unit}, canonical units)."""
    title, analytes = PLOTS[group]
    lines = knowledge_lines()
    fig, axes = plt.subplots(len(analytes), 1, figsize=(8.5, 2.3 * len(analytes) + 0.4), squeeze=False, sharex=True)
    # Undated values count as current (as the criteria engine counts them): drawn hollow at
    # the evaluation date so they are visible but not mistaken for a dated measurement.
    all_dates = sorted({p["date"] for p in points if p.get("date") is not None} | {as_of})
    for ax, analyte in zip(axes[:, 0], analytes, strict=True):
        mine = [p for p in points if p["analyte"] == analyte and p.get("value") is not None]
        dated = [p for p in mine if p.get("date") is not None]
        undated = [p for p in mine if p.get("date") is None]
        info = units.analyte_info(analyte)
        unit = units.canonical_unit(analyte)
        xs = [p["date"] for p in dated]
        ys = [p["value"] for p in dated]
        span = sorted(set(xs) | ({as_of} if undated else set())) or all_dates
        bands = _bands(analyte, span, birth_date, age_years, sex, as_of)
        if bands:
            bx = [b[0] for b in bands]
            lo = [b[1] if b[1] is not None else float("nan") for b in bands]
            hi = [b[2] if b[2] is not None else float("nan") for b in bands]
            if len(bx) == 1:  # one date: widen to a visible band
                bx = [bx[0] - dt.timedelta(days=30), bx[0] + dt.timedelta(days=30)]
                lo, hi = lo * 2, hi * 2
            if any(v == v for v in lo) and any(v == v for v in hi):
                ax.fill_between(bx, lo, hi, step="mid", color="#2e7d32", alpha=0.12, label=f"reference ({bands[-1][3]})")
            else:
                limit = lo if any(v == v for v in lo) else hi
                ax.step(bx, limit, where="mid", color="#2e7d32", lw=1, ls=":", label=f"reference limit ({bands[-1][3]})")
        for ln in lines.get(analyte, ()):
            cite = f" [{ln.citation}]" if ln.citation else ""
            if ln.value is not None:
                ax.axhline(ln.value, color="#c62828", lw=1, ls="--", label=f"{ln.label}{cite}")
            else:
                lo_v = ln.low if ln.low is not None else ax.get_ylim()[0]
                hi_v = ln.high if ln.high is not None else ax.get_ylim()[1]
                ax.axhspan(lo_v, hi_v, color="#1565c0", alpha=0.10, label=f"{ln.label}{cite}")
        if xs:
            ax.plot(xs, ys, marker="o", color="#212121", lw=1.5, label="patient")
        if undated:
            ax.plot([as_of] * len(undated), [p["value"] for p in undated], ls="none", marker="o", mfc="none",
                    color="#212121", label="undated (shown at evaluation date)")
        if not mine:
            ax.text(0.5, 0.5, "no values recorded", transform=ax.transAxes, ha="center", va="center", color="#757575")
        if len(all_dates) == 1:
            ax.set_xlim(all_dates[0] - dt.timedelta(days=180), all_dates[0] + dt.timedelta(days=30))
        ax.set_ylabel(unit)
        ax.set_title(str(info.get("label", analyte)), fontsize=9, loc="left")
        ax.grid(alpha=0.3)
        handles, _labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
    fig.autofmt_xdate()
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
