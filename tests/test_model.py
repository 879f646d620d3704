"""The case model: strict validation, every bad-input family named by field and value."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from alpsdx.errors import AlpsdxError, InputError, UnitError
from alpsdx.model import Case, case_from_dict, load_case, parse_case_text


def test_example_case_parses_both_formats(examples_dir, tmp_path) -> None:
    src = examples_dir / "case-001-alps-fas-definitive.json"
    case = load_case(src)
    assert case.id == "case-001" and case.age == pytest.approx(9.16, abs=0.01)
    y = tmp_path / "c.yaml"
    y.write_text(yaml.safe_dump(json.loads(src.read_text())))
    assert load_case(y) == case


def test_age_years_when_no_birth_date() -> None:
    assert case_from_dict({"id": "a", "age_years": 7.5}).age == 7.5


@pytest.mark.parametrize(
    ("data", "field", "err"),
    [
        ({"id": "x", "bogus": 1}, "bogus", InputError),
        ({"id": "x", "findings": {"lymphadenopathy": {"present": True, "durationmonths": 3}}},
         "findings.lymphadenopathy.durationmonths", InputError),
        ({"id": "x", "observations": [{"analyte": "anc", "value": -1, "unit": "10*9/L"}]}, "observations[0].value", UnitError),
        ({"id": "x", "observations": [{"analyte": "dnt_pct_cd3", "value": 101, "unit": "%"}]}, "observations[0].value", UnitError),
        ({"id": "x", "observations": [{"analyte": "igg", "value": 1, "unit": "mmol/L"}]}, "observations[0].unit", UnitError),
        ({"id": "x", "observations": [{"analyte": "nope", "value": 1, "unit": "g/L"}]}, "observations[0].analyte", UnitError),
        ({"id": "x", "birth_date": "2099-01-01"}, "birth_date", InputError),
        ({"id": "x", "birth_date": "2020-01-01", "evaluation_date": "2019-01-01"}, None, InputError),
        ({"id": "x", "age_years": -1}, "age_years", InputError),
        ({"id": "x", "variants": [{"gene": "FAS", "vaf": 1.5}]}, "variants[0].vaf", InputError),
        ({"id": "x", "findings": {"autoimmune_cytopenias": ["anemia"]}}, "findings.autoimmune_cytopenias[0]", InputError),
        ({"id": "x", "medications": [{"name": "sirolimus", "start": "2025-02-01", "end": "2025-01-01"}]}, "medications[0]", InputError),
        ({"sex": "female"}, "id", InputError),
    ],
)
def test_bad_input_names_field_and_value(data: dict, field: str | None, err: type) -> None:
    with pytest.raises(err) as info:
        case_from_dict(data, "case.json")
    text = str(info.value)
    assert text.startswith("case.json")
    if field:
        assert field in text


def test_evaluation_today_is_allowed_future_is_not() -> None:
    today = dt.date.today()
    case_from_dict({"id": "x", "evaluation_date": today.isoformat()})
    with pytest.raises(InputError):
        case_from_dict({"id": "x", "evaluation_date": (today + dt.timedelta(days=1)).isoformat()})


def test_today_is_kept_only_until_midnight(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from alpsdx import model

    assert model.today() == dt.date.today()
    start, until, day = model._TODAY
    # the cached day spans exactly its local midnight-to-midnight window
    assert dt.datetime.fromtimestamp(start) == dt.datetime.combine(day, dt.time())
    assert dt.datetime.fromtimestamp(until) == dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    # past the window (the clock crossed midnight), the date is worked out again
    monkeypatch.setattr(time, "time", lambda: until + 1.0)
    assert model.today() == day + dt.timedelta(days=1)
    # a stale window (e.g. the clock set back) is not trusted either
    monkeypatch.setattr(time, "time", lambda: start - 1.0)
    assert model.today() == day - dt.timedelta(days=1)


def test_invalid_json_and_yaml_are_input_errors() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        parse_case_text('{"id": ', source="x.json")
    with pytest.raises(InputError, match="not valid YAML"):
        parse_case_text("id: [unclosed", source="x.yaml")
    with pytest.raises(InputError, match="object"):
        parse_case_text("[1, 2]")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parser_only_returns_case_or_typed_error(text: str) -> None:
    try:
        result = parse_case_text(text)
    except AlpsdxError as err:
        assert str(err)  # a typed error with a message; anything else fails the test
        return
    assert isinstance(result, Case)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(["id", "sex", "birth_date", "age_years", "evaluation_date", "findings", "observations",
                        "apoptosis_assays", "variants", "medications", "height_cm", "weight_kg", "genes_tested"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=6))
def test_structured_garbage_gives_case_or_typed_error(data: dict) -> None:
    try:
        result = case_from_dict(data)
    except AlpsdxError as err:
        assert str(err)
        return
    assert isinstance(result, Case)
