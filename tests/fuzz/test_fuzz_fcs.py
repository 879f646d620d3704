"""Fuzz the FCS reader (alpsdx.flow.fcs.read_fcs_bytes): FCSData or FCSError, nothing else."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fcs_writer import Spec, build, build_multi
from fuzz_helpers import fuzz_settings, mutated, outcome
from hypothesis import given
from hypothesis import strategies as st

from alpsdx.errors import FCSError
from alpsdx.flow.fcs import read_fcs_bytes

EV = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=float)
NAMES = ["FSC-A", "CD3", "CD4"]
SEEDS = [
    build(Spec(EV, NAMES)),
    build(Spec(EV, NAMES, version="3.0", byteord="4,3,2,1")),
    build(Spec(EV, NAMES, version="3.2", datatype="D")),
    build(Spec(EV, NAMES, version="2.0", datatype="I", bits=[16, 16, 16])),
    build(Spec(EV, NAMES, datatype="I", bits=[8, 16, 32])),
    build(Spec(EV, NAMES, datatype="A", bits=[4, 4, 4])),
    build(Spec(EV, NAMES, datatype="A", bits=["*", "*", "*"])),
    build_multi([Spec(EV, NAMES), Spec(EV[:1], NAMES)]),
]


def read_all(data: bytes) -> None:
    fcs = read_fcs_bytes(data)
    assert fcs.events.shape == (fcs.n_events, len(fcs.channels))
    _ = fcs.date
    if fcs.n_datasets > 1:
        read_fcs_bytes(data, dataset=fcs.n_datasets - 1)


def test_seeds_are_valid() -> None:
    for s in SEEDS:
        assert outcome(read_all, s) == "valid"


@fuzz_settings(200)
@given(st.binary(max_size=512))
def test_any_bytes(data: bytes) -> None:
    assert outcome(read_all, data) in ("valid", "typed error")


@fuzz_settings(400)
@given(mutated(SEEDS))
def test_mutated_files(data: bytes) -> None:
    t0 = time.process_time()
    assert outcome(read_all, data) in ("valid", "typed error")
    assert time.process_time() - t0 < 2.0, "hang: > 2 s CPU on a small FCS input"


# --- regressions (docs/reliability.md) -------------------------------------------------------

def test_regression_non_ascii_digits_in_header_offset() -> None:
    # '²'.isdigit() is True but int('²') raises ValueError: the HEADER check let it through.
    good = SEEDS[0]
    bad = good[:10] + "²".encode("latin-1").rjust(8, b" ") + good[18:]
    with pytest.raises(FCSError, match="HEADER offset is not a number"):
        read_fcs_bytes(bad)


@pytest.mark.parametrize(("key", "value"), [
    ("$TOT", "99999999999999"), ("$TOT", "1e308"), ("$TOT", "-3"), ("$PAR", "99999999"),
    ("$P1B", "99999999"), ("$P1B", "0"), ("$NEXTDATA", "1e300"),
    ("$P1R", "nan"), ("$P1E", "1e308,0"), ("$BYTEORD", "9,9,9,9"),
])
def test_absurd_keywords_are_refused_fast(key: str, value: str) -> None:
    """A keyword promising more data than the file holds is refused without allocating it."""
    data = build(Spec(EV, NAMES, extra={key: value}))
    t0 = time.process_time()
    res = outcome(read_all, data)
    assert time.process_time() - t0 < 2.0
    assert res in ("valid", "typed error")
    if key in ("$TOT", "$PAR", "$BYTEORD"):
        assert res == "typed error"
