"""Compensation and transforms against flowutils/FlowKit (FlowKit's own numerics), 1e-6."""

from __future__ import annotations

from pathlib import Path

import flowkit as fk
import flowutils.compensate as fu_comp
import flowutils.transforms as fu
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpsdx.errors import FCSError, FlowError
from alpsdx.flow.compensation import (
    SpillMatrix,
    compensate,
    load_spill_csv,
    parse_spill_string,
    spillover_from_text,
)
from alpsdx.flow.fcs import read_fcs
from alpsdx.flow.gating import Logicle
from alpsdx.flow.synthetic import default_spill
from alpsdx.flow.transforms import arcsinh, arcsinh_inverse, logicle, logicle_inverse

DATA = Path(__file__).resolve().parents[1] / "data" / "flow"
RNG = np.random.default_rng(7)
# data values across the whole scale, negatives included (compensated data go below zero)
X = np.concatenate([
    np.linspace(-5000, 5000, 2001), np.logspace(-3, 5.45, 2000), -np.logspace(-3, 4, 500),
    RNG.normal(0, 300, 2000), [0.0, 262144.0, 1e6],
])

LOGICLE_PARAMS = [
    (262144.0, 0.5, 4.5, 0.0),  # FlowJo / Gating-ML defaults
    (262144.0, 1.0, 4.5, 0.0),
    (10000.0, 0.5, 4.0, 0.0),
    (262144.0, 0.5, 4.5, 0.5),
    (1024.0, 0.0, 3.0, 0.0),
    (262144.0, 2.0, 5.0, 1.0),
]


@pytest.mark.parametrize(("T", "W", "M", "A"), LOGICLE_PARAMS)
def test_logicle_matches_flowutils(T, W, M, A):
    ours = logicle(X, T, W, M, A)
    ref = fu.logicle(X.reshape(-1, 1).copy(), [0], t=T, w=W, m=M, a=A).ravel()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("T", "W", "M", "A"), LOGICLE_PARAMS)
def test_logicle_inverse_matches_flowutils_and_round_trips(T, W, M, A):
    y = np.linspace(-0.2, 1.1, 1301)
    ours = logicle_inverse(y, T, W, M, A)
    ref = fu.logicle_inverse(y.reshape(-1, 1).copy(), [0], t=T, w=W, m=M, a=A).ravel()
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logicle(ours, T, W, M, A), y, atol=1e-9)


def test_logicle_landmarks():
    """Gating-ML 2.0: data zero maps to W/(M+A)... and T maps to 1 (top of scale)."""
    T, W, M, A = 262144.0, 0.5, 4.5, 0.0
    assert logicle(np.array([0.0]), T, W, M, A)[0] == pytest.approx((W + A) / (M + A), abs=1e-12)
    assert logicle(np.array([T]), T, W, M, A)[0] == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(logicle(np.array([np.nan]))[0])


@pytest.mark.parametrize(("T", "M", "A"), [(262144.0, 4.5, 0.0), (10000.0, 5.0, 1.0), (1024, 3, -1)])
def test_arcsinh_matches_flowutils(T, M, A):
    ours = arcsinh(X, T, M, A)
    ref = fu.asinh(X.reshape(-1, 1).copy(), [0], t=T, m=M, a=A).ravel()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(arcsinh_inverse(ours, T, M, A), X, rtol=1e-9, atol=1e-6)


def test_arcsinh_matches_flowkit_transform():
    xf = fk.transforms.AsinhTransform(param_t=262144, param_m=4.5, param_a=0)
    ref = xf.apply(X.reshape(-1, 1).copy()).ravel()
    np.testing.assert_allclose(arcsinh(X), ref, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e5, 1e6, allow_nan=False), min_size=1, max_size=50))
def test_logicle_monotonic_and_equal_to_flowutils(values):
    x = np.sort(np.array(values))
    y = logicle(x)
    assert np.all(np.diff(y) >= -1e-12)
    ref = fu.logicle(x.reshape(-1, 1).copy(), [0]).ravel()
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_logicle_parameter_errors():
    with pytest.raises(FlowError) as exc:
        logicle(X, 262144, 3.0, 4.5, 0)
    assert exc.value.field == "logicle W"
    with pytest.raises(FlowError):
        logicle(X, -1, 0.5, 4.5, 0)


def test_gate_logicle_uses_the_same_transform():
    xf = Logicle()
    np.testing.assert_allclose(xf.forward(X), fu.logicle(X.reshape(-1, 1).copy(), [0]).ravel(),
                               atol=1e-6)
    assert xf.inverse1(float(xf.forward(np.array([1234.5]))[0])) == pytest.approx(1234.5, rel=1e-9)


# --------------------------------------------------------------------------- compensation


def test_compensation_matches_flowutils_on_synthetic_spill():
    spill = default_spill()
    names = ["A", "B", "C", "D", "E", "F", "G"]
    ev = RNG.normal(1000, 2000, size=(5000, 9))
    pnn = ["FSC-A", *names, "Time"]
    ours = compensate(ev, pnn, SpillMatrix(tuple(names), spill))
    ref = fu_comp.compensate(ev.copy(), spill, list(range(1, 8)))
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(ours[:, [0, 8]], ev[:, [0, 8]])  # scatter/time untouched
    # undoing the spill: true @ S observed -> compensated recovers true
    true = RNG.normal(500, 100, size=(100, 7))
    obs = np.column_stack([np.zeros(100), true @ spill, np.zeros(100)])
    np.testing.assert_allclose(compensate(obs, pnn, SpillMatrix(tuple(names), spill))[:, 1:8],
                               true, atol=1e-6)


def test_compensation_of_real_file_matches_flowkit(shared_data):
    path = shared_data / "flowkit" / "100715.fcs"
    d = read_fcs(path)
    sp = spillover_from_text(d.text)
    assert sp is not None and len(sp.channels) == 13
    ours = compensate(d.events, d.pnn, sp)
    s = fk.Sample(str(path))
    m = fk.Matrix(s.metadata["spill"], detectors=list(sp.channels))
    ref = m.apply(s)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-6)


def test_spill_csv_matches_flowkit_matrix(shared_data):
    csv = shared_data / "flowkit" / "comp_complete_example.csv"
    ours = load_spill_csv(csv)
    header = csv.read_text().splitlines()[0].split(",")
    ref = fk.Matrix(str(csv), detectors=header)
    assert list(ours.channels) == header
    np.testing.assert_allclose(ours.matrix, ref.matrix, atol=0)


def test_flowjo_csv_with_labelled_rows():
    m = load_spill_csv(DATA / "flowjo_comp_labelled.csv")
    assert m.channels == ("FITC-A", "PE-A", "PerCP-Cy5-5-A", "APC-A")
    assert m.matrix[0, 1] == 0.22 and m.matrix[1, 0] == 0.01 and m.matrix[2, 3] == 0.08
    assert load_spill_csv(DATA / "flowjo_comp_reordered_rows.csv") == m


def test_malformed_csv_errors(tmp_path):
    with pytest.raises(FlowError) as exc:
        load_spill_csv(DATA / "comp_short_row.tsv")
    assert "row 2" in str(exc.value) and "1 values" in str(exc.value)
    with pytest.raises(FlowError) as exc:
        load_spill_csv(tmp_path / "absent.csv")
    assert exc.value.field == "path"
    bad = tmp_path / "bad.csv"
    bad.write_text("A,B\n1,x\n0,1\n")
    with pytest.raises(FlowError, match="non-number"):
        load_spill_csv(bad)


def test_spill_string_forms_and_errors():
    m = parse_spill_string("2,FL1-A,FL2-A,1,0.1,0.05,1")
    assert m is not None and m.channels == ("FL1-A", "FL2-A")
    np.testing.assert_array_equal(m.matrix, [[1, 0.1], [0.05, 1]])
    assert parse_spill_string("0") is None
    assert parse_spill_string(m.to_spill_string()) == m
    with pytest.raises(FCSError) as exc:
        parse_spill_string("2,A,B,1,0,0", "$SPILL")
    assert exc.value.field == "$SPILL" and "6 fields" in str(exc.value.expected)
    with pytest.raises(FCSError, match="not a number"):
        parse_spill_string("2,A,B,1,0,zero,1")
    with pytest.raises(FCSError, match="channel count"):
        parse_spill_string("two,A,B")


def test_compensation_errors():
    m = SpillMatrix(("A", "B"), np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(FlowError, match="singular"):
        compensate(np.ones((3, 2)), ["A", "B"], m)
    ok = SpillMatrix(("A", "Z"), np.eye(2))
    with pytest.raises(FlowError) as exc:
        compensate(np.ones((3, 2)), ["A", "B"], ok)
    assert exc.value.value == "Z" and "A, B" in exc.value.expected


def test_compensated_columns_equal_compensate_across_row_blocks():
    """The pipeline's blocked compensation of the wanted columns equals the plain
    column-wise sum (observed column k times inverse[k, j], in order) bit for bit over
    several row blocks and a ragged last block, and compensate() (BLAS) to rounding."""
    from alpsdx.flow.compensation import SpillMatrix, compensate
    from alpsdx.flow.pipeline import _COMP_BLOCK, compensated_columns
    from alpsdx.flow.synthetic import default_spill

    rng = np.random.default_rng(7)
    pnn = ["FSC-A", *(f"D{i}" for i in range(7)), "Time"]
    n = 2 * _COMP_BLOCK + 123
    events = np.asfortranarray(rng.normal(1e3, 5e3, size=(n, len(pnn))))
    spill = SpillMatrix(tuple(pnn[1:8]), default_spill())
    full = compensate(events, pnn, spill)
    got = compensated_columns(events, pnn, spill, ["FSC-A", "D0", "D3", "D6"])
    inv = np.linalg.inv(default_spill())
    for c in got:
        np.testing.assert_allclose(got[c], full[:, pnn.index(c)], rtol=1e-12, atol=1e-9)
        if c == "FSC-A":
            np.testing.assert_array_equal(got[c], events[:, 0])
            continue
        j = pnn.index(c) - 1
        ref = np.zeros(n)
        for k in range(7):
            if inv[k, j] != 0.0:
                ref += events[:, k + 1] * inv[k, j]
        np.testing.assert_array_equal(got[c], ref)
    assert compensated_columns(events[:0], pnn, spill, ["D2"])["D2"].shape == (0,)
