"""Benchmark: DNT from a raw FCS file, alpsdx vs FlowKit vs a raw numpy read (one run).

A synthetic 1,000,000-event x 12-channel FCS 3.1 file (alpsdx.flow.synthetic, float32 DATA,
$SPILLOVER written) goes through read -> compensate -> logicle -> full gating:

* alpsdx: ``analyse_fcs`` (what ``alpsdx dnt`` runs: read_fcs keeping float32 DATA as
  float32, compensation of the gated channels, automated gating with gates placed from the
  data, QC) with the plotting columns dropped (``keep_columns=False``);
* FlowKit: ``Sample`` (flowio read) + ``GatingStrategy.gate_sample`` with the very same
  gates (exported by ``alpsdx.flow.gating.to_flowkit``; compensation from the file's
  $SPILLOVER, logicle transform) - its counts must equal ours or the run fails;
* raw read (the baseline): ``np.fromfile`` of the DATA segment ($BEGINDATA, $TOT x $PAR
  values) in the stored dtype ($DATATYPE/$BYTEORD/$PnB: little-endian float32 here),
  reshaped to the events x channels matrix - reading the bytes and nothing else.

Timings are the best of ``--repeat`` runs, taken round robin (each repeat runs every
contender once, so all figures sample the same stretch of machine load), in CPU time
(process_time, every thread of this process) and in wall time. The ratios in RESULT use CPU
time: the development machine is shared (its load average is often several times its core
count), which inflates wall time at random; wall-time ratios are printed too. Peak memory of the alpsdx pipeline is traced
with tracemalloc (numpy reports its buffers to it) and divided by the size of the float64
event matrix. Run by hand:

    .venv/bin/python benchmarks/bench_dnt.py [--events 1000000] [--repeat 3]

The last line is ``RESULT speedup_vs_flowkit=... ratio_to_raw_read=... peak_mem_ratio=...``
(CPU-time ratios) followed by the same ratios in wall time (``*_wall``). ratio_to_raw_read is
the whole pipeline (read + compensate + logicle + gating + QC, what the issue's "within 5x
of the raw read" measures) over the raw read; ``pipeline_to_raw_read`` repeats it (its
earlier name). The reader alone over the raw read is ``reader_to_raw_read`` (read_fcs with
its defaults: float64 events, $PnE/$PnG/$TIMESTEP applied) and ``reader_f32_to_raw_read``
(the float32 read the pipeline uses). Until 2026-11-27 (stop 13) ratio_to_raw_read held the
reader's ratio; it now holds the pipeline's, the figure the target is about.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _timing import best_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import flowkit as fk

    from alpsdx.flow.fcs import read_fcs
    from alpsdx.flow.gating import to_flowkit
    from alpsdx.flow.pipeline import analyse_fcs
    from alpsdx.flow.synthetic import SyntheticSpec, write_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.fcs"
        t0 = time.perf_counter()
        truth = write_synthetic(path, SyntheticSpec(n_events=args.events, dnt_pct_lymphocytes=2.5,
                                                    seed=1))
        print(f"generated {path.name}: {args.events:,} events in {time.perf_counter() - t0:.1f} s, "
              f"{path.stat().st_size / 1e6:.1f} MB")

        # -- raw numpy read of the DATA segment, in its stored dtype
        first = read_fcs(path)
        n, p = first.events.shape
        begin = int(first.text["$BEGINDATA"])
        stored = _stored_dtype(first.text, p)
        matrix_bytes = n * p * 8
        print(f"events x channels: {n:,} x {p}  (stored {stored.str}; float64 matrix "
              f"{matrix_bytes / 1e6:.0f} MB)")
        del first

        def raw() -> np.ndarray:
            return np.fromfile(path, dtype=stored, count=n * p, offset=begin).reshape(n, p)

        # -- alpsdx: the reader alone (defaults, and as the pipeline calls it), then the
        #    whole pipeline; FlowKit: same steps, same gates (exported from a first run)
        def ours() -> Any:
            return analyse_fcs(path, keep_columns=False)

        res = ours()
        gs = to_flowkit(res.gating.gates, res.xf, comp_ref="FCS")

        def flowkit() -> dict[str, int]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = fk.Sample(str(path))
                r = gs.gate_sample(s)
            return {g: int(r.get_gate_count(g)) for g, _ in gs.get_gate_ids()}

        # round robin: every repeat times each contender once, so all best-of figures are
        # drawn from the same stretch of (shared-machine) load
        fns = {"raw": raw, "read": lambda: read_fcs(path),
               "read32": lambda: read_fcs(path, keep_float32=True), "ours": ours,
               "flowkit": flowkit}
        cpu = dict.fromkeys(fns, float("inf"))
        wall = dict.fromkeys(fns, float("inf"))
        outs: dict[str, Any] = {}
        for _ in range(args.repeat):
            for key, fn in fns.items():
                c, w, outs[key] = best_of(fn, 1)
                cpu[key], wall[key] = min(cpu[key], c), min(wall[key], w)
            for key in ("raw", "read", "read32"):  # free the matrices
                del outs[key]
        t_raw, w_raw = cpu["raw"], wall["raw"]
        t_read, w_read = cpu["read"], wall["read"]
        t_read32, w_read32 = cpu["read32"], wall["read32"]
        t_ours, w_ours, res = cpu["ours"], wall["ours"], outs["ours"]
        t_fk, w_fk, fk_counts = cpu["flowkit"], wall["flowkit"], outs["flowkit"]
        if fk_counts != res.gating.counts:
            raise SystemExit(f"FlowKit counts differ: {fk_counts} vs {res.gating.counts}")

        # -- peak memory of the alpsdx pipeline
        gc.collect()
        tracemalloc.start()
        ours()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    d = res.to_dict()
    print(f"truth DNT {truth.dnt_pct_lymphocytes:.3f} % of lymphocytes; alpsdx "
          f"{d['dnt_pct_lymphocytes']:.3f} % (CI {d['dnt_pct_lymphocytes_ci'][0]:.3f}-"
          f"{d['dnt_pct_lymphocytes_ci'][1]:.3f}); FlowKit counts identical: {fk_counts['dnt']:,} DNT")
    print(f"{'':26s}{'CPU ms':>10s}{'wall ms':>10s}")
    for label, c, w in (("raw numpy read", t_raw, w_raw), ("alpsdx read_fcs", t_read, w_read),
                        ("alpsdx read_fcs float32", t_read32, w_read32),
                        ("alpsdx full pipeline", t_ours, w_ours),
                        ("FlowKit same gates", t_fk, w_fk)):
        print(f"{label:26s}{c * 1e3:10.1f}{w * 1e3:10.1f}")
    print(f"alpsdx reader / raw read:       {t_read / t_raw:6.2f} x CPU  {w_read / w_raw:6.2f} x wall")
    print(f"alpsdx pipeline / raw read:     {t_ours / t_raw:6.2f} x CPU  {w_ours / w_raw:6.2f} x wall")
    print(f"FlowKit / alpsdx pipeline:      {t_fk / t_ours:6.2f} x CPU  {w_fk / w_ours:6.2f} x wall")
    print(f"alpsdx peak traced memory {peak / 1e6:.0f} MB = {peak / matrix_bytes:.2f} x the event matrix")
    print(f"RESULT speedup_vs_flowkit={t_fk / t_ours:.2f} ratio_to_raw_read={t_ours / t_raw:.2f} "
          f"peak_mem_ratio={peak / matrix_bytes:.2f} speedup_vs_flowkit_wall={w_fk / w_ours:.2f} "
          f"ratio_to_raw_read_wall={w_ours / w_raw:.2f} pipeline_to_raw_read={t_ours / t_raw:.2f} "
          f"pipeline_to_raw_read_wall={w_ours / w_raw:.2f} reader_to_raw_read={t_read / t_raw:.2f} "
          f"reader_to_raw_read_wall={w_read / w_raw:.2f} "
          f"reader_f32_to_raw_read={t_read32 / t_raw:.2f}")


def _stored_dtype(text: Any, p: int) -> np.dtype:
    """The DATA segment's dtype from $DATATYPE, $BYTEORD and $PnB (one width for all)."""
    kind = text["$DATATYPE"].strip().upper()
    widths = {int(text[f"$P{i}B"]) for i in range(1, p + 1)}
    if len(widths) != 1 or kind not in "IFD":
        raise SystemExit(f"raw read needs one numeric width, got {kind} {sorted(widths)}")
    order = "<" if text["$BYTEORD"].strip().startswith("1") else ">"
    code = {"F": "f", "D": "f", "I": "u"}[kind]
    return np.dtype(f"{order}{code}{widths.pop() // 8}")


if __name__ == "__main__":
    main()
