"""Benchmark: alpsdx's FCS reader against flowio (FlowKit's reader), and the DNT pipeline
against FlowKit, measured in one run.

Files (written to a temporary folder by this script, except the real one):

* ``float32``: 1,000,000 events x 12 channels, $DATATYPE F little-endian (synthetic panel);
* ``int16_masked``: 1,000,000 x 12, $DATATYPE I, 16 bits big-endian, $PnR 1024, so every
  value is masked to 10 bits (flowio's slow path) and $PnE 4,1 log-amplified on 4 channels;
* ``int_mixed``: 300,000 x 8, $DATATYPE I with $PnB 8/16/32 mixed;
* ``100715.fcs``: the real FACSAria file in ../shared/data/flowkit (when present).

For each, both readers must return identical float64 events (preprocessed: $PnE, $PnG,
$TIMESTEP) or the run fails. Then the full DNT pipeline (``analyse_fcs``: read, compensate,
logicle, gate, QC) runs on the float32 file against FlowKit applying the same gates. Times are the best of
``--repeat`` runs in CPU time (process_time; the machine is shared, so wall time is
printed too but not used in ratios). Run by hand:

    .venv/bin/python benchmarks/bench_fcs.py [--repeat 3]

Last line: ``RESULT reader_vs_flowio_float32=... reader_vs_flowio_int16_masked=...
reader_vs_flowio_int_mixed=... reader_vs_flowio_real=... pipeline_vs_flowkit=...``
(each a speedup: flowio or FlowKit time / alpsdx time).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _timing import best_of

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_int_fcs(path: Path, stored: np.ndarray, bits: list[int], ranges: list[int],
                  pne: list[str], big_endian: bool) -> None:
    """A minimal FCS 3.1 integer writer (numpy records) for the benchmark files."""
    n, p = stored.shape
    order = ">" if big_endian else "<"
    rec = np.dtype([(f"c{i}", f"{order}u{b // 8}") for i, b in enumerate(bits)])
    arr = np.empty(n, dtype=rec)
    for i in range(p):
        arr[f"c{i}"] = stored[:, i]
    payload = arr.tobytes()
    kw = {"$BYTEORD": "4,3,2,1" if big_endian else "1,2,3,4", "$DATATYPE": "I", "$MODE": "L",
          "$NEXTDATA": "0", "$PAR": str(p), "$TOT": str(n)}
    for i in range(p):
        kw.update({f"$P{i + 1}N": f"FL{i + 1}-A", f"$P{i + 1}B": str(bits[i]),
                   f"$P{i + 1}R": str(ranges[i]), f"$P{i + 1}E": pne[i]})
    begin = 0
    body = ""
    for _ in range(5):
        kw["$BEGINDATA"], kw["$ENDDATA"] = str(begin), str(begin + len(payload) - 1)
        body = "/" + "".join(f"{k}/{v}/" for k, v in kw.items())
        new = 58 + len(body)
        if new == begin:
            break
        begin = new
    end = begin + len(payload) - 1
    hd = (0, 0) if end > 99_999_999 else (begin, end)
    header = "FCS3.1    " + "".join(f"{v:>8d}" for v in (58, 58 + len(body) - 1, *hd, 0, 0))
    path.write_bytes(header.encode() + body.encode() + payload)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import flowio
    import flowkit as fk

    from alpsdx.flow.fcs import read_fcs
    from alpsdx.flow.gating import to_flowkit
    from alpsdx.flow.pipeline import analyse_fcs
    from alpsdx.flow.synthetic import SyntheticSpec, write_synthetic

    rng = np.random.default_rng(0)
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files: dict[str, Path] = {}
        files["float32"] = d / "float32.fcs"
        write_synthetic(files["float32"], SyntheticSpec(n_events=1_000_000, seed=2))
        files["int16_masked"] = d / "int16.fcs"
        write_int_fcs(files["int16_masked"], rng.integers(0, 65536, size=(1_000_000, 12)),
                      [16] * 12, [1024] * 12, ["4,1"] * 4 + ["0,0"] * 8, big_endian=True)
        files["int_mixed"] = d / "mixed.fcs"
        mixed = np.column_stack([rng.integers(0, 256, 300_000), rng.integers(0, 65536, (300_000, 3)),
                                 rng.integers(0, 2**32, (300_000, 4))])
        write_int_fcs(files["int_mixed"], mixed, [8, 16, 16, 16, 32, 32, 32, 32],
                      [256, 1024, 65536, 65536, 2**32, 2**20, 2**32, 2**32], ["0,0"] * 8,
                      big_endian=False)
        real = SHARED / "flowkit" / "100715.fcs"
        if real.is_file():
            files["real"] = real

        print(f"{'file':14s}{'events':>10s}{'alpsdx ms':>11s}{'flowio ms':>11s}{'speedup':>9s}"
              f"{'(wall)':>8s}")
        for key, path in files.items():
            def ref(path: Path = path) -> np.ndarray:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return flowio.FlowData(str(path)).as_array(preprocess=True)

            c_ours, w_ours, ours = best_of(lambda path=path: read_fcs(path).events, args.repeat)
            c_ref, w_ref, theirs = best_of(ref, args.repeat)
            if not np.array_equal(ours, theirs.astype(np.float64)):
                raise SystemExit(f"{key}: alpsdx and flowio decode different events")
            ratios[key] = c_ref / c_ours
            print(f"{key:14s}{ours.shape[0]:>10,d}{c_ours * 1e3:11.1f}{c_ref * 1e3:11.1f}"
                  f"{c_ref / c_ours:8.1f}x{w_ref / w_ours:7.1f}x")

        # the DNT pipeline vs FlowKit with the same gates, on the float32 file
        path = files["float32"]
        c_pipe, w_pipe, res = best_of(lambda: analyse_fcs(path, keep_columns=False), args.repeat)
        gs = to_flowkit(res.gating.gates, res.xf, comp_ref="FCS")

        def flowkit() -> dict[str, int]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = gs.gate_sample(fk.Sample(str(path)))
            return {g: int(r.get_gate_count(g)) for g, _ in gs.get_gate_ids()}

        c_fk, w_fk, counts = best_of(flowkit, args.repeat)
        if counts != res.gating.counts:
            raise SystemExit("FlowKit counts differ from alpsdx's")
        print(f"pipeline (1M events): alpsdx {c_pipe * 1e3:.0f} ms, FlowKit same gates "
              f"{c_fk * 1e3:.0f} ms: {c_fk / c_pipe:.1f}x (wall {w_fk / w_pipe:.1f}x); counts identical")

    print("RESULT " + " ".join(f"reader_vs_flowio_{k}={v:.2f}" for k, v in ratios.items())
          + f" pipeline_vs_flowkit={c_fk / c_pipe:.2f}")


if __name__ == "__main__":
    main()
