"""The lab's own gates: a Gating-ML 2.0 file or a FlowJo workspace (.wsp), applied by FlowKit.

FlowKit is the reference implementation of Gating-ML 2.0 (it passes the ISAC compliance
set), so alpsdx does not re-implement the standard: it loads the gates with FlowKit, gates
the sample with FlowKit and reads back the events in every gate. What alpsdx adds is the
mapping of FlowKit's and flowio's exceptions to :class:`~alpsdx.errors.GatingError` /
:class:`~alpsdx.errors.FCSError` naming the file, gate and value, finding the DNT gate the
user names (by id, or by a ``/``-separated path when an id is used twice), and the chain of
its ancestors that gives the denominators (lymphocytes, CD3+, TCRab+).

Our own automated gates export to Gating-ML through :func:`export_gatingml` (FlowKit's
writer), so a lab can open them in any Gating-ML tool and re-apply them with ``--gates``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alpsdx.errors import FCSError, GatingError

__all__ = [
    "GateSet",
    "UserGating",
    "apply",
    "export_gatingml",
    "gate_sample",
    "load_gates",
]

GatePath = tuple[str, ...]


@dataclass
class GateSet:
    """Gates loaded from a Gating-ML 2.0 file or a FlowJo workspace."""

    path: Path
    kind: str  # "gatingml" | "flowjo"
    strategy: Any = None  # flowkit.GatingStrategy (Gating-ML)
    workspace_path: Path | None = None  # FlowJo .wsp

    def gate_ids(self) -> list[tuple[str, GatePath]]:
        if self.strategy is not None:
            return [(g, tuple(p)) for g, p in self.strategy.get_gate_ids()]
        return []


@dataclass
class UserGating:
    """Events in every gate of the user's hierarchy for one sample."""

    membership: dict[tuple[str, GatePath], np.ndarray]  # (gate id, parent path) -> bool mask
    n_events: int

    def count(self, gate: str, path: GatePath) -> int:
        return int(np.count_nonzero(self.membership[(gate, path)]))

    def find(self, name: str) -> tuple[str, GatePath]:
        """The gate the user named: an id, or a path ``a/b/gate`` (root optional)."""
        parts = tuple(p for p in name.strip().split("/") if p)
        if not parts:
            raise GatingError("empty gate name", field="--dnt-gate", value=name)
        if parts[0] == "root":
            parts = parts[1:]
        gid, parents = parts[-1], ("root", *parts[:-1])
        hits = [k for k in self.membership if k[0] == gid and (len(parts) == 1 or k[1] == parents)]
        if not hits:
            raise GatingError(
                "gate not found in the user's gates", field="--dnt-gate", value=name,
                expected="one of " + ", ".join(sorted({_fmt(k) for k in self.membership})),
            )
        if len(hits) > 1:
            raise GatingError(
                "gate id is used more than once; name it by its path", field="--dnt-gate",
                value=name, expected="one of " + ", ".join(_fmt(k) for k in hits),
            )
        return hits[0]

    def ancestors(self, key: tuple[str, GatePath]) -> list[tuple[str, GatePath]]:
        """The gates above ``key``, nearest first."""
        out = []
        path = key[1]
        while len(path) > 1:
            parent = (path[-1], path[:-1])
            if parent in self.membership:
                out.append(parent)
            path = path[:-1]
        return out


def _fmt(key: tuple[str, GatePath]) -> str:
    return "/".join([*key[1][1:], key[0]])


def load_gates(path: str | Path) -> GateSet:
    """Load a Gating-ML 2.0 XML file or a FlowJo ``.wsp`` workspace."""
    import flowkit as fk

    p = Path(path)
    if not p.is_file():
        raise GatingError("gate file not found", field="--gates", value=str(p),
                          expected="a Gating-ML 2.0 .xml or FlowJo .wsp file")
    if p.suffix.lower() == ".wsp":
        return GateSet(path=p, kind="flowjo", workspace_path=p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gs = fk.parse_gating_xml(str(p))
    except Exception as exc:  # FlowKit raises ValueError, KeyError, lxml errors ...
        raise GatingError(f"not a Gating-ML 2.0 file FlowKit can read: {exc}", field="--gates",
                          value=p.name, expected="Gating-ML 2.0 XML or a FlowJo .wsp") from None
    return GateSet(path=p, kind="gatingml", strategy=gs)


def _sample(fcs_path: str | Path) -> Any:
    """A FlowKit Sample read by flowio (FlowKit's own reader), errors mapped to FCSError."""
    import flowkit as fk

    p = Path(fcs_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fk.Sample(str(p))
    except Exception as exc:
        raise FCSError(f"FlowKit cannot read the file to apply the user's gates: {exc}",
                       field="path", value=p.name) from None


def _memberships(res: Any) -> dict[tuple[str, GatePath], np.ndarray]:
    """Every gate FlowKit reports (quadrants as their own gates, the quadrant container
    itself holds no events), keyed by (gate id, parent path)."""
    rows = res.report[["gate_name", "gate_path"]].itertuples(index=False)
    return {
        (str(g), tuple(path)): np.asarray(res.get_gate_membership(g, gate_path=tuple(path)),
                                          dtype=bool)
        for g, path in rows
    }


def gate_sample(gates: GateSet, fcs_path: str | Path) -> UserGating:
    """Gate one FCS file with the user's gates; every gate's per-event membership."""
    p = Path(fcs_path)
    if gates.kind == "gatingml":
        sample = _sample(p)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = gates.strategy.gate_sample(sample)
                members = _memberships(res)
        except GatingError:
            raise
        except Exception as exc:
            raise GatingError(f"FlowKit could not apply {gates.path.name} to {p.name}: {exc}",
                              field="--gates", value=gates.path.name) from None
        return UserGating(members, int(sample.event_count))
    return _gate_workspace(gates, p)


def _gate_workspace(gates: GateSet, p: Path) -> UserGating:
    import flowkit as fk

    assert gates.workspace_path is not None
    sample = _sample(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ws = fk.Workspace(str(gates.workspace_path), fcs_samples=[sample])
            ids = ws.get_sample_ids()
    except Exception as exc:
        raise GatingError(f"FlowKit cannot read the FlowJo workspace: {exc}", field="--gates",
                          value=gates.path.name) from None
    sid = sample.id
    if sid not in ids:
        raise GatingError(
            "the FlowJo workspace has no sample for this file", field="--gates",
            value=f"{gates.path.name} / {p.name}",
            expected="a workspace whose samples include " + p.name,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ws.analyze_samples(sample_id=sid)
            res = ws.get_gating_results(sid)
            members = _memberships(res)
    except Exception as exc:
        raise GatingError(f"FlowKit could not apply {gates.path.name} to {p.name}: {exc}",
                          field="--gates", value=gates.path.name) from None
    return UserGating(members, int(sample.event_count))


def apply(gates: GateSet, fcs_path: str | Path, dnt_gate: str) -> dict[str, Any]:
    """Counts of the DNT gate the user named and of its ancestors (nearest first)."""
    ug = gate_sample(gates, fcs_path)
    key = ug.find(dnt_gate)
    chain = [key, *ug.ancestors(key)]
    return {
        "dnt": {"gate": key[0], "path": _fmt(key), "count": ug.count(*key)},
        "ancestors": [{"gate": k[0], "path": _fmt(k), "count": ug.count(*k)} for k in chain[1:]],
        "all": {_fmt(k): ug.count(*k) for k in ug.membership},
        "events": ug.n_events,
    }


def export_gatingml(gates: Sequence[Any], xf: Any, path: str | Path | None = None,
                    spill: Any = None) -> str:
    """Our automated gates as Gating-ML 2.0 (written by FlowKit); returns the XML text.

    ``spill`` (a :class:`~alpsdx.flow.compensation.SpillMatrix`) is embedded as the
    spectrum matrix compensated dimensions refer to; without it they refer to the
    file's own $SPILLOVER ('FCS').
    """
    import flowkit as fk

    from alpsdx.flow.gating import to_flowkit

    matrix = None
    comp_ref = "FCS"
    if spill is not None:
        comp_ref = "spill"
        matrix = fk.Matrix(np.asarray(spill.matrix), list(spill.channels))
    gs = to_flowkit(gates, xf, comp_ref=comp_ref, matrix=matrix)
    buf = io.BytesIO()
    fk.export_gatingml(gs, buf)
    text = buf.getvalue().decode("utf-8")
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


# ------------------------------------------------------------------------------ plot data


@dataclass
class GateStep:
    """One gate of the chain down to the DNT gate, ready to draw: the parent's events on
    the gate's dimensions (compensated and transformed as the gate file says)."""

    gate: str
    path: str
    kind: str  # FlowKit class name: RectangleGate, PolygonGate, QuadrantGate, ...
    dims: list[str]
    values: np.ndarray | None  # (m, len(dims)) parent events (subsampled); None if unavailable
    in_gate: np.ndarray | None  # (m,) which of those events the gate keeps
    count: int
    parent_count: int
    vertices: list[tuple[float, float]] | None = None
    bounds: list[tuple[float | None, float | None]] | None = None


def gate_steps(gates: GateSet, fcs_path: str | Path, dnt_gate: str,
               max_points: int = 150_000) -> list[GateStep]:
    """The DNT gate and its ancestors (root first), with the events each one was drawn on."""
    import flowkit as fk

    p = Path(fcs_path)
    sample = _sample(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if gates.kind == "gatingml":
                gs = gates.strategy
            else:
                ws = fk.Workspace(str(gates.workspace_path), fcs_samples=[sample])
                if sample.id not in ws.get_sample_ids():
                    raise GatingError("the FlowJo workspace has no sample for this file",
                                      field="--gates", value=f"{gates.path.name} / {p.name}")
                gs = ws.get_gating_strategy(sample.id)
            res = gs.gate_sample(sample)
            members = _memberships(res)
    except GatingError:
        raise
    except Exception as exc:
        raise GatingError(f"FlowKit could not apply {gates.path.name} to {p.name}: {exc}",
                          field="--gates", value=gates.path.name) from None
    ug = UserGating(members, int(sample.event_count))
    key = ug.find(dnt_gate)
    chain = [key, *ug.ancestors(key)][::-1]
    steps = []
    for k in chain:
        gid, path = k
        parent = ug.membership[(path[-1], path[:-1])] if len(path) > 1 else None
        pidx = np.arange(ug.n_events) if parent is None else np.flatnonzero(parent)
        if pidx.size > max_points:
            pidx = pidx[:: int(np.ceil(pidx.size / max_points))]
        step = GateStep(gate=gid, path=_fmt(k), kind="?", dims=[], values=None, in_gate=None,
                        count=ug.count(*k), parent_count=int(ug.n_events if parent is None
                                                             else np.count_nonzero(parent)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = gs.get_gate(gid, gate_path=path)
                step.kind = type(g).__name__
                # FlowKit's own preprocessing (compensation + transform of each dimension)
                df = gs._preprocess_sample_events(sample, g)
            step.dims = [str(c) for c in df.columns][:2]
            step.values = np.asarray(df.iloc[pidx, : len(step.dims)], dtype=float)
            step.in_gate = ug.membership[k][pidx]
            if step.kind == "PolygonGate":
                step.vertices = [(float(a), float(b)) for a, b in g.vertices]
            elif step.kind == "RectangleGate":
                step.bounds = [(d.min, d.max) for d in g.dimensions][:2]
        except Exception:  # a gate FlowKit cannot preprocess is drawn as text only
            pass
        steps.append(step)
    return steps
