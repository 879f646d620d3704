"""Batch evaluation speed: cases/s through parse + NIH 2009 assessment, against parsing alone.

Baseline: `case_from_dict` on the same dicts (pydantic validation + unit conversion), measured
in the same run, so the ratio says how much the criteria engine costs on top of reading a case.
Run: `.venv/bin/python benchmarks/bench_evaluate.py [N]` (one core; default 5000 cases).
"""

from __future__ import annotations

import copy
import json
import random
import sys
import time
from pathlib import Path

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


def rate(fn, items) -> float:
    t0 = time.perf_counter()
    for it in items:
        fn(it)
    return len(items) / (time.perf_counter() - t0)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    cases = corpus(n)
    assess(case_from_dict(cases[0]))  # warm the knowledge-base and unit caches
    parse = rate(case_from_dict, cases)
    evaluate_nih = rate(lambda d: assess(case_from_dict(d), care=False), cases)
    evaluate_full = rate(lambda d: assess(case_from_dict(d)), cases)
    evaluate_all = rate(lambda d: assess(case_from_dict(d), "all", care=False), cases[: max(1, n // 5)])
    print(f"cases: {n}")
    print(f"parse only (baseline):               {parse:10.0f} cases/s")
    print(f"parse + NIH 2009 assessment:          {evaluate_nih:10.0f} cases/s  ({evaluate_nih / parse:.2f} x parse)")
    print(f"parse + NIH 2009 + variants + care:   {evaluate_full:10.0f} cases/s")
    print(f"parse + all criteria sets:            {evaluate_all:10.0f} cases/s")
    print(f"RESULT cases_per_s={evaluate_nih:.0f} ratio_to_parse={evaluate_nih / parse:.3f} "
          f"parse_per_s={parse:.0f} full_cases_per_s={evaluate_full:.0f} all_sets_cases_per_s={evaluate_all:.0f}")


if __name__ == "__main__":
    main()
