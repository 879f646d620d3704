"""Original NIH criteria (1999; Bleesing et al. 2000) as printed in Br J Haematol 2009;148:205 Table I(a).

The table states no DNT cut-off and no length for "chronic": those are site settings
(settings.yaml nih1999_*), tested here at their default values and when a site changes them.
"""

from __future__ import annotations

import pytest
from criteria_cases import BASE, case

from alpsdx.criteria import Category, Settings, Status, evaluate
from alpsdx.model import Case

DEFECTIVE = [{"result": "defective", "date": "2025-01-15"}]


def status(c: Case, rule: str, settings: Settings | None = None) -> Status:
    return evaluate(c, "nih1999", settings=settings).status_of(rule)


def threshold(c: Case, rule: str, settings: Settings | None = None) -> str:
    ev = evaluate(c, "nih1999", settings=settings)
    return next(r.threshold for r in ev.criteria if r.id == rule)


def dnt_case(analyte: str, value: float, **kw: object) -> Case:
    """One DNT percentage; the other denominator measured far below its cut-off."""
    other = {"dnt_pct_lymphocytes": ("dnt_pct_cd3", 0.1), "dnt_pct_cd3": ("dnt_pct_lymphocytes", 0.1)}[analyte]
    return case(observations=[{"analyte": analyte, "value": value, "unit": "%", "date": "2025-02-01", **kw},
                              {"analyte": other[0], "value": other[1], "unit": "%", "date": "2025-02-01", **kw}])


def test_one_denominator_below_leaves_the_other_open() -> None:
    # "% of lymphocytes OR % of CD3+": a low % of lymphocytes does not settle the % of CD3+ ...
    only = case(observations=[{"analyte": "dnt_pct_lymphocytes", "value": 0.5, "unit": "%"}])
    assert status(only, "required.dnt") is Status.unknown
    both = case(observations=[{"analyte": "dnt_pct_lymphocytes", "value": 0.5, "unit": "%"},
                              {"analyte": "dnt_pct_cd3", "value": 2.4, "unit": "%"}])
    assert status(both, "required.dnt") is Status.not_met


# --- required.dnt: site-setting cut-offs (default >= 1 % of lymphocytes, >= 2.5 % of CD3+) -----------

@pytest.mark.parametrize(
    ("value", "comparator", "expected"),
    [(0.99, ">=", Status.not_met), (1.0, ">=", Status.met), (1.01, ">=", Status.met),
     (1.0, ">", Status.not_met), (1.01, ">", Status.met)],
)
def test_dnt_pct_lymphocytes_boundary(value: float, comparator: str, expected: Status) -> None:
    s = Settings(nih1999_dnt_comparator=comparator)
    assert status(dnt_case("dnt_pct_lymphocytes", value), "required.dnt", s) is expected


@pytest.mark.parametrize(("value", "expected"), [(2.49, Status.not_met), (2.5, Status.met), (2.51, Status.met)])
def test_dnt_pct_cd3_boundary(value: float, expected: Status) -> None:
    assert status(dnt_case("dnt_pct_cd3", value), "required.dnt") is expected


def test_dnt_cutoff_is_a_labelled_site_setting_a_site_can_change() -> None:
    c = dnt_case("dnt_pct_cd3", 4.0)
    assert status(c, "required.dnt") is Status.met
    stricter = Settings(nih1999_dnt_pct_cd3=5.0)
    assert status(c, "required.dnt", stricter) is Status.not_met
    text = threshold(c, "required.dnt", stricter)
    assert "≥ 5% (site setting nih1999_dnt_comparator, nih1999_dnt_pct_cd3)" in text


def test_dnt_needs_no_lymphocyte_count_in_1999_but_needs_tcrab_gating() -> None:
    # The 1999 table has no lymphocyte-count condition (unlike NIH 2009).
    assert status(dnt_case("dnt_pct_lymphocytes", 3.0), "required.dnt") is Status.met
    assert evaluate(dnt_case("dnt_pct_lymphocytes", 3.0), "nih2009").status_of("required.dnt") is Status.unknown
    ungated = dnt_case("dnt_pct_lymphocytes", 3.0, tcrab_gated=False)
    assert status(ungated, "required.dnt") is Status.unknown
    below = dnt_case("dnt_pct_lymphocytes", 0.5, tcrab_gated=False)
    assert status(below, "required.dnt") is Status.not_met  # below even counting gamma-delta DNT


def test_dnt_unknown_when_not_measured() -> None:
    assert status(case(observations=[]), "required.dnt") is Status.unknown


# --- required.chronic_lymphoproliferation: > 6 months (site setting), non-malignant ------------------

@pytest.mark.parametrize(("months", "expected"), [(5.9, Status.not_met), (6, Status.not_met), (6.1, Status.met)])
def test_chronic_boundary(months: float, expected: Status) -> None:
    c = case(findings={"lymphadenopathy": {"present": True, "duration_months": months, "malignancy_excluded": True},
                       "splenomegaly": {"present": False}})
    assert status(c, "required.chronic_lymphoproliferation") is expected


def test_chronic_months_setting_and_malignancy_exclusion() -> None:
    nodes = {"present": True, "duration_months": 4, "malignancy_excluded": True}
    c = case(findings={"lymphadenopathy": nodes, "splenomegaly": {"present": False}})
    assert status(c, "required.chronic_lymphoproliferation") is Status.not_met
    assert status(c, "required.chronic_lymphoproliferation", Settings(nih1999_chronic_months=3)) is Status.met
    # Malignancy not yet excluded keeps it open; infection is not part of the 1999 wording.
    open_ = case(findings={"lymphadenopathy": {"present": True, "duration_months": 12, "malignancy_excluded": False}})
    assert status(open_, "required.chronic_lymphoproliferation") is Status.unknown
    infection = case(findings={"lymphadenopathy": {"present": True, "duration_months": 12,
                                                   "malignancy_excluded": True, "infection_excluded": False}})
    assert status(infection, "required.chronic_lymphoproliferation") is Status.met


# --- required.apoptosis: one defective assay (the 2009 "two separate assays" is a later rule) -------

def test_one_defective_assay_is_enough() -> None:
    assert status(case(apoptosis_assays=DEFECTIVE), "required.apoptosis") is Status.met
    assert status(case(apoptosis_assays=[{"result": "normal"}]), "required.apoptosis") is Status.not_met
    assert status(case(), "required.apoptosis") is Status.unknown


# --- categories ------------------------------------------------------------------------------------

def test_all_three_required_is_definitive_and_supporting_criteria_do_not_count() -> None:
    full = case(apoptosis_assays=DEFECTIVE)
    assert evaluate(full, "nih1999").category is Category.definitive
    # A pathogenic FAS variant is only supporting: without apoptosis data the case stays open.
    fas = case(variants=[{"gene": "FAS", "hgvs_p": "p.Asp260Gly", "classification": "pathogenic",
                          "origin": "germline"}])
    ev = evaluate(fas, "nih1999")
    assert ev.status_of("supporting.mutation") is Status.met
    assert ev.category is Category.indeterminate
    assert [t.criterion for t in ev.next_tests] == ["required.apoptosis"]


def test_any_failed_required_criterion_is_not_met() -> None:
    normal = case(apoptosis_assays=[{"result": "normal"}])
    assert evaluate(normal, "nih1999").category is Category.not_met
    low_dnt = case(apoptosis_assays=DEFECTIVE, observations=[
        {"analyte": "dnt_pct_lymphocytes", "value": 0.5, "unit": "%"},
        {"analyte": "dnt_pct_cd3", "value": 1.0, "unit": "%"}])
    assert evaluate(low_dnt, "nih1999").category is Category.not_met
    short = case(apoptosis_assays=DEFECTIVE, findings={**BASE["findings"],
                 "lymphadenopathy": {"present": True, "duration_months": 2}})
    assert evaluate(short, "nih1999").category is Category.not_met


def test_supporting_autoimmunity() -> None:
    f = {**BASE["findings"], "autoimmune_cytopenias": ["thrombocytopenia"]}
    assert status(case(findings=f), "supporting.autoimmunity") is Status.met
    assert status(case(findings={**BASE["findings"], "autoimmune_cytopenias": []}),
                  "supporting.autoimmunity") is Status.not_met
