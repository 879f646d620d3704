"""Quality control for the DNT pipeline: flags, binomial confidence intervals, settings.

Thresholds are data (``knowledge/data/flow_qc.yaml``); each is a laboratory convention
(``site_setting``), not a published figure. A flag never changes a number: it tells the
reader how far to trust it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from alpsdx import knowledge

__all__ = [
    "QCFlag",
    "check_saturation",
    "check_time_gap",
    "clopper_pearson",
    "proportion_ci",
    "settings",
    "wilson",
]

Severity = Literal["info", "warning", "error"]
CI_METHOD = "wilson"


@dataclass(frozen=True)
class QCFlag:
    """One quality-control finding: a stable code, how serious it is and what it saw."""

    code: str
    severity: Severity
    message: str
    value: float | str | None = None
    threshold: float | str | None = None
    citation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def settings() -> Mapping[str, Any]:
    """The flow QC / gating settings (knowledge/data/flow_qc.yaml)."""
    return knowledge.load("flow_qc")


def qc_value(key: str) -> float:
    return float(settings()["qc"][key]["value"])


def gating_value(key: str) -> Any:
    entry = settings()["gating"][key]
    return entry.get("value", entry)


def wilson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes of n, as fractions (0..1); (0, 1) when n == 0."""
    if n <= 0:
        return (0.0, 1.0)
    z = float(stats.norm.ppf(0.5 + conf / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval, for comparison with :func:`wilson`."""
    if n <= 0:
        return (0.0, 1.0)
    a = (1 - conf) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return (lo, hi)


def proportion_ci(k: int, n: int) -> tuple[float, float] | None:
    """95 % Wilson interval in percent, or None without a denominator."""
    if n <= 0:
        return None
    lo, hi = wilson(k, n)
    return (100.0 * lo, 100.0 * hi)


def check_saturation(
    columns: Mapping[str, np.ndarray], ranges: Mapping[str, float], labels: Mapping[str, str]
) -> list[QCFlag]:
    """Flag channels where more than the allowed fraction of events sit at/above $PnR (off-scale)."""
    limit = qc_value("max_saturated_fraction")
    margin = qc_value("saturation_margin")
    flags = []
    for chan, values in columns.items():
        rng = ranges.get(chan)
        if not rng or rng <= 0 or values.size == 0:
            continue
        cut = np.float64(margin * rng)  # float64: float32 values are compared exactly
        # most channels have no off-scale event: one maximum (NaN ignored) says so
        if not float(np.fmax.reduce(values)) >= cut:
            continue
        frac = float(np.count_nonzero(values >= cut)) / values.size
        if frac > limit:
            flags.append(QCFlag(
                "saturated_events", "warning",
                f"{labels.get(chan, chan)}: {100 * frac:.2f} % of events are off-scale "
                f"(>= {margin:g} x $PnR = {rng:g})",
                value=round(frac, 5), threshold=limit, citation="site_setting",
            ))
    return flags


def _largest_gap(t: np.ndarray, chunk: int = 65536) -> tuple[int, float]:
    """(first i of the largest t[i + 1] - t[i], that gap), as ``np.argmax(np.diff(t))``, in
    chunks that stay in cache; (-1, nan) when some gap is negative (t is not sorted)."""
    buf = np.empty(min(chunk, t.size - 1), dtype=np.float64)
    best_i, best = 0, -math.inf
    for a in range(0, t.size - 1, chunk):
        b = min(a + chunk, t.size - 1)
        g = np.subtract(t[a + 1:b + 1], t[a:b], out=buf[: b - a])
        if not float(np.fmin.reduce(g)) >= 0:
            return -1, math.nan
        k = int(np.argmax(g))
        if g[k] > best:
            best_i, best = a + k, float(g[k])
    return best_i, best


def check_time_gap(time: np.ndarray | None) -> list[QCFlag]:
    """Flag a gap in the Time channel longer than the allowed fraction of the acquisition."""
    if time is None or time.size < 100:
        return []
    limit = qc_value("max_time_gap_fraction")
    with np.errstate(over="ignore", invalid="ignore"):  # a finite sum: every value finite
        finite = bool(np.isfinite(np.add.reduce(time))) or bool(np.isfinite(time).all())
    t = time if finite else time[np.isfinite(time)]
    t = np.asarray(t, dtype=np.float64)  # gaps in float64 whatever the stored type
    if t.size < 2:
        return []
    i, gap = _largest_gap(t)
    if i < 0:  # not in acquisition order (it usually is): sort first
        t = np.sort(t)
        i, gap = _largest_gap(t)
    span = float(t[-1] - t[0])
    if span <= 0:
        return []
    frac = gap / span
    if frac > limit:
        return [QCFlag(
            "time_gap", "warning",
            f"acquisition stopped for {100 * frac:.1f} % of its duration (Time {t[i]:g} to {t[i + 1]:g}); "
            "a clog or air bubble may have changed the sample",
            value=round(frac, 4), threshold=limit, citation="site_setting",
        )]
    return []
