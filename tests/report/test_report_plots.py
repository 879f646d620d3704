"""Trend plots (alpsdx.report.plots) draw the knowledge base's thresholds and target ranges (never literals)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from alpsdx import knowledge, units
from alpsdx.care.settings import CareSettings
from alpsdx.report import plots


def _thresholds(node: Any) -> Iterator[tuple[str, float, str]]:
    if isinstance(node, Mapping):
        if isinstance(node.get("analyte"), str) and isinstance(node.get("value"), int | float):
            yield node["analyte"], float(node["value"]), str(node.get("unit") or "")
        for v in node.values():
            yield from _thresholds(v)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _thresholds(v)


def test_every_nih2009_threshold_of_a_plotted_analyte_is_a_line() -> None:
    plotted = {a for _title, analytes in plots.PLOTS.values() for a in analytes}
    lines = plots.knowledge_lines()
    found = 0
    for analyte, value, unit in _thresholds(knowledge.load("criteria/nih2009")):
        key = units.resolve_analyte(analyte)
        if key not in plotted:
            continue
        canonical = units.to_canonical(key, value, unit or units.canonical_unit(key))
        match = [ln for ln in lines[key] if ln.value is not None and abs(ln.value - canonical) < 1e-9]
        assert match, (key, canonical)
        assert "oliveira2010" in (match[0].citation or "")
        found += 1
    assert found >= 4  # DNT (two denominators), sFASL, B12 at least


def test_sirolimus_target_range_is_the_care_setting() -> None:
    cs = CareSettings()
    (line,) = [ln for ln in plots.knowledge_lines()["sirolimus_trough"] if ln.low is not None]
    assert (line.low, line.high) == (cs.get("sirolimus_trough_low"), cs.get("sirolimus_trough_high"))


def test_render_is_png_with_and_without_values() -> None:
    pts = [{"analyte": "igg", "date": dt.date(2025, 1, 1), "value": 1800.0, "unit": "mg/dL"},
           {"analyte": "igg", "date": None, "value": 1900.0, "unit": "mg/dL"}]
    for points in (pts, []):
        png = plots.render("igg", points, birth_date=dt.date(2015, 1, 1), age_years=None, sex="female",
                           as_of=dt.date(2025, 6, 1))
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
