"""Cytopenia grading at every boundary, the IgG criterion, and Evans syndrome."""

from __future__ import annotations

from typing import Any

import pytest

from alpsdx.cytopenias import (
    age_at,
    assess,
    cytopenia_igg_status,
    evans_syndrome,
    grade_anaemia,
    grade_igg,
    grade_neutropenia,
    grade_thrombocytopenia,
    newest,
)
from alpsdx.model import case_from_dict
from alpsdx.reference_ranges import SITE_RANGES_ENV


@pytest.fixture(autouse=True)
def _no_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SITE_RANGES_ENV, raising=False)


def case(**kw: Any) -> Any:
    base: dict[str, Any] = {"id": "t", "sex": "female", "birth_date": "2016-04-02", "evaluation_date": "2025-06-01"}
    base.update(kw)
    return case_from_dict(base)


# --- anaemia: presence by WHO 2024 cut-off, severity by WHO 2011 bands -----------------------
@pytest.mark.parametrize(
    ("hb", "age", "sex", "present", "severity"),
    [
        (10.5, 1.0, None, False, None),  # 6-23 months, at cut-off
        (10.49, 1.0, None, True, "mild"),
        (10.0, 1.0, None, True, "mild"),
        (9.99, 1.0, None, True, "moderate"),
        (7.0, 1.0, None, True, "moderate"),
        (6.99, 1.0, None, True, "severe"),
        (11.0, 3.0, None, False, None),  # 24-59 months
        (10.99, 3.0, None, True, "mild"),
        (11.5, 8.0, None, False, None),  # 5-11 years
        (11.49, 8.0, None, True, "mild"),
        (11.0, 8.0, None, True, "mild"),
        (10.99, 8.0, None, True, "moderate"),
        (8.0, 8.0, None, True, "moderate"),
        (7.99, 8.0, None, True, "severe"),
        (12.0, 13.0, None, False, None),  # 12-14 years
        (11.99, 13.0, None, True, "mild"),
        (12.0, 30.0, "female", False, None),
        (11.99, 30.0, "female", True, "mild"),
        (13.0, 30.0, "male", False, None),
        (12.99, 30.0, "male", True, "mild"),
        (10.99, 30.0, "male", True, "moderate"),
        (7.99, 30.0, "male", True, "severe"),
    ],
)
def test_anaemia(hb: float, age: float, sex: str | None, present: bool, severity: str | None) -> None:
    g = grade_anaemia(hb, age, sex)
    assert g.present is present and g.severity == severity
    if present:
        assert g.citation == "who2011_anaemia_severity"


def test_anaemia_without_range() -> None:
    g = grade_anaemia(9.0, 0.2)  # under 6 months: WHO gives no cut-off
    assert g.present is None and "site laboratory" in g.message
    assert grade_anaemia(9.0, 30.0, None).present is None  # adult, sex unknown


# --- neutropenia ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("anc", "age", "present", "severity"),
    [
        (1.5, 5, False, None), (1.49, 5, True, "mild"), (1.0, 5, True, "mild"), (0.99, 5, True, "moderate"),
        (0.5, 5, True, "moderate"), (0.49, 5, True, "severe"),
        (1.0, 0.5, False, None), (0.99, 0.5, True, "moderate"),  # infant limit 1.0
        (4.99, 3 / 365.25, True, "mild"), (5.0, 3 / 365.25, False, None),  # first week
    ],
)
def test_neutropenia(anc: float, age: float, present: bool, severity: str | None) -> None:
    g = grade_neutropenia(anc, age)
    assert g.present is present and g.severity == severity


# --- thrombocytopenia (ITP threshold, phases) ---------------------------------------------------
@pytest.mark.parametrize(
    ("plt", "months", "present", "phase"),
    [
        (100, None, False, None), (99.9, None, True, None), (40, 2.9, True, "newly_diagnosed"),
        (40, 3.0, True, "persistent"), (40, 11.9, True, "persistent"), (40, 12.0, True, "chronic"),
    ],
)
def test_thrombocytopenia(plt: float, months: float | None, present: bool, phase: str | None) -> None:
    g = grade_thrombocytopenia(plt, 8, months)
    assert g.present is present and g.severity == phase


# --- IgG --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("igg", "age", "kind", "present"),
    [(1474, 8, "hypergammaglobulinaemia", False), (1475, 8, "hypergammaglobulinaemia", True),
     (916, 2, "hypergammaglobulinaemia", False), (917, 2, "hypergammaglobulinaemia", True),
     (452, 2, "low_igg", True), (1601, 40, "hypergammaglobulinaemia", True)],
)
def test_igg(igg: float, age: float, kind: str, present: bool) -> None:
    g = grade_igg(igg, age)
    assert g.kind == kind and g.present is present


def test_igg_unit_conversion_in_case() -> None:
    # 21 g/L = 2100 mg/dL, above the 7-9 y upper limit 1474
    c = case(observations=[{"analyte": "igg", "value": 21, "unit": "g/L", "date": "2025-05-20"}],
             findings={"autoimmune_cytopenias": ["thrombocytopenia"]})
    status, ev = cytopenia_igg_status(c)
    assert status == "met"
    assert ev[1]["value"] == 21 and ev[1]["unit"] == "g/L" and ev[1]["canonical_value"] == pytest.approx(2100)


@pytest.mark.parametrize(
    ("cyto", "igg", "expected"),
    [
        (["thrombocytopenia"], 1500, "met"),
        (["thrombocytopenia"], 1400, "not_met"),
        ([], 1500, "not_met"),
        (None, 1500, "unknown"),
        (["neutropenia"], None, "unknown"),
        (None, 1400, "not_met"),
        ([], None, "not_met"),
    ],
)
def test_cytopenia_igg_three_valued(cyto: list[str] | None, igg: float | None, expected: str) -> None:
    obs = [] if igg is None else [{"analyte": "igg", "value": igg, "unit": "mg/dL", "date": "2025-05-20"}]
    findings = {} if cyto is None else {"autoimmune_cytopenias": cyto}
    status, evidence = cytopenia_igg_status(case(observations=obs, findings=findings))
    assert status == expected
    assert len(evidence) == 2


def test_igg_uses_age_at_sample_date() -> None:
    # born 2016-04-02: on 2020-03-01 the child is 3.9 y (1-3 y band, upper 916); now 9 y.
    c = case(observations=[{"analyte": "igg", "value": 1000, "unit": "mg/dL", "date": "2020-03-01"}],
             findings={"autoimmune_cytopenias": ["neutropenia"]})
    assert cytopenia_igg_status(c)[0] == "met"
    assert age_at(c, None) == pytest.approx(9.16, abs=0.01)


def test_igg_unknown_without_range_for_age_years_only() -> None:
    c = case_from_dict({"id": "t", "observations": [{"analyte": "igg", "value": 2000, "unit": "mg/dL"}],
                        "findings": {"autoimmune_cytopenias": ["neutropenia"]}})
    assert cytopenia_igg_status(c)[0] == "unknown"  # age unknown


def test_newest_ignores_future_of_evaluation_date() -> None:
    c = case(evaluation_date="2025-01-01", observations=[
        {"analyte": "platelets", "value": 50, "unit": "10*9/L", "date": "2024-12-01"},
        {"analyte": "platelets", "value": 150, "unit": "10*9/L", "date": "2025-05-01"},
    ])
    o = newest(c, "platelets")
    assert o is not None and o.value == 50


def test_assess_and_itp_phase_from_record() -> None:
    c = case(observations=[
        {"analyte": "platelets", "value": 150, "unit": "10*9/L", "date": "2024-01-01"},
        {"analyte": "platelets", "value": 80, "unit": "10*9/L", "date": "2024-06-01"},
        {"analyte": "platelets", "value": 60, "unit": "10*9/L", "date": "2025-05-01"},
        {"analyte": "hemoglobin", "value": 70, "unit": "g/L", "date": "2025-05-01"},
        {"analyte": "anc", "value": 400, "unit": "/uL", "date": "2025-05-01"},
    ])
    by = {g.kind: g for g in assess(c)}
    assert by["thrombocytopenia"].severity == "persistent"  # 11 months of counts <100
    assert by["anaemia"].severity == "severe"  # 7.0 g/dL < 8 at 9 y
    assert by["neutropenia"].severity == "severe"
    assert by["anaemia"].evidence[0]["unit"] == "g/L"


def test_evans_syndrome() -> None:
    assert evans_syndrome(case(findings={"autoimmune_cytopenias": ["thrombocytopenia"]})) is None
    two = {"autoimmune_cytopenias": ["hemolytic_anemia", "thrombocytopenia"]}
    r = evans_syndrome(case(findings=two))
    assert r is not None and r.dnt is None and "measure" in r.recommendation
    assert r.citation == "seif2010_alps_criteria"
    for v, band in [(5.0, "high"), (4.99, "intermediate"), (2.5, "intermediate"), (2.49, "low")]:
        r = evans_syndrome(case(findings=two, observations=[
            {"analyte": "dnt_pct_cd3", "value": v, "unit": "%", "date": "2025-05-01"}]))
        assert r is not None and r.dnt_band == band


# --- the performing laboratory's interval on the observation comes first -----------------------
def test_lab_interval_overrides_cited_band_for_igg_and_hb() -> None:
    from alpsdx.cytopenias import assess as grade_all

    obs = [{"analyte": "igg", "value": 1450, "unit": "mg/dL", "date": "2025-05-01",
            "reference_range": {"low": 600, "high": 1400}},
           {"analyte": "hemoglobin", "value": 120, "unit": "g/L", "date": "2025-05-01",
            "reference_range": {"low": 121, "high": 160}}]
    grades = {g.kind: g for g in grade_all(case(observations=obs))}
    igg = grades["hypergammaglobulinaemia"]  # 1450: normal for the cited 7-9 y band (572-1474), high for the lab
    assert igg.present is True and igg.reference is not None and igg.reference.source == "lab"
    assert igg.reference.citation == "performing_lab_range" and igg.reference.high == 1400
    hb = grades["anaemia"]  # 12.0 g/dL: normal by WHO (11.5) but below the lab's 12.1 g/dL
    assert hb.present is True and hb.reference is not None and hb.reference.low == pytest.approx(12.1)
    assert hb.evidence[0]["reference_source"] == "lab"


@pytest.mark.parametrize(("value", "status"), [(1400, "not_met"), (1401, "met")])
def test_lab_interval_decides_the_nih_igg_part_at_its_limit(value: float, status: str) -> None:
    c = case(findings={"autoimmune_cytopenias": ["thrombocytopenia"]},
             observations=[{"analyte": "igg", "value": value, "unit": "mg/dL", "date": "2025-05-01",
                            "reference_range": {"low": 600, "high": 1400}}])
    got, evidence = cytopenia_igg_status(c)
    assert got == status and evidence[-1]["reference_source"] == "lab"


def test_lab_interval_in_other_unit_is_converted() -> None:
    g = grade_neutropenia(1.2, 8.0, reference=None)
    assert g.present is True  # cited limit 1.5
    from alpsdx.reference_ranges import lab_range

    lab = grade_neutropenia(1.2, 8.0, reference=lab_range("anc", 1.0, 7.0))
    assert lab.present is False and lab.reference is not None and lab.reference.source == "lab"
