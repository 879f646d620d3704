"""UCUM conversion: known factors, round trips exact to 1e-9 relative (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alpsdx import units
from alpsdx.errors import UnitError

UNITS = {
    "vitamin_b12": ["ng/L", "pg/mL", "pmol/L", "nmol/L", "ug/L"],
    "igg": ["mg/dL", "g/L", "mg/L", "g/dL"],
    "anc": ["10*9/L", "/uL", "/mm3", "10*3/uL", "10*6/L"],
    "platelets": ["10*9/L", "10*3/uL", "/uL"],
    "hemoglobin": ["g/dL", "g/L", "mmol/L"],
    "sirolimus_trough": ["ng/mL", "ug/L", "nmol/L"],
    "dnt_pct_lymphocytes": ["%", "1"],
}


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        ("vitamin_b12", 1000, "pmol/L", 1355.37),  # molar mass 1355.37 g/mol
        ("vitamin_b12", 1500, "pg/mL", 1500),  # 1 pg/mL = 1 ng/L
        ("igg", 21, "g/L", 2100),
        ("anc", 600, "/uL", 0.6),
        ("anc", 600, "/mm3", 0.6),
        ("platelets", 45, "10*3/uL", 45),
        ("hemoglobin", 89, "g/L", 8.9),
        ("hemoglobin", 1, "mmol/L", 1.61145),  # monomer 16114.5 g/mol
        ("dnt_pct_lymphocytes", 0.042, "1", 4.2),
    ],
)
def test_known_conversions(analyte: str, value: float, unit: str, expected: float) -> None:
    assert units.to_canonical(analyte, value, unit) == pytest.approx(expected, rel=1e-12)


@given(
    pair=st.sampled_from([(a, u1, u2) for a, us in UNITS.items() for u1 in us for u2 in us]),
    value=st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
)
def test_round_trip_exact(pair: tuple[str, str, str], value: float) -> None:
    analyte, u1, u2 = pair
    there = units.convert(analyte, value, u1, u2)
    back = units.convert(analyte, there, u2, u1)
    assert back == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize(
    ("analyte", "unit"), [("igg", "mmol/L"), ("anc", "g/L"), ("dnt_pct_cd3", "mg/dL"), ("igg", "furlong")]
)
def test_unconvertible_units_name_the_accepted_ones(analyte: str, unit: str) -> None:
    with pytest.raises(UnitError) as err:
        units.to_canonical(analyte, 1.0, unit)
    assert err.value.value == unit and "canonical" in (err.value.expected or "")


def test_loinc_codes_resolve() -> None:
    assert units.resolve_analyte("2132-9") == "vitamin_b12"
    assert units.resolve_analyte("718-7") == "hemoglobin"
    with pytest.raises(UnitError):
        units.resolve_analyte("9999-9")


def test_dnt_percent_from_counts() -> None:
    assert units.dnt_percent_from_counts(62, 3.1) == pytest.approx(2.0)
    with pytest.raises(UnitError):
        units.dnt_percent_from_counts(5000, 3.1)
