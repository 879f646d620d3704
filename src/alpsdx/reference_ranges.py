"""Age- and sex-specific reference ranges, as cited data, with a site-laboratory override.

The cited ranges live in ``knowledge/data/reference_ranges.yaml`` (each band with its
citation key). Only ranges read from a named source are coded; where no cited range covers
an age/sex (for example absolute lymphocytes from 36 months to 18 years, IgG by a method other than the
source's, haemoglobin before 6 months) :func:`reference_range` returns ``None`` and the
site laboratory's own range should be entered.

The performing laboratory's own interval on an observation (``reference_range`` in the case
file) comes before both: :func:`lab_range` wraps it, labelled ``source="lab"``.

Site ranges
-----------
Set the environment variable ``ALPSDX_SITE_RANGES`` to a YAML file with the laboratory's
own ranges; they take precedence over the cited ones and are labelled ``source="site"``
(citation key ``site_setting``) in every output::

    site: "Example Children's Hospital core laboratory"
    ranges:
      igg:
        - {age_min_months: 0, age_max_months: 12, low: 2.3, high: 14.1, unit: "g/L"}
        - {age_min_months: 12, age_max_months: null, sex: female, low: 6, high: 16, unit: "g/L"}
      lymphocytes_abs:
        - {age_min_months: 36, age_max_months: null, low: 1.0, high: 4.8, unit: "10*9/L"}

Bands are half-open ``[age_min_months, age_max_months)``; ``sex`` is ``female``/``male``
or omitted for both; ``low``/``high`` may be ``null``; ``unit`` is any UCUM unit the
analyte accepts (values are converted to the analyte's canonical unit).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from alpsdx import knowledge, units
from alpsdx.errors import InputError, KnowledgeError, UnitError

__all__ = [
    "SITE_RANGES_ENV",
    "RefRange",
    "cited_analytes",
    "classify_against",
    "classify_value",
    "lab_range",
    "reference_range",
    "site_ranges_path",
]

SITE_RANGES_ENV = "ALPSDX_SITE_RANGES"
MONTHS_PER_YEAR = 12.0

Status = Literal["low", "normal", "high"]


@dataclass(frozen=True)
class RefRange:
    """One reference band: limits in the analyte's canonical unit, with its source."""

    analyte: str
    low: float | None
    high: float | None
    unit: str
    age_band: str
    sex: str | None
    citation: str
    note: str | None = None
    source: Literal["cited", "site", "lab"] = "cited"

    @property
    def citation_text(self) -> str:
        return knowledge.resolve_citation(self.citation)

    def describe(self) -> str:
        """Human text, e.g. '453-916 mg/dL (1-3 years)'."""
        if self.low is not None and self.high is not None:
            lim = f"{self.low:g}-{self.high:g}"
        elif self.low is not None:
            lim = f">= {self.low:g}"
        elif self.high is not None:
            lim = f"<= {self.high:g}"
        else:
            lim = "no limits"
        label = {"site": "site laboratory range", "lab": "performing laboratory's range"}.get(self.source, "reference")
        sex = f", {self.sex}" if self.sex else ""
        return f"{lim} {self.unit} ({self.age_band}{sex}; {label})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "analyte": self.analyte,
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "age_band": self.age_band,
            "sex": self.sex,
            "citation": self.citation,
            "citation_text": self.citation_text,
            "note": self.note,
            "source": self.source,
        }


@dataclass(frozen=True)
class _Band:
    lo_m: float
    hi_m: float | None
    sex: str | None
    rng: RefRange

    def covers(self, age_months: float, sex: str | None) -> bool:
        if age_months < self.lo_m or (self.hi_m is not None and age_months >= self.hi_m):
            return False
        if self.sex is None:
            return True
        return sex == self.sex


def _num(v: Any, where: str, err: type[Exception]) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise err(f"{where} must be a number or null", value=v)  # type: ignore[call-arg]
    return float(v)


def _parse_bands(
    analyte: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    source: Literal["cited", "site"],
    where: str,
    site_name: str | None = None,
) -> tuple[_Band, ...]:
    err: type[InputError] | type[KnowledgeError] = InputError if source == "site" else KnowledgeError
    try:
        key = units.resolve_analyte(analyte)
    except UnitError as exc:
        raise err(f"unknown analyte in {where}", field=where, value=analyte) from exc
    canon = units.canonical_unit(key)
    out: list[_Band] = []
    for i, row in enumerate(rows):
        loc = f"{where}.{analyte}[{i}]"
        if not isinstance(row, Mapping):
            raise err("each band must be a mapping", field=loc, value=row)
        lo_m = _num(row.get("age_min_months", 0), f"{loc}.age_min_months", err)
        hi_m = _num(row.get("age_max_months"), f"{loc}.age_max_months", err)
        if lo_m is None or lo_m < 0 or (hi_m is not None and hi_m <= lo_m):
            raise err("age band must satisfy 0 <= age_min_months < age_max_months", field=loc,
                      value=(lo_m, hi_m))
        sex = row.get("sex")
        if sex not in (None, "female", "male"):
            raise err("sex must be female, male or omitted", field=f"{loc}.sex", value=sex)
        unit = row.get("unit", canon)
        try:
            f = units.factor(key, str(unit))
        except UnitError as exc:
            raise err(f"unit not accepted for {key}", field=f"{loc}.unit", value=unit,
                      expected=exc.expected) from exc
        low = _num(row.get("low"), f"{loc}.low", err)
        high = _num(row.get("high"), f"{loc}.high", err)
        if low is not None and high is not None and high < low:
            raise err("high is below low", field=loc, value=(low, high))
        citation = str(row.get("citation", "site_setting")) if source == "cited" else "site_setting"
        if source == "cited":
            knowledge.citation(citation)  # unknown key -> KnowledgeError
        band = str(row.get("band") or _band_text(lo_m, hi_m))
        note = row.get("note")
        if source == "site":
            note = f"site laboratory range ({site_name or 'site settings'})" + (f"; {note}" if note else "")
        rng = RefRange(
            analyte=key,
            low=None if low is None else low * f,
            high=None if high is None else high * f,
            unit=canon,
            age_band=band,
            sex=sex,
            citation=citation,
            note=None if note is None else str(note),
            source=source,
        )
        out.append(_Band(lo_m, hi_m, sex, rng))
    return tuple(out)


def _band_text(lo_m: float, hi_m: float | None) -> str:
    def fmt(m: float) -> str:
        return f"{m / MONTHS_PER_YEAR:g} y" if m % 12 == 0 and m >= 24 else f"{m:g} mo"

    return f">= {fmt(lo_m)}" if hi_m is None else f"{fmt(lo_m)} to < {fmt(hi_m)}"


@lru_cache(maxsize=1)
def _cited() -> Mapping[str, tuple[_Band, ...]]:
    data = knowledge.load("reference_ranges")["ranges"]
    return {a: _parse_bands(a, rows, source="cited", where="reference_ranges") for a, rows in data.items()}


def site_ranges_path() -> Path | None:
    """The site ranges file named by ``ALPSDX_SITE_RANGES``, or ``None`` when unset."""
    value = os.environ.get(SITE_RANGES_ENV, "").strip()
    return Path(value) if value else None


@lru_cache(maxsize=8)
def _site_cached(path: str, mtime_ns: int) -> Mapping[str, tuple[_Band, ...]]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"site ranges file is not valid YAML: {exc}", field=SITE_RANGES_ENV, value=path) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("ranges"), Mapping):
        raise InputError("site ranges file must hold a mapping with a 'ranges' mapping",
                         field=SITE_RANGES_ENV, value=path)
    name = data.get("site")
    out: dict[str, tuple[_Band, ...]] = {}
    for analyte, rows in data["ranges"].items():
        if not isinstance(rows, list):
            raise InputError("each analyte must hold a list of bands", field=f"{SITE_RANGES_ENV}.{analyte}",
                             value=type(rows).__name__)
        bands = _parse_bands(str(analyte), rows, source="site", where="site_ranges",
                             site_name=None if name is None else str(name))
        out[bands[0].rng.analyte if bands else str(analyte)] = bands
    return out


def _site() -> Mapping[str, tuple[_Band, ...]]:
    path = site_ranges_path()
    if path is None:
        return {}
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise InputError("site ranges file not found", field=SITE_RANGES_ENV, value=str(path)) from None
    return _site_cached(str(path.resolve()), mtime)


def cited_analytes() -> tuple[str, ...]:
    """The analytes that have at least one cited band."""
    return tuple(_cited())


def _norm_sex(sex: Any) -> str | None:
    if sex is None:
        return None
    s = str(getattr(sex, "value", sex)).lower()
    return s if s in ("female", "male") else None


def reference_range(analyte: str, age_years: float | None, sex: str | None = None) -> RefRange | None:
    """The reference band for ``analyte`` at ``age_years`` (and ``sex``), limits in the canonical unit.

    Site-laboratory ranges (``ALPSDX_SITE_RANGES``) win over cited ones. Returns ``None``
    when the age is unknown or no cited or site range covers that age/sex — the site's
    laboratory range should then be entered in the site ranges file.
    """
    key = units.resolve_analyte(analyte)
    if age_years is None:
        return None
    if age_years < 0:
        raise InputError("age cannot be negative", field="age_years", value=age_years)
    months = float(age_years) * MONTHS_PER_YEAR
    s = _norm_sex(sex)
    for table in (_site(), _cited()):
        for band in table.get(key, ()):
            if band.covers(months, s):
                return band.rng
    return None


def lab_range(analyte: str, low: float | None, high: float | None, age_band: str = "as reported") -> RefRange:
    """A RefRange for the performing laboratory's own interval (limits already canonical)."""
    key = units.resolve_analyte(analyte)
    return RefRange(analyte=key, low=low, high=high, unit=units.canonical_unit(key), age_band=age_band, sex=None,
                    citation="performing_lab_range", note="performing laboratory's interval, as reported",
                    source="lab")


def classify_against(rng: RefRange, value_canonical: float) -> Status:
    """'low' / 'normal' / 'high' against one band (limits inclusive of normal)."""
    if rng.low is not None and value_canonical < rng.low:
        return "low"
    if rng.high is not None and value_canonical > rng.high:
        return "high"
    return "normal"


def classify_value(
    analyte: str, value_canonical: float, age_years: float | None, sex: str | None = None
) -> tuple[Status, RefRange] | None:
    """'low' (< low), 'normal' or 'high' (> high) against the age/sex band; ``None`` if no band.

    Limits are inclusive of normal: a value equal to a limit is 'normal' (WHO: anaemia is
    Hb *below* the cut-off; raised IgG is *above* the upper limit).
    """
    rng = reference_range(analyte, age_years, sex)
    if rng is None:
        return None
    return classify_against(rng, value_canonical), rng
