"""The performing laboratory's reference interval on an observation takes precedence over the
cited tables (for a 9-year-old: the University of Iowa handbook's 5-18 years band, 1.25-7.0)."""

from __future__ import annotations

from typing import Any

import pytest

from alpsdx.criteria import evaluate
from alpsdx.errors import InputError
from alpsdx.model import case_from_dict


def child(lymph: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "ri", "birth_date": "2016-04-02", "evaluation_date": "2025-06-01",
        "findings": {"lymphadenopathy": {"present": True, "duration_months": 12,
                                         "malignancy_excluded": True, "infection_excluded": True}},
        "observations": [{"analyte": "dnt_pct_lymphocytes", "value": 3.0, "unit": "%", "date": "2025-05-20"},
                         {"analyte": "lymphocytes_abs", "unit": "10*9/L", "date": "2025-05-20", **lymph}],
    }


def dnt(case: dict[str, Any]) -> tuple[str, list[str]]:
    ev = evaluate(case_from_dict(case), "nih2009")
    r = next(r for r in ev.criteria if r.id == "required.dnt")
    return r.status.value, list(r.notes)


@pytest.mark.parametrize("value, expected", [(1.24, "unknown"), (1.25, "met"), (2.0, "met")])
def test_without_a_lab_range_a_school_age_child_uses_the_cited_band(value: float, expected: str) -> None:
    status, notes = dnt(child({"value": value}))
    assert status == expected
    assert any("uiowa_pediatric_normals" in n or "5-18 years" in n for n in notes), notes


def test_the_lab_range_wins_over_the_cited_band() -> None:
    # 1.4 is normal for the cited 5-18 years band (>= 1.25) but below this laboratory's 1.5
    status, notes = dnt(child({"value": 1.4, "reference_range": {"low": 1.5, "high": 6.5}}))
    assert status == "unknown"
    assert any("performing laboratory" in n for n in notes)


@pytest.mark.parametrize("value, expected", [(1.49, "unknown"), (1.5, "met"), (1.51, "met"), (9.0, "met")])
def test_lab_lower_limit_is_inclusive_of_normal(value: float, expected: str) -> None:
    status, notes = dnt(child({"value": value, "reference_range": {"low": 1.5, "high": 6.5}}))
    assert status == expected
    assert any("performing laboratory" in n for n in notes)


@pytest.mark.parametrize("count, expected", [(1400, "unknown"), (1500, "met"), (1600, "met")])
def test_lab_range_in_the_observations_unit_is_converted_with_it(count: int, expected: str) -> None:
    """Count and interval both in /uL; both go to 10*9/L before the comparison."""
    status, notes = dnt(child({"value": count, "unit": "/uL", "reference_range": {"low": 1500, "high": 6500}}))
    assert status == expected
    assert any("1.5-6.5 10*9/L" in n for n in notes)


@pytest.mark.parametrize("rr, fragment", [({"low": 5, "high": 2}, "above high"), ({}, "low, high or both"),
                                          ({"low": 1, "hi": 2}, "hi")])
def test_bad_reference_intervals_name_the_field(rr: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError) as err:
        case_from_dict(child({"value": 2.0, "reference_range": rr}), "c.json")
    assert "reference_range" in str(err.value) and fragment in str(err.value)
