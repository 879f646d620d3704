"""The real FACSAria file ../shared/data/flowkit/100715.fcs (CD3/CD4/CD8, no TCRab).

The pipeline reports CD3+ CD4- CD8- with the TCRab-absent QC note, and FlowKit applying
the same gates (compensated with the file's own $SPILL) counts the same events. The
figures recorded below are what this version of the automated gating gives; the file has
no clear CD3+ population (the CD3 cut falls on the tail of one broad peak), which the
pipeline says with its no_cd3_valley warning rather than hiding.
"""

from __future__ import annotations

import warnings

import flowkit as fk
import pytest

from alpsdx.flow.gating import to_flowkit
from alpsdx.flow.pipeline import analyse_fcs

pytestmark = pytest.mark.shared

RECORDED = {"events": 65016, "singlets": 63764, "lymphocytes": 53673, "cd3": 33, "dnt": 13}


@pytest.fixture(scope="module")
def real(shared_data):
    path = shared_data / "flowkit" / "100715.fcs"
    return path, analyse_fcs(path)


def test_cd3_cd4_cd8_without_tcrab(real):
    _, r = real
    d = r.to_dict()
    assert d["markers"] == {"CD3": "R780-A", "CD4": "V655-A", "CD8": "V800-A", "CD19": "G710-A"}
    assert d["compensation"] == "SPILL"
    assert d["dnt_definition"].startswith("CD3+ CD4- CD8-")
    assert d["dnt_pct_tcrab"] is None
    codes = [f["code"] for f in d["qc"]]
    assert "tcrab_absent" in codes
    assert "no_cd3_valley" in codes  # no clear CD3+ population in this sample
    assert d["date"] == "2007-07-17"


def test_recorded_figures(real):
    _, r = real
    assert {k: r.counts[k] for k in RECORDED} == RECORDED
    d = r.to_dict()
    assert d["dnt_pct_lymphocytes"] == pytest.approx(100 * 13 / 53673, abs=1e-4)
    assert d["dnt_pct_cd3"] == pytest.approx(100 * 13 / 33, abs=1e-4)
    lo, hi = d["dnt_pct_cd3_ci"]
    assert lo < d["dnt_pct_cd3"] < hi and hi - lo > 20  # 33 CD3+ events: a wide interval


def test_flowkit_same_gates_same_counts(real):
    path, r = real
    gs = to_flowkit(r.gating.gates, r.xf, comp_ref="FCS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gs.gate_sample(fk.Sample(str(path)))
    fk_counts = {g: int(res.get_gate_count(g)) for g, _ in gs.get_gate_ids()}
    assert fk_counts == r.gating.counts
    assert fk_counts["dnt"] == RECORDED["dnt"]
