"""Fuzz the VCF reader (alpsdx.genetics.vcf.read_vcf: htslib via cyvcf2, VEP CSQ / SnpEff ANN).

Bytes in (written to a file in /dev/shm, as the reader takes a path); a list of Variants
or VariantError out. Seeds: tests/data/genetics/*.vcf (project-made fixtures).
Run: .venv/bin/python fuzz/fuzz_vcf.py -max_total_time=600   (see README.md)
A crash inside htslib/cyvcf2 (C code) stops the run with libFuzzer's crash file (run_all.sh
restarts it). The segfaults found earlier (NUL bytes, malformed FORMAT values in
``Variant.format``; docs/reliability.md #16-17) are fixed, so every input is fed, NUL bytes
included; ALPSDX_FUZZ_VCF_SKIP_NUL=1 skips inputs holding a NUL byte (as the first runs did).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, main


def make_target() -> tuple[Callable[[bytes], Any], tuple[type[BaseException], ...]]:
    from alpsdx.genetics.vcf import read_vcf

    tmpdir = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    fd, path = tempfile.mkstemp(suffix=".vcf", dir=tmpdir)
    os.close(fd)

    skip_nul = os.environ.get("ALPSDX_FUZZ_VCF_SKIP_NUL") == "1"

    def target(data: bytes) -> None:
        if skip_nul and b"\x00" in data:
            return
        with open(path, "wb") as fh:
            fh.write(data)
        for v in read_vcf(path):
            v.model_dump()

    return target, ()


def seeds() -> Iterable[tuple[str, bytes]]:
    for p in sorted((REPO / "tests" / "data" / "genetics").glob("*.vcf")):
        yield p.name, p.read_bytes()


if __name__ == "__main__":
    main("vcf", make_target, seeds, default_max_len=8192)
