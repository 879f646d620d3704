"""Automated DNT gating on the project's synthetic FCS files, whose DNT count is known.

Ground truth: TCRab+ CD4- CD8- cells at 0.5, 1.5, 2.5, 5 and 15 % of lymphocytes. The
pipeline must recover each within +-0.25 percentage points and inside its own 95 % CI, and
FlowKit applying the very same gates (exported to FlowKit, compensated with the file's
$SPILLOVER) must count exactly the same events in every gate.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import flowkit as fk
import numpy as np
import pytest

from alpsdx.errors import GatingError
from alpsdx.flow.fcs import read_fcs
from alpsdx.flow.gating import Gate, apply_gates, points_in_polygon, to_flowkit
from alpsdx.flow.pipeline import analyse_fcs
from alpsdx.flow.synthetic import SyntheticSpec, make_sample, write_fcs, write_synthetic

LEVELS = [0.5, 1.5, 2.5, 5.0, 15.0]
N_EVENTS = 40_000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict[float, tuple[Path, object]]:
    d = tmp_path_factory.mktemp("synthetic")
    out = {}
    for i, pct in enumerate(LEVELS):
        p = d / f"dnt_{pct}.fcs"
        truth = write_synthetic(p, SyntheticSpec(n_events=N_EVENTS, dnt_pct_lymphocytes=pct,
                                                 seed=100 + i))
        out[pct] = (p, truth)
    return out


def _flowkit_counts(result, path: Path) -> dict[str, int]:
    gs = to_flowkit(result.gating.gates, result.xf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gs.gate_sample(fk.Sample(str(path)))
    return {g: int(res.get_gate_count(g)) for g, _ in gs.get_gate_ids()}


@pytest.mark.parametrize("pct", LEVELS)
def test_recovers_known_dnt_fraction(synthetic, pct):
    path, truth = synthetic[pct]
    assert truth.dnt_pct_lymphocytes == pytest.approx(pct, abs=0.01)
    r = analyse_fcs(path)
    d = r.to_dict()
    got = d["dnt_pct_lymphocytes"]
    assert abs(got - truth.dnt_pct_lymphocytes) <= 0.25
    lo, hi = d["dnt_pct_lymphocytes_ci"]
    assert lo <= truth.dnt_pct_lymphocytes <= hi
    for key, true in (("dnt_pct_cd3", truth.dnt_pct_cd3), ("dnt_pct_tcrab", truth.dnt_pct_tcrab)):
        lo, hi = d[key + "_ci"]
        assert lo <= true <= hi, (key, d[key], true)
    assert d["dnt_definition"] == "CD3+ TCRab+ CD4- CD8-"
    assert r.tcrab_present and d["qc"] == []
    assert d["counts"]["lymphocytes"] >= 10_000
    # most synthetic DNT are B220+ (80 %), the gate finds them
    assert 70 <= d["b220_pct_dnt"] <= 90


@pytest.mark.parametrize("pct", LEVELS)
def test_flowkit_same_gates_same_counts(synthetic, pct):
    path, _ = synthetic[pct]
    r = analyse_fcs(path)
    assert _flowkit_counts(r, path) == r.gating.counts


def test_gates_reapplied_give_same_masks(synthetic):
    path, _ = synthetic[1.5]
    r = analyse_fcs(path)
    masks = apply_gates(r.gating.gates, r.columns, r.xf)
    for name, m in r.gating.masks.items():
        np.testing.assert_array_equal(masks[name], m)
    again = [Gate.from_dict(g.to_dict()) for g in r.gating.gates]
    assert again == r.gating.gates


def test_without_tcrab_reports_cd3_dn_with_flag(tmp_path):
    p = tmp_path / "no_tcrab.fcs"
    truth = write_synthetic(p, SyntheticSpec(n_events=N_EVENTS, dnt_pct_lymphocytes=1.5,
                                             tcrab=False, seed=5))
    r = analyse_fcs(p)
    d = r.to_dict()
    assert [f["code"] for f in d["qc"]] == ["tcrab_absent"]
    assert d["dnt_pct_tcrab"] is None and "tcrab" not in d["counts"]
    # CD3+ CD4- CD8- includes the gamma-delta T cells: compare with that truth
    true_dn = 100.0 * truth.n_dn_cd3 / truth.n_lymphocytes
    assert abs(d["dnt_pct_lymphocytes"] - true_dn) <= 0.25
    assert "no TCRab" in d["dnt_definition"]
    obs = r.to_observations()
    assert {o.analyte for o in obs} == {"dnt_pct_lymphocytes", "dnt_pct_cd3"}
    assert all(o.tcrab_gated is False for o in obs)


def test_few_lymphocytes_flag(tmp_path):
    p = tmp_path / "small.fcs"
    write_synthetic(p, SyntheticSpec(n_events=12_000, dnt_pct_lymphocytes=2.5, seed=9))
    r = analyse_fcs(p)
    flags = {f.code: f for f in r.flags}
    assert "few_lymphocytes" in flags
    f = flags["few_lymphocytes"]
    assert f.threshold == 10_000 and f.value == r.counts["lymphocytes"] < 10_000


def test_time_gap_flag(tmp_path):
    p = tmp_path / "gap.fcs"
    write_synthetic(p, SyntheticSpec(n_events=20_000, time_gap=True, seed=11))
    codes = [f.code for f in analyse_fcs(p).flags]
    assert "time_gap" in codes
    p2 = tmp_path / "nogap.fcs"
    write_synthetic(p2, SyntheticSpec(n_events=20_000, seed=11))
    assert "time_gap" not in [f.code for f in analyse_fcs(p2).flags]


def test_no_compensation_flag(tmp_path):
    p = tmp_path / "nospill.fcs"
    write_synthetic(p, SyntheticSpec(n_events=20_000, spill=False, seed=12))
    assert "$SPILLOVER" not in read_fcs(p).text
    r = analyse_fcs(p)
    assert r.compensation == "none"
    assert "no_compensation" in [f.code for f in r.flags]


def test_user_matrix_replaces_file_spill(tmp_path, synthetic):
    path, _ = synthetic[5.0]
    d = read_fcs(path)
    from alpsdx.flow.compensation import spillover_from_text

    sp = spillover_from_text(d.text)
    assert sp is not None
    csv = tmp_path / "m.csv"
    csv.write_text(",".join(sp.channels) + "\n"
                   + "\n".join(",".join(repr(float(v)) for v in row) for row in sp.matrix) + "\n")
    r1 = analyse_fcs(path)
    r2 = analyse_fcs(path, spill_csv=csv)
    assert r2.compensation == "user:m.csv"
    assert r2.counts == r1.counts


def test_saturation_flag(tmp_path):
    data, pnn, pns, spill, _ = make_sample(SyntheticSpec(n_events=20_000, seed=13))
    data[:600, pnn.index("SSC-A")] = 262143.0  # 3 % of events off-scale in SSC
    text = {"$SPILLOVER": f"{len(spill)}," + ",".join(n for n, s in zip(pnn, pns, strict=True) if s)
            + "," + ",".join(repr(float(v)) for v in spill.ravel())}
    p = write_fcs(tmp_path / "sat.fcs", data, pnn, pns, text=text)
    flags = [f for f in analyse_fcs(p).flags if f.code == "saturated_events"]
    assert len(flags) == 1 and "SSC-A" in flags[0].message
    assert flags[0].value == pytest.approx(0.03, abs=0.002)


def test_no_cd3_valley_flag(tmp_path):
    p = tmp_path / "x.fcs"
    write_synthetic(p, SyntheticSpec(n_events=20_000, extra_channels=1, seed=14))
    r = analyse_fcs(p, channel_overrides=["CD3=X1-A"])  # an unstained channel as "CD3"
    f = [f for f in r.flags if f.code == "no_cd3_valley"]
    assert f and f[0].severity == "warning"
    assert r.gating.thresholds["CD3"].clear is False


def test_missing_scatter_is_a_gating_error(tmp_path):
    data, pnn, pns, _, _ = make_sample(SyntheticSpec(n_events=5_000, seed=15))
    keep = [i for i, n in enumerate(pnn) if n not in ("SSC-A", "SSC-H")]
    p = write_fcs(tmp_path / "noscatter.fcs", data[:, keep], [pnn[i] for i in keep],
                  [pns[i] for i in keep])
    with pytest.raises(GatingError) as exc:
        analyse_fcs(p)
    assert exc.value.field == "scatter" and "--channel" in exc.value.expected


def test_points_in_polygon():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], dtype=float)
    x = np.array([1, 3, 0.5, 1.999, -0.1])
    y = np.array([1, 1, 1.5, 0.001, 1])
    np.testing.assert_array_equal(points_in_polygon(square, x, y), [True, False, True, True, False])
    # a self-crossing "bow tie": both lobes are inside, the notches between them are not
    bow = np.array([[0, 0], [2, 2], [2, 0], [0, 2]], dtype=float)
    got = points_in_polygon(bow, np.array([1.0, 0.2, 1.8]), np.array([0.5, 1.0, 1.0]))
    assert got.tolist() == [False, True, True]
    # a random simple (star-shaped) polygon against matplotlib's point-in-path test
    from matplotlib.path import Path as MplPath

    rng = np.random.default_rng(3)
    ang = np.sort(rng.uniform(0, 2 * np.pi, 40))
    rad = rng.uniform(0.5, 1.0, 40)
    poly = np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])
    pts = rng.uniform(-1.1, 1.1, size=(20_000, 2))
    ref = MplPath(poly).contains_points(pts)
    np.testing.assert_array_equal(points_in_polygon(poly, pts[:, 0], pts[:, 1]), ref)


def test_gate_ids_are_plain_identifiers():
    with pytest.raises(GatingError, match="identifier"):
        Gate("CD3+", "CD3+", "range", ("A",), ("linear",), None, bounds=((0.0, None),))


@pytest.mark.parametrize("seed", range(6))
def test_grid_accelerated_polygon_equals_flowutils(seed):
    """The grid shortcut never changes an answer, vertices and edge points included."""
    from flowutils.gating import points_in_polygon as fu_pip

    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 80))
    ang = rng.uniform(0, 2 * np.pi, k)
    if seed % 2 == 0:
        ang = np.sort(ang)  # simple star-shaped; odd seeds self-cross
    rad = rng.uniform(0.2, 1.0, k)
    scale = rng.uniform(10, 1e5, 2)
    poly = np.column_stack([rad * np.cos(ang) * scale[0], rad * np.sin(ang) * scale[1]])
    pts = rng.uniform(poly.min(0) * 1.1, poly.max(0) * 1.1, size=(60_000, 2))
    t = rng.uniform(0, 1, k)
    pts[:k] = poly
    pts[k:2 * k] = poly + t[:, None] * (np.roll(poly, -1, axis=0) - poly)
    ours = points_in_polygon(poly, pts[:, 0].copy(), pts[:, 1].copy())
    np.testing.assert_array_equal(ours, np.asarray(fu_pip(poly, pts), dtype=bool))


def test_threshold_from_linear_histogram_equals_logicle_values():
    from alpsdx.flow.gating import (
        Logicle,
        find_threshold,
        logicle_histogram,
        threshold_from_histogram,
    )

    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(30, 60, 30_000), 9000 * 10 ** rng.normal(0, 0.15, 20_000)])
    xf = Logicle()
    a = find_threshold(xf.forward(x), "CD3", max_depth=0.5, tail_fraction=0.02, fallback=0.45)
    h, n = logicle_histogram(x, xf)
    b = threshold_from_histogram(h, n, "CD3", max_depth=0.5, tail_fraction=0.02, fallback=0.45)
    assert a == b
    assert a.method == "valley" and a.clear
    assert xf.inverse1(a.position) < 2000 < 9000  # between the negative and positive peaks


@pytest.mark.parametrize(
    ("scenario", "kw"),
    [
        ("heavy debris", {"debris": 0.45}),
        ("large monocyte cloud", {"mono": 0.30, "lymph": 0.30}),
        ("many doublets", {"doublet_fraction": 0.15}),
        ("lymphopenic", {"lymph": 0.12, "gran": 0.6}),
    ],
)
def test_robust_to_debris_monocytes_doublets(tmp_path, scenario, kw):
    p = tmp_path / "r.fcs"
    truth = write_synthetic(p, SyntheticSpec(n_events=N_EVENTS, dnt_pct_lymphocytes=2.5, seed=7, **kw))
    d = analyse_fcs(p).to_dict()
    assert abs(d["dnt_pct_lymphocytes"] - truth.dnt_pct_lymphocytes) <= 0.25, scenario
    lo, hi = d["dnt_pct_lymphocytes_ci"]
    assert lo <= truth.dnt_pct_lymphocytes <= hi
    # the lymphocyte gate keeps most lymphocytes and (almost) nothing else
    assert 0.9 * truth.n_lymphocytes <= d["counts"]["lymphocytes"] <= 1.01 * truth.n_lymphocytes
    codes = [f["code"] for f in d["qc"]]
    assert ("few_lymphocytes" in codes) == (d["counts"]["lymphocytes"] < 10_000)


def _edge_file(tmp_path, edit):
    data, pnn, pns, spill, _ = make_sample(SyntheticSpec(n_events=20_000, seed=5))
    fl = [i for i, s in enumerate(pns) if s]
    text = {"$SPILLOVER": f"{len(fl)}," + ",".join(pnn[i] for i in fl) + ","
            + ",".join(repr(float(v)) for v in spill.ravel())}
    return write_fcs(tmp_path / "e.fcs", edit(data.copy(), pnn), pnn, pns, text=text)


def _set(col, value, step=1):
    def edit(d, pnn):
        d[::step, pnn.index(col)] = value
        return d
    return edit


@pytest.mark.parametrize(
    ("name", "edit", "outcome"),
    [
        ("NaN in CD3", _set("APC-A", np.nan, 50), "non_finite_values"),
        ("inf in FSC-A", _set("FSC-A", np.inf, 100), "non_finite_values"),
        ("CD3 all zero", _set("APC-A", 0.0), "no_cd3_valley"),
        ("FSC-A all NaN", _set("FSC-A", np.nan), GatingError),
        ("60 events", lambda d, _p: d[:60], GatingError),
        ("no events", lambda d, _p: d[:0], GatingError),
    ],
)
def test_degenerate_data_flags_or_gating_error(tmp_path, name, edit, outcome):
    p = _edge_file(tmp_path, edit)
    if isinstance(outcome, type):
        with pytest.raises(outcome) as exc:
            analyse_fcs(p)
        assert exc.value.field
        return
    r = analyse_fcs(p)
    assert outcome in [f.code for f in r.flags], name


@pytest.mark.parametrize("apex", [0.0, 1.0], ids=["wedge path", "grid path"])
@pytest.mark.parametrize("seed", range(3))
def test_grid_polygon_with_nan_inf_far_points_and_a_gate_past_the_data(seed, apex):
    """The table look-up (outside ring, boundary ring, grid) and the wedge's ratio test give
    flowutils' answers for NaN, infinite, far-away and grid-edge points, and for a gate
    drawn far past the data."""
    from flowutils.gating import points_in_polygon as fu_pip

    rng = np.random.default_rng(100 + seed)
    # a wedge from the origin reaching 4x past the data (as the singlet gate is drawn); with
    # its apex moved off the origin it is an ordinary triangle (the grid path)
    poly = np.array([[apex, 0.0], [4e5, 0.8 * 4e5], [4e5, 1.2 * 4e5]])
    x = rng.uniform(-1e3, 1e5, 50_000)
    y = x * rng.normal(1.0, 0.15, x.size)
    x[:3] = [np.nan, 5e4, -1e9]
    y[:3] = [5e4, np.nan, -1e9]
    x[3:6] = x.max()  # points on the grid's far edge
    pts = np.column_stack([x, y])
    ref = np.zeros(x.size, dtype=bool)
    ok = np.isfinite(x) & np.isfinite(y)
    ref[ok] = np.asarray(fu_pip(poly, pts[ok]), dtype=bool)
    np.testing.assert_array_equal(points_in_polygon(poly, x, y), ref)
    x2 = x.copy()
    x2[7] = np.inf  # an infinite value takes the bounding-box path, same answers
    ref[7] = False
    np.testing.assert_array_equal(points_in_polygon(poly, x2, y), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ratio", [1.0 + 1e-9, 1.5, 30.0, 1e6])
@pytest.mark.parametrize("seed", range(3))
def test_wedge_ratio_test_equals_flowutils_on_its_edges(seed, ratio, dtype):
    """The singlet wedge (0, 0), (X, yl), (X, yh) takes the ratio test with margins: every
    point gets flowutils' winding-number answer, points on (and one float step either side
    of) both slanted edges, on the vertical edge, at the vertices, by the origin, and thin
    to very wide wedges included."""
    from flowutils.gating import points_in_polygon as fu_pip

    from alpsdx.flow.gating import _is_wedge

    rng = np.random.default_rng(300 + seed)
    big_x = float(rng.uniform(1e3, 1e7))
    yl = float(rng.uniform(0.1, 2.0)) * big_x
    poly = np.array([[0.0, 0.0], [big_x, yl], [big_x, yl * ratio]])
    assert _is_wedge(poly)
    lo, hi = poly[1, 1] / big_x, poly[2, 1] / big_x
    x = rng.uniform(0, big_x, 30_000)
    x[:2000] = rng.uniform(0, 1e-5 * big_x, 2000)  # by the origin, where products cancel
    x[2000:2100] = big_x  # on the vertical edge
    y = x * rng.uniform(lo * 0.9, hi * 1.1, x.size)
    on_lo, on_hi = slice(2100, 6100), slice(6100, 10100)
    y[on_lo] = x[on_lo] * lo  # on the slanted edges, and one step either side
    y[on_hi] = x[on_hi] * hi
    y[2100:3100] = np.nextafter(y[2100:3100], np.inf)
    y[6100:7100] = np.nextafter(y[6100:7100], -np.inf)
    y[7100:8100] = np.nextafter(y[7100:8100], np.inf)
    x[10100:10103], y[10100:10103] = poly[:, 0], poly[:, 1]  # the vertices
    x[10103:10106], y[10103:10106] = [-1.0, 0.0, big_x * 2], [1.0, 5.0, yl]
    # very near the origin and just past the ratio margin, where flowutils' products cancel
    tiny = big_x * 10.0 ** rng.uniform(-13, -5, 8000)
    k = rng.uniform(1.5, 20, 8000) * 1e-8 * rng.choice([-1, 1], 8000)
    x[12000:20000] = tiny
    y[12000:16000] = tiny[:4000] * hi * (1 + k[:4000])
    y[16000:20000] = tiny[4000:] * lo * (1 + k[4000:])
    x, y = x.astype(dtype), y.astype(dtype)
    ref = np.asarray(fu_pip(poly, np.column_stack([x, y]).astype(np.float64)), dtype=bool)
    np.testing.assert_array_equal(points_in_polygon(poly, x, y), ref)


@pytest.mark.parametrize("seed", range(4))
def test_histogram_uniform_equals_numpy(seed):
    """The singlet gate's FSC-H/FSC-A histogram gives np.histogram's counts and edges
    exactly: values on every edge, on the range ends, one step past them, NaN and
    infinities included; a degenerate range falls back to numpy."""
    from alpsdx.flow.gating import histogram_uniform

    rng = np.random.default_rng(40 + seed)
    r = rng.normal(0.62, 0.05, 40_000)
    lo, hi = float(np.quantile(r, 0.005)), float(np.quantile(r, 0.995))
    r[:257] = np.linspace(lo, hi, 257)
    r[300:306] = [np.nextafter(hi, np.inf), np.nextafter(lo, -np.inf), np.nextafter(hi, -np.inf),
                  np.nan, np.inf, -np.inf]
    for rng_ in ((lo, hi), (0.5, 0.5)):
        ref = np.histogram(r, bins=256, range=rng_)
        got = histogram_uniform(r, 256, rng_)
        for a, b in zip(ref, got, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(4))
def test_histogram2d_uniform_equals_numpy(seed):
    """The lymphocyte gate's 2-D histogram gives np.histogram2d's counts and edges exactly,
    values on every bin edge, on the range ends, just past them and NaN included."""
    from alpsdx.flow.gating import histogram2d_uniform

    rng = np.random.default_rng(seed)
    x = rng.normal(5e4, 3e4, 30_000)
    y = rng.gamma(2.0, 1e4, 30_000)
    x0, x1 = min(float(np.quantile(x, 0.001)), 0.0), float(np.quantile(x, 0.995)) * 1.05
    y0, y1 = min(float(np.quantile(y, 0.001)), 0.0), float(np.quantile(y, 0.995)) * 1.05
    x[:257] = np.linspace(x0, x1, 257)
    y[300:557] = np.linspace(y0, y1, 257)
    x[600:603] = [np.nextafter(x1, np.inf), np.nextafter(x0, -np.inf), np.nan]
    y[603:606] = [np.nextafter(y1, np.inf), y1, np.nan]
    ref = np.histogram2d(x, y, bins=256, range=((x0, x1), (y0, y1)))
    got = histogram2d_uniform(x, y, 256, ((x0, x1), (y0, y1)))
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a, b)
    # a degenerate range falls back to numpy (same answer, same error)
    ref = np.histogram2d(x[:10], y[:10], bins=4, range=((1.0, 1.0), (0.0, 1.0)))
    got = histogram2d_uniform(x[:10], y[:10], 4, ((1.0, 1.0), (0.0, 1.0)))
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fill_holes_equals_scipy():
    from scipy import ndimage

    from alpsdx.flow.gating import _fill_holes

    rng = np.random.default_rng(11)
    for _ in range(40):
        r = ndimage.gaussian_filter(rng.random((48, 48)), rng.uniform(0.5, 3.0)) > rng.uniform(0.45, 0.55)
        np.testing.assert_array_equal(_fill_holes(r), ndimage.binary_fill_holes(r))
    for r in (np.zeros((6, 6), dtype=bool), np.ones((6, 6), dtype=bool)):
        np.testing.assert_array_equal(_fill_holes(r), ndimage.binary_fill_holes(r))


def test_finite_max_equals_the_masked_maximum():
    from alpsdx.flow.gating import _finite_max

    rng = np.random.default_rng(5)
    cases = [rng.normal(5e4, 2e4, 1000), np.array([np.nan, 3.0, 7.0]), np.array([np.inf, 5.0, 2.0]),
             np.array([-np.inf, 0.5]), np.array([np.nan, np.nan]), np.array([]),
             np.array([-5.0, -1.0]), np.array([-np.inf, 9.0, np.nan])]
    for v in cases:
        assert _finite_max(v, 1.0) == max(float(np.max(v, initial=1.0, where=np.isfinite(v))), 1.0)


@pytest.mark.parametrize("seed", range(4))
def test_tail_quantiles_equal_numpy_bit_for_bit(seed):
    """The scatter gates' tail quantiles (a few values partitioned instead of all) are
    np.quantile's values exactly: ties, sorted input, heavy tails, infinities, central and
    extreme quantiles (which take numpy's own path) included."""
    from alpsdx.flow.gating import _quantiles

    rng = np.random.default_rng(seed)
    for i in range(40):
        n = int(rng.integers(3000, 60_000))
        v = [rng.normal(5e4, 2e4, n), rng.integers(0, 30, n).astype(float),
             np.exp(rng.normal(0, 3, n)), np.sort(rng.normal(size=n))][i % 4]
        if i % 7 == 0:
            v[rng.integers(0, n, 3)] = np.inf
        for qs in ([0.001, 0.995, 0.99], [0.005, 0.995], [0.0, 1.0], [0.05, 0.95], [0.5]):
            with np.errstate(invalid="ignore"):
                np.testing.assert_array_equal(_quantiles(v, qs), np.quantile(v, qs))
    v = rng.normal(size=10_000)
    v[5] = np.nan
    np.testing.assert_array_equal(_quantiles(v, [0.001, 0.999]), np.quantile(v, [0.001, 0.999]))


def test_cell_labels_are_exact_for_cells_away_from_edges():
    """Every cell the grid calls inside or outside has all its points on that side
    (checked on a dense lattice of points in each cell against flowutils)."""
    from flowutils.gating import points_in_polygon as fu_pip

    from alpsdx.flow.gating import _cell_labels

    rng = np.random.default_rng(21)
    for k in (3, 12, 60):
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(0.3, 1.0, k)
        poly = np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])
        g = 64
        cell = _cell_labels(poly, -1.0, -1.0, g / 2.0, g / 2.0, g)
        assert (cell == -1).any() and (cell == 1).any() and (cell == 0).any()
        off = (np.arange(5) + 0.5) / 5
        ii, jj, a, b = np.meshgrid(np.arange(g), np.arange(g), off, off, indexing="ij")
        pts = np.column_stack([-1.0 + (ii + a).ravel() * 2.0 / g, -1.0 + (jj + b).ravel() * 2.0 / g])
        inside = np.asarray(fu_pip(poly, pts), dtype=bool).reshape(g, g, 25)
        sure = cell != -1
        assert (inside[sure] == (cell[sure] == 1)[:, None]).all()


def test_float32_read_gives_the_float64_results(synthetic):
    """analyse_fcs keeps float DATA as float32 (lossless) and computes in float64: gates,
    thresholds, QC flags and every mask equal those from the float64 events of read_fcs."""
    from alpsdx.flow.pipeline import analyse_data

    path, _ = synthetic[2.5]
    fast = analyse_fcs(path)
    assert fast.columns[next(iter(fast.columns))].dtype in (np.float32, np.float64)
    ref = analyse_data(read_fcs(path))
    assert read_fcs(path, keep_float32=True).events.dtype == np.float32
    a, b = fast.to_dict(), ref.to_dict()
    assert a == b
    for name, m in ref.gating.masks.items():
        np.testing.assert_array_equal(fast.gating.masks[name], m)
    time = next(c for c in fast.columns if c.lower() == "time")
    np.testing.assert_array_equal(fast.columns[time], ref.columns[time])


@pytest.mark.parametrize(("T", "W", "M", "A"), [(262144.0, 0.5, 4.5, 0.0), (10000.0, 1.0, 4.0, 0.5),
                                                 (1024.0, 0.3, 3.0, 0.2)])
def test_logicle_histogram_table_equals_numpy_histogram(T, W, M, A):
    """The look-up histogram equals np.histogram over the inverse-transformed edges of the
    clipped finite values: values on, just beside and rounded to every edge, zeros, values
    past float32's range, NaN and infinities included."""
    from alpsdx.flow.gating import (
        _T_BINS,
        _T_HI,
        _T_LO,
        Logicle,
        _logicle_bin_table,
        logicle_histogram,
    )

    xf = Logicle(T, W, M, A)
    assert _logicle_bin_table(T, W, M, A) is not None  # the fast path is the one tested
    edges = xf.inverse(np.linspace(_T_LO, _T_HI, _T_BINS + 1))
    rng = np.random.default_rng(int(T))
    x = np.concatenate([
        rng.normal(50, 300, 20_000), np.exp(rng.normal(6, 2.5, 20_000)), -np.exp(rng.normal(2, 2, 5000)),
        edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf),
        edges.astype(np.float32).astype(np.float64),
        [0.0, -0.0, 1e39, -1e39, 1e300, -1e300, 5e-324, np.nan, np.inf, -np.inf],
    ])
    finite = x[np.isfinite(x)]
    ref, _ = np.histogram(np.clip(finite, edges[0], edges[-1]), bins=edges)
    h, n = logicle_histogram(x, xf)
    np.testing.assert_array_equal(h, ref)
    assert n == finite.size


@pytest.mark.parametrize(
    "edit",
    [_set("APC-A", np.nan, 50), _set("FITC-A", np.inf, 70), _set("FSC-A", np.inf, 100),
     _set("APC-A", 0.0), _set("PE-A", 3.0e38, 40), lambda d, _p: d],
    ids=["NaN in CD3", "inf in TCRab", "inf in FSC-A", "CD3 all zero", "huge PE", "clean"],
)
def test_markers_compensated_among_lymphocytes_only_give_the_same_results(tmp_path, edit):
    """Without plotting columns the gated markers are compensated among lymphocytes only:
    gates, thresholds, QC flags (the non-finite count over every event included) and every
    mask equal those from fully compensated columns."""
    p = _edge_file(tmp_path, edit)
    lean = analyse_fcs(p, keep_columns=False)
    full = analyse_fcs(p, keep_columns=True)
    assert not lean.columns and full.columns
    assert lean.to_dict() == full.to_dict()
    assert lean.gating.masks.keys() == full.gating.masks.keys()
    for name, m in full.gating.masks.items():
        np.testing.assert_array_equal(lean.gating.masks[name], m)


def test_compensated_at_events_equals_compensated_columns():
    from alpsdx.flow.compensation import SpillMatrix
    from alpsdx.flow.pipeline import CompensatedAt, compensated_columns
    from alpsdx.flow.synthetic import default_spill

    rng = np.random.default_rng(8)
    pnn = ["FSC-A", *(f"D{i}" for i in range(7)), "Time"]
    events = np.asfortranarray(rng.normal(1e3, 5e3, size=(30_000, len(pnn))).astype(np.float32))
    spill = SpillMatrix(tuple(pnn[1:8]), default_spill())
    full = compensated_columns(events, pnn, spill, ["D0", "D3", "D6"])
    at = CompensatedAt(events, pnn, spill, ["D0", "D3", "D6"])
    idx = np.sort(rng.choice(events.shape[0], 7000, replace=False))
    got = at(idx)
    for c in ("D0", "D3", "D6"):
        assert full[c].dtype == got[c].dtype == np.float64
        np.testing.assert_array_equal(got[c], full[c][idx])
        assert at.n_non_finite(c) == 0
    events[5, 4] = np.nan  # D3's own detector
    assert CompensatedAt(events, pnn, spill, ["D3"]).n_non_finite("D3") == 1


@pytest.mark.parametrize("offset", [0.0, 1e6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_polygon_float32_columns_and_far_offsets_equal_flowutils(offset, dtype):
    """float32 event columns (as analyse_fcs keeps them) and a small gate far from the
    origin (the table index then computed in float64) give flowutils' answers, points on
    the vertices and edges included."""
    from flowutils.gating import points_in_polygon as fu_pip

    rng = np.random.default_rng(31)
    k = 24
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    rad = rng.uniform(0.4, 1.0, k) * 10.0
    poly = np.column_stack([offset + rad * np.cos(ang), offset + rad * np.sin(ang)])
    poly = poly.astype(dtype).astype(np.float64)  # vertices representable in the columns' type
    pts = rng.uniform(poly.min(0) - 3, poly.max(0) + 3, size=(50_000, 2)).astype(dtype)
    t = rng.uniform(0, 1, k)
    pts[:k] = poly
    pts[k:2 * k] = poly + t[:, None] * (np.roll(poly, -1, axis=0) - poly)
    ref = np.asarray(fu_pip(poly, pts.astype(np.float64)), dtype=bool)
    np.testing.assert_array_equal(points_in_polygon(poly, pts[:, 0].copy(), pts[:, 1].copy()), ref)


def test_largest_time_gap_in_chunks_equals_argmax_of_diff():
    from alpsdx.flow.qc import _largest_gap

    rng = np.random.default_rng(13)
    for n in (2, 3, 100, 65_537, 65_538, 200_001):
        for kind in range(4):
            t = np.cumsum(rng.exponential(1.0, n))
            if kind == 1:
                t[n // 2:] += 1e3  # one long stop
            elif kind == 2:
                t = np.round(t)  # tied gaps: the first one wins
            elif kind == 3 and n > 2:
                t[n // 3] = t[n // 3 - 1]
            d = np.diff(t)
            i = int(np.argmax(d))
            assert _largest_gap(t) == (i, float(d[i]))
    assert _largest_gap(np.array([0.0, 2.0, 1.0, 3.0]))[0] == -1  # not sorted


def test_event_masks_spread_compact_masks_when_read_and_count_without_them():
    """EventMasks: a gate known among some events is counted from its compact mask and
    spread over every event when read; the mapping keeps the gates' order; a full mask set
    later replaces a compact one."""
    from alpsdx.flow.gating import EventMasks

    rng = np.random.default_rng(5)
    n = 1000
    idx = np.sort(rng.choice(n, 300, replace=False))
    sub = rng.random(300) < 0.4
    full = rng.random(n) < 0.5
    m = EventMasks(n)
    m["singlets"] = full
    m.set_among("cd3_pos", idx, sub)
    assert list(m) == ["singlets", "cd3_pos"] and len(m) == 2
    assert m.count("cd3_pos") == int(sub.sum()) and m.count("singlets") == int(full.sum())
    spread = np.zeros(n, dtype=bool)
    spread[idx[sub]] = True
    np.testing.assert_array_equal(m["cd3_pos"], spread)
    assert m["cd3_pos"] is m["cd3_pos"]  # spread once
    assert dict(m.items()).keys() == {"singlets", "cd3_pos"}
    m["cd3_pos"] = full
    assert m.count("cd3_pos") == int(full.sum())
    del m["singlets"]
    assert list(m) == ["cd3_pos"]
    with pytest.raises(KeyError):
        m["singlets"]


def test_counts_from_compact_masks_equal_the_spread_masks(synthetic):
    """GatingResult.counts (from the compact marker masks) equal the counts of the masks
    spread over every event."""
    p, _truth = synthetic[2.5]
    res = analyse_fcs(p, keep_columns=False)
    counts = res.gating.counts
    assert counts == {k: int(np.count_nonzero(v)) for k, v in res.gating.masks.items()}
    assert set(counts) >= {"singlets", "lymphocytes", "cd3_pos", "tcrab_pos", "dnt"}
