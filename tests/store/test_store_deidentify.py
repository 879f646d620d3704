"""De-identified cohort export: identifiers removed, dates shifted per patient, answers unchanged."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from random import Random
from typing import Any

import pytest

from alpsdx.engine import assess
from alpsdx.model import DAYS_PER_YEAR, Case, case_from_dict, load_case
from alpsdx.store import Actor, Registry
from alpsdx.store.deidentify import (
    MAX_SHIFT_DAYS,
    MIN_SHIFT_DAYS,
    deidentify_case,
    deidentify_cohort,
    shift_days,
)

EXAMPLES = ["case-001-alps-fas-definitive.json", "case-002-alps-sfas-definitive.json",
            "case-006-probable-biomarkers.json", "case-007-not-met-not-chronic.json"]


def _dates(obj: Any, path: str = "") -> dict[str, str]:
    """Every ISO date string in a case-format dict, by JSON path."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_dates(v, f"{path}.{k}"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_dates(v, f"{path}[{i}]"))
    elif isinstance(obj, str) and len(obj) == 10 and obj[4] == "-" and obj[7] == "-":
        out[path] = obj
    return out


def _rich_case() -> Case:
    return case_from_dict({
        "id": "MRN-77-0042", "sex": "female", "birth_date": "2014-02-03", "evaluation_date": "2025-06-01",
        "findings": {"lymphadenopathy": {"present": True, "onset": "2024-01-10", "date": "2025-05-01"}},
        "observations": [{"analyte": "igg", "value": 1900, "unit": "mg/dL", "date": "2025-05-20", "source": "St Elsewhere lab #4471"}],
        "apoptosis_assays": [{"result": "defective", "date": "2025-02-01", "lab": "Dr Smith's lab"}],
        "variants": [{"gene": "FAS", "hgvs_c": "NM_000043.6:c.779A>G", "sample": "Tube 2025-0042 (J. Doe)",
                      "source": "report 5512", "date": "2025-03-03"},
                     {"gene": "FAS", "hgvs_c": "NM_000043.6:c.794A>G", "sample": "sorted_dnt"}],
        "medications": [{"name": "sirolimus", "start": "2025-03-01", "end": "2025-05-30"}],
        "clinical_events": [{"kind": "node_size", "date": "2025-04-04", "value": 2.5, "unit": "cm", "site": "cervical",
                             "note": "seen by Dr Jones at home"}],
    }, "test")


def test_every_date_moves_by_the_same_shift_and_free_text_goes() -> None:
    case = _rich_case()
    before = _dates(case.to_json_dict())
    out = deidentify_case(case, pseudonym="deid-0000000001", shift=-400)
    after = _dates(out)
    assert set(after) == set(before)  # no date dropped or added
    for path, iso in before.items():
        assert dt.date.fromisoformat(after[path]) == dt.date.fromisoformat(iso) - dt.timedelta(days=400), path
    assert out["id"] == "deid-0000000001"
    text = json.dumps(out)
    for secret in ("MRN-77-0042", "St Elsewhere", "Smith", "J. Doe", "5512", "Jones"):
        assert secret not in text
    assert [v.get("sample") for v in out["variants"]] == [None, "sorted_dnt"]  # vocabulary word kept
    assert out["clinical_events"][0]["site"] == "cervical"
    assert out["observations"][0]["value"] == 1900 and out["observations"][0]["unit"] == "mg/dL"
    case_from_dict(out, "output")  # still a valid case file


def test_undated_case_gets_the_shifted_evaluation_date() -> None:
    case = case_from_dict({"id": "x", "age_years": 4.0,
                           "observations": [{"analyte": "igg", "value": 9, "unit": "g/L"}]}, "t")
    out = deidentify_case(case, pseudonym="deid-1", shift=-365, as_of=dt.date(2025, 1, 10))
    assert out["evaluation_date"] == "2024-01-11"
    assert out["age_years"] == 4.0 and "date" not in out["observations"][0]


@pytest.mark.parametrize(("age_days_offset", "capped"), [(0, True), (-1, False)])
def test_ages_of_90_and_over_are_capped(age_days_offset: int, capped: bool) -> None:
    as_of = dt.date(2025, 6, 1)
    days = math.ceil(90 * DAYS_PER_YEAR) + age_days_offset  # exactly 90 years, then one day short
    birth = as_of - dt.timedelta(days=days)
    case = Case(id="old", birth_date=birth, evaluation_date=as_of)
    assert (case.age >= 90) is capped
    out = deidentify_case(case, pseudonym="deid-2", shift=-500)
    if capped:
        assert "birth_date" not in out and out["age_years"] == 90.0
    else:
        assert out["birth_date"] == (birth - dt.timedelta(days=500)).isoformat()


def test_shift_must_be_into_the_past() -> None:
    with pytest.raises(ValueError):
        deidentify_case(Case(id="x"), pseudonym="p", shift=0)
    rng = Random(7)
    shifts = [shift_days(rng) for _ in range(500)]
    assert all(-MAX_SHIFT_DAYS <= s <= -MIN_SHIFT_DAYS for s in shifts)
    assert len(set(shifts)) > 100  # really random per patient, not one global offset


@pytest.mark.parametrize("name", EXAMPLES)
def test_deidentified_case_gets_the_same_answer(name: str, repo_examples: Path) -> None:
    case = load_case(repo_examples / name)
    out = deidentify_case(case, pseudonym="deid-3", shift=-(MAX_SHIFT_DAYS - 3), as_of=case.as_of)
    a = assess(case, criteria="all")
    b = assess(case_from_dict(out, "deid"), criteria="all")
    assert (b["category"], b["subtype"]) == (a["category"], a["subtype"])
    assert [(c["id"], c["status"]) for c in b["criteria"]] == [(c["id"], c["status"]) for c in a["criteria"]]
    assert [(o["criteria_set"], o["category"]) for o in b["other_sets"]] == \
        [(o["criteria_set"], o["category"]) for o in a["other_sets"]]


def test_cohort_export_from_the_registry(registry: Registry, repo_examples: Path) -> None:
    originals = {}
    for name in EXAMPLES[:3]:
        case = load_case(repo_examples / name)
        originals[registry.save_case(case)] = case
    who = Actor("cli:researcher", "cli", "localhost")
    rows = deidentify_cohort(registry.export_records(who, purpose="deidentified_cohort"), rng=Random(11))
    assert len(rows) == 3
    ids = [r["case"]["id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == 3 and all(i.startswith("deid-") for i in ids)
    text = json.dumps(rows)
    for case in originals.values():
        assert case.id not in text
    # Match each output row to its patient by content; check its own shift is consistent.
    by_ev = {}
    for pid, case in originals.items():
        key = sorted((o.analyte, o.value) for o in case.observations)
        by_ev[json.dumps(key)] = (pid, case)
    shifts = set()
    for r in rows:
        pid, case = by_ev[json.dumps(sorted((o["analyte"], o["value"]) for o in r["case"]["observations"]))]
        orig, new = _dates(case.to_json_dict()), _dates(r["case"])
        deltas = {(dt.date.fromisoformat(new[p]) - dt.date.fromisoformat(orig[p])).days for p in orig}
        assert len(deltas) == 1
        (delta,) = deltas
        assert -MAX_SHIFT_DAYS <= delta <= -MIN_SHIFT_DAYS
        shifts.add(delta)
        ev = r["evaluation"]
        stored = registry.evaluations(pid)[0]
        assert (ev["category"], ev["subtype"], ev["kb_version"]) == (stored["category"], stored["subtype"], stored["kb_version"])
        assert dt.date.fromisoformat(ev["evaluation_date"]) == dt.date.fromisoformat(stored["evaluation_date"]) + dt.timedelta(days=delta)
        assert set(ev["other_sets"]) == {"nih1999", "seif2008", "esid"}
    assert len(shifts) == 3
    exports = [a for a in registry.audit_rows(limit=50) if a["action"] == "export"]
    assert sorted(a["patient_id"] for a in exports) == sorted(originals)
    assert all(a["actor"] == "cli:researcher" for a in exports)


def test_shifted_dates_property() -> None:
    """Any dated case, any allowed shift: every date moves by exactly the shift, none is dropped,
    the output is a valid case file (so no date lands in the future) and ages are unchanged."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    today = dt.date.today()
    days = st.integers(min_value=0, max_value=40 * 365)

    @settings(max_examples=40, deadline=None, database=None)
    @given(birth_ago=days, obs_ago=st.lists(days, max_size=4), shift=st.integers(MIN_SHIFT_DAYS, MAX_SHIFT_DAYS))
    def check(birth_ago: int, obs_ago: list[int], shift: int) -> None:
        birth = today - dt.timedelta(days=birth_ago)
        observations = [{"analyte": "igg", "value": 9.0, "unit": "g/L",
                         "date": (today - dt.timedelta(days=min(a, birth_ago))).isoformat()} for a in obs_ago]
        case = case_from_dict({"id": "prop", "birth_date": birth.isoformat(), "evaluation_date": today.isoformat(),
                               "observations": observations}, "t")
        out = deidentify_case(case, pseudonym="deid-p", shift=-shift)
        before, after = _dates(case.to_json_dict()), _dates(out)
        if case.age is not None and case.age >= 90:
            before.pop(".birth_date")
        assert set(after) == set(before)
        for path, iso in before.items():
            assert (dt.date.fromisoformat(iso) - dt.date.fromisoformat(after[path])).days == shift
        back = case_from_dict(out, "out")
        assert back.age == case.age or (case.age is not None and case.age >= 90 and back.age == 90.0)

    check()
