"""FHIR R4 export: valid R4B resources, the evaluation as DiagnosticReport/Condition/
DetectedIssue/CommunicationRequest, and import(export(x)) == x."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpsdx.engine import assess
from alpsdx.interop.fhir_export import OUTPUT_TAG, export_bundle, fhir_id
from alpsdx.interop.fhir_import import bundle_to_case
from alpsdx.model import Case, case_from_dict

FULL: dict[str, Any] = {
    "id": "case-001", "sex": "female", "birth_date": "2016-04-02", "evaluation_date": "2025-06-01",
    "findings": {
        "lymphadenopathy": {"present": True, "onset": "2024-01-10", "duration_months": 17,
                            "malignancy_excluded": True, "infection_excluded": True, "date": "2025-05-01"},
        "splenomegaly": {"present": True, "onset": "2024-01-10", "duration_months": 17},
        "hepatomegaly": {"present": False},
        "autoimmune_cytopenias": ["hemolytic_anemia", "thrombocytopenia", "neutropenia"],
        "typical_histology": True, "family_history_lymphoproliferation": True, "splenectomy": True,
        "lymphoma": False,
    },
    "observations": [
        {"analyte": "dnt_pct_lymphocytes", "value": 4.2, "unit": "%", "date": "2025-05-20", "tcrab_gated": True},
        {"analyte": "dnt_pct_cd3", "value": 6.1, "unit": "%", "date": "2025-05-20", "source": "fcs"},
        {"analyte": "dnt_pct_tcrab", "value": 9.0, "unit": "%", "date": "2025-05-20"},
        {"analyte": "lymphocytes_abs", "value": 3.1, "unit": "10*9/L", "date": "2025-05-20",
         "reference_range": {"low": 1.5, "high": 6.5}},
        {"analyte": "sfasl", "value": 820, "unit": "pg/mL"},
        {"analyte": "il18", "value": 900, "unit": "pg/mL"},
        {"analyte": "vitamin_b12", "value": 1800, "unit": "pmol/L"},
        {"analyte": "igg", "value": 2100, "unit": "mg/dL", "reference_range": {"high": 1400}},
        {"analyte": "sirolimus_trough", "value": 7.5, "unit": "ng/mL", "date": "2025-05-25"},
    ],
    "apoptosis_assays": [{"result": "defective", "date": "2025-02-01", "pct_of_control": 31.5, "lab": "NIH"},
                         {"result": "defective", "date": "2025-04-01"}],
    "variants": [
        {"gene": "FAS", "hgvs_c": "NM_000043.6:c.779A>G", "hgvs_p": "p.Asp260Gly", "origin": "germline",
         "zygosity": "heterozygous", "classification": "pathogenic", "vaf": 0.48, "sample": "whole_blood",
         "consequence": "missense_variant", "date": "2025-03-03", "source": "hgvs"},
        {"gene": "CASP10", "hgvs_p": "p.Val410Ile", "origin": "unknown", "zygosity": "compound_heterozygous",
         "classification": "likely_benign"},
    ],
    "medications": [{"name": "sirolimus", "dose_mg": 1.5, "frequency": "daily", "start": "2025-03-01",
                     "route": "oral"},
                    {"name": "prednisolone", "dose_mg": 10, "start": "2024-01-01", "end": "2024-03-01"}],
    "clinical_events": [
        {"kind": "splenectomy", "date": "2020-06-06"},
        {"kind": "b_symptoms", "date": "2025-05-01", "note": "night_sweats"},
        {"kind": "node_size", "date": "2025-05-02", "site": "left cervical", "value": 2.5, "unit": "cm"},
        {"kind": "pet_suv", "date": "2025-05-03", "site": "left cervical", "value": 9.1, "note": "avid"},
        {"kind": "splenectomy_proposed"},
    ],
    "genes_tested": ["FAS", "FASLG", "CASP10"],
    "age_years": 9.1, "height_cm": 132, "weight_kg": 29,
}


@pytest.fixture(scope="module")
def full_case() -> Case:
    return case_from_dict(FULL)


def _by_type(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def test_bundle_validates_with_fhir_resources_r4b(full_case: Case) -> None:
    from fhir.resources.R4B.bundle import Bundle

    bundle = export_bundle(full_case, assess(full_case))
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "collection"
    assert len(parsed.entry or []) == len(bundle["entry"])


def test_round_trip_keeps_every_value(full_case: Case) -> None:
    bundle = export_bundle(full_case, assess(full_case))
    back, warnings = bundle_to_case(bundle)
    assert back == full_case
    # the evaluation resources are named as skipped results, not lost inputs
    assert [w.resource for w in warnings] == ["alpsdx-output"]


def test_round_trip_of_an_imported_ehr_bundle(read_bundle: Any) -> None:
    first, _ = bundle_to_case(read_bundle("synthea_alps_fas.json"))
    again, _ = bundle_to_case(export_bundle(first, assess(first)))
    assert again == first


def test_diagnostic_report_has_one_observation_per_criterion(full_case: Case) -> None:
    assessment = assess(full_case)
    bundle = export_bundle(full_case, assessment)
    (report,) = _by_type(bundle, "DiagnosticReport")
    assert report["meta"]["tag"][0]["code"] == OUTPUT_TAG["code"]
    contained = {c["code"]["coding"][0]["code"]: c for c in report["contained"]}
    assert set(contained) == {c["id"] for c in assessment["criteria"]}
    for crit in assessment["criteria"]:
        obs = contained[crit["id"]]
        assert obs["valueCodeableConcept"]["coding"][0]["code"] == crit["status"]
        assert {"url": "https://alpsdx.org/fhir/StructureDefinition/citation",
                "valueString": crit["citation"]} in obs["extension"]
    assert [r["reference"] for r in report["result"]] == [f"#{c['id']}" for c in report["contained"]]


def test_dnt_criterion_links_the_dnt_observations(full_case: Case) -> None:
    bundle = export_bundle(full_case, assess(full_case))
    (report,) = _by_type(bundle, "DiagnosticReport")
    dnt = next(c for c in report["contained"] if c["code"]["coding"][0]["code"] == "required.dnt")
    ids = {r["reference"].split("/")[1] for r in dnt.get("derivedFrom", [])}
    labs = {o["id"]: o for o in _by_type(bundle, "Observation")}
    codes = {labs[i]["code"]["coding"][0]["code"] for i in ids}
    assert "dnt_pct_lymphocytes" in codes


@pytest.mark.parametrize(("category", "verification"),
                         [("definitive", "confirmed"), ("probable", "provisional"), ("not_met", None),
                          ("indeterminate", None)])
def test_alps_condition_verification_status(full_case: Case, category: str, verification: str | None) -> None:
    assessment = {**assess(full_case), "category": category}
    bundle = export_bundle(full_case, assessment)
    alps = [c for c in _by_type(bundle, "Condition")
            if any(x["code"] == "D89.82" for x in c["code"]["coding"])]
    if verification is None:
        assert alps == []
        return
    (cond,) = alps
    assert cond["verificationStatus"]["coding"][0]["code"] == verification
    assert cond["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"


def test_care_items_and_next_tests_become_resources(full_case: Case) -> None:
    assessment = assess(full_case)
    assessment = {**assessment, "next_tests": [{"test": "FAS sequencing", "why": "settles primary.mutation"}]}
    bundle = export_bundle(full_case, assessment)
    issues = _by_type(bundle, "DetectedIssue")
    assert len(issues) == len(assessment.get("care", []))
    for issue, item in zip(issues, assessment.get("care", []), strict=True):
        assert issue["code"]["coding"][0]["code"] == item["id"]
        assert issue["detail"] == item["message"]
    (req,) = _by_type(bundle, "CommunicationRequest")
    assert req["payload"][0]["contentString"] == "FAS sequencing: settles primary.mutation"


def test_fhir_id_keeps_valid_ids_and_hashes_others() -> None:
    assert fhir_id("case-001") == "case-001"
    hashed = fhir_id("Case #1 / ward 3")
    assert hashed != fhir_id("Case #1 / ward 4")
    assert hashed.startswith("p") and len(hashed) == 21


# --- property: any valid case survives export -> import ------------------------------------

_dates = st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2024, 12, 31))
_bool = st.none() | st.booleans()
_finding = st.none() | st.builds(
    dict, present=_bool, onset=st.none() | _dates.map(str),
    duration_months=st.none() | st.floats(0, 200, allow_nan=False),
    malignancy_excluded=_bool, infection_excluded=_bool)
_obs = st.builds(
    dict,
    analyte=st.sampled_from(["dnt_pct_lymphocytes", "sfasl", "il10", "igg", "vitamin_b12", "platelets"]),
    value=st.floats(0, 99, allow_nan=False, allow_infinity=False),
    date=st.none() | _dates.map(str))
_units = {"dnt_pct_lymphocytes": "%", "sfasl": "pg/mL", "il10": "pg/mL", "igg": "g/L", "vitamin_b12": "pmol/L",
          "platelets": "10*3/uL"}


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@st.composite
def _cases(draw: st.DrawFn) -> dict[str, Any]:
    findings = {}
    for name in ("lymphadenopathy", "splenomegaly", "hepatomegaly"):
        f = draw(_finding)
        if f is not None:
            findings[name] = _clean(f)
    cyt = draw(st.none() | st.lists(st.sampled_from(["hemolytic_anemia", "thrombocytopenia", "neutropenia"]),
                                    unique=True, max_size=3))
    if cyt is not None:
        findings["autoimmune_cytopenias"] = cyt
    for flag in ("typical_histology", "family_history_lymphoproliferation", "splenectomy", "lymphoma"):
        v = draw(_bool)
        if v is not None:
            findings[flag] = v
    obs = [_clean({**o, "unit": _units[o["analyte"]]}) for o in draw(st.lists(_obs, max_size=4))]
    return _clean({
        "id": draw(st.sampled_from(["c1", "Case 7/ward", "x.y-z"])),
        "sex": draw(st.sampled_from(["female", "male", "other", "unknown"])),
        "birth_date": draw(st.none() | st.just("2014-12-31")),
        "findings": findings, "observations": obs,
        "variants": draw(st.lists(st.builds(dict, gene=st.sampled_from(["FAS", "FASLG"]),
                                            hgvs_p=st.sampled_from(["p.Asp260Gly", "p.Arg250Gln"]),
                                            origin=st.sampled_from(["germline", "somatic", "unknown"]),
                                            zygosity=st.sampled_from(["heterozygous", "homozygous", "unknown"]),
                                            classification=st.sampled_from(["pathogenic", "vus", "benign"])),
                                  max_size=2)),
        "medications": draw(st.lists(st.builds(dict, name=st.sampled_from(["sirolimus", "mycophenolate mofetil"]),
                                               dose_mg=st.floats(0.1, 2000, allow_nan=False)), max_size=2)),
    })


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_round_trip_property(data: dict[str, Any]) -> None:
    case = case_from_dict(data)
    back, _ = bundle_to_case(export_bundle(case))
    assert back == case
