"""Print the fuzzing table for docs/reliability.md from the harness stats files.

    .venv/bin/python fuzz/summary.py [WORKDIR ...]      (default: $ALPSDX_FUZZ_DIR or /tmp/alpsdx-fuzz)
Several work directories (several runs) are summed per parser.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    dirs = [Path(d) for d in sys.argv[1:]] or [Path(os.environ.get("ALPSDX_FUZZ_DIR", "/tmp/alpsdx-fuzz"))]
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
