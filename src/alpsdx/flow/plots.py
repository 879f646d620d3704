"""Gate plots: one PNG per sample showing every gating step as a density plot.

``plot_dnt`` draws alpsdx's automated gating; ``plot_gate_steps`` the lab's own gates
(Gating-ML 2.0 / FlowJo) down to the DNT gate, as FlowKit applied them.

Each panel shows the parent population (pseudocolour density, logicle axes labelled in
decades), the gate drawn on it, and the percentage of the parent it kept, so a lab
scientist can check the automated gating at a glance. Matplotlib with the Agg backend;
nothing here changes a number.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alpsdx.errors import FlowError

if TYPE_CHECKING:
    from alpsdx.flow.gating import Gate, Logicle
    from alpsdx.flow.gatingml import GateStep
    from alpsdx.flow.pipeline import DNTResult

__all__ = ["plot_dnt", "plot_gate_steps"]

_MAX_POINTS = 150_000


def _decade_ticks(xf: Logicle) -> tuple[list[float], list[str]]:
    vals = [-1e3, 0.0, 1e2, 1e3, 1e4, 1e5]
    labels = ["−10³", "0", "10²", "10³", "10⁴", "10⁵"]
    pos = [float(p) for p in xf.forward(np.array(vals))]
    return pos, labels


def _sub(idx: np.ndarray) -> np.ndarray:
    if idx.size <= _MAX_POINTS:
        return idx
    return idx[:: int(np.ceil(idx.size / _MAX_POINTS))]


def plot_dnt(result: DNTResult, path: str | Path, *, dpi: int = 110) -> Path:
    """Draw the gating of one automated-gating result to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib import colors
    from matplotlib.patches import Polygon, Rectangle

    g = result.gating
    if g is None or not result.columns:
        raise FlowError("gate plots need the automated gating with its event data",
                        field="--plots", value=result.method,
                        expected="automated gating (no --gates), columns kept")
    cols = result.columns
    xf = result.xf
    gates = {gt.name: gt for gt in g.gates}
    masks = g.masks
    counts = g.counts
    n_all = result.events
    ticks, tick_labels = _decade_ticks(xf)
    cmap = plt.get_cmap("turbo").with_extremes(under="white")

    def values(chan: str, scale: str, idx: np.ndarray) -> np.ndarray:
        v = cols[chan][idx]
        return xf.forward(v) if scale == "logicle" else v

    def density(ax, x, y, xr, yr):  # type: ignore[no-untyped-def]
        # a pseudocolour density as one image (much faster to render than a mesh)
        h, _, _ = np.histogram2d(x, y, bins=160, range=(xr, yr))
        img = np.ma.masked_less(h.T, 1)
        ax.imshow(img, origin="lower", extent=(xr[0], xr[1], yr[0], yr[1]), aspect="auto",
                  cmap=cmap, norm=colors.LogNorm(vmin=1, vmax=max(float(h.max()), 2.0)),
                  interpolation="nearest")

    def lin_range(v: np.ndarray) -> tuple[float, float]:
        hi = float(np.quantile(v, 0.998)) * 1.1 if v.size else 1.0
        lo = min(0.0, float(np.quantile(v, 0.001))) if v.size else 0.0
        return lo, max(hi, lo + 1.0)

    def axis_label(gt: Gate, i: int) -> str:
        m = gt.markers[i] if gt.markers else gt.channels[i]
        ch = gt.channels[i]
        return m if m == ch else f"{m}  ({ch})"

    def pct(num: str, den_mask: np.ndarray | None, den_label: str) -> str:
        n = counts[num]
        d = int(np.count_nonzero(den_mask)) if den_mask is not None else n_all
        p = 100.0 * n / d if d else float("nan")
        return f"{p:.2f} % of {den_label}  ({n:,} / {d:,})"

    def parent_idx(gt: Gate) -> np.ndarray:
        return _sub(np.flatnonzero(masks[gt.parent]) if gt.parent else np.arange(n_all))

    def set_logicle(ax, axis: str) -> None:  # type: ignore[no-untyped-def]
        if axis == "x":
            ax.set_xticks(ticks, tick_labels)
            ax.set_xlim(-0.05, 1.0)
        else:
            ax.set_yticks(ticks, tick_labels)
            ax.set_ylim(-0.05, 1.0)

    panels = [n for n in ("singlets", "lymphocytes", "cd3_pos", "tcrab_pos", "dnt", "b220_pos")
              if n in gates]
    ncol = 3
    nrow = int(np.ceil((len(panels) + 1) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.6 * nrow), squeeze=False)
    flat = list(axes.ravel())
    ssc = next((gt.channels[1] for gt in g.gates if gt.name == "lymphocytes"), None)
    parent_label = {None: "all events", "singlets": "singlets", "lymphocytes": "lymphocytes",
                    "cd3_pos": "CD3+", "tcrab_pos": "TCRαβ+", "dnt": "DNT"}

    for ax, name in zip(flat, panels, strict=False):
        gt = gates[name]
        idx = parent_idx(gt)
        ptxt = parent_label.get(gt.parent, gt.parent or "all events")
        if gt.kind == "polygon":
            x = values(gt.channels[0], gt.scales[0], idx)
            y = values(gt.channels[1], gt.scales[1], idx)
            xr, yr = lin_range(x), lin_range(y)
            density(ax, x, y, xr, yr)
            ax.add_patch(Polygon(np.asarray(gt.vertices), closed=True, fill=False, lw=2.2,
                                 ec="black"))
            ax.set_xlim(*xr)
            ax.set_ylim(*yr)
            ax.set_xlabel(axis_label(gt, 0))
            ax.set_ylabel(axis_label(gt, 1))
            ax.ticklabel_format(style="sci", scilimits=(0, 3))
        elif name == "dnt":
            x = values(gt.channels[0], "logicle", idx)
            y = values(gt.channels[1], "logicle", idx)
            density(ax, x, y, (-0.05, 1.0), (-0.05, 1.0))
            c4, c8 = gt.bounds[0][1], gt.bounds[1][1]
            assert c4 is not None and c8 is not None
            ax.axvline(c4, color="black", lw=1.4, ls="--")
            ax.axhline(c8, color="black", lw=1.4, ls="--")
            ax.add_patch(Rectangle((-0.05, -0.05), c4 + 0.05, c8 + 0.05, fill=False, lw=2.6,
                                   ec="crimson"))
            ax.text(0.0, c8 - 0.03, "DNT", color="crimson", fontsize=12, weight="bold", va="top")
            set_logicle(ax, "x")
            set_logicle(ax, "y")
            ax.set_xlabel(axis_label(gt, 0))
            ax.set_ylabel(axis_label(gt, 1))
        else:  # 1-D positive gate: marker vs SSC (or a histogram)
            chan = gt.channels[0]
            lo = gt.bounds[0][0]
            x = values(chan, "logicle", idx)
            if ssc is not None and name != "b220_pos":
                y = cols[ssc][idx]
                yr = lin_range(y)
                density(ax, x, y, (-0.05, 1.0), yr)
                ax.set_ylim(*yr)
                ax.set_ylabel(f"SSC  ({ssc})")
                ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 3))
            else:
                ax.hist(x, bins=120, range=(-0.05, 1.0), color="steelblue")
                ax.set_ylabel("events")
            assert lo is not None
            ax.axvline(lo, color="black", lw=2.2)
            ax.axvspan(lo, 1.0, color="grey", alpha=0.12)
            t = g.thresholds.get(gt.markers[0]) if gt.markers else None
            if t is not None and not t.clear:
                ax.text(0.02, 0.96, f"no clear valley ({t.method} rule)", transform=ax.transAxes,
                        color="crimson", fontsize=10, va="top", weight="bold")
            set_logicle(ax, "x")
            ax.set_xlabel(axis_label(gt, 0))
        den = masks[gt.parent] if gt.parent else None
        ax.set_title(f"{gt.label}\n{pct(name, den, ptxt)}", fontsize=11)

    # summary panel
    sax = flat[len(panels)]
    sax.axis("off")
    d = result.to_dict()

    def fmt(key: str) -> str:
        v, ci = d.get(key), d.get(key + "_ci")
        if v is None:
            return "n/a"
        return f"{v:.2f} %  (95 % CI {ci[0]:.2f}–{ci[1]:.2f})"

    lines = [
        Path(result.file).name,
        f"{result.events:,} events   date {d['date'] or 'unknown'}",
        f"DNT = {d['dnt_definition']}",
        "",
        f"% of lymphocytes:  {fmt('dnt_pct_lymphocytes')}",
        f"% of CD3+:         {fmt('dnt_pct_cd3')}",
        f"% of TCRαβ+:       {fmt('dnt_pct_tcrab')}",
    ]
    if d.get("b220_pct_dnt") is not None:
        lines.append(f"B220+ of DNT:      {fmt('b220_pct_dnt')}")
    lines.append(f"compensation: {result.compensation}")
    lines.append("")
    lines.append("QC: " + ("no flags" if not result.flags else ""))
    for f in result.flags:
        msg = f.message if len(f.message) < 70 else f.message[:67] + "…"
        lines.append(f" • [{f.severity}] {msg}")
    return _finish(fig, sax, flat[len(panels) + 1:], lines,
                   "Automated DNT gating (alpsdx) — check every gate before reporting", path, dpi)


def _finish(fig: Any, sax: Any, unused: Any, lines: list[str], title: str, path: str | Path,
            dpi: int) -> Path:
    """Write the summary text panel, blank the unused axes, title, save the PNG, free the figure."""
    import matplotlib.pyplot as plt  # already loaded (and backend set) by the caller

    sax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=9.5,
             transform=sax.transAxes)
    for ax in unused:
        ax.axis("off")
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def plot_gate_steps(steps: list[GateStep], summary: dict[str, Any], path: str | Path, *,
                    dpi: int = 110) -> Path:
    """Draw the lab's own gates (Gating-ML / FlowJo, applied by FlowKit) down to the DNT gate:
    each panel shows the parent's events on the gate's dimensions as FlowKit saw them, the
    gate's outline where it is a rectangle or polygon, the events it kept in red where it is
    not, and the percentage of the parent."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib import colors
    from matplotlib.patches import Polygon, Rectangle

    if not steps:
        raise FlowError("no gates to draw", field="--plots")
    cmap = plt.get_cmap("turbo").with_extremes(under="white")
    ncol = 3
    nrow = int(np.ceil((len(steps) + 1) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.6 * nrow), squeeze=False)
    flat = list(axes.ravel())

    def rng(v: np.ndarray) -> tuple[float, float]:
        lo, hi = (float(q) for q in np.quantile(v, [0.001, 0.999])) if v.size else (0.0, 1.0)
        pad = 0.05 * (hi - lo or 1.0)
        return lo - pad, hi + pad

    for ax, st in zip(flat, steps, strict=False):
        pct = 100.0 * st.count / st.parent_count if st.parent_count else float("nan")
        ax.set_title(f"{st.gate}\n{pct:.2f} % of parent  ({st.count:,} / {st.parent_count:,})",
                     fontsize=11)
        if st.values is None or st.in_gate is None or not st.dims:
            ax.axis("off")
            ax.text(0.5, 0.5, f"{st.kind}: not drawn", ha="center", transform=ax.transAxes)
            continue
        v = st.values
        if v.shape[1] >= 2:
            xr, yr = rng(v[:, 0]), rng(v[:, 1])
            h, _, _ = np.histogram2d(v[:, 0], v[:, 1], bins=160, range=(xr, yr))
            ax.imshow(np.ma.masked_less(h.T, 1), origin="lower", extent=(*xr, *yr), aspect="auto",
                      cmap=cmap, norm=colors.LogNorm(vmin=1, vmax=max(float(h.max()), 2.0)),
                      interpolation="nearest")
            if st.vertices:
                ax.add_patch(Polygon(np.asarray(st.vertices), closed=True, fill=False, lw=2.2,
                                     ec="black"))
            elif st.bounds and len(st.bounds) >= 2:
                (x0, x1), (y0, y1) = st.bounds[0], st.bounds[1]
                x0 = xr[0] if x0 is None else x0
                x1 = xr[1] if x1 is None else x1
                y0 = yr[0] if y0 is None else y0
                y1 = yr[1] if y1 is None else y1
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=2.4,
                                       ec="crimson"))
            else:
                sel = np.flatnonzero(st.in_gate)[:20_000]
                ax.scatter(v[sel, 0], v[sel, 1], s=1, c="crimson", alpha=0.4, rasterized=True)
            ax.set_xlim(*xr)
            ax.set_ylim(*yr)
            ax.set_ylabel(st.dims[1])
            ax.ticklabel_format(style="sci", scilimits=(-3, 4))
        else:
            xr = rng(v[:, 0])
            ax.hist(v[:, 0], bins=120, range=xr, color="lightgrey", label="parent")
            ax.hist(v[st.in_gate, 0], bins=120, range=xr, color="crimson", alpha=0.7,
                    label="in gate")
            for b in (st.bounds or [(None, None)])[0]:
                if b is not None:
                    ax.axvline(b, color="black", lw=2)
            ax.set_ylabel("events")
            ax.legend(fontsize=8, loc="upper right")
        ax.set_xlabel(st.dims[0])
    sax = flat[len(steps)]
    sax.axis("off")

    def fmt(key: str) -> str:
        v, ci = summary.get(key), summary.get(key + "_ci")
        if v is None:
            return "n/a"
        return f"{v:.2f} %  (95 % CI {ci[0]:.2f}–{ci[1]:.2f})"

    lines = [Path(str(summary.get("file", ""))).name,
             f"{summary.get('events', 0):,} events   date {summary.get('date') or 'unknown'}",
             f"gates: {summary.get('method', '')}", "",
             f"% of lymphocytes:  {fmt('dnt_pct_lymphocytes')}",
             f"% of CD3+:         {fmt('dnt_pct_cd3')}",
             f"% of TCRαβ+:       {fmt('dnt_pct_tcrab')}", "",
             "QC: " + ("no flags" if not summary.get("qc") else "")]
    for f in summary.get("qc", []):
        msg = f["message"] if len(f["message"]) < 70 else f["message"][:67] + "…"
        lines.append(f" • [{f['severity']}] {msg}")
    return _finish(fig, sax, flat[len(steps) + 1:], lines,
                   "The laboratory's gates (applied by FlowKit) — DNT chain", path, dpi)
