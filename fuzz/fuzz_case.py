"""Fuzz the case parser (alpsdx.model.parse_case_text, JSON and YAML) and evaluate what parses.

Text in; a valid Case (then evaluated under every criteria set) or InputError out.
Seeds: examples/*.json|yaml and the criteria tests' base case.
Run: .venv/bin/python fuzz/fuzz_case.py -max_total_time=600   (see README.md)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, main


def make_target() -> tuple[Callable[[bytes], Any], tuple[type[BaseException], ...]]:
    from alpsdx.criteria import evaluate_all
    from alpsdx.model import parse_case_text

    def target(data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return  # load_case refuses non-UTF-8 files before parsing (tested in tests/fuzz)
        fmt = ("json", "yaml", "auto")[data[0] % 3] if data else "auto"
        case = parse_case_text(text, fmt=fmt, source="fuzz")
        for ev in evaluate_all(case).values():
            json.dumps(ev.to_dict())

    return target, ()


def seeds() -> Iterable[tuple[str, bytes]]:
    for p in sorted((REPO / "examples").glob("*")):
        if p.suffix in (".json", ".yaml", ".yml"):
            yield p.name, p.read_bytes()
    yield "minimal.json", b'{"id": "x", "age_years": 4}'
    yield "minimal.yaml", b"id: x\nage_years: 4\nobservations:\n  - {analyte: igg, value: 900, unit: mg/dL}\n"


if __name__ == "__main__":
    main("case", make_target, seeds, default_max_len=8192)
