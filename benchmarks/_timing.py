"""Timing shared by the benchmark scripts (run as `python benchmarks/NAME.py`, so this folder
is on sys.path)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best CPU time (process_time, all threads) and best wall time of ``repeat`` runs, and the
    last result."""
    cpu, wall, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        gc.collect()
        c, w = time.process_time(), time.perf_counter()
        out = fn()
        cpu = min(cpu, time.process_time() - c)
        wall = min(wall, time.perf_counter() - w)
    return cpu, wall, out
