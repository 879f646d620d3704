"""Project-made FHIR R4 test bundles shaped like what EHRs send (Synthea-style transactions).

Run ``python tests/data/fhir/make_bundles.py`` to rewrite the JSON files next to it. The
tests also call :func:`alps_bundle` with an anchor date near today when a rule looks at
how recent something is (e.g. B symptoms in the last 90 days).

Every identifier, name and value here is invented; the codes are the ones in
``knowledge/data/fhir_codes.yaml`` plus Synthea-typical codes alpsdx does not map (vital
signs, encounters, immunisations, claims), so the importer's warnings can be tested.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ANALYTE = "https://alpsdx.org/fhir/CodeSystem/analyte"
COND_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"


def _uuid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "alpsdx-test:" + seed))


class _Builder:
    def __init__(self, seed: str, bundle_type: str) -> None:
        self.seed = seed
        self.type = bundle_type
        self.entries: list[dict[str, Any]] = []
        self.n = 0
        self.patient_ref = ""

    def add(self, res: dict[str, Any]) -> str:
        self.n += 1
        rid = _uuid(f"{self.seed}-{self.n}")
        res = {"resourceType": res.pop("resourceType"), "id": rid, **res}
        entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{rid}", "resource": res}
        if self.type == "transaction":
            entry["request"] = {"method": "POST", "url": res["resourceType"]}
        elif self.type == "searchset":
            entry["search"] = {"mode": "match"}
        self.entries.append(entry)
        return f"urn:uuid:{rid}" if self.type == "transaction" else f"{res['resourceType']}/{rid}"

    def bundle(self) -> dict[str, Any]:
        b: dict[str, Any] = {"resourceType": "Bundle", "type": self.type, "entry": self.entries}
        if self.type == "searchset":
            b["total"] = len(self.entries)
        return b


def _patient(b: _Builder, birth: dt.date, gender: str = "female") -> str:
    ref = b.add({
        "resourceType": "Patient",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
                       "valueCode": "F" if gender == "female" else "M"}],
        "identifier": [{"system": "https://github.com/synthetichealth/synthea", "value": _uuid(b.seed + "-syn")},
                       {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                        "system": "http://hospital.smarthealthit.org", "value": _uuid(b.seed + "-mrn")}],
        "name": [{"use": "official", "family": "Testperson", "given": ["Synthetic"]}],
        "gender": gender,
        "birthDate": birth.isoformat(),
        "address": [{"city": "Nowhere", "country": "US"}],
    })
    b.patient_ref = ref
    return ref


def _encounter(b: _Builder, when: dt.date) -> str:
    return b.add({
        "resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": SNOMED, "code": "185349003", "display": "Encounter for check up"}]}],
        "subject": {"reference": b.patient_ref},
        "period": {"start": f"{when.isoformat()}T09:00:00+00:00", "end": f"{when.isoformat()}T09:30:00+00:00"},
    })


def _condition(b: _Builder, codings: list[dict[str, str]], onset: dt.date | None, text: str,
               enc: str | None = None, verification: str = "confirmed", clinical: str | None = "active") -> str:
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "verificationStatus": {"coding": [{"system": COND_VER, "code": verification}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "encounter-diagnosis"}]}],
        "code": {"coding": codings, "text": text},
        "subject": {"reference": b.patient_ref},
    }
    if clinical:
        res["clinicalStatus"] = {"coding": [{"system": COND_CLIN, "code": clinical}]}
    if enc:
        res["encounter"] = {"reference": enc}
    if onset:
        res["onsetDateTime"] = f"{onset.isoformat()}T10:00:00+00:00"
        res["recordedDate"] = f"{onset.isoformat()}T10:00:00+00:00"
    return b.add(res)


def _obs(b: _Builder, coding: dict[str, str], value: float, unit: str, when: dt.date,
         category: str = "laboratory", enc: str | None = None) -> str:
    res: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": OBS_CAT, "code": category}]}],
        "code": {"coding": [coding], "text": coding.get("display", coding["code"])},
        "subject": {"reference": b.patient_ref},
        "effectiveDateTime": f"{when.isoformat()}T08:15:00+00:00",
        "issued": f"{when.isoformat()}T12:00:00.000+00:00",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    if enc:
        res["encounter"] = {"reference": enc}
    return b.add(res)


def _variant(b: _Builder, gene: str, c_hgvs: str, p_hgvs: str, origin: tuple[str, str], zyg: tuple[str, str],
             when: dt.date) -> str:
    def comp(code: str, display: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"code": {"coding": [{"system": LOINC, "code": code, "display": display}]}, **value}

    return b.add({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": OBS_CAT, "code": "laboratory"}]},
                     {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "GE"}]}],
        "code": {"coding": [{"system": LOINC, "code": "69548-6", "display": "Genetic variant assessment"}]},
        "subject": {"reference": b.patient_ref},
        "effectiveDateTime": when.isoformat(),
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA9633-4", "display": "Present"}]},
        "component": [
            comp("48018-6", "Gene studied [ID]", {"valueCodeableConcept": {
                "coding": [{"system": "http://www.genenames.org/geneId", "code": "HGNC:11920", "display": gene}]}}),
            comp("48004-6", "DNA change (c.HGVS)", {"valueCodeableConcept": {
                "coding": [{"system": "http://varnomen.hgvs.org", "code": c_hgvs}]}}),
            comp("48005-3", "Amino acid change (pHGVS)", {"valueCodeableConcept": {
                "coding": [{"system": "http://varnomen.hgvs.org", "code": p_hgvs}]}}),
            comp("48002-0", "Genomic source class [Type]", {"valueCodeableConcept": {
                "coding": [{"system": LOINC, "code": origin[0], "display": origin[1]}]}}),
            comp("53034-5", "Allelic state", {"valueCodeableConcept": {
                "coding": [{"system": LOINC, "code": zyg[0], "display": zyg[1]}]}}),
            comp("53037-8", "Genetic variation clinical significance [Imp]", {"valueCodeableConcept": {
                "coding": [{"system": LOINC, "code": "LA6668-3", "display": "Pathogenic"}]}}),
            comp("81258-6", "Sample variant allelic frequency [NFr]", {"valueQuantity": {
                "value": 0.47, "system": UCUM, "code": "1"}}),
        ],
    })


def alps_bundle(anchor: dt.date = dt.date(2025, 6, 1), *, trough: float = 3.1, fever_days_ago: int = 20,
                seed: str = "alps-fas") -> dict[str, Any]:
    """A Synthea-shaped transaction Bundle: a 27-month-old with ALPS-FAS (definitive by NIH 2009).

    Chronic lymphadenopathy and splenomegaly (onset 18 months before ``anchor``), AIHA (ICD-10-CM)
    and ITP (SNOMED CT), DNT 80699-2 and DNT % of lymphocytes (alpsdx code), IgG, B12, IL-10,
    sFASL, a germline FAS death-domain variant, sirolimus (RxNorm-coded MedicationRequest, 1 mg
    twice daily) with a trough of ``trough`` ng/mL, a fever ``fever_days_ago`` days before
    ``anchor``, an affected parent, plus vital signs, encounters and an immunisation alpsdx
    does not read.
    """
    b = _Builder(seed, "transaction")
    d = anchor
    onset = d - dt.timedelta(days=548)
    # 27 months old at the anchor: an age band with a cited lymphocyte range (Kotylo 1993).
    _patient(b, birth=d - dt.timedelta(days=822))
    enc1 = _encounter(b, onset)
    enc2 = _encounter(b, d - dt.timedelta(days=10))
    _condition(b, [{"system": SNOMED, "code": "30746006", "display": "Lymphadenopathy"}], onset, "Lymphadenopathy", enc1)
    _condition(b, [{"system": SNOMED, "code": "16294009", "display": "Splenomegaly"}], onset, "Splenomegaly", enc1)
    _condition(b, [{"system": ICD10, "code": "D59.10", "display": "Autoimmune hemolytic anemia, unspecified"}],
               onset + dt.timedelta(days=30), "Autoimmune hemolytic anemia", enc1)
    _condition(b, [{"system": SNOMED, "code": "128091003", "display": "Autoimmune thrombocytopenia"},
                   {"system": ICD10, "code": "D69.3", "display": "Immune thrombocytopenic purpura"}],
               onset + dt.timedelta(days=30), "ITP", enc1)
    _condition(b, [{"system": SNOMED, "code": "386661006", "display": "Fever"}],
               d - dt.timedelta(days=fever_days_ago), "Fever", enc2)
    _condition(b, [{"system": SNOMED, "code": "444814009", "display": "Viral sinusitis (disorder)"}],
               onset - dt.timedelta(days=200), "Viral sinusitis", enc1, clinical="resolved")
    lab = d - dt.timedelta(days=12)
    _obs(b, {"system": LOINC, "code": "80699-2", "display": "CD4-CD8- cells/CD3+TCR alpha beta+ cells in Blood"},
         9.5, "%", lab, enc=enc2)
    _obs(b, {"system": ANALYTE, "code": "dnt_pct_lymphocytes", "display": "DNT % of lymphocytes"}, 4.2, "%", lab, enc=enc2)
    _obs(b, {"system": ANALYTE, "code": "dnt_pct_cd3", "display": "DNT % of CD3+"}, 6.1, "%", lab, enc=enc2)
    _obs(b, {"system": LOINC, "code": "731-0", "display": "Lymphocytes [#/volume] in Blood by Automated count"},
         4.5, "10*3/uL", lab, enc=enc2)
    _obs(b, {"system": LOINC, "code": "2465-3", "display": "IgG [Mass/volume] in Serum or Plasma"}, 2100, "mg/dL", lab)
    _obs(b, {"system": LOINC, "code": "2132-9", "display": "Cobalamin (Vitamin B12)"}, 1800, "pg/mL", lab)
    _obs(b, {"system": LOINC, "code": "26848-2", "display": "Interleukin 10"}, 35, "pg/mL", lab)
    _obs(b, {"system": ANALYTE, "code": "sfasl", "display": "Soluble FAS ligand"}, 820, "pg/mL", lab)
    _obs(b, {"system": LOINC, "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}, 8.9, "g/dL", lab)
    _obs(b, {"system": LOINC, "code": "777-3", "display": "Platelets [#/volume] in Blood by Automated count"},
         45, "10*3/uL", lab)
    _obs(b, {"system": LOINC, "code": "29247-4", "display": "Sirolimus [Mass/volume] in Blood"}, trough, "ng/mL",
         d - dt.timedelta(days=3))
    for days, h, w in ((300, 128.0, 26.5), (10, 132.0, 29.0)):
        _obs(b, {"system": LOINC, "code": "8302-2", "display": "Body Height"}, h, "cm", d - dt.timedelta(days=days),
             "vital-signs")
        _obs(b, {"system": LOINC, "code": "29463-7", "display": "Body Weight"}, w, "kg", d - dt.timedelta(days=days),
             "vital-signs")
    _obs(b, {"system": LOINC, "code": "39156-5", "display": "Body mass index (BMI) [Ratio]"}, 16.6, "kg/m2",
         d - dt.timedelta(days=10), "vital-signs")
    _obs(b, {"system": LOINC, "code": "8867-4", "display": "Heart rate"}, 92, "/min", d - dt.timedelta(days=10),
         "vital-signs")
    _variant(b, "FAS", "NM_000043.6:c.779A>G", "p.Asp260Gly", ("LA6683-2", "Germline"),
             ("LA6706-1", "Heterozygous"), d - dt.timedelta(days=60))
    b.add({
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "000000",
                                                  "display": "sirolimus 1 MG Oral Tablet"}],
                                      "text": "sirolimus 1 MG Oral Tablet"},
        "subject": {"reference": b.patient_ref},
        "authoredOn": f"{(d - dt.timedelta(days=90)).isoformat()}T10:00:00+00:00",
        "dosageInstruction": [{"sequence": 1,
                               "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "mg", "system": UCUM, "code": "mg"}}]}],
    })
    b.add({
        "resourceType": "FamilyMemberHistory", "status": "completed",
        "patient": {"reference": b.patient_ref},
        "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH",
                                     "display": "mother"}]},
        "condition": [{"code": {"coding": [{"system": SNOMED, "code": "30746006", "display": "Lymphadenopathy"}]}}],
    })
    b.add({
        "resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140",
                                    "display": "Influenza, seasonal, injectable, preservative free"}]},
        "patient": {"reference": b.patient_ref},
        "occurrenceDateTime": f"{(d - dt.timedelta(days=10)).isoformat()}T09:00:00+00:00",
        "primarySource": True,
    })
    return b.bundle()


def dnt_missing_bundle(anchor: dt.date = dt.date(2025, 6, 1), seed: str = "dnt-missing") -> dict[str, Any]:
    """A searchset: chronic lymphadenopathy + splenomegaly, ITP and AIHA, high IgG, no DNT measured."""
    b = _Builder(seed, "searchset")
    onset = anchor - dt.timedelta(days=400)
    _patient(b, birth=dt.date(anchor.year - 6, 1, 15), gender="male")
    _condition(b, [{"system": ICD10, "code": "R59.1", "display": "Generalized enlarged lymph nodes"}], onset,
               "Generalized lymphadenopathy")
    _condition(b, [{"system": ICD10, "code": "R16.1", "display": "Splenomegaly, not elsewhere classified"}], onset,
               "Splenomegaly")
    _condition(b, [{"system": ICD10, "code": "D69.41", "display": "Evans syndrome"}], onset, "Evans syndrome")
    _condition(b, [{"system": ICD10, "code": "D70.9", "display": "Neutropenia, unspecified"}], onset, "Neutropenia")
    _obs(b, {"system": LOINC, "code": "2465-3", "display": "IgG"}, 1900, "mg/dL", anchor - dt.timedelta(days=5))
    _obs(b, {"system": LOINC, "code": "731-0", "display": "Lymphocytes"}, 4.1, "10*9/L", anchor - dt.timedelta(days=5))
    return b.bundle()


def invalid_bundle() -> dict[str, Any]:
    """A collection whose second Observation has a non-numeric valueQuantity.value."""
    b = _Builder("invalid", "collection")
    _patient(b, birth=dt.date(2015, 3, 3))
    _obs(b, {"system": LOINC, "code": "2465-3", "display": "IgG"}, 1200, "mg/dL", dt.date(2025, 1, 5))
    _obs(b, {"system": LOINC, "code": "2132-9", "display": "B12"}, 700, "pg/mL", dt.date(2025, 1, 5))
    b.entries[-1]["resource"]["valueQuantity"]["value"] = "seven hundred"
    return b.bundle()


FILES = {
    "synthea_alps_fas.json": alps_bundle,
    "searchset_dnt_missing.json": dnt_missing_bundle,
    "invalid_observation_value.json": invalid_bundle,
}


def main() -> None:
    for name, fn in FILES.items():
        (HERE / name).write_text(json.dumps(fn(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
