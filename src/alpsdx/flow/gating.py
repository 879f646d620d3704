"""Automated gating of the ALPS double-negative T-cell (DNT) panel, in numpy/scipy only.

singlets (FSC-A vs FSC-H) -> lymphocytes (FSC/SSC density peak and its contour) -> CD3+ ->
TCRab+ -> CD4- CD8- (DNT) [-> B220+ among DNT]. Marker thresholds sit in the density
valleys of the logicle-transformed data. Densities are estimated on a deterministic
subsample; every gate is then applied to every event.

Each gate is a small serialisable :class:`Gate` (name, channels, scales, parameters, parent)
that can be drawn, re-applied to another file, or exported to FlowKit (gate ids are plain
identifiers so FlowKit's own Gating-ML export re-imports). Range gates follow Gating-ML:
``min <= x < max``; polygons use flowutils' winding-number test (edges inclusive), as
FlowKit does, in the gate's own space.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from scipy import ndimage, signal

from alpsdx.errors import GatingError
from alpsdx.flow import qc
from alpsdx.flow.markers import Panel
from alpsdx.flow.qc import QCFlag

__all__ = [
    "EventMasks",
    "Gate",
    "GatingResult",
    "Logicle",
    "Threshold",
    "apply_gates",
    "auto_gate",
    "find_threshold",
    "gates_from_dicts",
    "histogram2d_uniform",
    "logicle_histogram",
    "points_in_polygon",
    "threshold_from_histogram",
    "to_flowkit",
]

Scale = Literal["linear", "logicle"]
GATED = ("CD3", "TCRab", "CD4", "CD8", "B220")  # the markers auto_gate gates on


# --------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class Logicle:
    """Logicle (Parks 2006) with Gating-ML 2.0 parameters; forward and inverse."""

    T: float = 262144.0
    W: float = 0.5
    M: float = 4.5
    A: float = 0.0

    def _fns(self) -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
        try:  # the project's own implementation (alpsdx.flow.transforms), when present
            from alpsdx.flow import transforms as tr

            fwd = tr.logicle
            inv = getattr(tr, "logicle_inverse", None) or tr.inverse_logicle  # type: ignore[attr-defined]
            return fwd, inv
        except (ImportError, AttributeError):
            import flowutils.transforms as ft

            def fwd(x: np.ndarray, T: float, W: float, M: float, A: float) -> np.ndarray:
                return np.asarray(ft.logicle(np.asarray(x, dtype=float), None, t=T, m=M, w=W, a=A))

            def inv(y: np.ndarray, T: float, W: float, M: float, A: float) -> np.ndarray:
                return np.asarray(
                    ft.logicle_inverse(np.asarray(y, dtype=float), None, t=T, m=M, w=W, a=A)
                )

            return fwd, inv

    def forward(self, x: np.ndarray) -> np.ndarray:
        fwd, _ = self._fns()
        return np.asarray(fwd(np.asarray(x, dtype=float), T=self.T, W=self.W, M=self.M, A=self.A))

    def inverse(self, y: np.ndarray | float) -> np.ndarray:
        _, inv = self._fns()
        arr = np.atleast_1d(np.asarray(y, dtype=float))
        return np.asarray(inv(arr, T=self.T, W=self.W, M=self.M, A=self.A))

    def inverse1(self, y: float) -> float:
        return float(self.inverse(np.array([y]))[0])


# --------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class Gate:
    """One gate: ``polygon`` (2-D vertices) or ``range`` (per-dimension [min, max)), in the
    gate's own space (``scales``: linear or logicle per channel), inside ``parent``."""

    name: str  # plain identifier (FlowKit / Gating-ML id)
    label: str  # what a lab scientist reads, e.g. "CD3+"
    kind: Literal["polygon", "range"]
    channels: tuple[str, ...]  # $PnN
    scales: tuple[Scale, ...]
    parent: str | None
    markers: tuple[str, ...] = ()  # marker names for display, e.g. ("CD4", "CD8")
    vertices: tuple[tuple[float, float], ...] = ()
    bounds: tuple[tuple[float | None, float | None], ...] = ()
    compensated: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise GatingError("gate id must be a plain identifier", field="gate", value=self.name,
                              expected="letters, digits and _ only (no + or -)")
        if self.kind == "polygon" and (len(self.channels) != 2 or len(self.vertices) < 3):
            raise GatingError("a polygon gate needs 2 channels and >= 3 vertices", field=self.name)
        if self.kind == "range" and len(self.bounds) != len(self.channels):
            raise GatingError("a range gate needs one (min, max) per channel", field=self.name)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name, "label": self.label, "type": self.kind,
            "channels": list(self.channels), "scales": list(self.scales),
            "markers": list(self.markers), "parent": self.parent,
            "compensated": list(self.compensated),
        }
        if self.kind == "polygon":
            d["vertices"] = [[float(x), float(y)] for x, y in self.vertices]
        else:
            d["bounds"] = [[lo, hi] for lo, hi in self.bounds]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Gate:
        try:
            return cls(
                name=d["name"], label=d.get("label", d["name"]), kind=d["type"],
                channels=tuple(d["channels"]), scales=tuple(d["scales"]), parent=d.get("parent"),
                markers=tuple(d.get("markers", ())),
                vertices=tuple((float(x), float(y)) for x, y in d.get("vertices", ())),
                bounds=tuple((None if lo is None else float(lo), None if hi is None else float(hi))
                             for lo, hi in d.get("bounds", ())),
                compensated=tuple(d.get("compensated", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GatingError(f"malformed gate definition: {exc}", field="gate",
                              value=d.get("name") if isinstance(d, Mapping) else None) from None

    def mask(self, columns: Mapping[str, np.ndarray], xf: Logicle,
             subset: np.ndarray | None = None, within: np.ndarray | None = None) -> np.ndarray:
        """Boolean membership of every event (this gate only, parent not applied).

        Range gates on logicle channels compare the *linear* values with the inverse-
        transformed bounds (logicle is monotonic), which avoids transforming every event.
        ``subset`` (indices) restricts the test to those events; others are False.
        ``within`` (a boolean mask, e.g. the parent's) does the same: a large one is applied
        by testing every event and AND-ing (streaming beats gathering), a small one by
        testing only its events.
        """
        for c in self.channels:
            if c not in columns:
                raise GatingError(f"gate {self.name} needs channel {c}, absent from the sample",
                                  field=self.name, value=c)
        n = len(next(iter(columns.values())))
        if within is not None and subset is None:
            if np.count_nonzero(within) * 4 >= n:
                out = self.mask(columns, xf)
                out &= within
                return out
            subset = np.flatnonzero(within)
        idx = subset
        if self.kind == "range":
            res: np.ndarray | None = None
            for c, sc, (lo, hi) in zip(self.channels, self.scales, self.bounds, strict=True):
                v = columns[c] if idx is None else columns[c][idx]
                for bound, ge in ((lo, True), (hi, False)):
                    if bound is None:
                        continue
                    t = np.float64(xf.inverse1(bound) if sc == "logicle" else bound)
                    m = v >= t if ge else v < t
                    if res is None:
                        res = m
                    else:
                        res &= m
            out = res if res is not None else np.ones(n if idx is None else len(idx), dtype=bool)
        else:
            pts = []
            for c, sc in zip(self.channels, self.scales, strict=True):
                v = columns[c] if idx is None else columns[c][idx]
                pts.append(xf.forward(v) if sc == "logicle" else v)
            out = points_in_polygon(np.asarray(self.vertices, dtype=float), pts[0], pts[1])
        if idx is None:
            return out
        full = np.zeros(n, dtype=bool)
        full[idx] = out  # idx holds distinct events: one scatter
        return full


_GRID = 256


def points_in_polygon(vertices: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which points (x, y) lie in the polygon: flowutils' winding-number test (edges
    inclusive), the one FlowKit applies, so memberships match FlowKit's exactly.

    Speed-up without changing a single answer: a grid of cells spans the polygon's bounding
    box (clipped to where the points are); the cells the polygon's edges pass near (one cell
    of margin) are "boundary" cells whose points get the exact test, and every other cell
    lies wholly inside or outside, so its points take the answer of the cell's centre. A
    ring of boundary cells around the grid catches points on (or a rounding error from) its
    edges, and a ring of "outside" cells beyond it takes every farther point (NaN too), so
    each point costs one table look-up.
    """
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    vertices = np.asarray(vertices, dtype=np.float64)
    if n < 20_000:
        return _pip_bbox(vertices, x, y)
    if _is_wedge(vertices):
        return _wedge_mask(vertices, x, y)
    with np.errstate(invalid="ignore"):
        # minimum/maximum propagate NaN: a NaN range says "some value is NaN", and only then
        # are the NaN-ignoring ranges (and the NaN-safe table index) needed
        dx0, dx1 = float(np.minimum.reduce(x)), float(np.maximum.reduce(x))
        dy0, dy1 = float(np.minimum.reduce(y)), float(np.maximum.reduce(y))
        has_nan = math.isnan(dx0 + dx1 + dy0 + dy1)
        if has_nan:
            dx0, dx1 = float(np.fmin.reduce(x)), float(np.fmax.reduce(x))
            dy0, dy1 = float(np.fmin.reduce(y)), float(np.fmax.reduce(y))
    if not all(np.isfinite(v) for v in (dx0, dx1, dy0, dy1)):
        return _pip_bbox(vertices, x, y)  # infinite values (or no number at all)
    (pxmin, pymin), (pxmax, pymax) = vertices.min(axis=0), vertices.max(axis=0)
    xmin, xmax = max(float(pxmin), dx0), min(float(pxmax), dx1)
    ymin, ymax = max(float(pymin), dy0), min(float(pymax), dy1)
    if xmin > xmax or ymin > ymax:
        return np.zeros(n, dtype=bool)  # no point within the polygon's bounding box
    wx, wy = xmax - xmin, ymax - ymin
    if wx <= 0 or wy <= 0:
        return _pip_bbox(vertices, x, y)
    g = _GRID
    sx, sy = g / wx, g / wy
    cell = _cell_labels(vertices, xmin, ymin, sx, sy, g)
    # table index 0: outside ring, 1: boundary ring, 2..g+1: the grid, g+2: boundary, g+3: outside
    gt = g + 4
    table = np.zeros((gt, gt), dtype=np.int8)
    table[1:g + 3, 1:g + 3] = -1
    table[2:g + 2, 2:g + 2] = cell
    if has_nan:
        flat = _ring_index(x, xmin, sx, g)
        flat *= gt
        flat += _ring_index(y, ymin, sy, g)
    else:  # _ring_index_finite of x, then of y in the same scratch, added while truncated
        # float32 arithmetic (half the memory traffic) while the offsets stay within 1000
        # cells: every rounding then moves an index by < 1e-3 of a cell (a neighbouring cell
        # at most, which the widened boundary covers); else float64
        small = max(abs(xmin * sx), abs(ymin * sy)) < 1000.0
        ft: type[np.floating] = np.float32 if small else np.float64
        f = np.empty(n, dtype=ft)
        with np.errstate(over="ignore"):  # values past float32's range: far outside
            np.multiply(x, sx, out=f, dtype=ft, casting="same_kind")
            f += ft(2.0 - xmin * sx)
            np.clip(f, ft(0.0), ft(g + 3.0), out=f)
            flat = f.astype(np.int32)
            flat *= gt
            np.multiply(y, sy, out=f, dtype=ft, casting="same_kind")
            f += ft(2.0 - ymin * sy)
            np.clip(f, ft(0.0), ft(g + 3.0), out=f)
        np.add(flat, f, out=flat, casting="unsafe")  # flat * gt + trunc(f): f >= 0
        del f
    c = table.ravel().take(flat)
    inside = c == 1
    near = np.flatnonzero(c == -1)
    if near.size:
        inside[near] = _pip_exact(vertices, x, y, near)
    return inside


# The singlet gate is a wedge from the origin: (0, 0), (X, yl), (X, yh). A point well inside
# or outside it is told by its ratio y / x against the two slopes, with a relative margin
# _WEDGE_TOL far wider than the rounding of flowutils' cross products; points within the
# margin (or nearer the origin than _WEDGE_NEAR * X, where those products cancel, or past
# the vertical edge, or not numbers) take flowutils' own test.
_WEDGE_TOL = 1e-8
_WEDGE_NEAR = 1e-6


def _is_wedge(v: np.ndarray) -> bool:
    """``v`` is (0, 0), (X, yl), (X, yh) with X > 0 and 0 < yl < yh <= 1e6 * yl, finite."""
    if v.shape != (3, 2) or not np.isfinite(v).all():
        return False
    (x0, y0), (x1, yl), (x2, yh) = v.tolist()
    return x0 == 0.0 and y0 == 0.0 and x1 == x2 > 0.0 and 0.0 < yl < yh <= 1e6 * yl


def _wedge_mask(v: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """flowutils' winding-number answer for the wedge ``v`` (see :func:`_is_wedge`).

    Why the margins hold: for a point with _WEDGE_NEAR * X <= x < X, flowutils' cross
    product for the lower edge, X*y - x*yl, has terms of size x*yl (up to yh/yl times it),
    so its rounding is ~1e-16 * (1 + yh/yl) * x*yl; the upper edge's, (-X)*(y - yh) -
    (x - X)*(-yh), has terms up to X*yh, so ~1e-15 * X*yh. A ratio outside the slopes' margin
    makes the true products at least _WEDGE_TOL * x*yl (or * x*yh): 1e-8 * x exceeds both
    roundings for x >= 1e-6 * X and yh/yl <= 1e6, so the products' signs, hence the winding
    number, are certain. The vertical edge is an exact comparison, x < X."""
    big_x, yl, yh = float(v[1, 0]), float(v[1, 1]), float(v[2, 1])
    lo, hi = yl / big_x, yh / big_x
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r = np.divide(y, x, dtype=np.float64)
        inside = r > lo * (1 + _WEDGE_TOL)
        inside &= r < hi * (1 - _WEDGE_TOL)
        outside = r < lo * (1 - _WEDGE_TOL)
        outside |= r > hi * (1 + _WEDGE_TOL)
        del r
        ok_x = x >= _WEDGE_NEAR * big_x
        ok_x &= x < big_x
    inside &= ok_x
    outside &= ok_x
    outside |= inside
    near = np.flatnonzero(~outside)  # neither certainly inside nor certainly outside
    if near.size:
        inside[near] = _pip_exact(v, x, y, near)
    return inside


def _ring_index(v: np.ndarray, lo: float, s: float, g: int) -> np.ndarray:
    """Table index along one axis: (v - lo) * s + 2 clamped to [0, g + 3] (NaN -> 0).

    Computed in float32 (half the memory traffic of float64): the index is then off by a
    few 1e-5 of a cell at most, which can only move a point into a neighbouring cell, and
    a neighbour of a non-boundary cell lies on the same side of every edge (the boundary
    cells are widened by one cell), so no answer changes."""
    f = np.empty(v.shape, dtype=np.float32)
    np.subtract(v, lo, out=f, dtype=np.float64, casting="same_kind")
    f *= np.float32(s)
    f += np.float32(2.0)
    np.fmax(f, np.float32(0.0), out=f)
    np.fmin(f, np.float32(g + 3), out=f)
    return f.astype(np.int32)


def _ring_index_finite(v: np.ndarray, lo: float, s: float, g: int) -> np.ndarray:
    """:func:`_ring_index` of values that hold no NaN, in four passes: v * s + (2 - lo * s)
    in float64 (off from (v - lo) * s + 2 by rounding only, far less than a cell), clipped
    to [0, g + 3] and truncated."""
    f = np.multiply(v, s, dtype=np.float64)
    f += 2.0 - lo * s
    np.clip(f, 0.0, g + 3.0, out=f)
    return f.astype(np.int32)


def _cell_labels(vertices: np.ndarray, xmin: float, ymin: float, sx: float, sy: float,
                 g: int) -> np.ndarray:
    """(g, g) labels: -1 boundary (near an edge), 0 outside, 1 inside."""
    from flowutils.gating import points_in_polygon as _pip

    # cells near an edge: sample every edge at <= 1/3 cell (all edges at once), then widen
    # by one cell
    a = np.roll(vertices, 1, axis=0)
    dx, dy = vertices[:, 0] - a[:, 0], vertices[:, 1] - a[:, 1]
    m = np.ceil(3 * np.maximum(np.abs(dx) * sx, np.abs(dy) * sy)).astype(np.int64) + 2
    m = np.minimum(m, 3 * 4 * g)  # an edge far past the grid still needs only cells inside it
    edge = np.repeat(np.arange(len(vertices)), m)
    t = np.arange(edge.size) - np.repeat(np.cumsum(m) - m, m)
    t = t / (m[edge] - 1)
    ci = np.clip(((a[edge, 0] + t * dx[edge] - xmin) * sx).astype(np.int64), 0, g - 1)
    cj = np.clip(((a[edge, 1] + t * dy[edge] - ymin) * sy).astype(np.int64), 0, g - 1)
    b = np.zeros((g, g), dtype=bool)
    b[ci, cj] = True
    # 3x3 dilation (as ndimage.binary_dilation with a 3x3 square), one axis at a time
    d = b.copy()
    d[1:] |= b[:-1]
    d[:-1] |= b[1:]
    boundary = d.copy()
    boundary[:, 1:] |= d[:, :-1]
    boundary[:, :-1] |= d[:, 1:]
    # No edge passes through a non-boundary cell, so side-adjacent non-boundary cells lie on
    # the same side of every edge: each run of non-boundary cells along a row of the grid
    # gets the exact answer of its first cell's centre.
    free = ~boundary
    start = free.copy()
    start[:, 1:] &= boundary[:, :-1]
    first = np.flatnonzero(start)
    if not first.size:
        return np.full((g, g), -1, dtype=np.int8)
    run = np.cumsum(start.ravel()) - 1  # run of each cell (meaningful where free)
    ii, jj = np.divmod(first, g)
    centre = np.empty((first.size, 2), dtype=np.float64)
    centre[:, 0] = xmin + (ii + 0.5) / sx
    centre[:, 1] = ymin + (jj + 0.5) / sy
    lab = np.asarray(_pip(vertices, centre), dtype=np.int8)
    cell = lab[run].reshape(g, g)
    cell[boundary] = -1
    return cell


def _pip_exact(vertices: np.ndarray, x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    from flowutils.gating import points_in_polygon as _pip

    pts = np.empty((idx.size, 2), dtype=np.float64)
    pts[:, 0] = x[idx]
    pts[:, 1] = y[idx]
    return np.asarray(_pip(vertices, pts), dtype=bool)


def _pip_bbox(vertices: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The exact test on the points within the polygon's bounding box (small inputs)."""
    inside = np.zeros(x.shape[0], dtype=bool)
    xmin, ymin = vertices.min(axis=0)
    xmax, ymax = vertices.max(axis=0)
    cand = np.flatnonzero((x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax))
    if cand.size:
        inside[cand] = _pip_exact(vertices, x, y, cand)
    return inside


def apply_gates(gates: Sequence[Gate], columns: Mapping[str, np.ndarray],
                xf: Logicle) -> dict[str, np.ndarray]:
    """Masks of every gate with its parents applied (gates must come parent-first)."""
    masks: dict[str, np.ndarray] = {}
    for g in gates:
        if g.parent is not None and g.parent not in masks:
            raise GatingError(f"gate {g.name}: parent {g.parent} is not defined before it",
                              field=g.name, value=g.parent)
        if g.parent is None:
            masks[g.name] = g.mask(columns, xf)
        else:
            masks[g.name] = g.mask(columns, xf, within=masks[g.parent])
    return masks


def gates_from_dicts(items: Sequence[Mapping[str, Any]]) -> list[Gate]:
    return [Gate.from_dict(d) for d in items]


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Threshold:
    """Where a positive/negative cut was placed (logicle units) and how clear it was."""

    marker: str
    position: float
    method: Literal["valley", "tail", "fallback"]
    depth: float | None  # valley density / smaller peak density (lower is clearer)
    clear: bool
    peaks: tuple[float, ...] = ()
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"marker": self.marker, "position": round(self.position, 5), "method": self.method,
                "depth": None if self.depth is None else round(self.depth, 4),
                "clear": self.clear, "peaks": [round(p, 4) for p in self.peaks], "n": self.n}


_T_LO, _T_HI, _T_BINS = -0.1, 1.05, 288


def find_threshold(y: np.ndarray, marker: str, *, max_depth: float, tail_fraction: float,
                   fallback: float) -> Threshold:
    """Positive/negative cut in logicle space: the density valley between the two most
    prominent peaks; with one peak, the point where its negative (or positive) tail falls
    to ``tail_fraction`` of the peak; with too few events, ``fallback``.

    ``y`` holds logicle-scale values; :func:`logicle_histogram` gives the same histogram
    from linear values without transforming every event."""
    y = y[np.isfinite(y)]
    h, _ = np.histogram(np.clip(y, _T_LO, _T_HI), bins=_T_BINS, range=(_T_LO, _T_HI))
    return threshold_from_histogram(h, int(y.size), marker, max_depth=max_depth,
                                    tail_fraction=tail_fraction, fallback=fallback)


def logicle_histogram(x: np.ndarray, xf: Logicle) -> tuple[np.ndarray, int]:
    """Counts of linear values ``x`` in the uniform logicle bins :func:`find_threshold` uses:
    the bin edges are mapped back to data space (logicle is monotonic), so only 289 values
    are transformed instead of every event; values below (above) the edges count in the first
    (last) bin, NaN and infinities in none. Equal to ``np.histogram`` over those edges of the
    clipped values, by a table look-up instead of a sort (:func:`_logicle_bin_table`)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if not math.isfinite(float(np.add.reduce(x))):
            x = x[np.isfinite(x)]
    table = _logicle_bin_table(xf.T, xf.W, xf.M, xf.A)
    if table is None:
        edges = xf.inverse(np.linspace(_T_LO, _T_HI, _T_BINS + 1))
        h, _ = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)
        return h, int(x.size)
    codes, interior = table
    # the float32 nearest each value, its top 16 bits: sign, exponent, 7 mantissa bits
    with np.errstate(over="ignore"):  # beyond float32: infinity, the last (first) bin
        key = x.astype(np.float32).view(np.uint32) >> 16
    b = codes.take(key)
    if b.size and int(np.minimum.reduce(b)) < 0:  # values in a cell an edge passes through
        amb = np.flatnonzero(b < 0)
        base = -1 - b[amb]
        b[amb] = base + (x[amb] >= interior.take(base))
    return np.bincount(b, minlength=_T_BINS), int(x.size)


@lru_cache(maxsize=8)
def _logicle_bin_table(T: float, W: float, M: float, A: float
                       ) -> tuple[np.ndarray, np.ndarray] | None:
    """Bin of every value by the top 16 bits of its nearest float32 (65,536 cells, each a
    range of values 1/128 wide relative to its size): the cell's bin when no edge passes
    within one float32 step of the cell, else -1 - (the bin below the one edge inside), for
    an exact comparison. None when some cell holds two edges (then np.histogram is used)."""
    edges = Logicle(T, W, M, A).inverse(np.linspace(_T_LO, _T_HI, _T_BINS + 1))
    interior = np.ascontiguousarray(edges[1:-1])  # bin(v) = how many of these are <= v
    k = np.arange(1 << 16, dtype=np.uint32) << 16
    a = k.view(np.float32)  # lowest bits of each cell
    z = (k | 0xFFFF).view(np.float32)  # highest bits
    with np.errstate(invalid="ignore"):
        lo = np.fmin(a, z)  # negative values: more bits, more negative
        hi = np.fmax(a, z)
    special = ~np.isfinite(a)  # exponent all ones: infinities (NaN never looked up)
    with np.errstate(over="ignore", invalid="ignore"):
        lo_e = np.nextafter(lo, np.float32(-np.inf)).astype(np.float64)
        hi_e = np.nextafter(hi, np.float32(np.inf)).astype(np.float64)
    b_lo = np.searchsorted(interior, lo_e, side="right")
    b_hi = np.searchsorted(interior, hi_e, side="right")
    if np.any((b_hi - b_lo > 1) & ~special):
        return None
    codes = np.where(b_hi == b_lo, b_lo, -1 - b_lo)
    codes[special] = np.where(k[special] >> 31 == 1, 0, _T_BINS - 1)
    return codes.astype(np.intp), interior


def threshold_from_histogram(h: np.ndarray, n: int, marker: str, *, max_depth: float,
                             tail_fraction: float, fallback: float) -> Threshold:
    """The cut of :func:`find_threshold` from its logicle-bin histogram ``h`` of ``n`` events."""
    if n < 50:
        return Threshold(marker, fallback, "fallback", None, False, (), n)
    edges = np.linspace(_T_LO, _T_HI, _T_BINS + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    sm = ndimage.gaussian_filter1d(h.astype(float), 3.0, mode="constant")
    root = np.sqrt(sm)
    peaks, props = signal.find_peaks(root, prominence=0.06 * root.max(), distance=20)
    if peaks.size >= 2:
        top = peaks[np.argsort(props["prominences"])[::-1][:2]]
        p1, p2 = sorted(int(p) for p in top)
        v = p1 + int(np.argmin(sm[p1:p2 + 1]))
        depth = float(sm[v] / min(sm[p1], sm[p2]))
        return Threshold(marker, float(centres[v]), "valley", depth, depth <= max_depth,
                         (float(centres[p1]), float(centres[p2])), n)
    if peaks.size == 1:
        p = int(peaks[0])
        level = tail_fraction * sm[p]
        if centres[p] >= fallback:  # one positive population: cut below its negative tail
            below = np.flatnonzero(sm[:p] < level)
            v = int(below[-1]) if below.size else 0
        else:  # one negative population: cut above its positive tail
            above = np.flatnonzero(sm[p:] < level)
            v = p + int(above[0]) if above.size else _T_BINS - 1
        return Threshold(marker, float(centres[v]), "tail", None, False, (float(centres[p]),),
                         n)
    return Threshold(marker, fallback, "fallback", None, False, (), n)


# --------------------------------------------------------------------------- result


class EventMasks(MutableMapping[str, np.ndarray]):
    """Per-event boolean masks by gate name (a mapping, in the order the gates were added).

    A mask known among some events only (the marker gates, among lymphocytes) is kept as
    those events' indices and their compact mask, and spread over every event when first
    read: counting it (:meth:`count`) needs no full-length copy."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._full: dict[str, np.ndarray] = {}
        self._among: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._order: dict[str, None] = {}

    def set_among(self, name: str, idx: np.ndarray, mask: np.ndarray) -> None:
        """Gate ``name`` holds events ``idx[mask]`` (``idx``: distinct event indices)."""
        self._full.pop(name, None)
        self._among[name] = (idx, mask)
        self._order[name] = None

    def count(self, name: str) -> int:
        """How many events gate ``name`` holds."""
        if name in self._among:  # (spread or not, the same events)
            return int(np.count_nonzero(self._among[name][1]))
        return int(np.count_nonzero(self[name]))

    def __getitem__(self, name: str) -> np.ndarray:
        m = self._full.get(name)
        if m is None:
            if name not in self._among:
                raise KeyError(name)
            idx, sub = self._among[name]
            m = np.zeros(self.n, dtype=bool)
            m[idx] = sub  # (one scatter; faster than compressing the indices first)
            self._full[name] = m
        return m

    def __setitem__(self, name: str, mask: np.ndarray) -> None:
        self._among.pop(name, None)
        self._full[name] = mask
        self._order[name] = None

    def __delitem__(self, name: str) -> None:
        del self._order[name]
        self._full.pop(name, None)
        self._among.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)


@dataclass
class GatingResult:
    """Gates, per-event masks, counts, thresholds and QC flags of one sample."""

    gates: list[Gate]
    masks: MutableMapping[str, np.ndarray]
    thresholds: dict[str, Threshold]
    flags: list[QCFlag]
    n_events: int
    dnt_gate: str = "dnt"
    tcrab_gate: str | None = "tcrab_pos"
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        m = self.masks
        if isinstance(m, EventMasks):
            return {k: m.count(k) for k in m}
        return {k: int(np.count_nonzero(v)) for k, v in m.items()}


# --------------------------------------------------------------------------- scatter


def _subsample(n: int, limit: int) -> np.ndarray | slice:
    """A deterministic, evenly spread subsample (every k-th event)."""
    if n <= limit:
        return slice(None)
    step = int(np.ceil(n / limit))
    return slice(0, n, step)


def _finite_max(v: np.ndarray, floor: float) -> float:
    """max(largest finite value, floor), as ``max(np.max(v, initial=floor,
    where=np.isfinite(v)), floor)`` but one plain reduction when nothing is infinite."""
    m = float(np.fmax.reduce(v)) if v.size else -np.inf  # NaN ignored
    if not np.isfinite(m):  # +inf present, or nothing but NaN/-inf: the masked form
        m = float(np.max(v, initial=floor, where=np.isfinite(v)))
    return max(m, floor)


def _n_non_finite(v: np.ndarray) -> int:
    """How many values are NaN or infinite: zero when their sum is finite (one fast reduction;
    a NaN or infinity makes the sum non-finite), else counted."""
    with np.errstate(over="ignore", invalid="ignore"):
        if v.size == 0 or np.isfinite(np.add.reduce(v)):
            return 0
    return int(v.size - np.count_nonzero(np.isfinite(v)))


def _quantiles(v: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``np.quantile(v, qs)`` (linear method), bit for bit, for tail quantiles of many values.

    Each tail's order statistics lie among the values below (or above) a cut read off a
    sorted 1-in-32 sample with a wide margin; only those few values are partitioned (numpy
    partitions every value), and numpy interpolates between the two order statistics with
    the same weight its own quantile would use. Small inputs, central quantiles, NaN, or a
    cut that missed take np.quantile itself."""
    q = np.asarray(qs, dtype=np.float64)
    n = v.size
    if n < 4096 or not bool(((q <= 0.05) | (q >= 0.95)).all()):
        return np.asarray(np.quantile(v, q))
    with np.errstate(invalid="ignore", over="ignore"):
        if math.isnan(float(np.add.reduce(v))):
            return np.asarray(np.quantile(v, q))
    virt = (n - 1) * q  # numpy's virtual index, interpolation weight and neighbours
    prev = np.floor(virt)
    gamma = virt - prev
    lo_i = np.clip(prev.astype(np.intp), 0, n - 1)
    hi_i = np.minimum(lo_i + 1, n - 1)
    ranks = np.unique(np.concatenate([lo_i, hi_i]))
    step = 32
    smp = np.sort(v[::step])
    m = smp.size
    vals: dict[int, float] = {}
    for rs, low in ((ranks[ranks < n // 2], True), (ranks[ranks >= n // 2], False)):
        if not rs.size:
            continue
        if low:
            r = int(rs.max())
            cut = smp[min(m - 1, int(1.3 * (r + 1) / step) + 16)]
            cand = v[v <= cut]
            if cand.size <= r:
                return np.asarray(np.quantile(v, q))
            kk = rs
        else:
            r = int(rs.min())
            cut = smp[max(0, m - 1 - int(1.3 * (n - r) / step) - 16)]
            cand = v[v >= cut]
            off = n - cand.size
            if off > r:
                return np.asarray(np.quantile(v, q))
            kk = rs - off
        part = np.partition(cand, kk)
        for rank, k in zip(rs.tolist(), kk.tolist(), strict=True):
            vals[rank] = part[k]
    return np.array([np.quantile(np.array([vals[int(a)], vals[int(b)]]), g)
                     for a, b, g in zip(lo_i, hi_i, gamma, strict=True)])


def singlet_gate(fa: np.ndarray, fh: np.ndarray, cha: str, chh: str, *, sig_lo: float,
                 sig_hi: float, xmax: float) -> Gate:
    """Singlets: events whose FSC-H/FSC-A ratio lies in [mode - sig_lo*s, mode + sig_hi*s];
    doublets have a larger area for their height. Drawn as a wedge from the origin."""
    fa, fh = np.asarray(fa), np.asarray(fh)  # (float32 columns: the ratio is taken in float64)
    with np.errstate(invalid="ignore"):  # minimum/maximum propagate NaN: then the mask
        all_ok = (float(np.minimum.reduce(fa, initial=np.inf)) > 0
                  and float(np.minimum.reduce(fh, initial=np.inf)) > 0
                  and math.isfinite(float(np.maximum.reduce(fa, initial=0.0)))
                  and math.isfinite(float(np.maximum.reduce(fh, initial=0.0))))
    if all_ok and fa.size >= 100:  # every event positive and finite: no mask, no copies
        r = np.divide(fh, fa, dtype=np.float64)
    else:
        ok = (fa > 0) & (fh > 0) & np.isfinite(fa) & np.isfinite(fh)
        if np.count_nonzero(ok) < 100:
            raise GatingError("too few events with positive FSC-A and FSC-H for a singlet gate",
                              field="singlets", value=int(np.count_nonzero(ok)))
        r = np.divide(fh[ok], fa[ok], dtype=np.float64)
    lo_q, hi_q = _quantiles(r, [0.005, 0.995])
    h, e = histogram_uniform(r, 256, (float(lo_q), float(hi_q)))
    sm = ndimage.gaussian_filter1d(h.astype(float), 2.0)
    mode = float(0.5 * (e[int(np.argmax(sm))] + e[int(np.argmax(sm)) + 1]))
    upper = r[r >= mode] - mode
    s = float(1.4826 * np.median(upper)) if upper.size else 0.05 * mode
    s = max(s, 0.005 * mode)
    lo = max(mode - sig_lo * s, 0.05 * mode)
    hi = mode + sig_hi * s
    X = float(xmax)
    verts = ((0.0, 0.0), (X, lo * X), (X, hi * X))
    return Gate("singlets", "Singlets", "polygon", (cha, chh), ("linear", "linear"), None,
                ("FSC-A", "FSC-H"), vertices=verts, compensated=(False, False))


def _uniform_bin_code(v: np.ndarray, lo: float, hi: float, nb: int) -> np.ndarray:
    """Bin of each value among ``nb`` equal bins over [lo, hi], plus one: 1..nb inside (numpy's
    rule, edges[k] <= v < edges[k + 1] with the last bin closed), 0 below, NaN included, and
    nb + 1 above.

    A candidate from one multiply is within one bin of the answer; one comparison with the
    bin's lower edge and one with the next bin's lower edge correct it, so every value gets
    exactly the bin numpy's edges give it."""
    edges = np.linspace(lo, hi, nb + 1)
    # low[c]: lower edge of code c (code 0 from -inf; code nb + 1 from just past hi, as the
    # last bin is closed; a sentinel +inf after it)
    low = np.empty(nb + 3)
    low[0] = -np.inf
    low[1:nb + 1] = edges[:-1]
    low[nb + 1] = np.nextafter(hi, np.inf)
    low[nb + 2] = np.inf
    f = np.subtract(v, lo)
    f *= nb / (hi - lo)
    np.fmax(f, -1.0, out=f)  # NaN becomes -1 (code 0), where no comparison moves it
    np.fmin(f, float(nb), out=f)
    code = f.astype(np.intp)
    del f
    code += 1
    code -= v < low.take(code)
    code += v >= low.take(code + 1)
    return code


def _uniform_bin_index(v: np.ndarray, lo: float, hi: float, nb: int) -> np.ndarray:
    """Bin of each value among ``nb`` equal bins over [lo, hi] (numpy's uniform-bin rule:
    edges[k] <= v < edges[k + 1], the last bin closed), -1 outside the range."""
    code = _uniform_bin_code(v, lo, hi, nb)
    code -= 1
    code[code == nb] = -1
    return code


def histogram_uniform(v: np.ndarray, nb: int, rng: tuple[float, float]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram(v, bins=nb, range=rng)`` (finite values) with the same counts and
    edges, by arithmetic bin indices and one bincount."""
    lo, hi = rng
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        return np.histogram(v, bins=nb, range=rng)
    h = np.bincount(_uniform_bin_code(v, lo, hi, nb), minlength=nb + 2)[1:nb + 1]
    return h, np.linspace(lo, hi, nb + 1)


def histogram2d_uniform(x: np.ndarray, y: np.ndarray, nb: int,
                        rng: tuple[tuple[float, float], tuple[float, float]]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.histogram2d(x, y, bins=nb, range=rng)`` with the same counts and edges, by
    arithmetic bin indices and one bincount instead of two binary searches per event."""
    (x0, x1), (y0, y1) = rng
    if not (np.isfinite([x0, x1, y0, y1]).all() and x0 < x1 and y0 < y1):
        return np.histogram2d(x, y, bins=nb, range=rng)
    flat = _uniform_bin_code(x, x0, x1, nb)
    flat *= nb + 2
    flat += _uniform_bin_code(y, y0, y1, nb)
    h = np.bincount(flat, minlength=(nb + 2) ** 2).reshape(nb + 2, nb + 2)
    return (h[1:nb + 1, 1:nb + 1].astype(np.float64), np.linspace(x0, x1, nb + 1),
            np.linspace(y0, y1, nb + 1))


def _fill_holes(region: np.ndarray) -> np.ndarray:
    """``ndimage.binary_fill_holes`` (4-connected background) by one labelling: background
    components touching the border stay background, every other cell is filled."""
    lab, k = ndimage.label(~region)
    if k == 0:
        return region.copy()
    outer = np.zeros(k + 1, dtype=bool)
    outer[lab[0]] = outer[lab[-1]] = outer[lab[:, 0]] = outer[lab[:, -1]] = True
    outer[0] = False
    return ~outer[lab]


def lymphocyte_gate(fsc: np.ndarray, ssc: np.ndarray, chf: str, chs: str, parent: str | None, *,
                    contour: float, debris_frac: float, n_rays: int = 72) -> tuple[Gate, list[QCFlag]]:
    """Lymphocytes: the scatter density peak with the lowest SSC among non-debris peaks,
    bounded by its density contour (raised until no other cloud joins it)."""
    flags: list[QCFlag] = []
    fsc = np.asarray(fsc, dtype=np.float64)  # (float32 columns: same values)
    ssc = np.asarray(ssc, dtype=np.float64)
    keep = np.isfinite(fsc) & np.isfinite(ssc)
    if not keep.all():
        fsc, ssc = fsc[keep], ssc[keep]
    if fsc.size < 200:
        raise GatingError("too few events to find the lymphocyte cloud", field="lymphocytes",
                          value=int(fsc.size), expected=">= 200 events")
    qf = _quantiles(fsc, [0.001, 0.995, 0.99])
    qs = _quantiles(ssc, [0.001, 0.995])
    x0 = min(float(qf[0]), 0.0)
    x1 = float(qf[1]) * 1.05
    y0 = min(float(qs[0]), 0.0)
    y1 = float(qs[1]) * 1.05
    nb = 256
    h, xe, ye = histogram2d_uniform(fsc, ssc, nb, ((x0, x1), (y0, y1)))
    sm = ndimage.gaussian_filter(h, 2.0)
    mx = ndimage.maximum_filter(sm, size=9, mode="constant")
    pk = np.argwhere((sm == mx) & (sm >= 0.02 * sm.max()))
    if pk.size == 0:
        raise GatingError("no density peak in FSC/SSC", field="lymphocytes")
    heights = sm[pk[:, 0], pk[:, 1]]
    fsc99 = float(qf[2])
    xc = 0.5 * (xe[:-1] + xe[1:])
    yc = 0.5 * (ye[:-1] + ye[1:])
    not_debris = xc[pk[:, 0]] >= debris_frac * fsc99
    cand = np.flatnonzero(not_debris)
    if cand.size == 0:
        flags.append(QCFlag("scatter_no_lymph_peak", "warning",
                            "every FSC/SSC peak looks like debris; the highest peak was taken as lymphocytes"))
        cand = np.arange(len(pk))
    ch = heights[cand]
    strong = cand[ch >= 0.1 * ch.max()]
    lp = int(strong[np.argmin(yc[pk[strong, 1]])])
    pi, pj = int(pk[lp, 0]), int(pk[lp, 1])
    peak_h = float(sm[pi, pj])
    # other clouds: peaks not joined to the lymphocyte peak above 70 % of the lower peak
    # (maxima on a plateau of the same cloud are merged, not treated as neighbours)
    others = []
    for k, p in enumerate(pk):
        if k == lp or heights[k] < 0.02 * peak_h:
            continue
        lab, _ = ndimage.label(sm >= 0.7 * min(peak_h, float(heights[k])))
        if lab[pi, pj] != lab[p[0], p[1]]:
            others.append((int(p[0]), int(p[1])))
    level = contour * peak_h
    region = None
    while level < 0.9 * peak_h:
        lab, _ = ndimage.label(sm >= level)
        comp = lab == lab[pi, pj]
        if not any(comp[a, b] for a, b in others):
            region = comp
            break
        level *= 1.25
    if region is None:
        raise GatingError("the lymphocyte cloud cannot be separated from its neighbours",
                          field="lymphocytes")
    if level > 1.5 * contour * peak_h:
        flags.append(QCFlag("lymph_gate_tight", "info",
                            f"lymphocyte contour raised to {level / peak_h:.2f} of the peak to keep "
                            "neighbouring clouds out", value=round(level / peak_h, 3),
                            threshold=contour, citation="site_setting"))
    region = _fill_holes(region)
    # star-shaped outline: the first exit of rays cast from the peak
    verts = _ray_outline(region, pi, pj, xe, ye, n_rays)
    gate = Gate("lymphocytes", "Lymphocytes", "polygon", (chf, chs), ("linear", "linear"), parent,
                ("FSC-A", "SSC-A"), vertices=tuple(verts), compensated=(False, False))
    return gate, flags


def _ray_outline(region: np.ndarray, pi: int, pj: int, xe: np.ndarray, ye: np.ndarray,
                 n_rays: int) -> list[tuple[float, float]]:
    """Vertices where ``n_rays`` rays cast from cell (pi, pj) in steps of 1/4 cell first leave
    ``region`` (or the grid), half a cell past the last cell inside, in data units.

    All rays advance together, a chunk of steps at a time, and stop once every ray has left
    (the values are those of one ray at a time: the same products and roundings)."""
    nb = region.shape[0]
    angles = np.linspace(0, 2 * np.pi, n_rays, endpoint=False)
    ca, sa = np.cos(angles), np.sin(angles)
    steps = np.arange(0, 2 * nb, 0.25)
    k_exit = np.full(n_rays, len(steps) - 1)  # a ray that never leaves ends at its last step
    pending = np.arange(n_rays)
    chunk = 128
    for c0 in range(0, len(steps), chunk):
        st = steps[c0:c0 + chunk]
        ri = np.round(pi + st * ca[pending, None]).astype(int)
        rj = np.round(pj + st * sa[pending, None]).astype(int)
        ok = (ri >= 0) & (ri < nb) & (rj >= 0) & (rj < nb)
        ok[ok] = region[ri[ok], rj[ok]]
        left = ~ok
        has = left.any(axis=1)
        k_exit[pending[has]] = c0 + left[has].argmax(axis=1)
        pending = pending[~has]
        if not pending.size:
            break
    r = steps[np.maximum(k_exit - 1, 0)] + 0.5
    fi = pi + r * ca
    fj = pj + r * sa
    vx = xe[0] + (fi + 0.5) * (xe[1] - xe[0])
    vy = ye[0] + (fj + 0.5) * (ye[1] - ye[0])
    return [(float(x), float(y)) for x, y in zip(vx, vy, strict=True)]


# --------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class _Config:
    """The gating settings of ``flow_qc.yaml`` (site settings), read once per sample."""

    xf: Logicle
    max_depth: float
    tail: float
    fallback: float
    sub_n: int
    sig_lo: float
    sig_hi: float
    contour: float
    debris: float
    min_lymphocytes: float


def _config() -> _Config:
    g = qc.settings()["gating"]
    lg = g["logicle"]
    return _Config(
        xf=Logicle(float(lg["T"]), float(lg["W"]), float(lg["M"]), float(lg["A"])),
        max_depth=qc.qc_value("max_valley_depth"),
        tail=float(g["fallback_tail_fraction"]["value"]),
        fallback=float(g["fallback_cd3_threshold"]["value"]),
        sub_n=int(g["density_subsample"]["value"]),
        sig_lo=float(g["singlet_sigmas_low"]["value"]),
        sig_hi=float(g["singlet_sigmas_high"]["value"]),
        contour=float(g["lymph_contour_fraction"]["value"]),
        debris=float(g["debris_fsc_fraction"]["value"]),
        min_lymphocytes=qc.qc_value("min_lymphocytes"),
    )


def _scatter_channels(sc: Mapping[str, str]) -> tuple[str, str]:
    """(FSC, SSC) channels of the lymphocyte gate, or a GatingError naming what is there."""
    fsc_name = sc.get("FSC-A") or sc.get("FSC-H")
    if fsc_name is None or "SSC-A" not in sc:
        raise GatingError("forward and side scatter channels are needed to find lymphocytes",
                          field="scatter", value=", ".join(sorted(sc)) or "none",
                          expected="FSC-A (or FSC-H) and SSC-A, or --channel FSC-A=<PnN>")
    return fsc_name, sc["SSC-A"]


def auto_gate(
    columns: Mapping[str, np.ndarray],
    panel: Panel,
    *,
    xf: Logicle | None = None,
    ranges: Mapping[str, float] | None = None,
    compensated: bool = True,
    raw: Mapping[str, np.ndarray] | None = None,
    compensate_at: Any = None,
) -> GatingResult:
    """Gate the ALPS DNT panel. ``columns``: $PnN -> linear (compensated) values, one per event,
    for the scatter channels and the gated markers. ``raw``: the detectors' uncompensated
    values, on which off-scale events ($PnR) are counted (default: ``columns``).

    Densities are estimated on the deterministic subsample (every k-th event, at most
    ``density_subsample``): the singlet wedge from it (spanning every event's FSC-A), the
    lymphocyte cloud from its singlets. Every marker gate lies inside the lymphocyte gate,
    so the markers are gated among lymphocytes and their masks spread back over every event.

    ``compensate_at`` (e.g. :class:`alpsdx.flow.pipeline.CompensatedAt`) supplies the
    compensated markers absent from ``columns`` at given events only: called with the
    lymphocytes' event indices it returns their values there, and its ``channels`` and
    ``n_non_finite(channel)`` serve the non-finite check over every event."""
    cfg = _config()
    xf = xf or cfg.xf
    flags: list[QCFlag] = []
    gates: list[Gate] = []
    n = len(next(iter(columns.values())))
    if n == 0:
        raise GatingError("the sample has no events", field="events", value=0)
    masks = EventMasks(n)

    def add(gate: Gate) -> np.ndarray:
        parent = None if gate.parent is None else masks[gate.parent]
        m = gate.mask(columns, xf, within=parent)
        gates.append(gate)
        masks[gate.name] = m
        return m

    sc = panel.scatter
    s = _subsample(n, cfg.sub_n)  # a slice: the columns are viewed, not copied
    parent: str | None = None
    # 1. singlets
    if "FSC-A" in sc and "FSC-H" in sc:
        fa = columns[sc["FSC-A"]]
        add(singlet_gate(fa[s], columns[sc["FSC-H"]][s], sc["FSC-A"], sc["FSC-H"],
                         sig_lo=cfg.sig_lo, sig_hi=cfg.sig_hi, xmax=4.0 * _finite_max(fa, 1.0)))
        parent = "singlets"
    else:
        flags.append(QCFlag("no_singlet_gate", "info",
                            "FSC-A and FSC-H are not both present: doublets were not removed"))
    # 2. lymphocytes: the density of the subsample's singlets
    fsc_name, ssc_name = _scatter_channels(sc)
    fsc_s, ssc_s = columns[fsc_name][s], columns[ssc_name][s]
    if parent is not None:
        sel = masks[parent][s]
        fsc_s, ssc_s = fsc_s[sel], ssc_s[sel]
    gate, fl = lymphocyte_gate(fsc_s, ssc_s, fsc_name, ssc_name, parent,
                               contour=cfg.contour, debris_frac=cfg.debris)
    flags.extend(fl)
    lidx = np.flatnonzero(add(gate))
    if lidx.size == 0:
        raise GatingError("the lymphocyte gate is empty", field="lymphocytes", value=0)
    # 3-6. markers among lymphocytes
    at = dict(compensate_at(lidx)) if compensate_at is not None else {}
    for m in GATED:
        chan = panel.markers.get(m)
        if chan is not None and chan not in at:
            at[chan] = columns[chan][lidx]
    thresholds: dict[str, Threshold] = {}
    tcrab_gate = _gate_markers(at, lidx, panel, xf, cfg, compensated, gates, masks,
                              thresholds, flags)
    # QC: values that are not numbers (NaN/inf) fall outside every gate
    bad = 0
    lazy = set(compensate_at.channels) if compensate_at is not None else set()
    for c in dict.fromkeys([*sc.values(), *panel.markers.values()]):
        if c in lazy:
            bad = max(bad, int(compensate_at.n_non_finite(c)))
        elif c in columns and c != sc.get("Time"):
            bad = max(bad, _n_non_finite(columns[c]))
    if bad:
        flags.append(QCFlag("non_finite_values", "warning",
                            f"{bad} events hold NaN or infinite values in a scatter or marker "
                            "channel; they fall outside every gate", value=bad))
    # QC: denominators and compensation
    min_l = cfg.min_lymphocytes
    if lidx.size < min_l:
        flags.append(QCFlag("few_lymphocytes", "warning",
                            f"only {lidx.size} lymphocytes gated (< {min_l:g}): the DNT percentage is imprecise",
                            value=int(lidx.size), threshold=min_l, citation="site_setting"))
    if not compensated:
        flags.append(QCFlag("no_compensation", "warning",
                            "no $SPILLOVER/$SPILL in the file and no matrix given: markers are uncompensated"))
    if ranges:
        labels = {v: k for k, v in panel.markers.items()}
        src = raw if raw is not None else columns
        chans = {c: src[c] for c in [*sc.values(), *panel.markers.values()]
                 if c != sc.get("Time") and c in src}
        flags.extend(qc.check_saturation(chans, ranges, labels))
    if "Time" in sc:
        flags.extend(qc.check_time_gap(columns[sc["Time"]]))
    return GatingResult(gates=gates, masks=masks, thresholds=thresholds, flags=flags, n_events=n,
                        dnt_gate="dnt", tcrab_gate=tcrab_gate)


def _gate_markers(at: Mapping[str, np.ndarray], lidx: np.ndarray, panel: Panel,
                 xf: Logicle, cfg: _Config, compensated: bool, gates: list[Gate],
                 masks: EventMasks, thresholds: dict[str, Threshold],
                 flags: list[QCFlag]) -> str | None:
    """CD3+ -> TCRab+ -> CD4- CD8- [-> B220+] among the lymphocytes ``lidx`` (``at``: each
    gated marker's values there, in event order): thresholds from the densities, gates
    added to ``gates``, masks over every event to ``masks``. Returns the TCRab gate's name
    (None without a TCRab channel)."""
    mmasks: dict[str, np.ndarray] = {}

    def add_marker_gate(gate: Gate) -> None:
        # among lymphocytes only, the lymphocyte parent is every event of the marker space
        within = None if gate.parent == "lymphocytes" else mmasks[gate.parent or ""]
        m = gate.mask(at, xf, within=within)
        gates.append(gate)
        mmasks[gate.name] = m
        masks.set_among(gate.name, lidx, m)

    def sub_of(name: str) -> np.ndarray | slice:
        if name == "lymphocytes":  # every event of the marker space: a strided view
            return _subsample(lidx.size, cfg.sub_n)
        idx = np.flatnonzero(mmasks[name])
        return idx[_subsample(idx.size, cfg.sub_n)]

    def threshold(marker: str, s: np.ndarray | slice) -> Threshold:
        h, cnt = logicle_histogram(at[panel.markers[marker]][s], xf)
        t = threshold_from_histogram(h, cnt, marker, max_depth=cfg.max_depth,
                                     tail_fraction=cfg.tail, fallback=cfg.fallback)
        thresholds[marker] = t
        return t

    def positive_gate(marker: str, name: str, label: str, parent_name: str, on: str,
                      clear_code: str | None) -> None:
        t = threshold(marker, sub_of(on))
        if not t.clear and clear_code:
            flags.append(QCFlag(
                clear_code, "warning" if marker == "CD3" else "info",
                f"no clear {marker} valley: the {marker}+ cut was placed by the '{t.method}' rule "
                f"at logicle {t.position:.3f}" + ("" if t.depth is None else f" (valley depth {t.depth:.2f})"),
                value=None if t.depth is None else round(t.depth, 3), threshold=cfg.max_depth,
                citation="site_setting"))
        add_marker_gate(Gate(name, label, "range", (panel.markers[marker],), ("logicle",),
                             parent_name, (marker,), bounds=((t.position, None),),
                             compensated=(compensated,)))

    # 3. CD3+ among lymphocytes
    positive_gate("CD3", "cd3_pos", "CD3+", "lymphocytes", "lymphocytes", "no_cd3_valley")
    # 4. TCRab+ among CD3+
    t_parent = "cd3_pos"
    tcrab_gate: str | None = None
    if panel.has("TCRab"):
        positive_gate("TCRab", "tcrab_pos", "TCRαβ+", "cd3_pos", "cd3_pos", "no_tcrab_valley")
        t_parent = tcrab_gate = "tcrab_pos"
    else:
        flags.append(QCFlag(
            "tcrab_absent", "warning",
            "no TCRαβ channel: DNT reported as CD3+ CD4− CD8−, which also counts γδ T cells "
            "and overestimates TCRαβ+ DNT", citation="oliveira2010"))
    # 5. CD4- CD8- among TCRab+ (or CD3+)
    s = sub_of(t_parent)
    cuts = {}
    for marker, code in (("CD4", "no_cd4_valley"), ("CD8", "no_cd8_valley")):
        t = threshold(marker, s)
        cuts[marker] = t.position
        if not t.clear:
            flags.append(QCFlag(code, "warning",
                                f"no clear {marker} valley among T cells: cut by the '{t.method}' rule "
                                f"at logicle {t.position:.3f}", citation="site_setting"))
    label = "CD4− CD8−" if tcrab_gate else "CD3+ CD4− CD8−"
    add_marker_gate(Gate("dnt", label, "range", (panel.markers["CD4"], panel.markers["CD8"]),
                         ("logicle", "logicle"), t_parent, ("CD4", "CD8"),
                         bounds=((None, cuts["CD4"]), (None, cuts["CD8"])),
                         compensated=(compensated, compensated)))
    # 6. B220+ among DNT (threshold from all lymphocytes, where B cells give a clear peak)
    if panel.has("B220"):
        positive_gate("B220", "b220_pos", "B220+", "dnt", "lymphocytes", None)
    return tcrab_gate


# --------------------------------------------------------------------------- FlowKit export


def to_flowkit(gates: Sequence[Gate], xf: Logicle, comp_ref: str = "FCS",
               matrix: Any = None) -> Any:
    """A FlowKit GatingStrategy with the same gates (compensated dims use ``comp_ref``:
    'FCS' for the file's $SPILLOVER, or a matrix id added with ``matrix``)."""
    import flowkit as fk

    gs = fk.GatingStrategy()
    gs.add_transform("logicle", fk.transforms.LogicleTransform(
        param_t=xf.T, param_w=xf.W, param_m=xf.M, param_a=xf.A))
    if matrix is not None:
        gs.add_comp_matrix(comp_ref, matrix)
    paths: dict[str, tuple[str, ...]] = {}
    for g in gates:
        dims = []
        for i, (c, scl) in enumerate(zip(g.channels, g.scales, strict=True)):
            comp = comp_ref if (g.compensated and g.compensated[i]) else "uncompensated"
            xref = "logicle" if scl == "logicle" else None
            if g.kind == "range":
                lo, hi = g.bounds[i]
                dims.append(fk.Dimension(c, compensation_ref=comp, transformation_ref=xref,
                                         range_min=lo, range_max=hi))
            else:
                dims.append(fk.Dimension(c, compensation_ref=comp, transformation_ref=xref))
        if g.kind == "range":
            fg = fk.gates.RectangleGate(g.name, dims)
        else:
            fg = fk.gates.PolygonGate(g.name, dims, [list(v) for v in g.vertices])
        path = ("root",) if g.parent is None else (*paths[g.parent], g.parent)
        gs.add_gate(fg, gate_path=path)
        paths[g.name] = path
    return gs
