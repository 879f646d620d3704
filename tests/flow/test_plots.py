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


def test_user_gate_chain_png(tmp_path):
    from alpsdx.flow.gatingml import export_gatingml, gate_steps, load_gates
    from alpsdx.flow.plots import plot_gate_steps

    fcs = tmp_path / "s.fcs"
    write_synthetic(fcs, SyntheticSpec(n_events=20_000, dnt_pct_lymphocytes=5, seed=4))
    auto = analyse_fcs(fcs)
    xml = tmp_path / "g.xml"
    export_gatingml(auto.gating.gates, auto.xf, xml)
    steps = gate_steps(load_gates(xml), fcs, "dnt")
    assert [s.gate for s in steps] == ["singlets", "lymphocytes", "cd3_pos", "tcrab_pos", "dnt"]
    assert [s.count for s in steps] == [auto.counts[k] for k in
                                        ("singlets", "lymphocytes", "cd3", "tcrab", "dnt")]
    assert steps[0].kind == "PolygonGate" and steps[0].vertices is not None
    dnt = steps[-1]
    assert dnt.kind == "RectangleGate" and dnt.dims == list(auto.gating.gates[4].channels)
    assert dnt.values is not None and dnt.in_gate is not None
    assert int(dnt.in_gate.sum()) == dnt.count  # every parent event drawn (20k < limit)
    user = analyse_fcs(fcs, gates=xml, dnt_gate="dnt")
    out = plot_gate_steps(steps, user.to_dict(), tmp_path / "u.png")
    w, h = _png_size(out)
    assert w > 1000 and h > 700


def test_workspace_gate_steps(shared_data, tmp_path):
    from alpsdx.flow.gatingml import gate_steps, load_gates
    from alpsdx.flow.plots import plot_gate_steps

    d = shared_data / "flowkit" / "simple_diamond_example"
    steps = gate_steps(load_gates(d / "simple_diamond_example_quad_gate.wsp"),
                       d / "test_data_diamond_01.fcs", "Q2: channel_A+ , channel_B+")
    assert len(steps) == 1 and steps[0].parent_count == 200_000
    assert steps[0].dims == ["channel_A", "channel_B"]
    assert plot_gate_steps(steps, {"file": "x.fcs", "events": 200_000, "qc": []},
                           tmp_path / "q.png").exists()
