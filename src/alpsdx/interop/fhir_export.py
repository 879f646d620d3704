"""FHIR R4 export: a case (and optionally its evaluation) as a Bundle of R4 resources.

Two groups of resources:

- **inputs**: the case's own data as an EHR would hold it (Patient, LOINC/UCUM lab
  Observations, Conditions, Procedure, MedicationStatement, FamilyMemberHistory, genomics
  variant Observations). ``alpsdx.interop.fhir_import`` reads them back to the same case
  (``import(export(x)) == x``); values without a standard FHIR home travel in
  ``https://alpsdx.org/fhir/StructureDefinition/*`` extensions so nothing is lost.
- **outputs** (tagged ``alpsdx-output`` in ``meta.tag``): a DiagnosticReport with one
  contained Observation per criterion (status, evidence, threshold, citation), a Condition
  ALPS (ICD-10-CM D89.82; verificationStatus ``confirmed`` for definitive, ``provisional``
  for probable), the care items as DetectedIssue resources and the next tests as
  CommunicationRequest resources. The importer skips these (they are results, not inputs).

The bundle validates with the ``fhir.resources`` R4B models (see ``validation.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from alpsdx.errors import FHIRError
from alpsdx.interop import codes
from alpsdx.interop.codes import ALPSDX, ALPSDX_CRITERION, ALPSDX_MEDICATION, EXT, UCUM
from alpsdx.interop.validation import validate_resource
from alpsdx.model import Case, ClinicalEvent, Finding, Observation, Variant

__all__ = [
    "CASE_ID_SYSTEM",
    "OUTPUT_TAG",
    "alps_condition",
    "case_to_resources",
    "evaluation_to_resources",
    "export_bundle",
    "fhir_id",
    "make_bundle",
    "validate_bundle",
]

CASE_ID_SYSTEM = "https://alpsdx.org/fhir/NamingSystem/case-id"
OUTPUT_TAG = {"system": ALPSDX, "code": "alpsdx-output", "display": "Produced by alpsdx (a result, not an input)"}
_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def fhir_id(case_id: str) -> str:
    """A valid FHIR id for a case id (the case id itself when it is one, else a hash)."""
    if _ID_RE.match(case_id) and len(case_id) <= 40:
        return case_id
    return "p" + hashlib.sha1(case_id.encode("utf-8")).hexdigest()[:20]


def _d(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _ext(name: str, **value: Any) -> dict[str, Any]:
    return {"url": EXT + name, **value}


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": _CATEGORY, "code": code}]}]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


class _Ids:
    """Deterministic resource ids ``<patient>-<kind>-<n>`` (stable across exports)."""

    def __init__(self, pid: str) -> None:
        self.pid = pid
        self.counts: dict[str, int] = {}

    def __call__(self, kind: str) -> str:
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        return f"{self.pid}-{kind}-{n}"


# --- inputs ------------------------------------------------------------------------------


def _patient(case: Case, pid: str) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": CASE_ID_SYSTEM, "value": case.id}],
        "gender": case.sex.value,
    }
    if case.birth_date is not None:
        res["birthDate"] = case.birth_date.isoformat()
    ext = []
    if case.age_years is not None:
        ext.append(_ext("age-years", valueDecimal=case.age_years))
    if case.evaluation_date is not None:
        ext.append(_ext("evaluation-date", valueDate=case.evaluation_date.isoformat()))
    if ext:
        res["extension"] = ext
    return res


def _lab(obs: Observation, rid: str, subject: dict[str, str]) -> dict[str, Any]:
    coding = codes.analyte_coding(obs.analyte)
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": _category("laboratory"),
        "code": {"coding": [coding], "text": coding.get("display", obs.analyte)},
        "subject": subject,
        "valueQuantity": _quantity(obs.value, obs.unit),
    }
    if obs.date is not None:
        res["effectiveDateTime"] = obs.date.isoformat()
    if obs.reference_range is not None:  # the performing lab's interval, in the result's unit
        rr = obs.reference_range
        res["referenceRange"] = [{k: _quantity(v, obs.unit) for k, v in (("low", rr.low), ("high", rr.high))
                                  if v is not None}]
    ext = []
    if obs.source:
        ext.append(_ext("source", valueString=obs.source))
    tcrab = getattr(obs, "tcrab_gated", None)
    if tcrab is not None:
        ext.append(_ext("tcrab-gated", valueBoolean=tcrab))
    if ext:
        res["extension"] = ext
    return res


def _vital(field: str, value: float, rid: str, subject: dict[str, str]) -> dict[str, Any]:
    entry = codes.vital_sign(field)
    coding = {"system": codes.system(str(entry["system"])), "code": str(entry["code"]), "display": str(entry["display"])}
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": _category("vital-signs"),
        "code": {"coding": [coding], "text": str(entry["display"])},
        "subject": subject,
        "valueQuantity": _quantity(value, str(entry["unit"])),
    }


def _verification(code: str) -> dict[str, Any]:
    return {"coding": [{"system": codes.system("condition_verification"), "code": code}]}


def _clinical(code: str) -> dict[str, Any]:
    return {"coding": [{"system": codes.system("condition_clinical"), "code": code}]}


def _condition(name: str, present: bool | None, rid: str, subject: dict[str, str]) -> dict[str, Any]:
    codings = codes.condition_codings(name)
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid,
        "code": {"coding": codings, "text": codings[0].get("display", name)},
        "subject": subject,
    }
    if present is True:
        res["clinicalStatus"] = _clinical("active")
        res["verificationStatus"] = _verification("confirmed")
    elif present is False:
        res["verificationStatus"] = _verification("refuted")
    else:
        res["verificationStatus"] = _verification("unconfirmed")
    return res


def _finding(name: str, f: Finding, rid: str, subject: dict[str, str]) -> dict[str, Any]:
    res = _condition(name, f.present, rid, subject)
    if f.onset is not None:
        res["onsetDateTime"] = f.onset.isoformat()
    if f.date is not None:
        res["recordedDate"] = f.date.isoformat()
    ext = []
    if f.duration_months is not None:
        ext.append(_ext("duration-months", valueDecimal=f.duration_months))
    if f.malignancy_excluded is not None:
        ext.append(_ext("malignancy-excluded", valueBoolean=f.malignancy_excluded))
    if f.infection_excluded is not None:
        ext.append(_ext("infection-excluded", valueBoolean=f.infection_excluded))
    if ext:
        res["extension"] = ext
    return res


def _flag_observation(code: str, display: str, value: bool, rid: str, subject: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": ALPSDX, "code": code, "display": display}], "text": display},
        "subject": subject,
        "valueBoolean": value,
    }


def _component(coding: dict[str, str], **value: Any) -> dict[str, Any]:
    return {"code": {"coding": [coding]}, **value}


def _cc(coding: dict[str, str] | None = None, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if coding is not None:
        out["coding"] = [coding]
    if text:
        out["text"] = text
    return out


def _variant(v: Variant, rid: str, subject: dict[str, str]) -> dict[str, Any]:
    g = codes.genomics_coding
    comps: list[dict[str, Any]] = [
        _component(g("gene_studied"), valueCodeableConcept=_cc({"system": codes.system("hgnc"), "display": v.gene}, v.gene)),
    ]
    hgvs = codes.system("hgvs")
    if v.hgvs_c:
        comps.append(_component(g("dna_change"), valueCodeableConcept=_cc({"system": hgvs, "code": v.hgvs_c}, v.hgvs_c)))
    if v.hgvs_p:
        comps.append(_component(g("amino_acid_change"), valueCodeableConcept=_cc({"system": hgvs, "code": v.hgvs_p}, v.hgvs_p)))
    origin = codes.answer_coding("origin", v.origin)
    comps.append(_component(g("genomic_source_class"), valueCodeableConcept=_cc(origin, v.origin)))
    if v.zygosity != "unknown":
        zyg = codes.answer_coding("zygosity", v.zygosity)
        cc = _cc(zyg, v.zygosity)
        cc.setdefault("coding", []).append({"system": ALPSDX, "code": v.zygosity})
        comps.append(_component(g("allelic_state"), valueCodeableConcept=cc))
    if v.classification is not None:
        cc = {"coding": [{"system": ALPSDX, "code": v.classification}], "text": v.classification}
        loinc_answer = codes.answer_coding("significance", v.classification)
        if loinc_answer is not None:
            cc["coding"].insert(0, loinc_answer)
        comps.append(_component(g("clinical_significance"), valueCodeableConcept=cc))
    if v.vaf is not None:
        comps.append(_component(g("sample_vaf"), valueQuantity={"value": v.vaf, "system": UCUM, "code": "1"}))
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [
            *_category("laboratory"),
            {"coding": [{"system": codes.system("v2_0074"), "code": "GE", "display": "Genetics"}]},
        ],
        "code": {"coding": [g("variant")]},
        "subject": subject,
        "valueCodeableConcept": {"coding": [g("present")]},
        "component": comps,
    }
    if v.date is not None:
        res["effectiveDateTime"] = v.date.isoformat()
    ext = []
    for name in ("sample", "consequence", "source"):
        val = getattr(v, name)
        if val:
            ext.append(_ext(f"variant-{name}", valueString=val))
    if ext:
        res["extension"] = ext
    return res


_B_SYMPTOM_CONDITIONS = ("fever", "night_sweats", "weight_loss")


def _event(e: ClinicalEvent, ids: _Ids, subject: dict[str, str]) -> dict[str, Any]:
    """A clinical event: a B symptom as its coded Condition, anything else as an Observation."""
    if (e.kind == "b_symptoms" and e.note in _B_SYMPTOM_CONDITIONS and e.date is not None
            and e.site is None and e.value is None and e.unit is None):
        res = _condition(str(e.note), True, ids("cond"), subject)
        res["onsetDateTime"] = e.date.isoformat()
        return res
    label = e.kind.replace("_", " ")
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ids("event"),
        "status": "final",
        "code": {"coding": [{"system": ALPSDX, "code": f"event-{e.kind}", "display": label}], "text": label},
        "subject": subject,
    }
    if e.date is not None:
        obs["effectiveDateTime"] = e.date.isoformat()
    if e.value is not None:
        q: dict[str, Any] = {"value": e.value}
        if e.unit is not None:
            q["unit"] = e.unit
        obs["valueQuantity"] = q
    if e.site is not None:
        obs["bodySite"] = {"text": e.site}
    if e.note is not None:
        obs["note"] = [{"text": e.note}]
    return obs


def case_to_resources(case: Case, patient_id: str | None = None) -> list[dict[str, Any]]:
    """The case's input data as R4 resources (Patient first); see the module docstring.

    ``patient_id`` is the FHIR id of the Patient (default: :func:`fhir_id` of the case id);
    the FHIR facade passes the registry's id.
    """
    pid = patient_id or fhir_id(case.id)
    ids = _Ids(pid)
    subject = {"reference": f"Patient/{pid}"}
    out: list[dict[str, Any]] = [_patient(case, pid)]
    if case.height_cm is not None:
        out.append(_vital("height_cm", case.height_cm, ids("height"), subject))
    if case.weight_kg is not None:
        out.append(_vital("weight_kg", case.weight_kg, ids("weight"), subject))
    for obs in case.observations:
        out.append(_lab(obs, ids("obs"), subject))

    f = case.findings
    for name in ("lymphadenopathy", "splenomegaly", "hepatomegaly"):
        finding = getattr(f, name)
        if finding is not None:
            out.append(_finding(name, finding, ids("cond"), subject))
    if f.autoimmune_cytopenias is not None:
        if f.autoimmune_cytopenias:
            for lineage in f.autoimmune_cytopenias:
                out.append(_condition(lineage.value, True, ids("cond"), subject))
        else:  # an explicit empty list: every lineage known absent
            for name in ("hemolytic_anemia", "thrombocytopenia", "neutropenia"):
                out.append(_condition(name, False, ids("cond"), subject))
    if f.lymphoma is not None:
        out.append(_condition("lymphoma", f.lymphoma, ids("cond"), subject))
    if f.typical_histology is not None:
        out.append(_flag_observation("typical-alps-histology", "Typical ALPS immunohistology (haematopathologist review)",
                                     f.typical_histology, ids("flag"), subject))
    if f.family_history_lymphoproliferation is True:
        out.append({
            "resourceType": "FamilyMemberHistory",
            "id": ids("fmh"),
            "status": "completed",
            "patient": subject,
            "relationship": {"coding": [codes.family_member_coding()]},
            "condition": [{"code": {"coding": codes.condition_codings("lymphadenopathy"),
                                    "text": "Nonmalignant lymphoproliferation"}}],
        })
    elif f.family_history_lymphoproliferation is False:
        out.append(_flag_observation("family-history-lymphoproliferation",
                                     "Family history of nonmalignant lymphoproliferation", False, ids("flag"), subject))
    events = list(case.clinical_events)
    if f.splenectomy is not None:
        proc: dict[str, Any] = {
            "resourceType": "Procedure",
            "id": ids("proc"),
            "status": "completed" if f.splenectomy else "not-done",
            "code": {"coding": codes.procedure_codings("splenectomy"), "text": "Splenectomy"},
            "subject": subject,
        }
        if f.splenectomy:
            # The dated splenectomy event (if any) is the procedure's date, not a second resource.
            done = next((e for e in events if e.kind == "splenectomy" and e.date is not None
                         and e.site is None and e.value is None and e.unit is None and e.note is None), None)
            if done is not None:
                proc["performedDateTime"] = done.date.isoformat() if done.date else None
                events.remove(done)
        out.append(proc)
    for e in events:
        out.append(_event(e, ids, subject))

    for a in case.apoptosis_assays:
        res: dict[str, Any] = {
            "resourceType": "Observation",
            "id": ids("apoptosis"),
            "status": "final",
            "category": _category("laboratory"),
            "code": {"coding": [{"system": ALPSDX, "code": "fas-apoptosis-assay",
                                 "display": "In vitro FAS-mediated lymphocyte apoptosis assay"}]},
            "subject": subject,
            "valueCodeableConcept": {"coding": [{"system": ALPSDX, "code": a.result}], "text": a.result},
        }
        if a.date is not None:
            res["effectiveDateTime"] = a.date.isoformat()
        if a.pct_of_control is not None:
            res["component"] = [_component({"system": ALPSDX, "code": "pct-of-control",
                                            "display": "Apoptosis, % of control"},
                                           valueQuantity=_quantity(a.pct_of_control, "%"))]
        if a.lab:
            res["performer"] = [{"display": a.lab}]
        out.append(res)

    for v in case.variants:
        out.append(_variant(v, ids("variant"), subject))
    genes_tested = getattr(case, "genes_tested", None)
    if genes_tested is not None:
        out.append({
            "resourceType": "Observation",
            "id": ids("genes"),
            "status": "final",
            "code": {"coding": [{"system": ALPSDX, "code": "genes-tested", "display": "Genes sequenced"}]},
            "subject": subject,
            "valueCodeableConcept": {"text": ", ".join(genes_tested) if genes_tested else "none"},
            "component": [_component(codes.genomics_coding("gene_studied"), valueCodeableConcept={"text": gene})
                          for gene in genes_tested],
        })

    for m in case.medications:
        med: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "id": ids("med"),
            "status": "completed" if m.end is not None else "active",
            "medicationCodeableConcept": {"coding": [{"system": ALPSDX_MEDICATION, "code": m.name}], "text": m.name},
            "subject": subject,
        }
        period = {k: v for k, v in (("start", _d(m.start)), ("end", _d(m.end))) if v}
        if period:
            med["effectivePeriod"] = period
        dosage: dict[str, Any] = {}
        if m.dose_mg is not None:
            dosage["doseAndRate"] = [{"doseQuantity": _quantity(m.dose_mg, "mg")}]
        if m.frequency:
            dosage["timing"] = {"code": {"text": m.frequency}}
        if m.route:
            dosage["route"] = {"text": m.route}
        if dosage:
            med["dosage"] = [dosage]
        out.append(med)
    return out


# --- outputs -----------------------------------------------------------------------------

_SEVERITY = {"critical": "high", "high": "high", "alert": "high", "warning": "moderate",
             "moderate": "moderate", "medium": "moderate", "info": "low", "low": "low"}


def _tagged(res: dict[str, Any]) -> dict[str, Any]:
    res["meta"] = {"tag": [dict(OUTPUT_TAG)]}
    return res


def _citation_url(key: str | None) -> str | None:
    if not key:
        return None
    from alpsdx import knowledge

    try:
        c = knowledge.citation(key)
    except Exception:
        return None
    if c.get("url"):
        return str(c["url"])
    if c.get("doi"):
        return f"https://doi.org/{c['doi']}"
    if c.get("pmid"):
        return f"https://pubmed.ncbi.nlm.nih.gov/{c['pmid']}/"
    return None


def _evidence_refs(evidence: Sequence[Mapping[str, Any]],
                   index: Mapping[tuple[str | None, str | None], list[str]]) -> list[dict[str, str]]:
    """References to the input Observations a criterion used (same analyte and date)."""
    refs: list[dict[str, str]] = []
    for e in evidence or ():
        if not isinstance(e, Mapping):
            continue
        item = e.get("item") or e.get("analyte")
        date = str(e["date"])[:10] if e.get("date") else None
        for rid in index.get((str(item) if item else None, date), ()):
            ref = {"reference": f"Observation/{rid}"}
            if ref not in refs:
                refs.append(ref)
    return refs


def _evidence_text(evidence: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for e in evidence or ():
        if not isinstance(e, Mapping):
            parts.append(str(e))
            continue
        label = (e.get("item") or e.get("analyte") or e.get("event") or e.get("field") or e.get("finding")
                 or e.get("name") or "evidence")
        val = e.get("value")
        if isinstance(val, list):
            val = ", ".join(str(v) for v in val)
        unit = e.get("unit") or ""
        date = f" ({e['date']})" if e.get("date") else ""
        note = f" [{e['note']}]" if e.get("note") else ""
        parts.append(f"{label} {'' if val is None else val} {unit}".strip() + date + note)
    return "; ".join(parts)


def alps_condition(patient_id: str, category: str, when: str, subtype: str | None = None) -> dict[str, Any]:
    """ALPS as a Condition (ICD-10-CM D89.82): ``confirmed`` if definitive, ``provisional`` if probable."""
    if category not in ("definitive", "probable"):
        raise FHIRError("ALPS is recorded only for a definitive or probable evaluation", field="category",
                        value=category, expected="definitive | probable")
    res = _condition("alps", True, "", {"reference": f"Patient/{patient_id}"})
    del res["id"]
    res["verificationStatus"] = _verification("confirmed" if category == "definitive" else "provisional")
    res["recordedDate"] = when
    if subtype:
        res["note"] = [{"text": f"Subtype: {subtype}"}]
    return res


def evaluation_to_resources(case: Case, assessment: Mapping[str, Any],
                            inputs: Sequence[Mapping[str, Any]] | None = None,
                            patient_id: str | None = None) -> list[dict[str, Any]]:
    """The assessment of ``alpsdx.engine.assess`` as output resources (see module docstring)."""
    pid = patient_id or fhir_id(case.id)
    subject = {"reference": f"Patient/{pid}"}
    when = str(assessment.get("evaluation_date") or case.as_of.isoformat())[:10]
    category = str(assessment.get("category", "indeterminate"))
    criteria_set = str(assessment.get("criteria_set", ""))

    obs_index: dict[tuple[str | None, str | None], list[str]] = {}
    for r in inputs or ():
        if r.get("resourceType") == "Observation" and "valueQuantity" in r:
            coding = r["code"]["coding"][0]
            key = codes.analyte_from_coding(coding.get("system"), coding.get("code"))
            if key is not None:
                obs_index.setdefault((key, r.get("effectiveDateTime")), []).append(str(r["id"]))

    contained: list[dict[str, Any]] = []
    for i, crit in enumerate(assessment.get("criteria", ()) or ()):
        status = str(crit.get("status", "unknown"))
        label = str(crit.get("label") or crit.get("id"))
        notes = []
        if crit.get("threshold"):
            notes.append({"text": f"Threshold: {crit['threshold']}"})
        ev_text = _evidence_text(crit.get("evidence", ()))
        if ev_text:
            notes.append({"text": f"Evidence: {ev_text}"})
        if crit.get("citation_text") or crit.get("citation"):
            notes.append({"text": f"Source: {crit.get('citation_text') or crit.get('citation')}"})
        c_obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"criterion-{i + 1}",
            "status": "final",
            "code": {"coding": [{"system": ALPSDX_CRITERION, "code": str(crit.get("id")), "display": label}],
                     "text": label},
            "subject": subject,
            "effectiveDateTime": when,
            "valueCodeableConcept": {"coding": [{"system": ALPSDX, "code": status}], "text": status},
        }
        refs = _evidence_refs(crit.get("evidence", ()), obs_index)
        if refs:
            c_obs["derivedFrom"] = refs
        if notes:
            c_obs["note"] = notes
        if crit.get("citation"):
            c_obs["extension"] = [_ext("citation", valueString=str(crit["citation"]))]
        contained.append(c_obs)

    subtype = assessment.get("subtype")
    conclusion = f"{criteria_set}: {category.replace('_', ' ')}"
    if subtype:
        conclusion += f" ({subtype})"
    considerations = [str(c) for c in assessment.get("considerations", ()) or ()]
    if considerations:
        conclusion += ". Consider: " + "; ".join(considerations)
    conclusion_cc: dict[str, Any] = {"coding": [{"system": ALPSDX, "code": category}], "text": category}
    if category in ("definitive", "probable"):
        conclusion_cc["coding"].append(codes.condition_codings("alps")[0])
    report_id = f"{pid}-alps-evaluation"
    report: dict[str, Any] = _tagged({
        "resourceType": "DiagnosticReport",
        "id": report_id,
        "status": "final",
        "code": {"coding": [{"system": ALPSDX, "code": "alps-evaluation", "display": "ALPS diagnostic evaluation"}],
                 "text": f"ALPS diagnostic evaluation ({criteria_set})"},
        "subject": subject,
        "effectiveDateTime": when,
        "result": [{"reference": f"#{c['id']}"} for c in contained],
        "conclusion": conclusion,
        "conclusionCode": [conclusion_cc],
        "extension": [e for e in (
            _ext("criteria-set", valueString=criteria_set) if criteria_set else None,
            _ext("kb-version", valueString=str(assessment["kb_version"])) if assessment.get("kb_version") else None,
            _ext("subtype", valueString=str(subtype)) if subtype else None,
        ) if e],
    })
    if contained:
        report["contained"] = contained
    out = [report]

    if category in ("definitive", "probable"):
        alps = _tagged(alps_condition(pid, category, when, subtype))
        alps["id"] = f"{pid}-alps-condition"
        alps["evidence"] = [{"detail": [{"reference": f"DiagnosticReport/{report_id}"}]}]
        out.append(alps)

    for i, item in enumerate(assessment.get("care", ()) or ()):
        issue: dict[str, Any] = _tagged({
            "resourceType": "DetectedIssue",
            "id": f"{pid}-care-{i + 1}",
            "status": "final",
            "code": {"coding": [{"system": ALPSDX, "code": str(item.get("id", "care"))}], "text": str(item.get("id", "care"))},
            "severity": _SEVERITY.get(str(item.get("severity", "")).lower(), "moderate"),
            "patient": subject,
            "identifiedDateTime": when,
            "detail": str(item.get("message", "")) or str(item.get("id", "care item")),
        })
        url = _citation_url(item.get("citation"))
        if url:
            issue["reference"] = url
        ev = _evidence_text(item.get("evidence", ()) if isinstance(item.get("evidence"), list) else ())
        if ev or item.get("citation_text"):
            issue["mitigation"] = [{"action": {"text": "; ".join(x for x in (
                f"Evidence: {ev}" if ev else "", f"Source: {item.get('citation_text')}" if item.get("citation_text") else ""
            ) if x)}}]
        out.append(issue)

    for i, t in enumerate(assessment.get("next_tests", ()) or ()):
        out.append(_tagged({
            "resourceType": "CommunicationRequest",
            "id": f"{pid}-next-test-{i + 1}",
            "status": "active",
            "subject": subject,
            "authoredOn": when,
            "payload": [{"contentString": f"{t.get('test')}: {t.get('why')}" if t.get("why") else str(t.get("test"))}],
            "reasonReference": [{"reference": f"DiagnosticReport/{report_id}"}],
        }))
    return out


def export_bundle(case: Case, assessment: Mapping[str, Any] | None = None, *,
                  bundle_type: str = "collection", base_url: str | None = None,
                  validate: bool = True, patient_id: str | None = None) -> dict[str, Any]:
    """The case (and its assessment, when given) as an R4 Bundle dict, validated."""
    inputs = case_to_resources(case, patient_id)
    resources = list(inputs)
    if assessment is not None:
        resources.extend(evaluation_to_resources(case, assessment, inputs, patient_id))
    return make_bundle(resources, bundle_type=bundle_type, base_url=base_url, validate=validate)


def make_bundle(resources: Sequence[dict[str, Any]], *, bundle_type: str = "collection",
                base_url: str | None = None, validate: bool = True) -> dict[str, Any]:
    """Wrap resources in a Bundle (``searchset`` entries get ``search.mode = match``)."""
    entries = []
    for r in resources:
        entry: dict[str, Any] = {"resource": r}
        if base_url:
            entry["fullUrl"] = f"{base_url.rstrip('/')}/{r['resourceType']}/{r['id']}"
        if bundle_type == "searchset":
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": bundle_type, "entry": entries}
    if bundle_type == "searchset":
        bundle["total"] = len(entries)
    if validate:
        validate_bundle(bundle)
    return bundle


def validate_bundle(bundle: Mapping[str, Any]) -> None:
    """Validate a Bundle and each of its resources; ``FHIRError`` names the entry and path."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise FHIRError("not a FHIR Bundle", field="resourceType",
                        value=bundle.get("resourceType") if isinstance(bundle, Mapping) else None)
    for i, entry in enumerate(bundle.get("entry", ()) or ()):
        validate_resource(entry.get("resource") if isinstance(entry, Mapping) else None, f"Bundle.entry[{i}]")
    shell = {k: v for k, v in bundle.items() if k != "entry"}
    validate_resource(shell, "Bundle")
