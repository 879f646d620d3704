"""Sirolimus/MMF dosing support: Mosteller BSA, starting dose, trough range boundaries,
proportional adjustment, steady state, a trough drifting out of range, site overrides."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from alpsdx.care import care_items
from alpsdx.care.dosing import (
    assess_trough,
    bsa_mosteller,
    daily_dose_mg,
    doses_per_day,
    mmf_dose,
    proportional_dose,
    sirolimus_starting_dose,
)
from alpsdx.care.settings import CARE_SETTINGS_ENV, CareSettings
from alpsdx.errors import InputError
from alpsdx.model import Medication, case_from_dict


@pytest.fixture(autouse=True)
def _no_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CARE_SETTINGS_ENV, raising=False)


def case(troughs: list[tuple[str, float]] = (), meds: list[dict[str, Any]] | None = None, **kw: Any) -> Any:
    base: dict[str, Any] = {
        "id": "t", "sex": "male", "birth_date": "2015-01-01", "evaluation_date": "2025-06-01",
        "observations": [{"analyte": "sirolimus_trough", "value": v, "unit": "ng/mL", "date": d} for d, v in troughs],
        "medications": meds if meds is not None else [
            {"name": "sirolimus", "dose_mg": 2.0, "frequency": "daily", "start": "2025-01-01"}],
    }
    base.update(kw)
    return case_from_dict(base)


def test_mosteller() -> None:
    assert bsa_mosteller(180, 80) == pytest.approx(2.0)  # sqrt(180*80/3600) = sqrt(4)
    assert bsa_mosteller(132, 29) == pytest.approx(math.sqrt(132 * 29 / 3600))
    for bad in ((0, 20), (100, -1), (float("nan"), 20)):
        with pytest.raises(InputError):
            bsa_mosteller(*bad)


@pytest.mark.parametrize(("freq", "n"), [("daily", 1), ("BID", 2), ("q12h", 2), ("tid", 3), ("weekly", None),
                                         (None, None)])
def test_frequency(freq: str | None, n: int | None) -> None:
    assert doses_per_day(freq) == n
    med = Medication(name="sirolimus", dose_mg=1.5, frequency=freq)
    assert daily_dose_mg(med) == (None if n is None else 1.5 * n)


def test_starting_dose_as_teachey_2009_gave_it() -> None:
    # Teachey 2009: 2-3 mg/m2/day, rounded to the nearest 0.5 mg, maximum initial dose 4 mg
    d = sirolimus_starting_dose(1.2)
    assert (d["mg_per_day_low"], d["mg_per_day_high"]) == (2.5, 3.5)  # 2.4 -> 2.5, 3.6 -> 3.5
    assert d["capped"] is False
    assert all(x["citation"] == "teachey2009" for x in d["settings"])
    assert d["settings"][0]["label"].startswith("Teachey 2009")


@pytest.mark.parametrize(
    ("bsa", "low", "high", "capped"),
    [
        (1.125, 2.5, 3.5, False),  # 2.25 and 3.375: an exact half rounds up
        (1.124, 2.0, 3.5, False),  # 2.248 just below the half
        (4 / 3, 2.5, 4.0, False),  # 3 x 4/3 = 4.0: exactly at the 4 mg maximum, not capped
        (1.5, 3.0, 4.0, True),  # 4.5 -> capped at 4 mg
        (2.0, 4.0, 4.0, True),  # 4.0 and 6.0 -> both at most 4 mg
    ],
)
def test_starting_dose_rounding_and_initial_maximum(bsa: float, low: float, high: float, capped: bool) -> None:
    d = sirolimus_starting_dose(bsa)
    assert (d["mg_per_day_low"], d["mg_per_day_high"], d["capped"]) == (low, high, capped)


def test_starting_dose_site_override_and_bad_values() -> None:
    site = sirolimus_starting_dose(1.2, CareSettings({"sirolimus_start_mg_per_m2_day_low": 2.0,
                                                      "sirolimus_start_mg_per_m2_day_high": 2.0,
                                                      "sirolimus_start_rounding_mg": 0.1}))
    assert (site["mg_per_day_low"], site["mg_per_day_high"]) == (2.4, 2.4)
    assert [x["label"] for x in site["settings"][:3]] == ["site override"] * 3
    assert site["settings"][3]["citation"] == "teachey2009"  # the 4 mg maximum is still the published one
    with pytest.raises(InputError, match="sirolimus_start_mg_per_m2_day_high"):
        CareSettings({"sirolimus_start_mg_per_m2_day_high": 1.5})  # below the default low of 2
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError):
            sirolimus_starting_dose(bad)


def test_mmf_dose() -> None:
    d = mmf_dose(1.5)
    assert (d["mg_per_dose"], d["doses_per_day"], d["mg_per_day"]) == (900, 2, 1800)


@pytest.mark.parametrize(
    ("value", "status"),
    [(3.99, "low"), (4.0, "in_range"), (9.5, "in_range"), (15.0, "in_range"), (15.01, "high")],
)
def test_trough_boundaries(value: float, status: str) -> None:
    # Teachey 2009: steady-state trough 4-15 ng/mL, both limits in range
    ta = assess_trough(case([("2025-05-01", value)]))
    assert ta is not None and ta.status == status and (ta.low, ta.high) == (4.0, 15.0)
    if status == "in_range":
        assert ta.suggested_daily_mg is None
    else:  # proportional to the middle of 4-15: 2 mg x 9.5 / value
        assert ta.suggested_daily_mg == pytest.approx(round(2.0 * 9.5 / value, 1))


def test_proportional_dose_rounding_and_cap() -> None:
    assert proportional_dose(2.0, 4.0, 10.0) == pytest.approx(5.0)
    assert proportional_dose(3.0, 20.0, 10.0) == pytest.approx(1.5)
    assert proportional_dose(30.0, 2.0, 10.0, max_daily_mg=40) == 40  # labelled maximum 40 mg/day
    with pytest.raises(InputError):
        proportional_dose(2.0, 0.0, 10.0)


def test_steady_state_boundary_no_adjustment_before_seven_days() -> None:
    meds = [{"name": "sirolimus", "dose_mg": 2.0, "frequency": "daily", "start": "2025-04-24"}]
    early = assess_trough(case([("2025-04-30", 3.0)], meds))  # 6 days on the dose
    assert early is not None and early.steady_state is False and early.suggested_daily_mg is None
    at = assess_trough(case([("2025-05-01", 3.0)], meds))  # 7 days: steady state per the label
    assert at is not None and at.steady_state is True and at.suggested_daily_mg == pytest.approx(6.3)  # 2 x 9.5 / 3


def test_trough_drifting_out_of_range_longitudinal() -> None:
    c = case([("2025-02-01", 8.0), ("2025-03-01", 11.0), ("2025-04-01", 14.0), ("2025-05-01", 17.5)])
    ta = assess_trough(c)
    assert ta is not None and ta.status == "high" and ta.drifted_from is not None
    assert ta.drifted_from.isoformat() == "2025-05-01"
    item = next(i for i in care_items(c) if i.id == "dosing.sirolimus_trough")
    assert "drifted out of range on 2025-05-01" in item.message and item.severity == "warning"
    assert item.citation == "rapamune_label" and item.evidence[0]["value"] == 17.5
    # the same case one month earlier: still in range
    earlier = assess_trough(c.at(__import__("datetime").date(2025, 4, 15)))
    assert earlier is not None and earlier.status == "in_range"


def test_missing_trough_on_sirolimus_is_flagged() -> None:
    ids = [i.id for i in care_items(case([]))]
    assert "dosing.sirolimus_trough_missing" in ids


def test_dosing_items_need_height_and_weight() -> None:
    without = {i.id for i in care_items(case([("2025-05-01", 8.0)]))}
    assert "dosing.bsa" not in without and "dosing.sirolimus_trough" in without
    withbsa = care_items(case([("2025-05-01", 8.0)], height_cm=132, weight_kg=29))
    start = next(i for i in withbsa if i.id == "dosing.sirolimus_start")
    bsa = math.sqrt(132 * 29 / 3600)  # 1.0327 m2: 2.07 -> 2.0 mg, 3.10 -> 3.0 mg
    assert (start.details["mg_per_day_low"], start.details["mg_per_day_high"]) == (2.0, 3.0)
    assert start.details["bsa_m2"] == pytest.approx(bsa)
    assert "sirolimus 2-3 mg/day" in start.message and "Teachey 2009" in start.message
    assert start.citation == "teachey2009" and "convention" not in start.message


def test_site_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "care.yaml"
    f.write_text("settings:\n  sirolimus_trough_low: 4\n  sirolimus_trough_high: 12\n", encoding="utf-8")
    monkeypatch.setenv(CARE_SETTINGS_ENV, str(f))
    item = next(i for i in care_items(case([("2025-05-01", 13.0)])) if i.id == "dosing.sirolimus_trough")
    assert "above the target 4-12" in item.message and "site override" in item.message
    assert item.settings[0]["label"] == "site override"


@pytest.mark.parametrize(
    ("text", "field"),
    [("settings:\n  nonsense: 3\n", "nonsense"), ("settings:\n  sirolimus_trough_low: -1\n", "sirolimus_trough_low"),
     ("settings:\n  sirolimus_trough_low: 20\n", "sirolimus_trough_high"), ("- a\n", CARE_SETTINGS_ENV),
     ("settings:\n  mmf_doses_per_day: 2.5\n", "mmf_doses_per_day"),
     ("settings:\n  hb_confirm_days: true\n", "hb_confirm_days"),
     ("settings: [\n", CARE_SETTINGS_ENV)],
)
def test_bad_site_settings(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "care.yaml"
    f.write_text(text, encoding="utf-8")
    import os

    os.environ[CARE_SETTINGS_ENV] = str(f)
    try:
        with pytest.raises(InputError) as exc:
            CareSettings.from_env()
        assert field in str(exc.value)
    finally:
        del os.environ[CARE_SETTINGS_ENV]


def test_missing_settings_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CARE_SETTINGS_ENV, "/nonexistent/care.yaml")
    with pytest.raises(InputError, match="not found"):
        CareSettings.from_env()


def test_dose_suggestions_only_for_candidates() -> None:
    healthy = case([], meds=[], height_cm=132, weight_kg=29)
    assert not any(i.id.startswith("dosing.") for i in care_items(healthy))
    cyto = case([], meds=[], height_cm=132, weight_kg=29, findings={"autoimmune_cytopenias": ["thrombocytopenia"]})
    ids = {i.id for i in care_items(cyto)}
    assert {"dosing.bsa", "dosing.sirolimus_start", "dosing.mmf"} <= ids
    start = next(i for i in care_items(cyto) if i.id == "dosing.sirolimus_start")
    assert start.message.startswith("Starting dose by BSA")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=80, deadline=None)
@given(st.floats(0.5, 10), st.floats(0.5, 40))
def test_proportional_suggestion_moves_the_predicted_trough_to_the_middle(dose: float, trough: float) -> None:
    meds = [{"name": "sirolimus", "dose_mg": dose, "frequency": "daily", "start": "2025-01-01"}]
    ta = assess_trough(case([("2025-05-01", trough)], meds))
    assert ta is not None
    if 4 <= trough <= 15:
        assert ta.status == "in_range" and ta.suggested_daily_mg is None
        return
    assert ta.suggested_daily_mg is not None
    predicted = trough * ta.suggested_daily_mg / dose  # linear kinetics
    if ta.suggested_daily_mg < 40:  # not capped by the labelled maximum
        assert abs(predicted - 9.5) <= trough * 0.05 / dose + 1e-9  # within the 0.1 mg rounding
    assert (ta.suggested_daily_mg > dose) is (trough < 4)


def test_renamed_starting_dose_setting_still_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A site file from before the cited 2-3 mg/m2/day range keeps its single chosen dose.
    f = tmp_path / "care.yaml"
    f.write_text("settings:\n  sirolimus_start_mg_per_m2_day: 2.5\n", encoding="utf-8")
    monkeypatch.setenv(CARE_SETTINGS_ENV, str(f))
    s = CareSettings.from_env()
    assert s.get("sirolimus_start_mg_per_m2_day_low") == 2.5
    assert s.get("sirolimus_start_mg_per_m2_day_high") == 2.5
    assert s.label("sirolimus_start_mg_per_m2_day_low") == "site override"
    explicit = CareSettings({"sirolimus_start_mg_per_m2_day": 2.5, "sirolimus_start_mg_per_m2_day_high": 3.0})
    assert explicit.get("sirolimus_start_mg_per_m2_day_high") == 3.0  # the new name wins


def test_settings_file_is_read_again_after_a_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "care.yaml"
    f.write_text("settings:\n  sirolimus_trough_high: 12\n", encoding="utf-8")
    monkeypatch.setenv(CARE_SETTINGS_ENV, str(f))
    assert CareSettings.from_env().get("sirolimus_trough_high") == 12
    f.write_text("settings:\n  sirolimus_trough_high: 14.5\n", encoding="utf-8")
    import os

    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000_000))
    assert CareSettings.from_env().get("sirolimus_trough_high") == 14.5
