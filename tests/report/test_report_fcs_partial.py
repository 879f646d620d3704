"""A stored FCS result without DNT figures (e.g. a tube where gating failed) still renders."""

from __future__ import annotations

from pathlib import Path

from alpsdx.model import load_case
from alpsdx.report import build_html
from alpsdx.store import Registry, make_engine, upgrade

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "case-001-alps-fas-definitive.json"


def test_fcs_result_without_dnt_keys_renders(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    upgrade(engine)
    reg = Registry(engine, tmp_path / "up")
    pid = reg.save_case(load_case(EXAMPLE))
    reg.add_file(pid, "fcs", "failed-tube.fcs", b"not really fcs", result={"events": 120, "qc": ["cd3_gate_not_found"]})
    html = build_html(reg, pid)
    engine.dispose()
    assert "failed-tube.fcs" in html and "120 events" in html
    assert "% of lymphocytes" not in html.split("failed-tube.fcs", 1)[1].split("</div>", 1)[0]
