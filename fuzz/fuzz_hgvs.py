"""Fuzz the HGVS reader (alpsdx.genetics.hgvs_input.parse_hgvs, then annotation).

Text in; a Variant (annotated) or VariantError out. Seeds: the HGVS strings of the
project's tests and examples. Run: .venv/bin/python fuzz/fuzz_hgvs.py -max_total_time=600
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, main

GENES = (None, "FAS", "FASLG", "CASP10", "NRAS", "CASP8")


def make_target() -> tuple[Callable[[bytes], Any], tuple[type[BaseException], ...]]:
    from alpsdx.genetics import annotate
    from alpsdx.genetics.hgvs_input import parse_hgvs

    def target(data: bytes) -> None:
        if not data:
            return
        gene = GENES[data[0] % len(GENES)]
        text = data[1:].decode("utf-8", errors="replace")
        v = parse_hgvs(text, gene)
        annotate(v).to_dict()

    return target, ()


def seeds() -> Iterable[tuple[str, bytes]]:
    import re

    found: set[str] = set()
    for src in [REPO / "tests" / "genetics" / "test_hgvs.py", *sorted((REPO / "examples").glob("*.json"))]:
        if src.is_file():
            found.update(re.findall(r'"((?:N[MP]_\d+\.\d+(?:\([A-Z0-9]+\))?:)?[cp]\.[^"]{1,60})"',
                                    src.read_text(encoding="utf-8")))
    for i, s in enumerate(sorted(found)):
        yield f"s{i:03d}", bytes([i % len(GENES)]) + s.encode()


if __name__ == "__main__":
    main("hgvs", make_target, seeds, default_max_len=256)
