"""NIH 2009 (Oliveira et al., Blood 2010) at every threshold boundary, as the sources state them."""

from __future__ import annotations

import datetime as dt

import pytest
from criteria_cases import BASE, case, with_obs

from alpsdx.criteria import Category, Settings, Status, evaluate


def status(c, rule: str, settings: Settings | None = None) -> Status:
    return evaluate(c, "nih2009", settings=settings).status_of(rule)


# --- required.dnt: 1.5 % of lymphocytes / 2.5 % of CD3+, comparator a site setting ----------

@pytest.mark.parametrize(
    ("value", "comparator", "expected"),
    [
        (1.49, ">=", Status.not_met),
        (1.5, ">=", Status.met),  # Arch Pathol Lab Med 2020 Table 1: ">= 1.5%"
        (1.51, ">=", Status.met),
        (1.49, ">", Status.not_met),
        (1.5, ">", Status.not_met),  # Curr Opin Pediatr 2013 Table 1: "> 1.5%"
        (1.51, ">", Status.met),
    ],
)
def test_dnt_pct_lymphocytes_boundary(value: float, comparator: str, expected: Status) -> None:
    c = case(observations=[
        {"analyte": "dnt_pct_lymphocytes", "value": value, "unit": "%", "date": "2025-02-01"},
        {"analyte": "lymphocytes_abs", "value": 4.5, "unit": "10*9/L", "date": "2025-02-01"},
    ])
    assert status(c, "required.dnt", Settings(dnt_comparator=comparator)) is expected


@pytest.mark.parametrize(("value", "expected"), [(2.49, Status.not_met), (2.5, Status.met), (2.51, Status.met)])
def test_dnt_pct_cd3_boundary(value: float, expected: Status) -> None:
    c = case(observations=[
        {"analyte": "dnt_pct_cd3", "value": value, "unit": "%", "date": "2025-02-01"},
        {"analyte": "lymphocytes_abs", "value": 4.5, "unit": "10*9/L", "date": "2025-02-01"},
    ])
    assert status(c, "required.dnt") is expected


def test_comparator_is_shown_in_threshold() -> None:
    ev = evaluate(case(), "nih2009", settings=Settings(dnt_comparator=">"))
    dnt = next(r for r in ev.criteria if r.id == "required.dnt")
    assert "comparator '>'" in dnt.threshold and "curropinpediatr2013" in dnt.threshold


def test_dnt_needs_lymphocyte_count() -> None:
    c = case(observations=[{"analyte": "dnt_pct_lymphocytes", "value": 4.0, "unit": "%", "date": "2025-02-01"}])
    ev = evaluate(c)
    assert ev.status_of("required.dnt") is Status.unknown
    assert any("CBC" in t.test for t in ev.next_tests)


def test_dnt_in_lymphopenia_is_unknown() -> None:
    # 2-year-old: Kotylo 24-30 months lower limit 3.9 x10^9/L; 2.0 is lymphopenic.
    c = case(observations=[
        {"analyte": "dnt_pct_lymphocytes", "value": 4.0, "unit": "%", "date": "2025-02-01"},
        {"analyte": "lymphocytes_abs", "value": 2.0, "unit": "10*9/L", "date": "2025-02-01"},
    ])
    ev = evaluate(c)
    assert ev.status_of("required.dnt") is Status.unknown
    assert any("lymphopenia" in n for r in ev.criteria for n in r.notes)


def test_dnt_from_absolute_count() -> None:
    # 180 DNT/uL of 4.5 x10^9/L lymphocytes = 4.0 % of lymphocytes.
    c = case(observations=[
        {"analyte": "dnt_abs", "value": 180, "unit": "/uL", "date": "2025-02-01"},
        {"analyte": "lymphocytes_abs", "value": 4.5, "unit": "10*9/L", "date": "2025-02-01"},
    ])
    ev = evaluate(c)
    dnt = next(r for r in ev.criteria if r.id == "required.dnt")
    derived = [e for e in dnt.evidence if e.note == "derived from dnt_abs and lymphocytes_abs"]
    assert derived and derived[0].value == pytest.approx(4.0)
    assert dnt.status is Status.met


def test_dnt_without_tcrab_gating_cannot_meet() -> None:
    c = case(observations=[
        {"analyte": "dnt_pct_lymphocytes", "value": 4.0, "unit": "%", "date": "2025-02-01", "tcrab_gated": False},
        {"analyte": "lymphocytes_abs", "value": 4.5, "unit": "10*9/L", "date": "2025-02-01"},
    ])
    assert status(c, "required.dnt") is Status.unknown


def test_newest_observation_before_evaluation_date_counts() -> None:
    c = case(observations=[
        {"analyte": "dnt_pct_lymphocytes", "value": 4.0, "unit": "%", "date": "2024-06-01"},
        {"analyte": "dnt_pct_lymphocytes", "value": 1.0, "unit": "%", "date": "2025-01-01"},
        {"analyte": "dnt_pct_lymphocytes", "value": 9.0, "unit": "%", "date": "2025-06-01"},  # after evaluation
        {"analyte": "lymphocytes_abs", "value": 4.5, "unit": "10*9/L", "date": "2025-02-01"},
    ])
    assert status(c, "required.dnt") is Status.not_met
    assert evaluate(c, date=dt.date(2025, 7, 1)).status_of("required.dnt") is Status.met


def test_undated_observation_counts_as_current_and_says_so() -> None:
    c = case(observations=[
        {"analyte": "dnt_pct_lymphocytes", "value": 4.0, "unit": "%"},
        {"analyte": "lymphocytes_abs", "value": 4.5, "unit": "10*9/L"},
    ])
    dnt = next(r for r in evaluate(c).criteria if r.id == "required.dnt")
    assert dnt.status is Status.met
    assert all("undated: counted as current" in (e.note or "") for e in dnt.evidence)


# --- required.chronic_lymphoproliferation: > 6 months ----------------------------------------

@pytest.mark.parametrize(("months", "expected"), [(5.9, Status.not_met), (6, Status.not_met), (6.1, Status.met)])
def test_chronic_means_more_than_six_months(months: float, expected: Status) -> None:
    c = case(findings={"lymphadenopathy": {"present": True, "duration_months": months},
                       "splenomegaly": {"present": False}})
    assert status(c, "required.chronic_lymphoproliferation") is expected


def test_chronic_from_onset_date() -> None:
    no_nodes = {"present": False}
    c = case(findings={"splenomegaly": {"present": True, "onset": "2024-08-01"}, "lymphadenopathy": no_nodes})
    assert status(c, "required.chronic_lymphoproliferation") is Status.met  # 7 months before
    c = case(findings={"splenomegaly": {"present": True, "onset": "2024-10-01"}, "lymphadenopathy": no_nodes})
    assert status(c, "required.chronic_lymphoproliferation") is Status.not_met  # 5 months before
    # Either finding alone unknown keeps the criterion open.
    c = case(findings={"splenomegaly": {"present": True, "onset": "2024-10-01"}})
    assert status(c, "required.chronic_lymphoproliferation") is Status.unknown


def test_lymphoproliferation_unknown_when_not_recorded_or_not_excluded() -> None:
    assert status(case(findings={}), "required.chronic_lymphoproliferation") is Status.unknown
    c = case(findings={"lymphadenopathy": {"present": True, "duration_months": 12, "malignancy_excluded": False}})
    assert status(c, "required.chronic_lymphoproliferation") is Status.unknown


# --- secondary.biomarkers: strictly greater than each threshold --------------------------------

@pytest.mark.parametrize(
    ("analyte", "unit", "threshold"),
    [("sfasl", "pg/mL", 200), ("il10", "pg/mL", 20), ("vitamin_b12", "ng/L", 1500), ("vitamin_b12", "pg/mL", 1500),
     ("il18", "pg/mL", 500)],
)
@pytest.mark.parametrize(("delta", "expected"), [(-0.1, Status.not_met), (0.0, Status.not_met), (0.1, Status.met)])
def test_biomarker_boundaries(analyte: str, unit: str, threshold: float, delta: float, expected: Status) -> None:
    others = [{"analyte": a, "value": 0, "unit": "pg/mL"} for a in ("sfasl", "il10", "vitamin_b12", "il18") if a != analyte]
    c = with_obs({"analyte": analyte, "value": threshold + delta, "unit": unit}, *others)
    assert status(c, "secondary.biomarkers") is expected


def test_b12_in_pmol_per_litre_converts_with_molar_mass() -> None:
    # 1500 ng/L / 1.35537 = 1106.7 pmol/L; just above and below the converted threshold.
    assert status(with_obs({"analyte": "vitamin_b12", "value": 1107.0, "unit": "pmol/L"}), "secondary.biomarkers") is Status.met
    c = with_obs({"analyte": "vitamin_b12", "value": 1106.0, "unit": "pmol/L"},
                 *[{"analyte": a, "value": 0, "unit": "pg/mL"} for a in ("sfasl", "il10", "il18")])
    assert status(c, "secondary.biomarkers") is Status.not_met


def test_biomarkers_unknown_while_some_unmeasured() -> None:
    c = with_obs({"analyte": "sfasl", "value": 100, "unit": "pg/mL"})
    assert status(c, "secondary.biomarkers") is Status.unknown


# --- primary criteria ----------------------------------------------------------------------------

def test_apoptosis_needs_two_defective_assays() -> None:
    one = case(apoptosis_assays=[{"result": "defective", "date": "2025-01-01"}])
    two = case(apoptosis_assays=[{"result": "defective", "date": "2025-01-01"},
                                 {"result": "defective", "date": "2025-02-01"}])
    normal = case(apoptosis_assays=[{"result": "normal", "date": "2025-01-01"}])
    assert status(one, "primary.apoptosis") is Status.unknown
    assert status(two, "primary.apoptosis") is Status.met
    assert status(normal, "primary.apoptosis") is Status.not_met


def test_vus_never_satisfies_mutation_criterion() -> None:
    vus = case(variants=[{"gene": "FAS", "hgvs_p": "p.Ala10Val", "classification": "vus", "origin": "germline"}])
    ev = evaluate(vus)
    # Only FAS reported: FASLG/CASP10 are still open, so unknown (missing data is never 'not met').
    assert ev.status_of("primary.mutation") is Status.unknown
    assert any("uncertain significance" in n for r in ev.criteria for n in r.notes)
    tests = [t.test for t in ev.next_tests]
    assert "Sequencing of FASLG, CASP10" in tests
    # cheap serum markers before sequencing
    assert tests.index("Serum vitamin B12 and plasma sFASL (then IL-10, IL-18)") < tests.index(
        "Sequencing of FASLG, CASP10")
    panel = case(variants=[{"gene": "FAS", "hgvs_p": "p.Ala10Val", "classification": "vus", "origin": "germline"}],
                 genes_tested=["FASLG", "CASP10"])
    assert evaluate(panel).status_of("primary.mutation") is Status.not_met


@pytest.mark.parametrize("cls", ["pathogenic", "likely_pathogenic"])
def test_pathogenic_variant_meets_mutation_criterion(cls: str) -> None:
    c = case(variants=[{"gene": "FAS", "hgvs_p": "p.Asp260Gly", "classification": cls, "origin": "germline"}])
    assert status(c, "primary.mutation") is Status.met


def test_mutation_unknown_without_testing_and_not_met_when_tested_negative() -> None:
    assert status(case(), "primary.mutation") is Status.unknown
    assert status(case(genes_tested=["FAS", "FASLG", "CASP10"]), "primary.mutation") is Status.not_met
    assert status(case(genes_tested=["FAS"]), "primary.mutation") is Status.unknown


# --- secondary.cytopenias_igg: both parts needed ---------------------------------------------------

def test_cytopenias_need_elevated_igg() -> None:
    # 2-year-old: IgG 1-3 years upper limit 916 mg/dL (medscape_immunoglobulins).
    f = {**BASE["findings"], "autoimmune_cytopenias": ["thrombocytopenia"]}
    high = with_obs({"analyte": "igg", "value": 917, "unit": "mg/dL"}, findings=f)
    at = with_obs({"analyte": "igg", "value": 916, "unit": "mg/dL"}, findings=f)
    no_cyt = with_obs({"analyte": "igg", "value": 1500, "unit": "mg/dL"},
                      findings={**BASE["findings"], "autoimmune_cytopenias": []})
    assert status(high, "secondary.cytopenias_igg") is Status.met
    assert status(at, "secondary.cytopenias_igg") is Status.not_met
    assert status(no_cyt, "secondary.cytopenias_igg") is Status.not_met
    assert status(case(findings=f), "secondary.cytopenias_igg") is Status.unknown


# --- categories -------------------------------------------------------------------------------------

def test_categories() -> None:
    assert evaluate(case()).category is Category.indeterminate
    prob = case(findings={**BASE["findings"], "family_history_lymphoproliferation": True})
    assert evaluate(prob).category is Category.probable
    defin = case(apoptosis_assays=[{"result": "defective"}, {"result": "defective"}])
    assert evaluate(defin).category is Category.definitive
    short = case(findings={"lymphadenopathy": {"present": True, "duration_months": 3},
                           "splenomegaly": {"present": False}})
    assert evaluate(short).category is Category.not_met


def test_all_accessories_negative_is_not_met() -> None:
    c = with_obs(
        *[{"analyte": a, "value": 1, "unit": "pg/mL"} for a in ("sfasl", "il10", "vitamin_b12", "il18")],
        findings={**BASE["findings"], "typical_histology": False, "family_history_lymphoproliferation": False,
                  "autoimmune_cytopenias": []},
        apoptosis_assays=[{"result": "normal"}], genes_tested=["FAS", "FASLG", "CASP10"],
    )
    assert evaluate(c).category is Category.not_met


def test_next_tests_only_those_that_change_category_cheapest_first() -> None:
    ev = evaluate(case())
    assert ev.category is Category.indeterminate
    tests = [t.test for t in ev.next_tests]
    assert tests, "an indeterminate case must say what would decide it"
    costs = [t.cost for t in ev.next_tests]
    assert costs == sorted(costs)
    assert tests[0].startswith("Family history") or "B12" in tests[0]
    # For a probable case, only primary criteria can still move the category.
    prob = evaluate(case(findings={**BASE["findings"], "family_history_lymphoproliferation": True}))
    assert {t.criterion for t in prob.next_tests} == {"primary.apoptosis", "primary.mutation"}
    assert evaluate(case(apoptosis_assays=[{"result": "defective"}, {"result": "defective"}])).next_tests == ()
