"""Splenectomy safety reminders and lymphoma surveillance: risk by genotype, imaging schedule,
and each alert at its boundary (B symptoms, rapid enlargement, dominant node, PET rise)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from alpsdx.care import care_items
from alpsdx.care.safety import safety_items
from alpsdx.care.settings import CARE_SETTINGS_ENV
from alpsdx.care.surveillance import lymphoma_risk, surveillance_items
from alpsdx.model import case_from_dict


@pytest.fixture(autouse=True)
def _no_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CARE_SETTINGS_ENV, raising=False)


def case(events: list[dict[str, Any]] = (), **kw: Any) -> Any:
    base: dict[str, Any] = {"id": "t", "sex": "male", "birth_date": "2012-01-01", "evaluation_date": "2025-06-01",
                            "clinical_events": list(events)}
    base.update(kw)
    return case_from_dict(base)


def ids(items: list[Any]) -> set[str]:
    return {i.id for i in items}


# --- splenectomy ------------------------------------------------------------------------------
def test_asplenic_reminders_name_what_is_missing() -> None:
    c = case([{"kind": "splenectomy", "date": "2020-01-01"},
              {"kind": "vaccination", "site": "PCV13", "date": "2019-12-01"},
              {"kind": "vaccination", "site": "MenACWY", "date": "2019-12-01"}])
    item = next(i for i in safety_items(c) if i.id == "safety.asplenia")
    assert item.citation == "genereviews_alps" and "lee2020_asplenia" in item.extra_citations
    missing = item.details["vaccines_not_recorded"]
    assert not any("pneumococcal" in m for m in missing) and not any("ACWY" in m for m in missing)
    assert any("meningococcal B" in m for m in missing) and any("Haemophilus" in m for m in missing)
    assert item.details["prophylaxis_recorded"] is False and "penicillin prophylaxis" in item.message
    assert item.severity == "warning"


def test_asplenic_with_everything_recorded_is_info() -> None:
    ev = [{"kind": "vaccination", "site": s, "date": "2019-12-01"} for s in
          ("PCV13 then PPSV23", "MenACWY", "MenB", "Hib", "influenza")]
    ev.append({"kind": "antibiotic_prophylaxis", "site": "penicillin V", "date": "2020-01-02"})
    c = case(ev, findings={"splenectomy": True})
    item = next(i for i in safety_items(c) if i.id == "safety.asplenia")
    assert item.severity == "info" and item.details["vaccines_not_recorded"] == []


def test_no_spleen_reminder_without_splenectomy() -> None:
    assert safety_items(case([])) == [] and safety_items(case([], findings={"splenectomy": False})) == []


def test_proposed_splenectomy_warning() -> None:
    items = safety_items(case([{"kind": "splenectomy_proposed", "date": "2025-05-01"}]))
    w = next(i for i in items if i.id == "safety.splenectomy_proposed")
    assert w.citation == "price2014" and w.severity == "alert" and "post-splenectomy sepsis" in w.message
    assert "teachey_review2012" in w.extra_citations
    done = case([{"kind": "splenectomy_proposed", "date": "2025-05-01"}, {"kind": "splenectomy", "date": "2025-05-10"}])
    assert "safety.splenectomy_proposed" not in ids(safety_items(done))


# --- lymphoma risk ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variant", "category"),
    [({"gene": "FAS", "hgvs_p": "p.Asp260Gly", "origin": "germline", "classification": "pathogenic"}, "highest"),
     ({"gene": "FAS", "hgvs_p": "p.Cys107Tyr", "origin": "germline", "classification": "pathogenic"}, "elevated"),
     ({"gene": "FAS", "hgvs_p": "p.Asp260Gly", "origin": "somatic", "classification": "pathogenic"},
      "not_established"),
     ({"gene": "FAS", "hgvs_p": "p.Asp260Gly", "origin": "germline", "classification": "vus"}, "unknown")],
)
def test_risk_category_from_genotype(variant: dict[str, Any], category: str) -> None:
    r = lymphoma_risk(case(variants=[variant]))
    assert r["category"] == category
    if category in ("highest", "elevated"):
        assert "straus2001" in r["citations"] and "x14" in r["text"] and "x51" in r["text"]


def test_intracellular_boundary_residue_191() -> None:
    # UniProt P25445: cytoplasmic 191-335, transmembrane 174-190
    at = lymphoma_risk(case(variants=[{"gene": "FAS", "hgvs_p": "p.Arg191Ter", "origin": "germline",
                                       "classification": "pathogenic"}]))
    below = lymphoma_risk(case(variants=[{"gene": "FAS", "hgvs_p": "p.Leu190Pro", "origin": "germline",
                                          "classification": "pathogenic"}]))
    assert at["category"] == "highest" and below["category"] != "highest"


def test_surveillance_schedule_due_and_overdue() -> None:
    base = [{"kind": "node_size", "site": "cervical", "value": 2.0, "unit": "cm", "date": "2024-06-01"}]
    due_today = case(base, evaluation_date="2025-06-01")
    item = next(i for i in surveillance_items(due_today) if i.id == "surveillance.lymphoma")
    assert item.details["next_imaging_due"] == "2025-06-01" and "OVERDUE" not in item.message
    late = case(base, evaluation_date="2025-06-02")
    item = next(i for i in surveillance_items(late) if i.id == "surveillance.lymphoma")
    assert "OVERDUE" in item.message and item.severity == "warning"
    assert surveillance_items(case([])) == []  # nothing to watch: no FAS variant, no lymphoproliferation
    lp = case([], findings={"lymphadenopathy": {"present": True}})
    none = next(i for i in surveillance_items(lp) if i.id == "surveillance.lymphoma")
    assert "baseline imaging" in none.message and none.citation == "teachey_review2012"
    assert none.severity == "info" and none.details["risk_category"] == "unknown"
    fas = case([], variants=[{"gene": "FAS", "hgvs_p": "p.Asp260Gly", "origin": "germline",
                              "classification": "pathogenic"}])
    item = next(i for i in surveillance_items(fas) if i.id == "surveillance.lymphoma")
    assert item.severity == "warning" and "baseline imaging" in item.message


# --- alerts -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("date", "alert"), [("2025-03-03", True), ("2025-03-02", False)])
def test_b_symptoms_recent_window(date: str, alert: bool) -> None:
    # 90 days before 2025-06-01 is 2025-03-03
    assert (dt.date(2025, 6, 1) - dt.date.fromisoformat(date)).days == (90 if alert else 91)
    c = case([{"kind": "b_symptoms", "date": date, "note": "drenching night sweats"}])
    assert ("surveillance.b_symptoms" in ids(surveillance_items(c))) is alert


@pytest.mark.parametrize(("size", "alert"), [(3.0, True), (2.99, False)])
def test_rapid_enlargement_at_fifty_percent(size: float, alert: bool) -> None:
    c = case([{"kind": "node_size", "site": "cervical", "value": 2.0, "unit": "cm", "date": "2025-01-01"},
              {"kind": "node_size", "site": "cervical", "value": size, "unit": "cm", "date": "2025-05-01"}])
    found = [i for i in surveillance_items(c) if i.id.startswith("surveillance.rapid_enlargement")]
    assert bool(found) is alert
    if alert:
        assert "Consider biopsy of that node" in found[0].message and found[0].details["site"] == "cervical"


def test_rapid_enlargement_window_six_months() -> None:
    inside = case([{"kind": "node_size", "site": "c", "value": 2.0, "unit": "cm", "date": "2024-12-01"},
                   {"kind": "node_size", "site": "c", "value": 4.0, "unit": "cm", "date": "2025-06-01"}])  # 182 days
    outside = case([{"kind": "node_size", "site": "c", "value": 2.0, "unit": "cm", "date": "2024-11-29"},
                    {"kind": "node_size", "site": "c", "value": 4.0, "unit": "cm", "date": "2025-06-01"}])  # 184 days
    assert any(i.id.startswith("surveillance.rapid") for i in surveillance_items(inside))
    assert not any(i.id.startswith("surveillance.rapid") for i in surveillance_items(outside))


@pytest.mark.parametrize(("top", "alert"), [(3.0, True), (2.99, False)])
def test_dominant_node_ratio(top: float, alert: bool) -> None:
    c = case([{"kind": "node_size", "site": "a", "value": top, "unit": "cm", "date": "2025-05-01"},
              {"kind": "node_size", "site": "b", "value": 2.0, "unit": "cm", "date": "2025-05-01"}])
    assert any(i.id == "surveillance.dominant_node.a" for i in surveillance_items(c)) is alert


@pytest.mark.parametrize(("suv", "alert"), [(13.0, True), (12.99, False)])
def test_pet_rise_against_own_earlier_scans(suv: float, alert: bool) -> None:
    c = case([{"kind": "pet_suv", "site": "a", "value": 10.0, "date": "2024-06-01"},
              {"kind": "pet_suv", "site": "b", "value": 8.0, "date": "2024-06-01"},
              {"kind": "pet_suv", "site": "b", "value": suv, "date": "2025-05-01"}])
    items = surveillance_items(c)
    pet = [i for i in items if i.id.startswith("surveillance.pet")]
    assert len(pet) == 1
    assert (pet[0].id == "surveillance.pet_avid.b") is alert
    # every PET item says that no fixed SUV cut-off decides, with Carrasquillo's source
    assert "no fixed SUV cut-off" in pet[0].message
    assert "carrasquillo2019" in (pet[0].citation, *pet[0].extra_citations)


def test_high_first_pet_alone_raises_no_alert() -> None:
    # SUV 30 is above every published median, yet with no earlier scan nothing is compared
    items = surveillance_items(case([{"kind": "pet_suv", "site": "a", "value": 30.0, "date": "2025-05-01"}]))
    assert [i.id for i in items if i.id.startswith("surveillance.pet")] == ["surveillance.pet_caveat"]


def test_every_item_has_the_contract_keys() -> None:
    c = case([{"kind": "splenectomy", "date": "2020-01-01"}, {"kind": "b_symptoms", "date": "2025-05-01"}],
             variants=[{"gene": "FAS", "hgvs_p": "p.Asp260Gly", "origin": "germline",
                        "classification": "pathogenic"}],
             observations=[{"analyte": "platelets", "value": 50, "unit": "10*9/L", "date": "2025-05-01"}])
    for item in care_items(c):
        d = item.to_dict()
        for key in ("id", "message", "evidence", "citation", "citation_text", "disclaimer"):
            assert key in d
        assert "does not replace" in d["disclaimer"]


@pytest.mark.parametrize(
    ("event", "field"),
    [({"kind": "node_size", "site": "a", "value": 2.0, "unit": "inch", "date": "2025-01-01"}, "clinical_events[0].unit"),
     ({"kind": "node_size", "site": "a", "value": 2.0, "date": "2025-01-01"}, "clinical_events[0].unit"),
     ({"kind": "node_size", "site": "a", "unit": "cm", "date": "2025-01-01"}, "clinical_events[0].value"),
     ({"kind": "pet_suv", "site": "a", "value": 9.0}, "clinical_events[0].date"),
     ({"kind": "pet_suv", "site": "a", "value": 9.0, "unit": "mg", "date": "2025-01-01"}, "clinical_events[0].unit"),
     ({"kind": "b_symptoms", "note": "fever"}, "clinical_events[0].date")],
)
def test_unusable_events_are_typed_errors(event: dict[str, Any], field: str) -> None:
    from alpsdx.errors import InputError

    with pytest.raises(InputError) as exc:
        care_items(case([event]))
    assert exc.value.field == field


def test_mm_and_cm_compare() -> None:
    c = case([{"kind": "node_size", "site": "a", "value": 20, "unit": "mm", "date": "2025-01-01"},
              {"kind": "node_size", "site": "a", "value": 3.0, "unit": "cm", "date": "2025-05-01"}])
    alert = next(i for i in surveillance_items(c) if i.id.startswith("surveillance.rapid"))
    assert alert.details["from_cm"] == pytest.approx(2.0) and alert.details["to_cm"] == pytest.approx(3.0)
