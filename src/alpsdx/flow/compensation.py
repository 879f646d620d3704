"""Spillover matrices and compensation of flow cytometry events.

A spillover matrix S (rows: the fluorochrome's primary detector, columns: detectors)
says how much of each dye's signal lands in every detector; observed = true @ S, so
compensated = observed @ S^-1 — the convention of the FCS $SPILLOVER keyword, FlowJo and
flowutils/FlowKit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alpsdx.errors import FCSError, FlowError

__all__ = [
    "SPILL_KEYWORDS",
    "SpillMatrix",
    "compensate",
    "load_spill_csv",
    "parse_spill_string",
    "spillover_from_text",
]

# Keywords cytometers use for the acquisition-defined matrix, in order of preference:
# $SPILLOVER is FCS 3.1; SPILL/$SPILL are BD's pre-3.1 habit; $COMP is FCS 3.0's.
SPILL_KEYWORDS = ("$SPILLOVER", "$SPILL", "SPILL", "SPILLOVER")


@dataclass(frozen=True, eq=False)
class SpillMatrix:
    """A square spillover matrix over named detectors ($PnN); observed = true @ matrix."""

    channels: tuple[str, ...]
    matrix: np.ndarray

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=np.float64)
        n = len(self.channels)
        if m.shape != (n, n):
            raise FlowError(
                "spillover matrix is not square over its channels", field="spillover",
                value=f"shape {m.shape} for {n} channels", expected=f"({n}, {n})",
            )
        if not np.all(np.isfinite(m)):
            raise FlowError("spillover matrix holds a non-finite value", field="spillover")
        if len(set(self.channels)) != n:
            raise FlowError("spillover matrix names a channel twice", field="spillover",
                            value=list(self.channels))
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "matrix", m)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SpillMatrix)
            and self.channels == other.channels
            and np.array_equal(self.matrix, other.matrix)
        )

    def __hash__(self) -> int:
        return hash((self.channels, self.matrix.tobytes()))

    def to_spill_string(self) -> str:
        """The matrix in FCS $SPILLOVER form: n,names...,row-major values."""
        vals = ",".join(repr(float(v)) for v in self.matrix.ravel())
        return f"{len(self.channels)}," + ",".join(self.channels) + "," + vals


def parse_spill_string(value: str, keyword: str = "$SPILLOVER") -> SpillMatrix | None:
    """Parse an FCS spillover value ``n,name1..namen,v11..vnn``; None when n is 0."""
    parts = [p.strip() for p in value.replace("\n", "").split(",")]
    try:
        n = int(parts[0])
    except (ValueError, IndexError):
        raise FCSError("spillover does not start with a channel count", field=keyword,
                       value=value[:60], expected="n,name1,...,namen,v11,...,vnn") from None
    if n == 0:
        return None
    if n < 0 or len(parts) != 1 + n + n * n:
        raise FCSError(
            "spillover has the wrong number of fields", field=keyword,
            value=f"n={n}, {len(parts) - 1} fields after n",
            expected=f"{n + n * n} fields ({n} names and {n * n} values)",
        )
    names = tuple(parts[1 : n + 1])
    try:
        vals = [float(v) for v in parts[n + 1 :]]
    except ValueError:
        bad = next(v for v in parts[n + 1 :] if not _is_float(v))
        raise FCSError("spillover value is not a number", field=keyword, value=bad) from None
    if not all(math.isfinite(v) for v in vals):
        raise FCSError("spillover value is not finite", field=keyword)
    try:
        return SpillMatrix(names, np.array(vals, dtype=np.float64).reshape(n, n))
    except FlowError as exc:
        raise FCSError(exc.message, field=keyword, value=exc.value) from None


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def spillover_from_text(text: Mapping[str, str]) -> SpillMatrix | None:
    """The acquisition spillover matrix from FCS TEXT ($SPILLOVER, $SPILL or SPILL), or None."""
    upper = {k.upper(): v for k, v in text.items()}
    for key in SPILL_KEYWORDS:
        value = upper.get(key)
        if value is not None and value.strip():
            return parse_spill_string(value, key)
    return None


def load_spill_csv(path: str | Path) -> SpillMatrix:
    """Read a spillover matrix exported by FlowJo (or written by hand) as CSV/TSV.

    Accepted layouts: a header row of detector names (optionally starting with '#'),
    then n rows of n numbers; rows may carry a leading label column (the header then has
    an empty or label first cell). Commas or tabs separate cells.
    """
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError(f"cannot read compensation matrix: {exc}", field="path",
                        value=str(p)) from None
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    if not lines:
        raise FlowError("compensation matrix file is empty", field="path", value=str(p))

    def cells(line: str) -> list[str]:
        return [c.strip().strip('"').strip() for c in re.split(r"[\t,]", line)]

    header = cells(re.sub(r"^\s*#\s*", "", lines[0]))
    rows = [cells(ln) for ln in lines[1:]]
    labelled = bool(rows) and not _is_float(rows[0][0])
    names = header[1:] if (labelled and len(header) == len(rows[0])) else header
    names = [n for n in names if n != ""] if not labelled else names
    n = len(names)
    if n == 0 or len(rows) < n:
        raise FlowError(
            "compensation matrix needs a header of n names and n rows", field=str(p.name),
            value=f"{n} names, {len(rows)} rows", expected="n rows of n numbers",
        )
    matrix = np.empty((n, n), dtype=np.float64)
    row_labels: list[str] = []
    for i, r in enumerate(rows[:n]):
        vals = r[1:] if labelled else r
        if labelled:
            row_labels.append(r[0])
        if len(vals) != n:
            raise FlowError(
                f"compensation matrix row {i + 1} has {len(vals)} values",
                field=str(p.name), value=",".join(r)[:60], expected=f"{n} values",
            )
        try:
            matrix[i] = [float(v) for v in vals]
        except ValueError:
            raise FlowError(f"compensation matrix row {i + 1} holds a non-number",
                            field=str(p.name), value=",".join(r)[:60]) from None
    if labelled and row_labels != names:
        # FlowJo labels rows by the same detectors; reorder rows to the header order.
        if sorted(row_labels) != sorted(names):
            raise FlowError("row labels differ from the header names", field=str(p.name),
                            value=row_labels, expected=str(names))
        matrix = matrix[[row_labels.index(nm) for nm in names]]
    return SpillMatrix(tuple(names), matrix)


def compensate(events: np.ndarray, pnn: Sequence[str], spill: SpillMatrix) -> np.ndarray:
    """Compensated copy of `events` (n, len(pnn)); columns outside the matrix untouched.

    Every matrix channel must be one of `pnn` (the columns' $PnN names).
    """
    ev = np.asarray(events)
    if ev.ndim != 2 or ev.shape[1] != len(pnn):
        raise FlowError("events do not match the channel names", field="events",
                        value=f"shape {ev.shape}", expected=f"(n, {len(pnn)})")
    pnn = list(pnn)
    missing = [c for c in spill.channels if c not in pnn]
    if missing:
        raise FlowError(
            "spillover channel not in the sample", field="spillover channel",
            value=missing[0], expected="one of " + ", ".join(pnn),
        )
    idx = [pnn.index(c) for c in spill.channels]
    try:
        inv = np.linalg.inv(spill.matrix)
    except np.linalg.LinAlgError:
        raise FlowError("spillover matrix is singular", field="spillover",
                        value=list(spill.channels), expected="an invertible matrix") from None
    out = np.array(ev, dtype=np.float64, copy=True)
    out[:, idx] = ev[:, idx] @ inv
    return out
