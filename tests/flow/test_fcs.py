"""FCS reader on files the project writes itself (always runs; no shared data needed)."""

from __future__ import annotations

import datetime as dt
import io

import flowio
import numpy as np
import pytest
from fcs_writer import Spec, build, build_multi

from alpsdx.errors import FCSError
from alpsdx.flow.fcs import FCSData, parse_fcs_date, read_fcs, read_fcs_bytes

RNG = np.random.default_rng(20240601)


def _ints(n: int, par: int, hi: int) -> np.ndarray:
    return RNG.integers(0, hi, size=(n, par)).astype(np.float64)


def _floats(n: int, par: int) -> np.ndarray:
    # float32-representable values, including negatives (compensated data)
    return RNG.normal(1000, 3000, size=(n, par)).astype(np.float32).astype(np.float64)


def _flowio(data: bytes, preprocess: bool = True) -> np.ndarray:
    return flowio.FlowData(io.BytesIO(data)).as_array(preprocess=preprocess)


# ----------------------------------------------------------------- round trips


@pytest.mark.parametrize("version", ["2.0", "3.0", "3.1"])
@pytest.mark.parametrize("byteord", ["1,2,3,4", "4,3,2,1"])
@pytest.mark.parametrize("datatype", ["I", "F", "D"])
def test_round_trip_matches_written_values_and_flowio(version, byteord, datatype):
    ev = _ints(50, 4, 60000) if datatype == "I" else _floats(50, 4)
    data = build(Spec(ev, ["FSC-A", "SSC-A", "FL1-A", "FL2-A"], version=version,
                      datatype=datatype, byteord=byteord))
    d = read_fcs_bytes(data)
    assert d.version == f"FCS{version}"
    assert d.events.dtype == np.float64
    assert d.events.shape == (50, 4)
    np.testing.assert_array_equal(d.events, ev)
    np.testing.assert_array_equal(d.events, _flowio(data))


@pytest.mark.parametrize("byteord", ["1,2", "2,1"])
def test_two_byte_orders(byteord):
    ev = _ints(30, 3, 65536)
    data = build(Spec(ev, ["A", "B", "C"], datatype="I", bits=[16, 16, 16], byteord=byteord,
                      ranges=[65536] * 3))
    np.testing.assert_array_equal(read_fcs_bytes(data).events, ev)
    np.testing.assert_array_equal(read_fcs_bytes(data).events, _flowio(data))


@pytest.mark.parametrize("byteord", ["3,4,1,2", "2,1,4,3"])
def test_mixed_endian_byte_orders(byteord):
    """PDP-style orders: flowio ignores them (native order); we honour the permutation."""
    ev = _ints(20, 2, 2**32)
    ev_f = _floats(20, 2)
    for datatype, values, bits in (("I", ev, [32, 32]), ("F", ev_f, [32, 32])):
        data = build(Spec(values, ["A", "B"], datatype=datatype, bits=bits, byteord=byteord,
                          ranges=[2**32, 2**32]))
        np.testing.assert_array_equal(read_fcs_bytes(data).events, values)


@pytest.mark.parametrize("bits", [8, 16, 24, 32, 48, 64])
def test_integer_widths(bits):
    hi = min(2**bits, 2**53)
    ev = _ints(40, 3, hi)
    ev[0] = hi - 1  # the largest value of the width
    for byteord in ("1,2,3,4", "4,3,2,1"):
        data = build(Spec(ev, ["A", "B", "C"], datatype="I", bits=[bits] * 3,
                          byteord=byteord, ranges=[2**bits] * 3))
        np.testing.assert_array_equal(read_fcs_bytes(data).events, ev)


def test_variable_integer_widths_match_flowio():
    ev = np.column_stack([_ints(25, 1, 256), _ints(25, 1, 65536), _ints(25, 1, 2**32)])
    data = build(Spec(ev, ["A", "B", "C"], datatype="I", bits=[8, 16, 32],
                      ranges=[256, 65536, 2**32], byteord="4,3,2,1"))
    np.testing.assert_array_equal(read_fcs_bytes(data).events, ev)
    np.testing.assert_array_equal(read_fcs_bytes(data).events, _flowio(data))


def test_fcs32_per_channel_datatypes():
    ev = np.column_stack([_ints(30, 1, 2**24), _floats(30, 1), _floats(30, 1), _ints(30, 1, 256)])
    data = build(Spec(ev, ["Time", "FSC-A", "CD3", "Event"], version="3.2", datatype="I",
                      channel_types=["I", "F", "D", "I"], bits=[24, 32, 64, 8],
                      ranges=[2**24, 262144, 262144, 256]))
    d = read_fcs_bytes(data)
    assert d.version == "FCS3.2"
    assert [c.datatype for c in d.channels] == ["I", "F", "D", "I"]
    np.testing.assert_array_equal(d.events, ev)


def test_ascii_fixed_and_free_width():
    ev = _ints(10, 3, 999)
    fixed = build(Spec(ev, ["A", "B", "C"], datatype="A", bits=[4, 4, 4], ranges=[1000] * 3))
    np.testing.assert_array_equal(read_fcs_bytes(fixed).events, ev)
    free = build(Spec(ev + 0.5, ["A", "B", "C"], datatype="A", bits=["*"] * 3))
    np.testing.assert_array_equal(read_fcs_bytes(free).events, ev + 0.5)


def test_zero_events():
    data = build(Spec(np.zeros((0, 2)), ["A", "B"]))
    d = read_fcs_bytes(data)
    assert d.events.shape == (0, 2)
    assert d.n_events == 0


# ----------------------------------------------------------------- bit masks ($PnR)


def test_pnr_bit_mask_below_at_above():
    """16-bit storage, $PnR 1024: keep the low 10 bits (values 1023 | 1024 | 1025)."""
    stored = np.array([[1023, 1023], [1024, 1024], [1025, 1025], [0xFFFF, 5]], dtype=float)
    data = build(Spec(stored, ["A", "B"], datatype="I", bits=[16, 16], ranges=[1024, 65536]))
    d = read_fcs_bytes(data)
    np.testing.assert_array_equal(d.events[:, 0], [1023, 0, 1, 1023])
    np.testing.assert_array_equal(d.events[:, 1], stored[:, 1])  # PnR = 2**16: no mask
    np.testing.assert_array_equal(d.events, _flowio(data))


def test_pnr_not_a_power_of_two_masks_to_next_power():
    stored = np.array([[999.0], [1000.0], [1023.0], [1024.0], [3000.0]])
    data = build(Spec(stored, ["A"], datatype="I", bits=[16], ranges=[1000]))
    np.testing.assert_array_equal(read_fcs_bytes(data).events[:, 0], [999, 1000, 1023, 0, 952])
    np.testing.assert_array_equal(read_fcs_bytes(data).events, _flowio(data))


def test_mask_with_variable_widths_matches_flowio():
    stored = np.array([[300.0, 70000.0, 5.0], [255.0, 65535.0, 2.0**31 + 7]])
    data = build(Spec(stored, ["A", "B", "C"], datatype="I", bits=[16, 32, 32],
                      ranges=[256, 65536, 1024]))
    d = read_fcs_bytes(data)
    np.testing.assert_array_equal(d.events, [[44, 4464, 5], [255, 65535, 7]])
    np.testing.assert_array_equal(d.events, _flowio(data))


# ----------------------------------------------------------------- scaling


def test_log_amplification_gain_and_timestep_match_flowio():
    stored = np.array([[0, 512, 1023, 100, 10], [256, 0, 1, 200, 20]], dtype=float)
    spec = Spec(stored, ["FL1-H", "FL2-H", "FL3-H", "FSC-H", "Time"], datatype="I",
                bits=[16] * 5, ranges=[1024] * 5,
                pne=["4,1", "4,0", "3.5,0.5", "0,0", "0,0"],
                png=["1", "1", "1", "2.5", "7"], extra={"$TIMESTEP": "0.01"})
    data = build(spec)
    d = read_fcs_bytes(data)
    ev = d.events
    assert ev[1, 0] == pytest.approx(10 ** (4 * 256 / 1024) * 1)  # 10 ** 1
    assert ev[0, 1] == pytest.approx(10 ** (4 * 512 / 1024))  # f2 = 0 read as 1
    assert ev[0, 2] == pytest.approx(10 ** (3.5 * 1023 / 1024) * 0.5)
    np.testing.assert_allclose(ev[:, 3], stored[:, 3] / 2.5)  # gain divides
    np.testing.assert_allclose(ev[:, 4], stored[:, 4] * 0.01)  # time: step, no gain
    np.testing.assert_array_equal(ev, _flowio(data))
    raw = read_fcs_bytes(data, preprocess=False).events
    np.testing.assert_array_equal(raw, stored)
    np.testing.assert_array_equal(raw, _flowio(data, preprocess=False))
    ch = d.channels
    assert (ch[0].log_decades, ch[0].log_offset) == (4.0, 1.0)
    assert (ch[1].log_decades, ch[1].log_offset) == (4.0, 1.0)
    assert ch[3].gain == 2.5 and ch[4].gain == 7.0  # as written in the file


# ----------------------------------------------------------------- TEXT


@pytest.mark.parametrize("delim", ["/", "|", "\\", "*", "\x0c", ","])
def test_delimiters_and_escaped_delimiters(delim):
    ev = _floats(5, 2)
    spec = Spec(ev, [f"FL1{delim}A", "B"], delimiter=delim,
                pns=[f"CD3{delim}CD4 APC", None],
                extra={"$DATE": "05-Mar-2021", f"NOTE{delim}X": f"a{delim}{delim}b{delim}"})
    d = read_fcs_bytes(build(spec))
    assert d.channels[0].pnn == f"FL1{delim}A"
    assert d.channels[0].pns == f"CD3{delim}CD4 APC"
    assert d.channels[1].pns is None
    assert d.text[f"NOTE{delim}X"] == f"a{delim}{delim}b{delim}"
    assert d.date == dt.date(2021, 3, 5)
    np.testing.assert_array_equal(d.events, ev)


def test_text_keys_upper_case_dollar_kept():
    d = read_fcs_bytes(build(Spec(_floats(3, 1), ["A"], extra={"$cyt": "Aria", "myKey": "v"})))
    assert d.text["$CYT"] == "Aria"
    assert d.text["MYKEY"] == "v"
    assert d.text["$PAR"] == "1"


def test_empty_values_cellquest_style():
    """CellQuest writes empty values as doubled delimiters; read them as empty."""
    ev = _ints(4, 1, 1024)
    data = bytearray(build(Spec(ev, ["A"], datatype="I", version="2.0", ranges=[1024],
                                extra={"EMPTY1": "@", "LAST": "@"})))
    # blank the placeholder values, keeping every offset: "/EMPTY1//LAST//" + 2 pad bytes
    assert b"/EMPTY1/@/LAST/@/" in data
    data = bytes(data).replace(b"/EMPTY1/@/LAST/@/", b"/EMPTY1//LAST//  ")
    d = read_fcs_bytes(data)
    assert d.text["EMPTY1"] == "" and d.text["LAST"] == ""
    np.testing.assert_array_equal(d.events, ev)


def test_supplemental_text():
    ev = _floats(6, 2)
    d = read_fcs_bytes(build(Spec(ev, ["A", "B"], extra={"$CYT": "primary"},
                                  supplemental={"$SPILLOVER": "1,A,1.0", "$CYT": "supp",
                                                "$DATE": "01-JAN-2024"})))
    assert d.text["$SPILLOVER"] == "1,A,1.0"
    assert d.text["$CYT"] == "primary"  # primary TEXT wins
    assert d.date == dt.date(2024, 1, 1)
    np.testing.assert_array_equal(d.events, ev)


def test_header_zero_offsets_use_text():
    ev = _floats(10, 3)
    data = build(Spec(ev, ["A", "B", "C"], header_zero_data=True))
    assert data[26:42] == b"       0       0"
    np.testing.assert_array_equal(read_fcs_bytes(data).events, ev)
    data20 = build(Spec(ev, ["A", "B", "C"], version="2.0", header_zero_data=True))
    np.testing.assert_array_equal(read_fcs_bytes(data20).events, ev)


# ----------------------------------------------------------------- data sets


def test_nextdata_multiple_datasets(tmp_path):
    sets = [Spec(_floats(5 + k, 2), ["A", f"B{k}"]) for k in range(3)]
    data = build_multi(sets)
    path = tmp_path / "multi.fcs"
    path.write_bytes(data)
    for k in range(3):
        d = read_fcs(path, dataset=k)
        assert (d.dataset_index, d.n_datasets) == (k, 3)
        assert d.channels[1].pnn == f"B{k}"
        np.testing.assert_array_equal(d.events, sets[k].events)
    assert read_fcs(path).dataset_index == 0  # default: the first
    ref = flowio.read_multiple_data_sets(str(path))
    assert len(ref) == 3
    for k in range(3):
        np.testing.assert_array_equal(read_fcs(path, dataset=k).events, ref[k].as_array())
    with pytest.raises(FCSError, match="3 data set") as exc:
        read_fcs(path, dataset=3)
    assert exc.value.field == "dataset"


def test_single_dataset_reports_one():
    d = read_fcs_bytes(build(Spec(_floats(2, 1), ["A"])))
    assert (d.dataset_index, d.n_datasets) == (0, 1)


# ----------------------------------------------------------------- FCSData API


def test_channel_metadata_and_lookup(tmp_path):
    ev = _ints(3, 3, 1024)
    path = tmp_path / "m.fcs"
    path.write_bytes(build(Spec(ev, ["FSC-A", "CD3-A", "Time"], datatype="I",
                                ranges=[1024, 1024, 1024], pns=[None, "CD3 APC-H7", None],
                                png=["1", "2", "1"], pne=["0,0", "0,0", "0,0"])))
    d = read_fcs(path)
    assert isinstance(d, FCSData)
    assert d.path == str(path)
    c = d.channels[1]
    assert (c.index, c.pnn, c.pns, c.bits, c.range, c.gain) == (2, "CD3-A", "CD3 APC-H7", 16,
                                                               1024.0, 2.0)
    assert d.channel_index("CD3-A") == 1
    assert d.pnn == ("FSC-A", "CD3-A", "Time")
    with pytest.raises(FCSError, match="no such channel") as exc:
        d.channel_index("CD4-A")
    assert "FSC-A" in str(exc.value) and exc.value.value == "CD4-A"
    assert d.date is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("17-JUL-2007", dt.date(2007, 7, 17)),
        ("5-jan-2020", dt.date(2020, 1, 5)),
        ("23-Aug-02", dt.date(2002, 8, 23)),
        ("18-May-99", dt.date(1999, 5, 18)),
        ("2021-11-30", dt.date(2021, 11, 30)),
        ("01-September-2019", dt.date(2019, 9, 1)),
        ("31-FEB-2020", None),
        ("07/08/2020", None),  # ambiguous day/month order: not guessed
        ("", None),
        (None, None),
    ],
)
def test_dates(raw, expected):
    assert parse_fcs_date(raw) == expected


def test_overflowing_log_amplification_is_refused_naming_the_keyword():
    """Fuzzing found $PnE = 1e308,0 gave infinite events silently."""
    stored = np.array([[0, 512], [256, 1023]], dtype=float)
    spec = Spec(stored, ["FL1-H", "FSC-H"], datatype="I", bits=[16] * 2, ranges=[1024] * 2,
                pne=["1e308,0", "0,0"])
    with pytest.raises(FCSError) as err:
        read_fcs_bytes(build(spec))
    assert err.value.field == "$P1E" and "1e+308" in str(err.value.value)
    # the largest sane amplification still reads
    ok = Spec(stored, ["FL1-H", "FSC-H"], datatype="I", bits=[16] * 2, ranges=[1024] * 2, pne=["5,1", "0,0"])
    assert np.isfinite(read_fcs_bytes(build(ok)).events).all()


def _peak_ratio(data: bytes) -> float:
    import tracemalloc

    tracemalloc.start()
    try:
        read_fcs_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / len(data)


@pytest.mark.parametrize("bits", ["*", 1])
def test_ascii_data_peak_memory_under_20_times_the_input(bits):
    """Reliability finding (docs/reliability.md, 'Memory against the 20x rule'): free-format
    ASCII 200,000 x 3 peaked at 26x its size (a Python object per value). Values are now
    parsed straight into the float64 matrix, whose own size is 4x (free format, one digit
    and a separator per value) or 8x (1-character fields) the text."""
    rng = np.random.default_rng(9)
    ev = rng.integers(0, 10, size=(200_000, 3)).astype(float)
    data = build(Spec(ev, ["A", "B", "C"], datatype="A", bits=[bits] * 3, ranges=[10] * 3))
    np.testing.assert_array_equal(read_fcs_bytes(data).events, ev)
    assert _peak_ratio(data) < 20


def test_free_ascii_separators_and_a_bad_value_named():
    """Commas, tabs and newlines all separate values (runs of them too); a value that is not
    a number is an FCSError naming it."""
    ev = np.array([[1.0, 2.5, -3.0], [4e5, 0.0, 6.25]])
    data = build(Spec(ev, ["A", "B", "C"], datatype="A", bits=["*"] * 3))
    plain = b"1 2.5 -3 400000 0 6.25\n"
    mixed = b"1,2.5\t-3,\n400000,0,6.25"
    assert plain in data and len(mixed) == len(plain)
    np.testing.assert_array_equal(read_fcs_bytes(data.replace(plain, mixed)).events, ev)
    with pytest.raises(FCSError) as exc:
        read_fcs_bytes(data.replace(plain, mixed.replace(b"6.25", b"6.2x")))
    assert exc.value.field == "DATA" and exc.value.value == "6.2x"


def test_keep_float32_is_lossless_and_leaves_timestep_to_the_caller():
    """read_fcs(keep_float32=True) keeps float DATA as float32 (the stored values exactly);
    a $TIMESTEP is left pending rather than rounded; $PnG or $PnE, or integer DATA, give the
    usual float64 events."""
    rng = np.random.default_rng(12)
    ev = rng.normal(1e4, 5e3, size=(500, 3)).astype(np.float32).astype(np.float64)
    ev[:, 2] = np.arange(500)
    data = build(Spec(ev, ["FSC-A", "CD3", "Time"], datatype="F", bits=[32] * 3,
                      extra={"$TIMESTEP": "0.01"}))
    ref = read_fcs_bytes(data)
    kept = read_fcs_bytes(data, keep_float32=True)
    assert ref.events.dtype == np.float64 and kept.events.dtype == np.float32
    assert ref.time_step_pending == 1.0 and kept.time_step_pending == 0.01
    np.testing.assert_array_equal(kept.events[:, :2], ref.events[:, :2])
    np.testing.assert_array_equal(kept.events[:, 2].astype(np.float64) * 0.01, ref.events[:, 2])
    gained = build(Spec(ev, ["FSC-A", "CD3", "Time"], datatype="F", bits=[32] * 3,
                        png=["1", "2.0", "1"]))
    g = read_fcs_bytes(gained, keep_float32=True)
    assert g.events.dtype == np.float64 and g.time_step_pending == 1.0
    np.testing.assert_array_equal(g.events, read_fcs_bytes(gained).events)
    ints = build(Spec(_ints(50, 2, 1000), ["A", "B"], datatype="I", bits=[16, 16]))
    assert read_fcs_bytes(ints, keep_float32=True).events.dtype == np.float64
