"""Marker resolution: stain names, synonyms, overrides, and errors that list the channels."""

from __future__ import annotations

import pytest

from alpsdx.errors import GatingError, InputError
from alpsdx.flow.markers import normalise, parse_overrides, resolve_panel

PNN = ["FSC-A", "FSC-H", "SSC-A", "FL1-A", "FL2-A", "FL3-A", "FL4-A", "FL5-A", "Time"]


def _panel(tcr_label: str, **kw):
    pns = ["", "", "", tcr_label, "CD4 PE", "CD8 PerCP-Cy5.5", "CD3 APC-H7", "CD45R/B220 PE-Cy7", ""]
    return resolve_panel(PNN, pns, **kw)


@pytest.mark.parametrize(
    "label",
    ["TCRαβ", "TCRab", "TCR a/b", "abTCR", "TCR alpha beta", "TCR-αβ FITC", "TCRαβ FITC",
     "tcr A/B", "αβTCR BV421", "TCR alpha/beta"],
)
def test_tcrab_synonyms(label):
    p = _panel(label)
    assert p.markers["TCRab"] == "FL1-A"
    assert p.source["TCRab"] == "PnS"


@pytest.mark.parametrize("label", ["TCRγδ", "TCR g/d", "CD45RA", "CD34"])
def test_not_tcrab(label):
    p = _panel(label)
    assert "TCRab" not in p.markers


def test_panel_markers_and_scatter():
    p = _panel("TCR a/b FITC")
    assert p.markers == {"TCRab": "FL1-A", "CD4": "FL2-A", "CD8": "FL3-A", "CD3": "FL4-A",
                         "B220": "FL5-A"}
    assert p.scatter == {"FSC-A": "FSC-A", "FSC-H": "FSC-H", "SSC-A": "SSC-A", "Time": "Time"}


@pytest.mark.parametrize("label", ["B220", "CD45R", "CD45R/B220", "CD45R B220 PE-Cy7"])
def test_b220_synonyms(label):
    pns = ["", "", "", "TCRab", "CD4", "CD8", "CD3", label, ""]
    assert resolve_panel(PNN, pns).markers["B220"] == "FL5-A"


def test_cd45_is_not_b220():
    pns = ["", "", "", "TCRab", "CD4", "CD8", "CD3", "CD45 V500", ""]
    p = resolve_panel(PNN, pns)
    assert p.markers.get("CD45") == "FL5-A" and "B220" not in p.markers


def test_marker_in_pnn_when_pns_absent():
    pnn = ["FSC-A", "SSC-A", "CD3-A", "CD4-A", "CD8-A"]
    p = resolve_panel(pnn, [None] * 5)
    assert p.markers == {"CD3": "CD3-A", "CD4": "CD4-A", "CD8": "CD8-A"}
    assert p.source["CD3"] == "PnN"


def test_override_by_pnn_and_by_pns_wins():
    pns = ["", "", "", "TCRab", "CD4", "CD8", "CD3", "", ""]
    p = resolve_panel(PNN, pns, ["CD3=FL5-A", "CD8=CD4"])
    assert p.markers["CD3"] == "FL5-A" and p.source["CD3"] == "override"
    assert p.markers["CD8"] == "FL2-A"
    p2 = resolve_panel(PNN, pns, {"tcr a/b": "FL2-A"})
    assert p2.markers["TCRab"] == "FL2-A"
    p3 = resolve_panel(PNN, pns, ["FSC-A=FSC-H"])
    assert p3.scatter["FSC-A"] == "FSC-H"


def test_override_unknown_channel_lists_channels():
    with pytest.raises(GatingError) as exc:
        _panel("TCRab", overrides=["CD3=R780-A"])
    e = exc.value
    assert e.field == "--channel" and e.value == "R780-A"
    assert "FL4-A (CD3 APC-H7)" in e.expected and "FSC-A" in e.expected


@pytest.mark.parametrize("raw", ["CD3", "CD3:R780-A", "=R780-A"])
def test_malformed_override(raw):
    with pytest.raises(InputError) as exc:
        parse_overrides([raw])
    assert exc.value.field == "--channel"


def test_unknown_marker_override():
    with pytest.raises(InputError, match="unknown marker") as exc:
        parse_overrides(["CD99=FL1-A"])
    assert "CD3" in exc.value.expected


def test_missing_marker_lists_channels():
    pns = ["", "", "", "TCRab", "CD4", "", "CD3", "", ""]
    with pytest.raises(GatingError) as exc:
        resolve_panel(PNN, pns)
    e = exc.value
    assert e.value == "CD8"
    assert "FL3-A" in e.expected and "FL2-A (CD4)" in e.expected and "--channel" in e.expected


def test_ambiguous_marker_asks_for_override():
    pns = ["", "", "", "CD3 FITC", "CD4", "CD8", "CD3 APC", "", ""]
    with pytest.raises(GatingError, match="several channels") as exc:
        resolve_panel(PNN, pns)
    assert "FL1-A" in exc.value.value and "FL4-A" in exc.value.value
    assert resolve_panel(PNN, pns, ["CD3=FL4-A"]).markers["CD3"] == "FL4-A"


def test_normalise():
    assert normalise("TCR a/b") == normalise("TCRαβ") == normalise("TCR alpha beta") == "tcrab"
    assert normalise("CD45R/B220") == "cd45rb220"
