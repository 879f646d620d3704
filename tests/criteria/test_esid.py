"""ESID Registry working definition for ALPS (clinical diagnosis), at each published boundary.

Part A (>= 1): splenomegaly; lymphadenopathy > 3 nodes, > 3 months, non-infectious,
non-malignant; autoimmune cytopenia >= 2 lineages; history of lymphoma; affected family member.
Part B (>= 1): TCRab+ DNT > 6 % of TCRab+ T cells; >= 2 of sFASL > 200 pg/mL, B12 > 1500 ng/L,
IL-10 > 20 pg/mL; impaired FAS-mediated apoptosis (placement: site setting).
"""

from __future__ import annotations

from typing import Any

import pytest
from criteria_cases import case

from alpsdx.criteria import Category, Settings, Status, evaluate
from alpsdx.model import Case

NOTHING_A = {"splenomegaly": {"present": False}, "lymphadenopathy": {"present": False},
             "autoimmune_cytopenias": [], "lymphoma": False, "family_history_lymphoproliferation": False}
SPLEEN = {**NOTHING_A, "splenomegaly": {"present": True}}
NODES_4 = [{"kind": "node_size", "site": s, "value": 2.0, "unit": "cm", "date": "2025-01-10"}
           for s in ("cervical", "axillary", "inguinal", "mediastinal")]


def status(c: Case, rule: str, settings: Settings | None = None) -> Status:
    return evaluate(c, "esid", settings=settings).status_of(rule)


def obs(analyte: str, value: float, unit: str = "%") -> dict[str, Any]:
    return {"analyte": analyte, "value": value, "unit": unit, "date": "2025-02-01"}


# --- part B -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [(5.99, Status.not_met), (6.0, Status.not_met), (6.01, Status.met)])
def test_dnt_more_than_six_percent_of_tcrab_t_cells(value: float, expected: Status) -> None:
    assert status(case(observations=[obs("dnt_pct_tcrab", value)]), "part_b.dnt") is expected


def test_dnt_of_cd3_above_six_settles_the_tcrab_criterion() -> None:
    # TCRab+ T cells are a subset of CD3+ T cells: the same DNT are a larger share of them.
    assert status(case(observations=[obs("dnt_pct_cd3", 6.5)]), "part_b.dnt") is Status.met
    assert status(case(observations=[obs("dnt_pct_cd3", 6.0)]), "part_b.dnt") is Status.unknown


CUTS = {"sfasl": (200, "pg/mL"), "vitamin_b12": (1500, "ng/L"), "il10": (20, "pg/mL")}


@pytest.mark.parametrize("analyte", list(CUTS))
@pytest.mark.parametrize(("delta", "expected"), [(-0.01, Status.not_met), (0.0, Status.not_met), (0.01, Status.met)])
def test_each_biomarker_boundary_with_one_other_elevated(analyte: str, delta: float, expected: Status) -> None:
    # Exactly one other marker elevated and the third normal: the tested one decides "at least 2".
    others = [a for a in CUTS if a != analyte]
    cut, unit = CUTS[analyte]
    o = [obs(analyte, cut + delta, unit),
         obs(others[0], CUTS[others[0]][0] * 2, CUTS[others[0]][1]),
         obs(others[1], 0.0, CUTS[others[1]][1])]
    assert status(case(observations=o), "part_b.biomarkers") is expected


def test_one_elevated_biomarker_is_not_enough() -> None:
    one = case(observations=[obs("sfasl", 900, "pg/mL"), obs("vitamin_b12", 300, "ng/L"), obs("il10", 5, "pg/mL")])
    assert status(one, "part_b.biomarkers") is Status.not_met
    open_ = case(observations=[obs("sfasl", 900, "pg/mL")])
    assert status(open_, "part_b.biomarkers") is Status.unknown


def test_apoptosis_placement_setting() -> None:
    c = case(apoptosis_assays=[{"result": "defective"}],
             observations=[obs("sfasl", 100, "pg/mL"), obs("vitamin_b12", 300, "ng/L"), obs("il10", 5, "pg/mL")])
    assert status(c, "part_b.apoptosis") is Status.met  # default: its own alternative
    as_marker = Settings(esid_apoptosis_placement="biomarker")
    assert status(c, "part_b.apoptosis", as_marker) is Status.not_met  # needs one elevated marker too
    with_marker = case(apoptosis_assays=[{"result": "defective"}], observations=[obs("il10", 21, "pg/mL")])
    assert status(with_marker, "part_b.apoptosis", as_marker) is Status.met
    th = next(r.threshold for r in evaluate(c, "esid", settings=as_marker).criteria if r.id == "part_b.apoptosis")
    assert "site setting esid_apoptosis_placement = biomarker" in th
    assert status(case(apoptosis_assays=[{"result": "normal"}]), "part_b.apoptosis") is Status.not_met


# --- part A -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("months", "expected"), [(2.9, Status.not_met), (3, Status.not_met), (3.1, Status.met)])
def test_lymphadenopathy_more_than_three_months(months: float, expected: Status) -> None:
    nodes = {"present": True, "duration_months": months, "malignancy_excluded": True, "infection_excluded": True}
    c = case(findings={**NOTHING_A, "lymphadenopathy": nodes}, clinical_events=NODES_4)
    assert status(c, "part_a.lymphadenopathy") is expected


def test_lymphadenopathy_more_than_three_nodes_and_exclusions() -> None:
    nodes = {"present": True, "duration_months": 12, "malignancy_excluded": True, "infection_excluded": True}
    three = case(findings={**NOTHING_A, "lymphadenopathy": nodes}, clinical_events=NODES_4[:3])
    assert status(three, "part_a.lymphadenopathy") is Status.unknown  # > 3 nodes not documented
    infection = {**nodes, "infection_excluded": False}
    c = case(findings={**NOTHING_A, "lymphadenopathy": infection}, clinical_events=NODES_4)
    assert status(c, "part_a.lymphadenopathy") is Status.unknown


@pytest.mark.parametrize(("lineages", "expected"), [
    ([], Status.not_met), (["thrombocytopenia"], Status.not_met),
    (["thrombocytopenia", "hemolytic_anemia"], Status.met),
])
def test_autoimmune_cytopenia_of_two_lineages(lineages: list[str], expected: Status) -> None:
    c = case(findings={**NOTHING_A, "autoimmune_cytopenias": lineages})
    assert status(c, "part_a.autoimmune_cytopenia") is expected


def test_flags() -> None:
    assert status(case(findings={**NOTHING_A, "lymphoma": True}), "part_a.lymphoma") is Status.met
    fam = case(findings={**NOTHING_A, "family_history_lymphoproliferation": True})
    assert status(fam, "part_a.family_member") is Status.met
    assert status(case(findings={}), "part_a.lymphoma") is Status.unknown


# --- categories ---------------------------------------------------------------------------------

def test_part_a_and_part_b_is_probable() -> None:
    c = case(findings=SPLEEN, observations=[obs("dnt_pct_tcrab", 8.0)])
    ev = evaluate(c, "esid")
    assert ev.category is Category.probable
    assert ev.next_tests == ()


def test_no_part_a_feature_is_not_met() -> None:
    c = case(findings=NOTHING_A, observations=[obs("dnt_pct_tcrab", 8.0)])
    assert evaluate(c, "esid").category is Category.not_met


def test_no_part_b_finding_is_not_met() -> None:
    c = case(findings=SPLEEN, apoptosis_assays=[{"result": "normal"}],
             observations=[obs("dnt_pct_tcrab", 2.0), obs("sfasl", 900, "pg/mL"),
                           obs("vitamin_b12", 300, "ng/L"), obs("il10", 5, "pg/mL")])
    assert evaluate(c, "esid").category is Category.not_met


def test_open_part_b_is_indeterminate_and_names_the_tests() -> None:
    c = case(findings=SPLEEN)
    ev = evaluate(c, "esid")
    assert ev.category is Category.indeterminate
    assert {t.criterion for t in ev.next_tests} == {"part_b.dnt", "part_b.biomarkers", "part_b.apoptosis"}
    assert [t.cost for t in ev.next_tests] == sorted(t.cost for t in ev.next_tests)
