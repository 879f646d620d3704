"""The reader against flowio, event by event, on every FCS file in ../shared/data.

Each file is read by both; either both decode it to identical arrays (with and without
flowio's preprocessing: $PnE, $PnG, $TIMESTEP), or both refuse it (flowio with its own
exception, alpsdx with FCSError). Skips cleanly when ../shared/data is absent.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import flowio
import numpy as np
import pytest

from alpsdx.errors import FCSError
from alpsdx.flow.fcs import read_fcs

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FILES = sorted(
    p for p in SHARED.rglob("*") if p.is_file() and p.suffix.lower() in (".fcs", ".lmd")
) if SHARED.is_dir() else []

pytestmark = pytest.mark.shared


def _flowio(path: Path, preprocess: bool, **kw: bool) -> list[np.ndarray]:
    """flowio's events of every data set (flowio refuses multi-set files in FlowData)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return [flowio.FlowData(str(path), **kw).as_array(preprocess=preprocess)]
        except flowio.exceptions.MultipleDataSetsError:
            sets = flowio.read_multiple_data_sets(str(path), **kw)
            return [s.as_array(preprocess=preprocess) for s in sets]


def _ours(path: Path, preprocess: bool, **kw: bool) -> list[np.ndarray]:
    first = read_fcs(path, preprocess=preprocess, **kw)
    out = [first.events]
    for k in range(1, first.n_datasets):
        out.append(read_fcs(path, dataset=k, preprocess=preprocess, **kw).events)
    return out


def test_shared_data_has_fcs_files(shared_data):
    assert len(FILES) >= 10, "expected the FlowIO and FlowKit test files in ../shared/data"


@pytest.mark.parametrize("preprocess", [True, False], ids=["preprocessed", "raw"])
@pytest.mark.parametrize(
    "options",
    [{}, {"ignore_offset_error": True}, {"ignore_offset_discrepancy": True}],
    ids=["strict", "ignore_offset_error", "ignore_offset_discrepancy"],
)
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(SHARED)) for p in FILES])
def test_same_events_or_both_refuse(shared_data, path, options, preprocess):
    try:
        ref: list[np.ndarray] | None = _flowio(path, preprocess, **options)
        ref_err = None
    except Exception as exc:  # flowio's own exceptions (ValueError, FCSParsingError, ...)
        ref, ref_err = None, exc
    try:
        ours: list[np.ndarray] | None = _ours(path, preprocess, **options)
        our_err = None
    except FCSError as exc:
        ours, our_err = None, exc
    if ref is None:
        assert ours is None, f"flowio refuses ({ref_err}) but alpsdx reads it"
        assert our_err is not None and our_err.field, "FCSError must name the keyword"
        return
    assert ours is not None, f"flowio reads it but alpsdx refuses: {our_err}"
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b.astype(np.float64))


def test_flowio_truth_arrays(shared_data):
    """data1.fcs decoded as FlowIO's own stored truth (preprocessed and raw)."""
    truth = shared_data / "flowio" / "truth"
    f = shared_data / "flowio" / "fcs_files" / "data1.fcs"
    np.testing.assert_array_equal(read_fcs(f).events, np.load(truth / "data1_preprocessed.npy"))
    raw = np.load(truth / "data1_original_events.npy")
    np.testing.assert_array_equal(read_fcs(f, preprocess=False).events, raw.reshape(-1, 8))


def test_multi_dataset_file(shared_data):
    f = shared_data / "flowkit" / "multi_dataset_fcs" / "coulter.lmd"
    with pytest.raises(FCSError, match="off by one") as exc:
        read_fcs(f)
    assert exc.value.field == "$TOT/$PAR"
    d0 = read_fcs(f, ignore_offset_error=True)
    d1 = read_fcs(f, dataset=1, ignore_offset_error=True)
    assert (d0.n_datasets, d0.dataset_index, d1.dataset_index) == (2, 0, 1)
    assert d0.events.shape[1] == d1.events.shape[1]
    assert not np.array_equal(d0.events, d1.events)


def test_offset_discrepancy_named(shared_data):
    f = shared_data / "flowkit" / "noncompliant" / "data_start_offset_discrepancy_example.fcs"
    with pytest.raises(FCSError) as exc:
        read_fcs(f)
    assert exc.value.field == "$BEGINDATA"
    assert "HEADER" in str(exc.value)


def test_real_file_metadata(shared_data):
    d = read_fcs(shared_data / "flowkit" / "100715.fcs")
    assert d.version == "FCS2.0"  # the HEADER says so; it still carries $SPILL
    assert d.n_events == 65016 and len(d.channels) == 16
    assert {"CD3", "CD4", "CD8"} <= {c.pns for c in d.channels if c.pns}
    assert d.date is not None and d.date.isoformat() == "2007-07-17"
