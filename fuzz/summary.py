"""Print the fuzzing table for docs/reliability.md from the harness stats files.

    .venv/bin/python fuzz/summary.py [--row] [--target N] [WORKDIR ...]
                                        (default: $ALPSDX_FUZZ_DIR or /tmp/alpsdx-fuzz)
Several work directories (several runs) are summed per parser. ``--row`` prints instead the
one-line summary of the top table of docs/reliability.md (totals, the range per parser and
whether every parser reached ``--target`` inputs, default 1,000,000).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def collect(dirs: list[Path]) -> tuple[dict[str, dict[str, float]], dict[str, set[str]]]:
    """Per parser: summed counts over the work directories, and the distinct finding keys."""
    total: dict[str, dict[str, float]] = {}
    bugs: dict[str, set[str]] = {}
    for d in dirs:
        for f in sorted(d.glob("stats-*.json")):
            s = json.loads(f.read_text(encoding="utf-8"))
            t = total.setdefault(s["parser"], {"inputs": 0, "valid": 0, "typed_errors": 0, "elapsed_s": 0.0,
                                               "slow_inputs": 0, "memory_flags": 0, "slowest_s": 0.0})
            for k in ("inputs", "valid", "typed_errors", "elapsed_s", "slow_inputs", "memory_flags"):
                t[k] += s.get(k, 0)
            t["slowest_s"] = max(t["slowest_s"], s.get("slowest_s", 0.0))
            bugs.setdefault(s["parser"], set()).update(s.get("bugs", {}))
    return total, bugs


def _k(n: float) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.0f} k"


def row(total: dict[str, dict[str, float]], bugs: dict[str, set[str]], target: int) -> str:
    """The atheris line of the top table in docs/reliability.md."""
    n = [t["inputs"] for t in total.values()]
    crashes = sum(1 for name in bugs for b in bugs[name] if not b.startswith(("slow", "memory")))
    slow = sum(int(t["slow_inputs"]) for t in total.values())
    mem = sum(int(t["memory_flags"]) for t in total.values())
    hours = sum(t["elapsed_s"] for t in total.values()) / 3600
    met = min(n) >= target
    return (f"| parser fuzzing, atheris | `fuzz/run_all.sh`: coverage-guided, {len(n)} harnesses in parallel "
            f"on the 2-core machine, stopping each at {target:,} inputs | {sum(n) / 1e6:.1f} million inputs "
            f"({_k(min(n))} – {_k(max(n))} per parser, table below; {hours:.1f} harness-hours): "
            f"{'every parser reached' if met else '**short of**'} the {target:,} target; "
            f"found {crashes} distinct untyped exceptions, {slow} inputs over 2 s CPU and {mem} memory "
            f"blow-ups (each a bug listed below) |")


def main() -> None:
    args = sys.argv[1:]
    as_row = "--row" in args
    target = 1_000_000
    if "--target" in args:
        target = int(args[args.index("--target") + 1])
        del args[args.index("--target"): args.index("--target") + 2]
    args = [a for a in args if a != "--row"]
    dirs = [Path(d) for d in args] or [Path(os.environ.get("ALPSDX_FUZZ_DIR", "/tmp/alpsdx-fuzz"))]
    total, bugs = collect(dirs)
    if as_row:
        print(row(total, bugs, target))
        return
    print("| parser | inputs tried | valid | typed errors | other exceptions (distinct) | "
          "slow > 2 s CPU | memory flags | slowest (CPU s) | fuzzing time |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, t in sorted(total.items()):
        crash = sorted(b for b in bugs[name] if not b.startswith(("slow", "memory")))
        print(f"| {name} | {int(t['inputs']):,} | {int(t['valid']):,} | {int(t['typed_errors']):,} | "
              f"{len(crash)} | {int(t['slow_inputs'])} | {int(t['memory_flags'])} | {t['slowest_s']:.2f} | "
              f"{t['elapsed_s'] / 60:.0f} min |")
    for name in sorted(bugs):
        crash = sorted(b for b in bugs[name] if not b.startswith(("slow", "memory")))
        if crash:
            print(f"\n{name}: " + "; ".join(crash))


if __name__ == "__main__":
    main()
