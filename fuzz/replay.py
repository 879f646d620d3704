"""Replay inputs through a harness's target (no atheris needed): outcome and CPU time each.

    .venv/bin/python fuzz/replay.py hgvs /tmp/alpsdx-fuzz/findings/hgvs/*.bin
Use it to re-check a finding after a fix, or to confirm that a "slow" input is slow on its
own (CPU time) rather than on a busy machine.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    name, files = sys.argv[1], sys.argv[2:]
    mod = importlib.import_module(f"fuzz_{name}")
    target, allowed = mod.make_target()
    from alpsdx.errors import AlpsdxError

    for seed in list(mod.seeds())[:20]:  # warm-up: lazy imports, knowledge base
        with contextlib.suppress(Exception):
            target(seed[1])
    for f in files:
        data = Path(f).read_bytes()
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            target(data)
            out = "valid"
        except (AlpsdxError, *allowed) as exc:
            out = f"typed {type(exc).__name__}"
        except Exception as exc:
            out = f"BUG {type(exc).__name__}: {exc}"[:200]
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            out += f" at {Path(tb.filename).name}:{tb.lineno}"
        print(f"{Path(f).name}\t{len(data)} B\tcpu {time.process_time() - c0:.2f} s\t"
              f"wall {time.perf_counter() - t0:.2f} s\t{out}")


if __name__ == "__main__":
    main()
