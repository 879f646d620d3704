"""FHIR R4 import: Synthea-shaped bundles -> the domain model; warnings; typed errors."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from alpsdx.errors import FHIRError
from alpsdx.interop.fhir_import import bundle_to_case, resources_to_case


def _label(entry: dict[str, Any]) -> str:
    r = entry["resource"]
    return f"{r['resourceType']}/{r['id']}"


def _find(bundle: dict[str, Any], rtype: str, code: str) -> dict[str, Any]:
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] == rtype and any(c.get("code") == code for c in r.get("code", {}).get("coding", [])):
            return e
    raise AssertionError(f"{rtype} {code} not in bundle")


def test_synthea_bundle_maps_every_clinical_value(read_bundle: Any) -> None:
    bundle = read_bundle("synthea_alps_fas.json")
    case, _ = bundle_to_case(bundle)
    patient = bundle["entry"][0]["resource"]
    assert case.id == patient["id"]
    assert case.sex.value == "female"
    assert case.birth_date == dt.date.fromisoformat(patient["birthDate"])
    f = case.findings
    assert f.lymphadenopathy is not None and f.lymphadenopathy.present is True
    assert f.lymphadenopathy.onset == dt.date(2023, 12, 1)
    assert f.splenomegaly is not None and f.splenomegaly.present is True
    assert [c.value for c in f.autoimmune_cytopenias or []] == ["hemolytic_anemia", "thrombocytopenia"]
    assert f.family_history_lymphoproliferation is True
    obs = {(o.analyte, o.value, o.unit, o.date) for o in case.observations}
    when = dt.date(2025, 5, 20)
    assert ("dnt_pct_tcrab", 9.5, "%", when) in obs  # LOINC 80699-2
    assert ("dnt_pct_lymphocytes", 4.2, "%", when) in obs  # alpsdx analyte code
    assert ("sfasl", 820.0, "pg/mL", when) in obs
    assert ("lymphocytes_abs", 4.5, "10*3/uL", when) in obs  # original unit kept
    assert ("sirolimus_trough", 3.1, "ng/mL", dt.date(2025, 5, 29)) in obs
    assert {o.analyte for o in case.observations} == {
        "dnt_pct_tcrab", "dnt_pct_lymphocytes", "dnt_pct_cd3", "lymphocytes_abs", "igg", "vitamin_b12", "il10",
        "sfasl", "hemoglobin", "platelets", "sirolimus_trough"}
    (v,) = case.variants
    assert (v.gene, v.hgvs_c, v.hgvs_p, v.origin, v.zygosity, v.classification, v.vaf) == (
        "FAS", "NM_000043.6:c.779A>G", "p.Asp260Gly", "germline", "heterozygous", "pathogenic", 0.47)
    (m,) = case.medications
    assert (m.name, m.dose_mg, m.frequency, m.start) == ("sirolimus", 1.0, "twice daily", dt.date(2025, 3, 3))
    assert [(e.kind, e.date, e.note) for e in case.clinical_events] == [("b_symptoms", dt.date(2025, 5, 12), "fever")]
    assert (case.height_cm, case.weight_kg) == (132.0, 29.0)  # the newest of two measurements


def test_nothing_is_dropped_silently(read_bundle: Any) -> None:
    """Each entry either changes the imported case when removed, or is named in a warning."""
    bundle = read_bundle("synthea_alps_fas.json")
    full, warnings = bundle_to_case(bundle)
    text = "\n".join(str(w) for w in warnings)
    for i, entry in enumerate(bundle["entry"]):
        if entry["resource"]["resourceType"] == "Patient":
            continue
        reduced = copy.deepcopy(bundle)
        del reduced["entry"][i]
        case, _ = bundle_to_case(reduced)
        assert case != full or _label(entry) in text, f"{_label(entry)} vanished without a warning"


def test_unmapped_content_is_listed(read_bundle: Any) -> None:
    bundle = read_bundle("synthea_alps_fas.json")
    _, warnings = bundle_to_case(bundle)
    by_resource = {w.resource: w for w in warnings}
    bmi = _find(bundle, "Observation", "39156-5")
    assert "Body mass index" in by_resource[_label(bmi)].message
    sinusitis = _find(bundle, "Condition", "444814009")
    assert by_resource[_label(sinusitis)].path == "code"
    assert "2 Encounter resource(s)" in by_resource["Encounter"].message
    assert "Immunization" in by_resource


def test_searchset_evans_and_unqualified_neutropenia(read_bundle: Any) -> None:
    bundle = read_bundle("searchset_dnt_missing.json")
    case, warnings = bundle_to_case(bundle)
    # Evans syndrome (D69.41) = AIHA + ITP; D70.9 says nothing about autoimmunity: a warning, not a lineage.
    assert [c.value for c in case.findings.autoimmune_cytopenias or []] == ["hemolytic_anemia", "thrombocytopenia"]
    d70 = _find(bundle, "Condition", "D70.9")
    assert any(w.resource == _label(d70) and "not coded as autoimmune" in w.message for w in warnings)
    assert not [o for o in case.observations if o.analyte.startswith("dnt")]


def test_invalid_resource_names_id_and_path(read_bundle: Any) -> None:
    bundle = read_bundle("invalid_observation_value.json")
    bad = bundle["entry"][2]["resource"]
    with pytest.raises(FHIRError) as err:
        bundle_to_case(bundle)
    assert f"Observation/{bad['id']}" in str(err.value)
    assert "valueQuantity.value" in str(err.value)


def _mini(*resources: dict[str, Any], btype: str = "collection") -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "2015-05-05"}
    return {"resourceType": "Bundle", "type": btype,
            "entry": [{"resource": r} for r in (patient, *resources)]}


def _igg(rid: str, value: Any = 1500, unit: str = "mg/dL", when: str = "2025-01-02") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2465-3"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def test_unconvertible_unit_is_an_error_naming_the_resource() -> None:
    with pytest.raises(FHIRError) as err:
        bundle_to_case(_mini(_igg("o-unit", unit="mm[Hg]")))
    assert "Observation/o-unit" in str(err.value)
    assert "mm[Hg]" in str(err.value)


def test_future_date_is_an_error_naming_the_resource() -> None:
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    with pytest.raises(FHIRError) as err:
        bundle_to_case(_mini(_igg("o-future", when=future)))
    assert "Observation/o-future" in str(err.value)


@pytest.mark.parametrize(
    ("bundle", "needle"),
    [
        ({"resourceType": "Patient", "id": "x"}, "not a FHIR Bundle"),
        ({"resourceType": "Bundle", "type": "history", "entry": []}, "unsupported Bundle type"),
        ({"resourceType": "Bundle", "type": "collection", "entry": []}, "no Patient"),
        ({"resourceType": "Bundle", "type": "collection",
          "entry": [{"resource": {"resourceType": "Patient", "id": "a"}},
                    {"resource": {"resourceType": "Patient", "id": "b"}}]}, "2 Patients"),
        ({"resourceType": "Bundle", "type": "collection",
          "entry": [{"resource": {"resourceType": "Frobnicate", "id": "a"}}]}, "unknown FHIR resource type"),
    ],
)
def test_bundle_level_errors(bundle: dict[str, Any], needle: str) -> None:
    with pytest.raises(FHIRError) as err:
        bundle_to_case(bundle)
    assert needle in str(err.value)


def test_patient_id_picks_one_of_several() -> None:
    b = {"resourceType": "Bundle", "type": "searchset",
         "entry": [{"resource": {"resourceType": "Patient", "id": "a", "gender": "male"}},
                   {"resource": {"resourceType": "Patient", "id": "b", "gender": "female"}}]}
    case, _ = bundle_to_case(b, patient_id="b")
    assert (case.id, case.sex.value) == ("b", "female")


def test_statuses_and_other_patients() -> None:
    cond = {"resourceType": "Condition", "id": "c-err", "subject": {"reference": "Patient/p1"},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                               "code": "entered-in-error"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "16294009"}]}}
    refuted = copy.deepcopy(cond)
    refuted.update(id="c-ref", code={"coding": [{"system": "http://snomed.info/sct", "code": "30746006"}]})
    refuted["verificationStatus"]["coding"][0]["code"] = "refuted"
    other = _igg("o-other")
    other["subject"] = {"reference": "Patient/someone-else"}
    case, warnings = bundle_to_case(_mini(cond, refuted, other))
    assert case.findings.splenomegaly is None  # entered in error: not counted ...
    assert case.findings.lymphadenopathy is not None and case.findings.lymphadenopathy.present is False
    assert case.observations == []
    msgs = {w.resource: w.message for w in warnings}
    assert "entered-in-error" in msgs["Condition/c-err"]  # ... and said so
    assert "another patient" in msgs["Observation/o-other"]


def test_value_without_quantity_is_a_warning() -> None:
    obs = _igg("o-str")
    del obs["valueQuantity"]
    obs["valueString"] = "<5"
    case, warnings = bundle_to_case(_mini(obs))
    assert case.observations == []
    assert any(w.resource == "Observation/o-str" and w.path == "valueString" for w in warnings)


def _q(value: float, unit: str = "mg/dL") -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def test_the_labs_reference_range_is_imported() -> None:
    obs = _igg("o-rr")
    obs["referenceRange"] = [{"low": _q(700), "high": _q(1600)}]
    case, warnings = bundle_to_case(_mini(obs))
    rr = case.observations[0].reference_range
    assert rr is not None and (rr.low, rr.high) == (700.0, 1600.0)
    assert warnings == []
    upper_only = _igg("o-hi")
    upper_only["referenceRange"] = [{"high": _q(1600)}]
    rr = bundle_to_case(_mini(upper_only))[0].observations[0].reference_range
    assert rr is not None and (rr.low, rr.high) == (None, 1600.0)


@pytest.mark.parametrize(("ranges", "path"), [
    ([{"low": _q(7, "g/L"), "high": _q(16, "g/L")}], "referenceRange.low"),  # another unit: not converted here
    ([{"low": _q(700), "appliesTo": [{"text": "adults"}]}], "referenceRange"),  # population-specific
    ([{"low": _q(700)}, {"high": _q(1600)}], "referenceRange"),  # several intervals
    ([{"text": "see report"}], "referenceRange"),  # no number
])
def test_a_reference_range_alpsdx_cannot_use_is_a_warning(ranges: list[dict[str, Any]], path: str) -> None:
    obs = _igg("o-rr2")
    obs["referenceRange"] = ranges
    case, warnings = bundle_to_case(_mini(obs))
    assert case.observations[0].reference_range is None
    assert case.observations[0].value == 1500  # the result itself is kept
    assert any(w.resource == "Observation/o-rr2" and w.path == path for w in warnings)


def test_resources_to_case_reads_a_plain_list() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "male"}
    case, _ = resources_to_case([patient, _igg("o1", value=1700)])
    assert [(o.analyte, o.value) for o in case.observations] == [("igg", 1700.0)]


def test_evaluate_cli_reads_a_bundle(fdata: Path) -> None:
    from typer.testing import CliRunner

    from alpsdx.cli import _register_all, app

    _register_all()
    res = CliRunner().invoke(app, ["evaluate", str(fdata / "synthea_alps_fas.json"), "--format", "json",
                                   "--date", "2025-06-01"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["category"], out["subtype"]) == ("definitive", "ALPS-FAS")


def test_stopped_medication_without_end_is_listed_not_taken() -> None:
    def med(rid: str, status: str, bounds: dict[str, str] | None = None) -> dict[str, Any]:
        timing = {"repeat": {"boundsPeriod": bounds}} if bounds else {"code": {"text": "daily"}}
        return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
                "medicationCodeableConcept": {"text": "Sirolimus 1 MG Oral Tablet"},
                "subject": {"reference": "Patient/p1"}, "authoredOn": "2024-01-01",
                "dosageInstruction": [{"timing": timing}]}

    case, warnings = bundle_to_case(_mini(med("m-stop", "stopped"),
                                          med("m-done", "completed", {"start": "2024-01-01", "end": "2024-06-01"}),
                                          med("m-on", "active")))
    assert [(m.name, m.start, m.end) for m in case.medications] == [
        ("sirolimus", dt.date(2024, 1, 1), dt.date(2024, 6, 1)), ("sirolimus", dt.date(2024, 1, 1), None)]
    assert any(w.resource == "MedicationRequest/m-stop" and "without an end date" in w.message for w in warnings)
