"""UCUM-aware conversion of every analyte to its canonical unit.

Units are parsed as UCUM by ``ucumvert`` into ``pint`` quantities; the conversion factor
for each (analyte, unit) pair is computed once by pint and cached, so batch evaluation
stays fast. Mass <-> substance conversions (vitamin B12 pmol/L <-> ng/L, haemoglobin
mmol/L <-> g/dL) use the analyte's molar mass from ``knowledge/data/analytes.yaml``.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from alpsdx import knowledge
from alpsdx.errors import UnitError

__all__ = [
    "analyte_info",
    "analytes",
    "canonical_unit",
    "check_value",
    "convert",
    "dnt_percent_from_counts",
    "factor",
    "resolve_analyte",
    "to_canonical",
]

_KIND_DIMENSIONS = {
    "fraction": "dimensionless",
    "count": "1 / [length] ** 3",
    "mass_concentration": "[mass] / [length] ** 3",
}


def analytes() -> Mapping[str, Mapping[str, Any]]:
    """Every analyte alpsdx knows, key -> knowledge entry."""
    result: Mapping[str, Mapping[str, Any]] = knowledge.load("analytes")["analytes"]
    return result


@cache
def _loinc_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for key, info in analytes().items():
        for code in info.get("loinc", ()):
            index[str(code)] = key
    return index


@cache
def resolve_analyte(name: str) -> str:
    """An alpsdx analyte key from a key or a LOINC code; ``UnitError`` if unknown."""
    if name in analytes():
        return name
    key = _loinc_index().get(name)
    if key is None:
        raise UnitError(
            "unknown analyte",
            field="analyte",
            value=name,
            expected="one of " + ", ".join(sorted(analytes())) + " or a LOINC code mapped in knowledge/data/analytes.yaml",
        )
    return key


def analyte_info(key: str) -> Mapping[str, Any]:
    return analytes()[resolve_analyte(key)]


@cache
def canonical_unit(key: str) -> str:
    """The UCUM unit every value of this analyte is converted to before comparison (cached:
    every piece of evidence asks for it)."""
    return str(analyte_info(key)["canonical_unit"])


# pint/ucumvert registries are not thread-safe while they build and parse (two threads
# creating the registry at once fail with "Cannot redefine ..."); the web app evaluates in
# a thread pool, so every cache miss below runs under this lock. Cache hits skip it.
_PINT_LOCK = threading.RLock()


@lru_cache(maxsize=1)
def _registry() -> Any:
    from ucumvert import PintUcumRegistry

    with _PINT_LOCK:
        return PintUcumRegistry()


@cache
def _parse(unit: str) -> Any:
    """UCUM string -> pint Quantity of magnitude 1 (cached; parsing is the slow part)."""
    with _PINT_LOCK:
        return _parse_locked(unit)


# Guards found by fuzzing: pint computes 10**N exactly, so "10*9222...2/L" hangs, "10*400/L"
# overflows float and "10*-400/L" silently gives a factor of 0. No unit a laboratory reports
# needs an exponent beyond 10^±24 (UCUM's largest prefixes) or more than a few dozen characters.
_MAX_UNIT_LEN = 64
_MAX_EXPONENT = 24
_EXPONENT = re.compile(r"(?:\*|\^|(?<=[A-Za-z\])]))([+-]?\d+)")


def _parse_locked(unit: str) -> Any:
    ureg = _registry()
    text = unit.strip()
    if len(text) > _MAX_UNIT_LEN:
        raise UnitError("unit string too long", field="unit", value=text[:40] + "...",
                        expected=f"a UCUM unit of at most {_MAX_UNIT_LEN} characters")
    for exp in _EXPONENT.findall(text):
        if len(exp.lstrip("+-")) > 3 or abs(int(exp)) > _MAX_EXPONENT:
            raise UnitError("unit exponent out of range", field="unit", value=unit,
                            expected=f"exponents between -{_MAX_EXPONENT} and {_MAX_EXPONENT}")
    try:
        if text in ("1", ""):
            return ureg.Quantity(1, "dimensionless")
        q = ureg.from_ucum(text)
        if not hasattr(q, "dimensionality"):  # found by fuzzing: "{cells}" alone parses to a lark Token
            if re.fullmatch(r"\{[^{}]*\}", text):
                return ureg.Quantity(1, "dimensionless")  # a UCUM annotation alone means 1
            raise UnitError("not a valid UCUM unit", field="unit", value=unit)
        return q
    except UnitError:
        raise
    except Exception as exc:  # ucumvert raises lark / pint errors of several kinds
        raise UnitError("not a valid UCUM unit", field="unit", value=unit) from exc


def _accepted(key: str) -> str:
    info = analyte_info(key)
    examples = {
        "fraction": "'%' (or '1' for a fraction)",
        "count": "a count per volume such as 10*9/L, 10*3/uL, /uL, /mm3",
        "mass_concentration": "a mass per volume such as g/dL, g/L, mg/dL, ng/mL, pg/mL, ng/L",
    }[str(info["kind"])]
    if "molar_mass_g_per_mol" in info:
        examples += ", or a substance per volume such as mmol/L, pmol/L, nmol/L"
    return f"{examples} (canonical {info['canonical_unit']})"


@cache
def factor(key: str, unit: str) -> float:
    """Multiplicative factor taking a value of ``key`` in ``unit`` to its canonical unit."""
    with _PINT_LOCK:
        return _factor_locked(key, unit)


def _factor_locked(key: str, unit: str) -> float:
    key = resolve_analyte(key)
    info = analytes()[key]
    target = _parse(str(info["canonical_unit"]))
    try:
        source = _parse(unit)
    except UnitError as exc:
        raise UnitError(
            f"not a valid UCUM unit for {key}", field="unit", value=unit, expected=_accepted(key)
        ) from exc
    if source.dimensionality == target.dimensionality:
        q = source.to(target.units)
    else:
        molar = info.get("molar_mass_g_per_mol")
        substance = _parse("mol/L").dimensionality
        if molar is None or source.dimensionality != substance:
            raise UnitError(
                f"unit cannot be converted for {key}", field="unit", value=unit, expected=_accepted(key)
            )
        q = (source * source._REGISTRY.Quantity(float(molar), "g/mol")).to(target.units)
    try:
        f = float(q.magnitude) / float(target.magnitude)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f) or f == 0.0:
        raise UnitError(f"unit gives no usable conversion factor for {key}", field="unit", value=unit,
                        expected=_accepted(key))
    return f


def convert(key: str, value: float, from_unit: str, to_unit: str) -> float:
    """Convert a value of analyte ``key`` between any two of its accepted units."""
    return value * factor(key, from_unit) / factor(key, to_unit)


def to_canonical(key: str, value: float, unit: str) -> float:
    """The value in the analyte's canonical unit."""
    return value * factor(key, unit)


def check_value(key: str, value: float, unit: str) -> None:
    """Refuse impossible values: non-finite, negative, percentages over 100."""
    key = resolve_analyte(key)
    if not math.isfinite(value):
        raise UnitError("value must be a finite number", field=f"{key}.value", value=value)
    canonical = to_canonical(key, value, unit)
    if canonical < 0:
        raise UnitError("value cannot be negative", field=f"{key}.value", value=value, expected=">= 0")
    if analytes()[key]["kind"] == "fraction" and canonical > 100.0 + 1e-9:
        raise UnitError(
            "a percentage cannot exceed 100", field=f"{key}.value", value=f"{value} {unit}", expected="0-100 %"
        )


def dnt_percent_from_counts(dnt_per_uL: float, lymphocytes_10e9_per_L: float) -> float:
    """DNT as % of lymphocytes from an absolute DNT count (/uL) and the lymphocyte count (10*9/L)."""
    lymph_per_uL = to_canonical("dnt_abs", lymphocytes_10e9_per_L, "10*9/L")
    if lymph_per_uL <= 0:
        raise UnitError("lymphocyte count must be positive to derive a DNT percentage",
                        field="lymphocytes_abs", value=lymphocytes_10e9_per_L)
    pct = 100.0 * dnt_per_uL / lymph_per_uL
    if pct > 100.0 + 1e-9:
        raise UnitError("DNT count exceeds the lymphocyte count", field="dnt_abs", value=dnt_per_uL,
                        expected=f"<= {lymph_per_uL:g} /uL")
    return pct
