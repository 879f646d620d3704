"""Gate plots: one PNG per sample, every gating step drawn; plotting never changes a number."""

from __future__ import annotations

import struct

import pytest

from alpsdx.errors import FlowError
from alpsdx.flow.pipeline import analyse_fcs
from alpsdx.flow.plots import plot_dnt
from alpsdx.flow.synthetic import SyntheticSpec, write_synthetic


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("tcrab", [True, False])
def test_png_per_sample(tmp_path, tcrab):
    fcs = tmp_path / "s.fcs"
    write_synthetic(fcs, SyntheticSpec(n_events=20_000, dnt_pct_lymphocytes=5, tcrab=tcrab, seed=2))
    r = analyse_fcs(fcs)
    before = dict(r.counts)
    out = plot_dnt(r, tmp_path / "plots" / "s.png")
    assert out.exists() and out.stat().st_size > 50_000
    w, h = _png_size(out)
    assert w > 1000 and h > 900
    assert r.counts == before


def test_plot_needs_automated_gating(tmp_path):
    fcs = tmp_path / "s.fcs"
    write_synthetic(fcs, SyntheticSpec(n_events=5_000, seed=3))
    r = analyse_fcs(fcs, keep_columns=False)
    with pytest.raises(FlowError) as exc:
        plot_dnt(r, tmp_path / "x.png")
    assert exc.value.field == "--plots"
    assert not (tmp_path / "x.png").exists()
