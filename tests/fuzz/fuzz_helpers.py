"""Helpers for bounded fuzzing in the test suite: every parser, random and mutated inputs.

The only acceptable outcomes are a valid result or the project's own ``AlpsdxError``.
Examples are derandomized (the same inputs every run, so CI is stable) unless
``ALPSDX_FUZZ_RANDOM=1``; the long, coverage-guided runs are the atheris harnesses in fuzz/.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]

RANDOM = os.environ.get("ALPSDX_FUZZ_RANDOM") == "1"


def fuzz_settings(max_examples: int) -> Any:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_edits: int = 8) -> bytes:
    """A seed with a few byte-level edits: overwrite, insert, delete, truncate, duplicate."""
    data = bytearray(draw(st.sampled_from(list(seeds))))
    for _ in range(draw(st.integers(0, max_edits))):
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate", "dup", "digit"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup" and data:
            end = min(len(data), pos + draw(st.integers(1, 64)))
            data[pos:pos] = data[pos:end]
        elif op == "digit" and data:
            data[pos : pos + 1] = draw(st.sampled_from([b"0", b"9", b"-1", b"99999999", b"1e308", b"nan", b""]))
    return bytes(data)


def outcome(fn: Callable[..., Any], *args: Any, allowed: tuple[type[BaseException], ...] = ()) -> str:
    """'valid' or 'typed error'; any other exception propagates and fails the test."""
    from alpsdx.errors import AlpsdxError

    try:
        fn(*args)
    except (AlpsdxError, *allowed):
        return "typed error"
    return "valid"


def json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indices) into a JSON document, the root () first."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += json_paths(v, (*prefix, i))
    return out


def with_one_value_replaced(data: st.DataObject, seeds: Sequence[Any], values: st.SearchStrategy[Any]) -> Any:
    """Structure-aware fuzzing: a copy of a seed document with one value, at any depth, replaced."""
    doc = copy.deepcopy(data.draw(st.sampled_from(list(seeds))))
    path = data.draw(st.sampled_from(json_paths(doc)[1:]))
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = data.draw(values)
    return doc
