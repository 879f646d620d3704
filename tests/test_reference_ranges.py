"""Reference ranges: every cited band, its boundaries, and the site-laboratory override."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpsdx import knowledge
from alpsdx.errors import InputError
from alpsdx.reference_ranges import SITE_RANGES_ENV, classify_value, reference_range

MONTH = 1 / 12


@pytest.fixture(autouse=True)
def _no_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SITE_RANGES_ENV, raising=False)


def test_every_cited_band_has_a_known_citation() -> None:
    data = knowledge.load("reference_ranges")["ranges"]
    for analyte, rows in data.items():
        for row in rows:
            assert knowledge.citation(row["citation"])["text"], (analyte, row)


# (age in years, sex, expected lower cut-off g/dL) — WHO 2024
@pytest.mark.parametrize(
    ("age", "sex", "low"),
    [
        (0.5, None, 10.5),
        (23.9 * MONTH, None, 10.5),
        (2.0, None, 11.0),
        (4.99, None, 11.0),
        (5.0, None, 11.5),
        (11.99, None, 11.5),
        (12.0, None, 12.0),
        (14.99, "male", 12.0),
        (15.0, "female", 12.0),
        (15.0, "male", 13.0),
        (40.0, "male", 13.0),
    ],
)
def test_hemoglobin_bands(age: float, sex: str | None, low: float) -> None:
    r = reference_range("hemoglobin", age, sex)
    assert r is not None and r.low == low and r.high is None and r.citation == "who2024_anaemia"
    assert classify_value("hemoglobin", low - 0.01, age, sex)[0] == "low"  # type: ignore[index]
    assert classify_value("hemoglobin", low, age, sex)[0] == "normal"  # type: ignore[index]
    assert classify_value("hemoglobin", low + 0.01, age, sex)[0] == "normal"  # type: ignore[index]


def test_hemoglobin_uncovered() -> None:
    assert reference_range("hemoglobin", 0.49, None) is None  # under 6 months: no WHO cut-off
    assert reference_range("hemoglobin", 30, None) is None  # adult of unknown sex
    assert reference_range("hemoglobin", 30, "other") is None
    assert reference_range("hemoglobin", None, "male") is None


@pytest.mark.parametrize(("age", "low"), [(3 / 365.25, 5.0), (0.1, 1.0), (0.99, 1.0), (1.0, 1.5), (60, 1.5)])
def test_anc_bands(age: float, low: float) -> None:
    r = reference_range("anc", age)
    assert r is not None and r.low == low
    assert classify_value("anc", low - 0.001, age)[0] == "low"  # type: ignore[index]
    assert classify_value("anc", low, age)[0] == "normal"  # type: ignore[index]


def test_platelets_itp_threshold() -> None:
    for age in (0.0, 4.0, 70.0):
        assert classify_value("platelets", 99.9, age)[0] == "low"  # type: ignore[index]
        assert classify_value("platelets", 100.0, age)[0] == "normal"  # type: ignore[index]
        assert classify_value("platelets", 100.1, age)[1].citation == "rodeghiero2009"  # type: ignore[index]


@pytest.mark.parametrize(
    ("months", "low", "high"),
    [(0, 5.4, 7.2), (6, 5.3, 6.7), (12, 4.9, 5.9), (18, 4.4, 5.5), (24, 3.9, 5.2), (30, 3.3, 5.1), (35.9, 3.3, 5.1)],
)
def test_lymphocytes_kotylo(months: float, low: float, high: float) -> None:
    age = months / 12
    r = reference_range("lymphocytes_abs", age)
    assert r is not None and (r.low, r.high) == (low, high) and r.citation == "kotylo1993"
    assert classify_value("lymphocytes_abs", low - 0.01, age)[0] == "low"  # type: ignore[index]
    assert classify_value("lymphocytes_abs", low, age)[0] == "normal"  # type: ignore[index]
    assert classify_value("lymphocytes_abs", high, age)[0] == "normal"  # type: ignore[index]
    assert classify_value("lymphocytes_abs", high + 0.01, age)[0] == "high"  # type: ignore[index]


@pytest.mark.parametrize(
    ("age", "low", "high"),
    [(3.0, 2.0, 8.0), (4.99, 2.0, 8.0), (5.0, 1.25, 7.0), (10.0, 1.25, 7.0), (17.99, 1.25, 7.0)],
)
def test_lymphocytes_3_to_18_years_iowa_handbook(age: float, low: float, high: float) -> None:
    """'2-5 years' 2000-8000 and '5-18 years' 1250-7000 cells/mm3, read as [3, 5) and [5, 18)."""
    for sex in ("male", "female", None):
        r = reference_range("lymphocytes_abs", age, sex)
        assert r is not None and r.citation == "uiowa_pediatric_normals" and r.unit == "10*9/L"
        assert (r.low, r.high) == pytest.approx((low, high))
    assert classify_value("lymphocytes_abs", low, age)[0] == "normal"  # type: ignore[index]
    assert classify_value("lymphocytes_abs", low - 0.001, age)[0] == "low"  # type: ignore[index]
    assert classify_value("lymphocytes_abs", high, age)[0] == "normal"  # type: ignore[index]
    assert classify_value("lymphocytes_abs", high + 0.001, age)[0] == "high"  # type: ignore[index]


def test_lymphocyte_bands_meet_without_gaps() -> None:
    """Kotylo to 36 months, the handbook from 36 months to 18 years, Chng 2004 (by sex) from 18."""
    assert reference_range("lymphocytes_abs", 35.99 / 12).citation == "kotylo1993"  # type: ignore[union-attr]
    assert reference_range("lymphocytes_abs", 3.0).citation == "uiowa_pediatric_normals"  # type: ignore[union-attr]
    assert reference_range("lymphocytes_abs", 18.0, "male").citation == "chng2004"  # type: ignore[union-attr]


@pytest.mark.parametrize(("sex", "low", "high"), [("male", 1.147, 3.727), ("female", 1.342, 3.859)])
def test_lymphocytes_adult_chng2004(sex: str, low: float, high: float) -> None:
    r = reference_range("lymphocytes_abs", 18.0, sex)
    assert r is not None and r.citation == "chng2004" and r.unit == "10*9/L"
    assert (r.low, r.high) == pytest.approx((low, high))  # Table 3 in cells/uL, converted
    assert classify_value("lymphocytes_abs", low, 40, sex)[0] == "normal"  # type: ignore[index]
    assert classify_value("lymphocytes_abs", low - 0.001, 40, sex)[0] == "low"  # type: ignore[index]
    assert classify_value("lymphocytes_abs", high, 40, sex)[0] == "normal"  # type: ignore[index]
    assert classify_value("lymphocytes_abs", high + 0.001, 40, sex)[0] == "high"  # type: ignore[index]
    assert reference_range("lymphocytes_abs", 40, None) is None  # the source gives ranges by sex only


@pytest.mark.parametrize(
    ("age", "low", "high"),
    [
        (0.0, 231, 1411), (0.99, 231, 1411), (1.0, 453, 916), (3.99, 453, 916), (4.0, 504, 1464),
        (7.0, 572, 1474), (10.0, 698, 1560), (12.0, 759, 1549), (14.0, 716, 1711), (16.0, 549, 1584),
        (19.99, 549, 1584), (20.0, 700, 1600), (80.0, 700, 1600),
    ],
)
def test_igg_bands(age: float, low: float, high: float) -> None:
    r = reference_range("igg", age, "female")
    assert r is not None and (r.low, r.high) == (low, high) and r.unit == "mg/dL"
    assert classify_value("igg", high, age)[0] == "normal"  # type: ignore[index]
    assert classify_value("igg", high + 1, age)[0] == "high"  # type: ignore[index]
    assert classify_value("igg", low - 1, age)[0] == "low"  # type: ignore[index]


def test_loinc_code_resolves() -> None:
    r = reference_range("2465-3", 8)
    assert r is not None and r.analyte == "igg"


def test_negative_age_refused() -> None:
    with pytest.raises(InputError):
        reference_range("igg", -1)


def test_site_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "site.yaml"
    f.write_text(
        "site: Test Lab\nranges:\n"
        "  igg:\n    - {age_min_months: 0, age_max_months: null, low: 6, high: 16, unit: 'g/L'}\n"
        "  lymphocytes_abs:\n    - {age_min_months: 36, age_max_months: null, sex: female, low: 1000, high: 4800, unit: '/uL'}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(SITE_RANGES_ENV, str(f))
    r = reference_range("igg", 8)
    assert r is not None and r.source == "site" and r.citation == "site_setting"
    assert (r.low, r.high) == pytest.approx((600.0, 1600.0))  # g/L -> mg/dL
    assert r.note is not None and "Test Lab" in r.note
    assert "site laboratory range" in r.describe()
    lym = reference_range("lymphocytes_abs", 10, "female")
    assert lym is not None and lym.low == pytest.approx(1.0) and lym.high == pytest.approx(4.8)
    male = reference_range("lymphocytes_abs", 10, "male")  # the site band is female only:
    assert male is not None and male.source == "cited" and male.citation == "uiowa_pediatric_normals"  # cited band
    # analytes the site does not list still use the cited ranges
    hb = reference_range("hemoglobin", 8)
    assert hb is not None and hb.source == "cited"


@pytest.mark.parametrize(
    "text",
    [
        "ranges: [1, 2]",
        "ranges:\n  igg:\n    - {low: 5, high: 1, unit: 'g/L'}",
        "ranges:\n  igg:\n    - {low: 5, high: 10, unit: 'kg'}",
        "ranges:\n  nonsense:\n    - {low: 5, high: 10}",
        "ranges:\n  igg:\n    - {age_min_months: 10, age_max_months: 5, low: 1}",
        "ranges: {igg: [{low: 1, sex: both}]}",
        ": : :",
    ],
)
def test_bad_site_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text, encoding="utf-8")
    monkeypatch.setenv(SITE_RANGES_ENV, str(f))
    with pytest.raises(InputError) as exc:
        reference_range("igg", 5)
    assert exc.value.field is not None


def test_missing_site_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(SITE_RANGES_ENV, str(tmp_path / "nope.yaml"))
    with pytest.raises(InputError, match="not found"):
        reference_range("igg", 5)
