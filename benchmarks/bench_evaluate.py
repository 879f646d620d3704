"""Batch evaluation speed: cases/s through parse + NIH 2009 assessment, against parsing alone.

Baseline: `case_from_dict` on the same dicts (pydantic validation + unit conversion), measured
in the same run, so the ratio says how much the criteria engine costs on top of reading a case.
Run: `.venv/bin/python benchmarks/bench_evaluate.py [N]` (one core; default 5000 cases).

Each rate is the best of ``REPEATS`` passes over the corpus, both by wall clock and by CPU
time of this process (``time.process_time``): on a shared, loaded machine the wall-clock
figure swings with other work, the CPU-time one (``cpu_cases_per_s``) much less; the
ratios to parse (both measured in the same run) are the figures to compare across runs.
The corpus repeats the examples with jittered percentages: variants repeat exactly, so
variant annotation comes from its cache (as it does for a batch of re-evaluations), and
few combinations of rule statuses occur, so next tests come from the per-set memo.
"""

from __future__ import annotations

import copy
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from alpsdx.engine import assess
from alpsdx.model import case_from_dict

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def corpus(n: int, seed: int = 7) -> list[dict]:
    """n case dicts: the examples with jittered DNT/biomarker values and durations."""
    rng = random.Random(seed)
    bases = []
    for p in sorted(EXAMPLES.iterdir()):
        if p.suffix == ".json":
            bases.append(json.loads(p.read_text()))
        elif p.suffix in {".yaml", ".yml"}:
            bases.append(yaml.safe_load(p.read_text()))
    out = []
    for i in range(n):
        c = copy.deepcopy(bases[i % len(bases)])
        c["id"] = f"{c['id']}-{i}"
        c.setdefault("evaluation_date", "2025-12-01")
        for o in c.get("observations", []):
            if o["unit"] == "%":
                o["value"] = round(min(100.0, o["value"] * rng.uniform(0.5, 1.5)), 2)
        out.append(c)
    return out


REPEATS = 3


def rate(fn: Callable[[Any], object], items: list[Any], repeats: int = REPEATS) -> tuple[float, float]:
    """(wall-clock, CPU-time) items per second, each the best of ``repeats`` passes."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        for it in items:
            fn(it)
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, max(time.process_time() - c0, 1e-9))
    return len(items) / wall, len(items) / cpu


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    cases = corpus(n)
    assess(case_from_dict(cases[0]))  # warm the knowledge-base and unit caches
    parse, parse_cpu = rate(case_from_dict, cases)
    nih, nih_cpu = rate(lambda d: assess(case_from_dict(d), care=False), cases)
    full, _ = rate(lambda d: assess(case_from_dict(d)), cases, repeats=1)
    all_sets, _ = rate(lambda d: assess(case_from_dict(d), "all", care=False), cases[: max(1, n // 5)], repeats=1)
    print(f"cases: {n} (best of {REPEATS} passes; wall clock / CPU time of this process)")
    print(f"parse only (baseline):               {parse:10.0f} / {parse_cpu:10.0f} cases/s")
    print(f"parse + NIH 2009 assessment:          {nih:10.0f} / {nih_cpu:10.0f} cases/s  "
          f"({nih / parse:.2f} / {nih_cpu / parse_cpu:.2f} x parse)")
    print(f"  = {1000 / nih_cpu:.3f} ms CPU per case, of which parse {1000 / parse_cpu:.3f} ms")
    print(f"parse + NIH 2009 + variants + care:   {full:10.0f} cases/s (wall, one pass)")
    print(f"parse + all criteria sets:            {all_sets:10.0f} cases/s (wall, one pass)")
    print(f"RESULT cases_per_s={nih:.0f} ratio_to_parse={nih / parse:.3f} "
          f"cpu_cases_per_s={nih_cpu:.0f} cpu_ratio_to_parse={nih_cpu / parse_cpu:.3f} "
          f"parse_per_s={parse:.0f} full_cases_per_s={full:.0f} all_sets_cases_per_s={all_sets:.0f}")

if __name__ == "__main__":
    main()
