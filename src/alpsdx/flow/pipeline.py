"""From a raw FCS file to DNT percentages: read -> compensate -> logicle -> gate.

``analyse_fcs`` runs alpsdx's automated gating (``alpsdx.flow.gating``) or, when the lab
gives its own Gating-ML 2.0 / FlowJo workspace, applies those gates with the DNT gate the
user names. The result keeps the gates and per-event masks so the plot module can draw
them, and turns into JSON or case observations (dated from $DATE).

Speed without approximation: float DATA is read as float32 (lossless) and every value is
computed in float64; only the gated markers are compensated, and, when the plotting columns
are not kept, only among lymphocytes (every marker gate lies inside the lymphocyte gate);
range gates compare linear values with inverse-transformed cuts, so logicle is never applied
event by event. Gates, thresholds, flags and masks are the same either way (tested).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alpsdx.errors import FlowError, GatingError
from alpsdx.flow import qc
from alpsdx.flow.compensation import SpillMatrix, load_spill_csv, spillover_from_text
from alpsdx.flow.fcs import FCSData, read_fcs
from alpsdx.flow.gating import GATED, GatingResult, Logicle, auto_gate
from alpsdx.flow.markers import Panel, resolve_panel
from alpsdx.flow.qc import QCFlag

__all__ = [
    "CompensatedAt",
    "DNTResult",
    "analyse_data",
    "analyse_fcs",
    "compensated_columns",
    "default_logicle",
]

ANALYTES = ("dnt_pct_lymphocytes", "dnt_pct_cd3", "dnt_pct_tcrab")
GATED_MARKERS = GATED  # the markers auto_gate gates on


def default_logicle() -> Logicle:
    p = qc.settings()["gating"]["logicle"]
    return Logicle(float(p["T"]), float(p["W"]), float(p["M"]), float(p["A"]))


@dataclass
class DNTResult:
    """DNT counts and percentages of one sample, with the gates, QC flags and CIs."""

    file: str
    events: int
    date: dt.date | None
    method: str  # "auto" or "gates:<file>"
    compensation: str  # "$SPILLOVER", "$SPILL", "user:<file>" or "none"
    markers: dict[str, str]
    counts: dict[str, int]
    tcrab_present: bool
    flags: list[QCFlag]
    gating: GatingResult | None = None
    user_gates: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    xf: Logicle = field(default_factory=Logicle, repr=False)
    n_datasets: int = 1

    # -- percentages --------------------------------------------------------------------
    def _pct(self, num: str, den: str) -> tuple[float | None, tuple[float, float] | None]:
        k = self.counts.get(num)
        n = self.counts.get(den)
        if k is None or not n:
            return None, None
        return 100.0 * k / n, qc.proportion_ci(k, n)

    @property
    def dnt_pct_lymphocytes(self) -> float | None:
        return self._pct("dnt", "lymphocytes")[0]

    @property
    def dnt_pct_cd3(self) -> float | None:
        return self._pct("dnt", "cd3")[0]

    @property
    def dnt_pct_tcrab(self) -> float | None:
        return self._pct("dnt", "tcrab")[0] if self.tcrab_present else None

    def _definition(self) -> str:
        if self.user_gates:
            extra = "" if self.tcrab_present else " (no TCRab gate above it)"
            return f"the laboratory's gate {self.user_gates.get('dnt_gate')}{extra}"
        if self.tcrab_present:
            return "CD3+ TCRab+ CD4- CD8-"
        return "CD3+ CD4- CD8- (no TCRab channel; includes TCRgd T cells)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (``alpsdx dnt --format json`` prints a list of these)."""
        out: dict[str, Any] = {
            "file": self.file,
            "events": self.events,
            "date": self.date.isoformat() if self.date else None,
            "method": self.method,
            "dnt_definition": self._definition(),
        }
        pairs = (("dnt_pct_lymphocytes", "lymphocytes"), ("dnt_pct_cd3", "cd3"),
                 ("dnt_pct_tcrab", "tcrab"))
        for key, den in pairs:
            v, ci = self._pct("dnt", den) if (den != "tcrab" or self.tcrab_present) else (None, None)
            out[key] = None if v is None else round(v, 4)
            out[key + "_ci"] = None if ci is None else [round(ci[0], 4), round(ci[1], 4)]
        v, ci = self._pct("b220_dnt", "dnt")
        out["b220_pct_dnt"] = None if v is None else round(v, 4)
        out["b220_pct_dnt_ci"] = None if ci is None else [round(ci[0], 4), round(ci[1], 4)]
        out["ci_method"] = "wilson (95 %)"
        out["counts"] = dict(self.counts)
        out["qc"] = [f.to_dict() for f in self.flags]
        out["compensation"] = self.compensation
        out["markers"] = dict(self.markers)
        out["n_datasets"] = self.n_datasets
        if self.gating is not None:
            out["gates"] = [g.to_dict() for g in self.gating.gates]
            out["thresholds"] = {k: t.to_dict() for k, t in self.gating.thresholds.items()}
            out["logicle"] = {"T": self.xf.T, "W": self.xf.W, "M": self.xf.M, "A": self.xf.A}
        if self.user_gates:
            out["user_gates"] = dict(self.user_gates)
        return out

    def to_observations(self) -> list[Any]:
        """Case observations (%, dated from $DATE). Without a TCRab channel/gate the figures
        are CD3+ CD4- CD8- and carry ``tcrab_gated=False``: the criteria engine then counts
        them only to rule the DNT criterion out (gamma-delta T cells are included)."""
        from pydantic import ValidationError

        from alpsdx.errors import InputError
        from alpsdx.model import Observation

        obs = []
        for key in ANALYTES:
            v = getattr(self, key)
            if v is None:
                continue
            try:
                obs.append(Observation(analyte=key, value=round(v, 4), unit="%", date=self.date,
                                       source=f"alpsdx dnt {Path(self.file).name}",
                                       tcrab_gated=self.tcrab_present))
            except ValidationError as exc:
                msg = "; ".join(str(e.get("msg", "")) for e in exc.errors())
                raise InputError(f"the file's figures cannot become case observations: {msg}",
                                 field="$DATE", value=None if self.date is None else self.date.isoformat(),
                                 expected="an acquisition date that is not in the future") from None
        return obs


def _comp_terms(pnn: Sequence[str], spill: SpillMatrix, wanted: Iterable[str]
                ) -> dict[str, list[tuple[int, np.float64]]]:
    """For each wanted matrix channel, the (event column, weight) terms of its compensated
    value: column j of observed[:, matrix channels] @ inverse(matrix), exact zeros skipped
    (spillover matrices are sparse). np.float64 weights: float32 events are multiplied in
    float64 too."""
    pnn = list(pnn)
    missing = [c for c in spill.channels if c not in pnn]
    if missing:
        raise FlowError("spillover channel not in the sample", field="spillover channel",
                        value=missing[0], expected="one of " + ", ".join(pnn))
    try:
        inv = np.linalg.inv(spill.matrix)
    except np.linalg.LinAlgError:
        raise FlowError("spillover matrix is singular", field="spillover",
                        value=list(spill.channels), expected="an invertible matrix") from None
    idx = [pnn.index(c) for c in spill.channels]
    terms: dict[str, list[tuple[int, np.float64]]] = {}
    for c in wanted:
        if c in spill.channels:
            j = spill.channels.index(c)
            terms[c] = [(col, np.float64(inv[k, j])) for k, col in enumerate(idx)
                        if inv[k, j] != 0.0]
    return terms


def compensated_columns(events: np.ndarray, pnn: Sequence[str], spill: SpillMatrix,
                        wanted: Iterable[str]) -> dict[str, np.ndarray]:
    """Only the wanted columns of ``compensate(events, pnn, spill)`` (compensated =
    observed[:, matrix channels] @ inverse(matrix), summed column by column, so equal to
    compensate()'s BLAS product to rounding), without copying the rest."""
    pnn = list(pnn)
    wanted = list(wanted)
    terms = _comp_terms(pnn, spill, wanted)
    out = _sum_terms(events, terms)
    for c in wanted:
        if c not in terms:
            out[c] = np.ascontiguousarray(events[:, pnn.index(c)])
    return {c: out[c] for c in wanted}


def _sum_terms(events: np.ndarray, terms: Mapping[str, Sequence[tuple[int, np.float64]]]
               ) -> dict[str, np.ndarray]:
    """Each channel's sum of its terms (column times weight, in order) over every event, in
    blocks of rows that stay in cache: every column is read from memory once; no BLAS."""
    n = events.shape[0]
    # np.empty, not np.zeros: numpy asks for huge pages only on uninitialised buffers, and
    # 4 KB page faults on fresh zeroed memory cost as much as the sums
    out = {c: np.empty(n, dtype=np.float64) for c in terms}
    if terms:
        block = max(1, min(n, _COMP_BLOCK))
        tmp = np.empty(block, dtype=np.float64)
        # float32 events: each input column's block is converted to float64 once, then
        # every product is float64 x float64 (no conversion inside each multiply)
        inputs = sorted({col for ts in terms.values() for col, _ in ts})
        convert = events.dtype != np.float64
        xin = np.empty((len(inputs), block), dtype=np.float64) if convert else None
        for r in range(0, n, block):
            r1 = min(r + block, n)
            t = tmp[: r1 - r]
            if xin is not None:
                for i, col in enumerate(inputs):
                    xin[i, : r1 - r] = events[r:r1, col]
                x = {col: xin[i, : r1 - r] for i, col in enumerate(inputs)}
            else:
                x = {col: events[r:r1, col] for col in inputs}
            for c, ts in terms.items():
                acc = out[c][r:r1]
                if not ts:
                    acc.fill(0.0)
                    continue
                # the first term starts the sum (0.0 + p is p), the others add in order
                col, w = ts[0]
                if w == 1.0:
                    acc[...] = x[col]
                else:
                    np.multiply(x[col], w, out=acc)
                for col, w in ts[1:]:
                    if w == 1.0:
                        acc += x[col]
                    else:
                        np.multiply(x[col], w, out=t)
                        acc += t
    return out


class CompensatedAt:
    """Compensated values of some channels at chosen events only (the gated markers are
    needed among lymphocytes, not among every event): the same terms in the same order as
    :func:`compensated_columns`, so the same values bit for bit."""

    def __init__(self, events: np.ndarray, pnn: Sequence[str], spill: SpillMatrix,
                 wanted: Iterable[str]) -> None:
        self.events = events
        self.terms = _comp_terms(pnn, spill, wanted)
        self.channels = tuple(self.terms)
        self._range: dict[int, tuple[float, float]] = {}  # input column -> (min, max)

    def __call__(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """{channel: compensated values at events ``idx``}."""
        inputs = sorted({col for ts in self.terms.values() for col, _ in ts})
        sub = np.empty((idx.size, len(inputs)), dtype=self.events.dtype, order="F")
        for i, col in enumerate(inputs):
            # mode="clip" (the indices are valid): with out=, "raise" buffers a copy
            np.take(self.events[:, col], idx, out=sub[:, i], mode="clip")
        pos = {col: i for i, col in enumerate(inputs)}
        return _sum_terms(sub, {c: [(pos[col], w) for col, w in ts] for c, ts in self.terms.items()})

    def n_non_finite(self, channel: str) -> int:
        """Events (all of them) whose compensated ``channel`` is NaN or infinite: none when
        every input is finite and too small to overflow, else counted on the full column."""
        ts = self.terms[channel]
        if not ts or self.events.shape[0] == 0:
            return 0
        big = 0.0
        with np.errstate(invalid="ignore"):
            for col, _ in ts:
                if col not in self._range:  # minimum/maximum propagate NaN
                    v = self.events[:, col]
                    self._range[col] = (float(np.minimum.reduce(v, initial=np.inf)),
                                        float(np.maximum.reduce(v, initial=-np.inf)))
                lo, hi = self._range[col]
                if not (math.isfinite(lo) and math.isfinite(hi)):
                    big = math.inf
                    break
                big = max(big, abs(lo), abs(hi))
        if big * sum(abs(float(w)) for _, w in ts) < 1e300:
            return 0
        full = _sum_terms(self.events, {channel: ts})[channel]
        return int(full.size - np.count_nonzero(np.isfinite(full)))


_COMP_BLOCK = 16384


def _spill_for(fcs: FCSData, spill_csv: str | Path | None) -> tuple[SpillMatrix | None, str]:
    if spill_csv is not None:
        return load_spill_csv(spill_csv), f"user:{Path(spill_csv).name}"
    sp = spillover_from_text(fcs.text)
    if sp is None:
        return None, "none"
    key = next((k for k in ("$SPILLOVER", "$SPILL", "SPILL", "SPILLOVER") if k in fcs.text), "$SPILLOVER")
    return sp, key


def analyse_data(
    fcs: FCSData,
    *,
    gates: str | Path | None = None,
    dnt_gate: str | None = None,
    channel_overrides: Mapping[str, str] | Iterable[str] | None = None,
    spill_csv: str | Path | None = None,
    keep_columns: bool = True,
) -> DNTResult:
    """Analyse an FCS data set already read (see :func:`analyse_fcs`).

    ``keep_columns=False`` drops the per-event columns the plots need and lets the gated
    markers be compensated among lymphocytes only (same results, less work)."""
    if gates is not None:
        return _analyse_user_gates(fcs, gates, dnt_gate, spill_csv)
    panel: Panel = resolve_panel(fcs.pnn, fcs.pns, channel_overrides)
    spill, comp_name = _spill_for(fcs, spill_csv)
    # compensate only what is gated; off-scale QC looks at the raw detector values
    gated = [panel.markers[m] for m in GATED_MARKERS if m in panel.markers]
    wanted = list(dict.fromkeys([*panel.scatter.values(), *gated]))
    raw = {c: fcs.events[:, fcs.channel_index(c)]
           for c in dict.fromkeys([*panel.scatter.values(), *panel.markers.values()])}
    lazy: CompensatedAt | None = None
    if spill is not None and not keep_columns:
        # the gated markers are compensated among lymphocytes only (the gates that use them
        # all lie inside the lymphocyte gate); scatter and other columns as they are
        lazy = CompensatedAt(fcs.events, fcs.pnn, spill, gated)
        cols = compensated_columns(fcs.events, fcs.pnn, spill,
                                   [c for c in wanted if c not in lazy.channels])
    elif spill is not None:
        cols = compensated_columns(fcs.events, fcs.pnn, spill, wanted)
    else:
        cols = {c: np.ascontiguousarray(fcs.events[:, fcs.channel_index(c)]) for c in wanted}
    if fcs.time_step_pending != 1.0:
        # a float32 read left $TIMESTEP to apply to the channel named Time: scale it in
        # float64, as read_fcs does by default
        time = next(c.pnn for c in reversed(fcs.channels) if c.pnn.lower() == "time")
        if time in cols:
            cols[time] = fcs.events[:, fcs.channel_index(time)].astype(np.float64)
            cols[time] *= fcs.time_step_pending
    ranges = {c.pnn: c.range for c in fcs.channels}
    xf = default_logicle()
    res = auto_gate(cols, panel, xf=xf, ranges=ranges, compensated=spill is not None, raw=raw,
                    compensate_at=lazy)
    c = res.counts
    counts = {
        "events": fcs.n_events,
        "lymphocytes": c["lymphocytes"],
        "cd3": c["cd3_pos"],
        "dnt": c["dnt"],
    }
    if "singlets" in c:
        counts["singlets"] = c["singlets"]
    if res.tcrab_gate:
        counts["tcrab"] = c["tcrab_pos"]
    if "b220_pos" in c:
        counts["b220_dnt"] = c["b220_pos"]
    return DNTResult(
        file=fcs.path, events=fcs.n_events, date=fcs.date, method="auto", compensation=comp_name,
        markers=dict(panel.markers), counts=counts, tcrab_present=res.tcrab_gate is not None,
        flags=list(res.flags), gating=res, columns=cols if keep_columns else {}, xf=xf,
        n_datasets=fcs.n_datasets,
    )


def _analyse_user_gates(fcs: FCSData, gates: str | Path, dnt_gate: str | None,
                        spill_csv: str | Path | None) -> DNTResult:
    """Apply the lab's Gating-ML 2.0 / FlowJo gates; the DNT gate is named by the user."""
    from alpsdx.flow import gatingml

    if not dnt_gate:
        raise GatingError("--gates needs --dnt-gate naming the DNT gate in the file",
                          field="--dnt-gate", expected="a gate id from " + Path(gates).name)
    if spill_csv is not None:
        raise GatingError("--comp cannot be combined with --gates: the gate file defines the "
                          "compensation its gates use", field="--comp", value=str(spill_csv))
    gs = gatingml.load_gates(gates)
    applied = gatingml.apply(gs, fcs.path, dnt_gate)
    return _from_user_counts(fcs, gates, applied)


def _from_user_counts(fcs: FCSData, gates: str | Path, applied: Mapping[str, Any]) -> DNTResult:
    """Turn the user's hierarchy into DNT figures: the denominators are the nearest
    ancestors of the DNT gate whose ids name lymphocytes, CD3 and TCRab."""
    from alpsdx.flow.markers import normalise

    dnt = applied["dnt"]
    counts: dict[str, int] = {"events": fcs.n_events, "dnt": int(dnt["count"])}
    chosen: dict[str, str | None] = {"lymphocytes": None, "cd3": None, "tcrab": None}
    keys = {"lymphocytes": ("lymph",), "cd3": ("cd3",),
            "tcrab": ("tcrab", "abtcr", "tcralphabeta")}
    for anc in applied["ancestors"]:  # nearest first
        n = normalise(anc["gate"])
        for what, words in keys.items():
            if chosen[what] is None and any(w in n for w in words):
                chosen[what] = anc["path"]
                counts[what] = int(anc["count"])
    flags: list[QCFlag] = []
    if chosen["tcrab"] is None:
        flags.append(QCFlag("tcrab_gate_not_found", "warning",
                            "no TCRab gate among the DNT gate's ancestors: % of TCRab+ T cells "
                            "not reported and the DNT gate may include TCRgd T cells"))
    for what in ("lymphocytes", "cd3"):
        if chosen[what] is None:
            flags.append(QCFlag(f"{what}_gate_not_found", "warning",
                                f"no {what} gate among the DNT gate's ancestors: "
                                f"% of {what} not reported"))
    n_l = counts.get("lymphocytes", 0)
    min_l = qc.qc_value("min_lymphocytes")
    if chosen["lymphocytes"] and n_l < min_l:
        flags.append(QCFlag("few_lymphocytes", "warning", f"only {n_l} lymphocytes gated (< {min_l:g})",
                            value=n_l, threshold=min_l, citation="site_setting"))
    return DNTResult(
        file=fcs.path, events=fcs.n_events, date=fcs.date, method=f"gates:{Path(gates).name}",
        compensation="as the gate file defines", markers={}, counts=counts,
        tcrab_present=chosen["tcrab"] is not None, flags=flags, gating=None,
        user_gates={"file": str(gates), "dnt_gate": dnt["path"], "counts": dict(applied["all"]),
                    "lymphocyte_gate": chosen["lymphocytes"], "cd3_gate": chosen["cd3"],
                    "tcrab_gate": chosen["tcrab"]},
        n_datasets=fcs.n_datasets,
    )


def analyse_fcs(
    path: str | Path,
    *,
    gates: str | Path | None = None,
    dnt_gate: str | None = None,
    channel_overrides: Mapping[str, str] | Iterable[str] | None = None,
    spill_csv: str | Path | None = None,
    dataset: int = 0,
    keep_columns: bool = True,
    ignore_offset_error: bool = False,
) -> DNTResult:
    """Read an FCS file and report its DNT figures (automated gating unless ``gates``).

    ``ignore_offset_error`` accepts a DATA end offset one byte past the data (a common
    writer bug that flowio also refuses by default)."""
    # float32 DATA stays float32 (lossless; every step below computes in float64)
    fcs = read_fcs(path, dataset=dataset, ignore_offset_error=ignore_offset_error,
                   keep_float32=True)
    res = analyse_data(fcs, gates=gates, dnt_gate=dnt_gate, channel_overrides=channel_overrides,
                       spill_csv=spill_csv, keep_columns=keep_columns)
    if fcs.n_datasets > 1:
        res.flags.append(QCFlag("several_datasets", "info",
                                f"the file holds {fcs.n_datasets} data sets; data set {dataset} was analysed",
                                value=fcs.n_datasets))
    return res
