"""Shared machinery for the atheris harnesses in this folder (run by hand, see README.md).

Each harness gives a ``target(data: bytes) -> None`` that feeds one input to one parser.
The only acceptable outcomes are a result or the project's own ``AlpsdxError`` (plus any
exception a harness names as designed, e.g. the CDS Hooks 412 precondition). Anything
else is a finding, and so is an input that takes more than 2 s of CPU (when < 1 MB) or that
grows the process's peak memory by more than 20x its size (above a 64 MiB floor: the
interpreter's own allocations dwarf a 20x bound on small inputs, see README.md).

Findings are written to ``<workdir>/findings/<parser>/`` (the input, plus a .txt with the
traceback) and fuzzing continues, so an unattended run collects every distinct bug; one
finding per (exception type, innermost alpsdx frame) is kept. ``--stop-on-finding``
re-raises instead, so libFuzzer writes its usual crash file and stops.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SLOW_S = 2.0
SLOW_MAX_INPUT = 1 << 20
MEM_FACTOR = 20
MEM_FLOOR = 64 << 20
STATS_EVERY = 1000


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


class Harness:
    """Wraps a target: counts inputs, classifies outcomes, records findings and stats."""

    def __init__(self, name: str, target: Callable[[bytes], Any],
                 allowed: tuple[type[BaseException], ...] = (), workdir: Path | None = None,
                 stop_on_finding: bool = False, resume: bool = False) -> None:
        from alpsdx.errors import AlpsdxError

        self.name = name
        self.target = target
        self.allowed = (AlpsdxError, *allowed)
        self.workdir = workdir or Path(os.environ.get("ALPSDX_FUZZ_DIR", "/tmp/alpsdx-fuzz"))
        self.findings = self.workdir / "findings" / name
        self.findings.mkdir(parents=True, exist_ok=True)
        self.stats_path = self.workdir / f"stats-{name}.json"
        self.stop = stop_on_finding
        self.n = 0
        self.ok = 0
        self.typed = 0
        self.slow = 0
        self.mem = 0
        self.bugs: dict[str, int] = {}
        self.started = time.time()
        self.slowest = 0.0
        self.prior: dict[str, Any] = {}
        if resume and self.stats_path.is_file():  # totals of earlier runs (run_all.sh restarts)
            self.prior = json.loads(self.stats_path.read_text(encoding="utf-8"))
            self.bugs = dict(self.prior.get("bugs", {}))

    # -- outcome bookkeeping -----------------------------------------------------------------
    def _record(self, kind: str, data: bytes, detail: str, key: str) -> None:
        first = key not in self.bugs
        self.bugs[key] = self.bugs.get(key, 0) + 1
        if not first:
            return
        h = hashlib.sha1(data).hexdigest()[:12]
        (self.findings / f"{kind}-{h}.bin").write_bytes(data)
        (self.findings / f"{kind}-{h}.txt").write_text(f"{key}\n\n{detail}\n", encoding="utf-8")
        print(f"[{self.name}] NEW {kind}: {key} (input {len(data)} bytes) -> {self.findings}/{kind}-{h}.bin",
              file=sys.stderr, flush=True)

    def write_stats(self) -> None:
        pr = self.prior
        elapsed = time.time() - self.started + float(pr.get("elapsed_s", 0))
        n = self.n + int(pr.get("inputs", 0))
        self.stats_path.write_text(json.dumps({
            "parser": self.name, "inputs": n, "valid": self.ok + int(pr.get("valid", 0)),
            "typed_errors": self.typed + int(pr.get("typed_errors", 0)),
            "slow_inputs": self.slow + int(pr.get("slow_inputs", 0)),
            "memory_flags": self.mem + int(pr.get("memory_flags", 0)), "distinct_bugs": len(self.bugs),
            "bugs": self.bugs, "elapsed_s": round(elapsed, 1),
            "inputs_per_s": round(n / elapsed, 1) if elapsed else None,
            "slowest_s": round(max(self.slowest, float(pr.get("slowest_s", 0))), 3),
            "process_starts": int(pr.get("process_starts", 0)) + (1 if self.n <= STATS_EVERY else 0),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=2), encoding="utf-8")

    def __call__(self, data: bytes) -> None:
        self.n += 1
        rss0 = _maxrss_bytes()
        t0 = time.process_time()  # CPU time: wall time on a busy machine flags nothing real
        try:
            self.target(data)
            self.ok += 1
        except self.allowed:
            self.typed += 1
        except Exception as exc:  # the finding: any other exception
            if self.stop:
                raise
            tb = traceback.extract_tb(exc.__traceback__)
            ours = [f for f in tb if "/alpsdx/" in f.filename] or tb
            where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
            self._record("crash", data, traceback.format_exc(), f"{type(exc).__name__} at {where}")
        dt = time.process_time() - t0
        self.slowest = max(self.slowest, dt)
        if dt > SLOW_S and len(data) < SLOW_MAX_INPUT:
            self.slow += 1
            self._record("slow", data, f"{dt:.2f} s CPU for {len(data)} bytes",
                         f"slow input (> {SLOW_S:g} s CPU) #{self.slow}" if self.slow <= 20 else "slow input")
        grown = _maxrss_bytes() - rss0
        if grown > max(MEM_FACTOR * len(data), MEM_FLOOR):
            self.mem += 1
            self._record("memory", data, f"peak RSS grew {grown >> 20} MiB for {len(data)} bytes",
                         f"memory blow-up #{self.mem}" if self.mem <= 20 else "memory blow-up")
        if self.n % STATS_EVERY == 0:
            self.write_stats()


def shared_files(*patterns: str, max_size: int = 256 << 10) -> list[Path]:
    """Small files under ../shared/data matching the glob patterns (none when it is absent)."""
    if not SHARED_DATA.is_dir():
        return []
    out: list[Path] = []
    for pat in patterns:
        out.extend(p for p in sorted(SHARED_DATA.rglob(pat)) if p.is_file() and p.stat().st_size <= max_size)
    return out


def write_seeds(corpus: Path, seeds: Iterable[tuple[str, bytes]]) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    n = 0
    for name, data in seeds:
        (corpus / name).write_bytes(data)
        n += 1
    return n


def main(name: str, make_target: Callable[[], tuple[Callable[[bytes], Any], tuple[type[BaseException], ...]]],
         seeds: Callable[[], Iterable[tuple[str, bytes]]], default_max_len: int = 4096) -> None:
    """Parse our flags, seed the corpus, then hand the rest of argv to libFuzzer.

    ``python fuzz/fuzz_<parser>.py [--workdir D] [--stop-on-finding] [libFuzzer flags...]``
    Useful libFuzzer flags: ``-runs=N``, ``-max_total_time=S``, ``-max_len=B``, ``-timeout=S``.
    """
    import atheris

    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--stop-on-finding", action="store_true")
    ap.add_argument("--resume", action="store_true", help="add to the totals in stats-<parser>.json")
    ours, rest = ap.parse_known_args(sys.argv[1:])
    workdir = ours.workdir or Path(os.environ.get("ALPSDX_FUZZ_DIR", "/tmp/alpsdx-fuzz"))
    corpus = workdir / "corpus" / name
    with atheris.instrument_imports(include=["alpsdx"]):
        target, allowed = make_target()
    n_seeds = write_seeds(corpus, seeds())
    # Warm-up, unmeasured: first calls import lazily and load the knowledge base (seconds),
    # which must not be reported as a slow input or a memory blow-up.
    for seed in sorted(corpus.iterdir())[:50]:
        with contextlib.suppress(Exception):  # outcomes are judged in the measured run
            target(seed.read_bytes())
    harness = Harness(name, target, allowed, workdir, ours.stop_on_finding, ours.resume)
    import atexit

    atexit.register(harness.write_stats)
    if not any(a.startswith("-max_len") for a in rest):
        rest.append(f"-max_len={default_max_len}")
    if not any(a.startswith("-timeout") for a in rest):
        rest.append("-timeout=30")  # hard backstop; > 2 s is already recorded as a finding
    print(f"[{name}] {n_seeds} seeds in {corpus}; findings in {harness.findings}", file=sys.stderr, flush=True)
    atheris.Setup([sys.argv[0], *rest, str(corpus)], harness)
    atheris.Fuzz()
