"""Genetics benchmark entry point: runs benchmarks/bench_vcf.py (the name issue 4 gives).

``.venv/bin/python benchmarks/bench_genetics.py [--records N] [--repeat R]``; last line
``RESULT ratio_to_cyvcf2=...`` (alpsdx panel filter vs a plain cyvcf2 pass, same run).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vcf import main

if __name__ == "__main__":
    sys.exit(main())
