"""Fuzz the FHIR R4 Bundle importer as a user reaches it: a .json file given to ``alpsdx evaluate``.

Bytes in (a .json file in /dev/shm) -> alpsdx.commands.core.load_any -> json -> FHIR Bundle
-> alpsdx.interop.fhir_import.bundle_to_case (or the case parser for non-Bundles); a Case
(then assessed) or an AlpsdxError (InputError/FHIRError) out.
Seeds: tests/data/fhir/*.json (project-made Synthea-shaped bundles).
Run: .venv/bin/python fuzz/fuzz_fhir.py -max_total_time=600   (see README.md)
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
    from alpsdx.commands.core import load_any
    from alpsdx.engine import assess

    tmpdir = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    fd, path = tempfile.mkstemp(suffix=".json", dir=tmpdir)
    os.close(fd)

    def target(data: bytes) -> None:
        with open(path, "wb") as fh:
            fh.write(data)
        case = load_any(path)
        assess(case, "all", care=False)

    return target, ()


def seeds() -> Iterable[tuple[str, bytes]]:
    for p in sorted((REPO / "tests" / "data" / "fhir").glob("*.json")):
        yield p.name, p.read_bytes()


if __name__ == "__main__":
    main("fhir", make_target, seeds, default_max_len=65536)
