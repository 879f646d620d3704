"""Fuzz UCUM unit strings (units.factor), reached from every observation in a case."""

from __future__ import annotations

import json
import math
import time

import pytest
from fuzz_helpers import fuzz_settings, outcome
from hypothesis import given
from hypothesis import strategies as st

from alpsdx import units
from alpsdx.errors import InputError, UnitError
from alpsdx.model import parse_case_text

KEYS = ["lymphocytes_abs", "vitamin_b12", "igg", "dnt_pct_lymphocytes", "hemoglobin", "sfasl"]
UNIT_ALPHABET = st.sampled_from([*"0123456789*^/.()[]{}-+ %", "10*", "g", "L", "dL", "u", "m", "mol", "pg",
                                  "mm3", "/uL", "10*9", "n", "k", "Cel"])


def check(key: str, unit: str) -> None:
    f = units.factor(key, unit)
    assert math.isfinite(f) and f > 0, (key, unit, f)


@fuzz_settings(300)
@given(st.sampled_from(KEYS), st.lists(UNIT_ALPHABET, max_size=8).map("".join))
def test_unit_strings(key: str, unit: str) -> None:
    t0 = time.process_time()
    assert outcome(check, key, unit) in ("valid", "typed error")
    assert time.process_time() - t0 < 2.0


@fuzz_settings(100)
@given(st.sampled_from(KEYS), st.text(max_size=30))
def test_any_text_as_unit(key: str, unit: str) -> None:
    assert outcome(check, key, unit) in ("valid", "typed error")


# --- regressions (docs/reliability.md) -------------------------------------------------------

@pytest.mark.parametrize("unit", [
    "10*" + "9" + "2" * 120 + "/L",  # pint computed 10**N exactly: hung for minutes
    "10*400/L",                        # OverflowError converting the factor to float
    "10*999/L",
    "10*-400/L",                       # factor silently 0.0: every value became 0
    "10*" + "9" * 80,
])
def test_regression_absurd_exponents_are_typed_and_fast(unit: str) -> None:
    t0 = time.process_time()
    with pytest.raises(UnitError):
        units.factor("lymphocytes_abs", unit)
    assert time.process_time() - t0 < 2.0
    case = json.dumps({"id": "x", "age_years": 3,
                       "observations": [{"analyte": "lymphocytes_abs", "value": 4.5, "unit": unit}]})
    with pytest.raises(InputError):
        parse_case_text(case)


def test_regression_annotation_only_unit_is_not_an_attribute_error() -> None:
    # "{cells}" alone parsed to a lark Token (AttributeError: no 'dimensionality'); found by
    # the structure-aware FHIR harness in a valueQuantity.code. UCUM: an annotation alone is 1.
    assert units.factor("dnt_pct_lymphocytes", "{cells}") == pytest.approx(100.0)
    with pytest.raises(UnitError):
        units.factor("lymphocytes_abs", "{cells}")
    assert units.factor("lymphocytes_abs", "{cells}/uL") == pytest.approx(1e-3)


@pytest.mark.parametrize(("unit", "factor"), [("10*9/L", 1.0), ("10^9/L", 1.0), ("10*3/uL", 1.0),
                                              ("/uL", 1e-3), ("/mm3", 1e-3)])
def test_sensible_counts_still_convert(unit: str, factor: float) -> None:
    assert units.factor("lymphocytes_abs", unit) == pytest.approx(factor, rel=1e-9)
