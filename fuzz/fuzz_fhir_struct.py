"""Structure-aware fuzzing of the FHIR R4 Bundle importer: valid JSON, one value changed.

Raw byte mutations of a Bundle mostly break the JSON and stop at the parser; here the input
picks a seed Bundle (byte 0), a location anywhere in it (bytes 1-4) and the new value (the
rest, read as JSON when it parses, else as a string), so libFuzzer explores the importer's
own branches. Target: bundle_to_case, then assess under every criteria set.
Run: .venv/bin/python fuzz/fuzz_fhir_struct.py -max_total_time=600   (see README.md)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, main

BUNDLES = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((REPO / "tests" / "data" / "fhir").glob("*.json"))]
BUNDLES = [b for b in BUNDLES if isinstance(b, dict) and b.get("resourceType") == "Bundle"]
# a fresh copy per input comes from the JSON text: json.loads is C code, about 5x faster than
# copy.deepcopy of the parsed Bundle, which took over half of each input's time
TEXTS = [json.dumps(b) for b in BUNDLES]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [_paths(b)[1:] for b in BUNDLES]


def mutate(data: bytes) -> dict[str, Any]:
    i = data[0] % len(BUNDLES)
    doc = json.loads(TEXTS[i])
    where = PATHS[i][int.from_bytes(data[1:5], "little") % len(PATHS[i])]
    raw = data[5:].decode("utf-8", errors="replace")
    try:
        value: Any = json.loads(raw)
    except (ValueError, RecursionError):
        value = raw
    node = doc
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    return doc


def make_target() -> tuple[Callable[[bytes], Any], tuple[type[BaseException], ...]]:
    from alpsdx.engine import assess
    from alpsdx.interop.fhir_import import bundle_to_case

    def target(data: bytes) -> None:
        if len(data) < 5:
            return
        assess(bundle_to_case(mutate(data)).case, "all", care=False)

    return target, ()


def seeds() -> Iterable[tuple[str, bytes]]:
    values = [b'"2025-01-01"', b"null", b"-1", b"1e308", b'"mg/dL"', b"[]", b"{}", b'"Patient/x"', b"true",
              b'{"system": "http://loinc.org", "code": "2465-3"}', b'{"value": 1e-300, "unit": "g/L"}']
    for i in range(len(BUNDLES)):
        for j, v in enumerate(values):
            yield f"b{i}_{j}", bytes([i]) + (j * 7919).to_bytes(4, "little") + v


if __name__ == "__main__":
    main("fhir_struct", make_target, seeds, default_max_len=512)
