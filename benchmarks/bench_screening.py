"""Alias of benchmarks/bench_screen.py (the name issue 8 gives): the ALPS screen benchmark."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_screen import main

if __name__ == "__main__":
    main()
