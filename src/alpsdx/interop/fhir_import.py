"""FHIR R4 import: a Bundle (collection, searchset or transaction) -> an alpsdx ``Case``.

``bundle_to_case(bundle)`` returns ``ImportResult(case, warnings)`` (a named tuple, so
``case, warnings = bundle_to_case(b)`` works). Every entry is first validated with the
``fhir.resources`` R4B models (see ``validation.py`` for why R4B): an invalid resource raises
``FHIRError`` naming the entry, the resource type and id and the element path. Then:

- **Patient** -> id (the alpsdx case-id identifier, else ``Patient.id``), sex, birth date;
- **Observation** with a LOINC / alpsdx analyte code and a UCUM ``valueQuantity`` -> a lab
  observation (code table ``knowledge/data/fhir_codes.yaml``); body height/weight; genomics
  variant Observations (LOINC 69548-6 with gene studied, c./p.HGVS, allelic state, genomic
  source class, VAF, clinical significance components) -> variants; alpsdx's own codes for
  the apoptosis assay, histology, genes tested and clinical events;
- **Condition** (ICD-10-CM / SNOMED CT) -> lymphadenopathy, splenomegaly, hepatomegaly,
  autoimmune cytopenias (AIHA, ITP, autoimmune neutropenia; Evans syndrome = AIHA + ITP),
  lymphoma; fever / night sweats / weight loss -> a constitutional-symptom clinical event;
- **Procedure** splenectomy; a splenectomy **ServiceRequest** -> "splenectomy proposed";
- **MedicationStatement / MedicationRequest** -> medications (sirolimus and mycophenolate
  recognised by ingredient name; others kept under their own name);
- **FamilyMemberHistory** of nonmalignant lymphoproliferation -> the family-history finding.

Whatever cannot be mapped is listed in ``warnings`` (resource, path, message), never
dropped silently. Resources tagged ``alpsdx-output`` (alpsdx's own DiagnosticReport,
criterion Observations, ALPS Condition, DetectedIssue, CommunicationRequest) are results,
not inputs: they are skipped, and listed as such.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import ValidationError

from alpsdx.errors import FHIRError, InputError
from alpsdx.interop import codes
from alpsdx.interop.codes import ALPSDX, ALPSDX_MEDICATION, EXT, UCUM
from alpsdx.interop.fhir_export import CASE_ID_SYSTEM, OUTPUT_TAG
from alpsdx.interop.validation import validate_resource
from alpsdx.model import (
    ApoptosisAssay,
    Case,
    ClinicalEvent,
    Finding,
    Medication,
    Observation,
    Variant,
)

__all__ = ["BUNDLE_TYPES", "FHIRWarning", "ImportResult", "bundle_to_case", "resources_to_case"]

BUNDLE_TYPES = ("collection", "searchset", "transaction")
FINDING_CONDITIONS = ("lymphadenopathy", "splenomegaly", "hepatomegaly")
CYTOPENIAS = ("hemolytic_anemia", "thrombocytopenia", "neutropenia")
B_SYMPTOMS = ("fever", "night_sweats", "weight_loss")
EVENT_PREFIX = "event-"
_ACTIVE = {"active", "recurrence", "relapse"}
_INACTIVE = {"inactive", "remission", "resolved"}
_UNSURE = {"unconfirmed", "provisional", "differential"}


@dataclass(frozen=True)
class FHIRWarning:
    """Content alpsdx did not map: which resource, which element, and why."""

    resource: str
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.resource} {self.path}: {self.message}"


class ImportResult(NamedTuple):
    case: Case
    warnings: list[FHIRWarning]


# --- small readers ----------------------------------------------------------------------


def _codings(cc: Any) -> list[Mapping[str, Any]]:
    if not isinstance(cc, Mapping):
        return []
    return [c for c in cc.get("coding", ()) or () if isinstance(c, Mapping)]


def _cc_label(cc: Any) -> str:
    if not isinstance(cc, Mapping):
        return "?"
    if cc.get("text"):
        return str(cc["text"])
    for c in _codings(cc):
        label = c.get("display") or c.get("code")
        if label:
            sys_ = str(c.get("system", "")).rsplit("/", 1)[-1]
            return f"{label} ({sys_} {c.get('code')})" if c.get("display") else f"{sys_} {label}"
    return "uncoded"


def _has_code(cc: Any, system_uri: str, code: str) -> bool:
    return any(c.get("system") == system_uri and c.get("code") == code for c in _codings(cc))


def _date(value: Any, label: str, path: str) -> dt.date | None:
    """A FHIR date/dateTime/instant -> date. Partial dates (YYYY, YYYY-MM) are refused."""
    if value is None:
        return None
    text = str(value)
    if re.fullmatch(r"\d{4}(-\d{2})?", text):
        raise _Partial(text)
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise FHIRError("not a FHIR date", field=f"{label}.{path}", value=text, expected="YYYY-MM-DD[Thh:mm:ss]") from None


class _Partial(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _ext_value(res: Mapping[str, Any], name: str) -> Any:
    for e in res.get("extension", ()) or ():
        if isinstance(e, Mapping) and e.get("url") == EXT + name:
            for k, v in e.items():
                if k.startswith("value"):
                    return v
    return None


def _is_output(res: Mapping[str, Any]) -> bool:
    tags = (res.get("meta") or {}).get("tag", ()) or ()
    return any(t.get("system") == OUTPUT_TAG["system"] and t.get("code") == OUTPUT_TAG["code"] for t in tags)


def _quantity_unit(q: Mapping[str, Any]) -> str | None:
    if q.get("code") and (q.get("system") in (None, UCUM)):
        return str(q["code"])
    if q.get("unit"):
        return str(q["unit"])
    return None


def _model_error(exc: ValidationError | InputError, label: str) -> FHIRError:
    if isinstance(exc, InputError):
        return FHIRError(exc.message, field=label + (f" ({exc.field})" if exc.field else ""), value=exc.value,
                         expected=exc.expected)
    err = exc.errors(include_url=False)[0]
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    inner_err = getattr(inner, "err", None)
    if isinstance(inner_err, InputError):
        return FHIRError(inner_err.message, field=label, value=inner_err.value, expected=inner_err.expected)
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    value = err.get("input")
    if isinstance(value, dict | list):
        value = None
    return FHIRError(msg, field=f"{label} ({loc})" if loc else label, value=value)


# --- the importer -----------------------------------------------------------------------


@dataclass
class _State:
    patient_refs: set[str] = field(default_factory=set)
    by_ref: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    warnings: list[FHIRWarning] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    finding_sources: dict[str, list[str]] = field(default_factory=dict)
    cytopenias: list[str] = field(default_factory=list)
    cytopenias_refuted: set[str] = field(default_factory=set)
    flags: dict[str, Any] = field(default_factory=dict)
    observations: list[tuple[str, Observation]] = field(default_factory=list)
    assays: list[ApoptosisAssay] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    medications: list[Medication] = field(default_factory=list)
    events: list[ClinicalEvent] = field(default_factory=list)
    genes_tested: list[str] | None = None
    vitals: dict[str, list[tuple[dt.date | None, float, str]]] = field(default_factory=dict)
    skipped_types: dict[str, list[str]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    def warn(self, label: str, path: str, message: str) -> None:
        self.warnings.append(FHIRWarning(label, path, message))


def _label(res: Mapping[str, Any]) -> str:
    return f"{res.get('resourceType')}/{res.get('id')}" if res.get("id") else str(res.get("resourceType"))


def _entries(bundle: Mapping[str, Any]) -> list[tuple[str, str | None, Mapping[str, Any]]]:
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise FHIRError("not a FHIR Bundle", field="resourceType",
                        value=bundle.get("resourceType") if isinstance(bundle, Mapping) else type(bundle).__name__,
                        expected="Bundle")
    btype = bundle.get("type")
    if btype not in BUNDLE_TYPES:
        raise FHIRError("unsupported Bundle type", field="Bundle.type", value=btype, expected=" | ".join(BUNDLE_TYPES))
    entries = bundle.get("entry", []) or []
    if not isinstance(entries, list):
        raise FHIRError("Bundle.entry must be an array", field="Bundle.entry")
    out: list[tuple[str, str | None, Mapping[str, Any]]] = []
    for i, entry in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(entry, Mapping):
            raise FHIRError("a Bundle entry must be a JSON object", field=where)
        full_url = entry.get("fullUrl")
        if full_url is not None and not isinstance(full_url, str):
            raise FHIRError("Bundle.entry.fullUrl must be a URI string", field=f"{where}.fullUrl",
                            value=repr(full_url)[:80], expected="a URI string, e.g. urn:uuid:...")
        request = entry.get("request")
        if request is not None and not isinstance(request, Mapping):
            raise FHIRError("Bundle.entry.request must be a JSON object", field=f"{where}.request",
                            value=repr(request)[:80], expected='an object such as {"method": "POST", "url": "Patient"}')
        res = entry.get("resource")
        if res is None:
            method = (request or {}).get("method")
            out.append((where, None, {"resourceType": "(none)", "_request": method}))
            continue
        validate_resource(res, where)
        out.append((where, full_url, res))
    shell = {k: v for k, v in bundle.items() if k != "entry"}
    validate_resource(shell, "Bundle")
    return out


def bundle_to_case(bundle: Mapping[str, Any], *, patient_id: str | None = None) -> ImportResult:
    """The case in an R4 Bundle. ``patient_id`` picks one Patient when the Bundle holds several."""
    entries = _entries(bundle)
    resources = []
    st = _State()
    for where, full_url, res in entries:
        if res.get("resourceType") == "(none)":
            st.warn(where, "request", f"entry without a resource (request {res.get('_request')}): nothing to import")
            continue
        resources.append((where, full_url, res))
    return _to_case(resources, st, patient_id)


def resources_to_case(resources: Iterable[Mapping[str, Any]], *, patient_id: str | None = None) -> ImportResult:
    """The same import for a plain list of resources (e.g. CDS Hooks prefetch results)."""
    items: list[tuple[str, str | None, Mapping[str, Any]]] = []
    for i, res in enumerate(resources):
        where = f"resource[{i}]"
        validate_resource(res, where)
        items.append((where, None, res))
    return _to_case(items, _State(), patient_id)


def _to_case(resources: list[tuple[str, str | None, Mapping[str, Any]]], st: _State,
             patient_id: str | None) -> ImportResult:
    for _where, full_url, res in resources:
        ref = f"{res['resourceType']}/{res.get('id')}"
        st.by_ref[ref] = res
        if full_url:
            st.by_ref[full_url] = res
    patients = [(w, u, r) for w, u, r in resources if r["resourceType"] == "Patient"]
    if patient_id is not None:
        patients = [p for p in patients if p[2].get("id") == patient_id]
        if not patients:
            raise FHIRError("no Patient with this id in the Bundle", field="patient", value=patient_id)
    if not patients:
        raise FHIRError("the Bundle holds no Patient resource", field="Bundle.entry",
                        expected="one Patient (the case)")
    if len(patients) > 1:
        ids = ", ".join(str(p[2].get("id")) for p in patients)
        raise FHIRError(f"the Bundle holds {len(patients)} Patients ({ids})", field="Bundle.entry",
                        expected="one Patient, or choose one with patient_id")
    _, p_url, patient = patients[0]
    pid = str(patient.get("id") or "")
    st.patient_refs = {f"Patient/{pid}"} | ({p_url} if p_url else set())
    _patient(patient, st)

    readers = {
        "Observation": _observation, "Condition": _condition, "Procedure": _procedure,
        "MedicationStatement": _medication, "MedicationRequest": _medication,
        "FamilyMemberHistory": _family_history, "ServiceRequest": _service_request,
    }
    for _where, _u, res in resources:
        rtype = res["resourceType"]
        if res is patient:
            continue
        label = _label(res)
        if _is_output(res):
            st.outputs.append(label)
            continue
        if rtype == "Patient":
            continue  # another patient, only possible with patient_id
        reader = readers.get(rtype)
        if reader is None:
            if rtype == "Medication":
                continue  # read through MedicationStatement/Request.medicationReference
            st.skipped_types.setdefault(rtype, []).append(label)
            continue
        if not _for_patient(res, st, label):
            continue
        try:
            reader(res, st, label)
        except _Partial as exc:
            st.warn(label, "date", f"partial date {exc.text!r} cannot be used as a day: resource not imported")
    for rtype, labels in sorted(st.skipped_types.items()):
        st.warn(rtype, "resourceType", f"{len(labels)} {rtype} resource(s) not read by alpsdx: {_shown(labels)}")
    if st.outputs:
        st.warn("alpsdx-output", "meta.tag", f"{len(st.outputs)} alpsdx result resource(s) (DiagnosticReport, "
                f"Condition, DetectedIssue, CommunicationRequest) are results, not inputs: not imported: {_shown(st.outputs)}")
    return ImportResult(_assemble(st), st.warnings)


def _shown(labels: list[str]) -> str:
    return ", ".join(labels[:5]) + (f", ... ({len(labels) - 5} more)" if len(labels) > 5 else "")


def _for_patient(res: Mapping[str, Any], st: _State, label: str) -> bool:
    subj = res.get("subject") or res.get("patient")
    ref = subj.get("reference") if isinstance(subj, Mapping) else None
    if ref is None:
        return True  # no subject: the Bundle is about one patient
    if ref in st.patient_refs or any(ref.endswith("/" + r) for r in st.patient_refs if r.startswith("Patient/")):
        return True
    st.warn(label, "subject", f"refers to another patient ({ref}): not imported")
    return False


# --- Patient ----------------------------------------------------------------------------


def _patient(res: Mapping[str, Any], st: _State) -> None:
    label = _label(res)
    case_id = None
    for ident in res.get("identifier", ()) or ():
        if ident.get("system") == CASE_ID_SYSTEM and ident.get("value"):
            case_id = str(ident["value"])
    st.data["id"] = case_id or str(res.get("id") or "fhir-patient")
    if res.get("gender"):
        st.data["sex"] = res["gender"]
    if res.get("birthDate"):
        try:
            st.data["birth_date"] = _date(res["birthDate"], label, "birthDate")
        except _Partial as exc:
            st.warn(label, "birthDate", f"partial birth date {exc.text!r}: age unknown unless given otherwise")
    age = _ext_value(res, "age-years")
    if age is not None:
        st.data["age_years"] = age
    ev = _ext_value(res, "evaluation-date")
    if ev is not None:
        st.data["evaluation_date"] = _date(ev, label, "extension(evaluation-date)")
    if res.get("deceasedBoolean") or res.get("deceasedDateTime"):
        st.warn(label, "deceased[x]", "the patient is recorded as deceased; alpsdx has no field for it")
    known = {EXT + "age-years", EXT + "evaluation-date"}
    for e in res.get("extension", ()) or ():
        if e.get("url", "").startswith(EXT) and e.get("url") not in known:
            st.warn(label, "extension", f"unknown alpsdx extension {e.get('url')}")


# --- Observation ------------------------------------------------------------------------


def _obs_date(res: Mapping[str, Any], label: str) -> dt.date | None:
    if res.get("effectiveDateTime"):
        return _date(res["effectiveDateTime"], label, "effectiveDateTime")
    if res.get("effectivePeriod", {}).get("start"):
        return _date(res["effectivePeriod"]["start"], label, "effectivePeriod.start")
    if res.get("effectiveInstant"):
        return _date(res["effectiveInstant"], label, "effectiveInstant")
    return None


def _observation(res: Mapping[str, Any], st: _State, label: str) -> None:
    status = res.get("status")
    if status in ("entered-in-error", "cancelled"):
        st.warn(label, "status", f"status {status}: not imported")
        return
    code = res.get("code") or {}
    g = codes.genomics()
    variant_code = codes.system(str(g["variant"]["system"])), str(g["variant"]["code"])
    if _has_code(code, *variant_code):
        _variant(res, st, label)
        return
    for c in _codings(code):
        if c.get("system") == ALPSDX and _alpsdx_observation(str(c.get("code")), res, st, label):
            return
        vital = codes.vital_from_coding(c.get("system"), c.get("code"))
        if vital is not None:
            _vital(vital, res, st, label)
            return
    analyte = None
    for c in _codings(code):
        analyte = codes.analyte_from_coding(c.get("system"), c.get("code"))
        if analyte is not None:
            break
    if analyte is None:
        st.warn(label, "code", f"observation code not mapped by alpsdx: {_cc_label(code)}")
        return
    q = res.get("valueQuantity")
    if not isinstance(q, Mapping) or q.get("value") is None:
        present = [k for k in res if k.startswith("value")] or ["dataAbsentReason" if res.get("dataAbsentReason") else "no value"]
        st.warn(label, present[0], f"{analyte}: no numeric valueQuantity, so no value was imported")
        return
    unit = _quantity_unit(q)
    if unit is None:
        raise FHIRError(f"{analyte}: valueQuantity has no unit", field=f"{label}.valueQuantity.code",
                        expected="a UCUM unit")
    if q.get("comparator"):
        st.warn(label, "valueQuantity.comparator",
                f"{analyte}: value is '{q['comparator']} {q['value']}'; imported as {q['value']} (the comparator has no field)")
    data: dict[str, Any] = {"analyte": analyte, "value": q["value"], "unit": unit, "date": _obs_date(res, label)}
    rr = _reference_range(res, unit, analyte, label, st)
    if rr is not None:
        data["reference_range"] = rr
    src = _ext_value(res, "source")
    if src is not None:
        data["source"] = src
    tcrab = _ext_value(res, "tcrab-gated")
    if tcrab is not None:
        data["tcrab_gated"] = tcrab
    try:
        obs = Observation.model_validate(data)
    except ValidationError as exc:
        raise _model_error(exc, f"{label}.valueQuantity") from None
    st.observations.append((label, obs))


def _reference_range(res: Mapping[str, Any], unit: str, analyte: str, label: str, st: _State) -> dict[str, Any] | None:
    """The lab's interval from ``referenceRange`` (low/high in the result's unit), else None.

    Only a numeric low/high in the same unit as the value is taken (one interval; an
    age- or sex-specific list, ``text``-only ranges or another unit are reported, not guessed).
    """
    ranges = [r for r in res.get("referenceRange", ()) or () if isinstance(r, Mapping)]
    if not ranges:
        return None
    if len(ranges) > 1 or ranges[0].get("appliesTo") or ranges[0].get("age"):
        st.warn(label, "referenceRange", f"{analyte}: several or population-specific reference ranges; not imported")
        return None
    out: dict[str, Any] = {}
    for end in ("low", "high"):
        q = ranges[0].get(end)
        if not isinstance(q, Mapping) or q.get("value") is None:
            continue
        if (_quantity_unit(q) or unit) != unit:
            st.warn(label, f"referenceRange.{end}", f"{analyte}: reference range in {_quantity_unit(q)}, "
                    f"result in {unit}; not imported")
            return None
        out[end] = q["value"]
    if not out:
        st.warn(label, "referenceRange", f"{analyte}: reference range without a numeric low or high; not imported")
        return None
    return out


def _vital(field_name: str, res: Mapping[str, Any], st: _State, label: str) -> None:
    q = res.get("valueQuantity") or {}
    if q.get("value") is None:
        st.warn(label, "valueQuantity", f"{field_name}: no value")
        return
    unit = (_quantity_unit(q) or "").strip()
    factors = {"height_cm": {"cm": 1.0, "m": 100.0, "mm": 0.1, "[in_i]": 2.54, "in": 2.54},
               "weight_kg": {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237}}[field_name]
    if unit not in factors:
        raise FHIRError(f"{field_name}: unit not understood", field=f"{label}.valueQuantity.code", value=unit,
                        expected=" | ".join(factors))
    value = float(q["value"]) * factors[unit]
    if factors[unit] == 1.0:
        value = q["value"]
    st.vitals.setdefault(field_name, []).append((_obs_date(res, label), value, label))


def _alpsdx_observation(code: str, res: Mapping[str, Any], st: _State, label: str) -> bool:
    if code == "fas-apoptosis-assay":
        result = None
        for c in _codings(res.get("valueCodeableConcept")):
            if c.get("system") == ALPSDX:
                result = c.get("code")
        data: dict[str, Any] = {"result": result, "date": _obs_date(res, label)}
        for comp in res.get("component", ()) or ():
            if _has_code(comp.get("code"), ALPSDX, "pct-of-control"):
                data["pct_of_control"] = (comp.get("valueQuantity") or {}).get("value")
        performers = [p.get("display") for p in res.get("performer", ()) or () if p.get("display")]
        if performers:
            data["lab"] = performers[0]
        try:
            st.assays.append(ApoptosisAssay.model_validate(data))
        except ValidationError as exc:
            raise _model_error(exc, f"{label}.valueCodeableConcept") from None
        return True
    if code in ("typical-alps-histology", "family-history-lymphoproliferation"):
        value = res.get("valueBoolean")
        if not isinstance(value, bool):
            raise FHIRError("expected a boolean value", field=f"{label}.valueBoolean", value=value)
        key = "typical_histology" if code == "typical-alps-histology" else "family_history_lymphoproliferation"
        st.flags[key] = value
        return True
    if code == "genes-tested":
        genes = []
        for comp in res.get("component", ()) or ():
            text = (comp.get("valueCodeableConcept") or {}).get("text")
            if text:
                genes.append(str(text))
        st.genes_tested = (st.genes_tested or []) + [g for g in genes if g not in (st.genes_tested or [])]
        return True
    if code.startswith(EVENT_PREFIX):
        kind = code[len(EVENT_PREFIX):]
        data = {"kind": kind, "date": _obs_date(res, label)}
        q = res.get("valueQuantity")
        if isinstance(q, Mapping):
            data["value"] = q.get("value")
            if q.get("unit") is not None:
                data["unit"] = q["unit"]
        if (res.get("bodySite") or {}).get("text"):
            data["site"] = res["bodySite"]["text"]
        notes = [n.get("text") for n in res.get("note", ()) or () if n.get("text")]
        if notes:
            data["note"] = notes[0]
        try:
            st.events.append(ClinicalEvent.model_validate(data))
        except ValidationError as exc:
            raise _model_error(exc, f"{label}.code") from None
        return True
    return False


def _component_cc(res: Mapping[str, Any], name: str) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    entry = codes.genomics()[name]
    sys_uri, code = codes.system(str(entry["system"])), str(entry["code"])
    for comp in res.get("component", ()) or ():
        if _has_code(comp.get("code"), sys_uri, code):
            return comp.get("valueCodeableConcept"), comp
    return None, None


def _coded_answer(cc: Mapping[str, Any], kind: str, *, own_codes: bool = True) -> str | None:
    """The answer a CodeableConcept codes for ``kind``: alpsdx's own code (the last one given)
    when ``own_codes``, else the first coding the answer tables map (LOINC answers)."""
    val = None
    if own_codes:
        for c in _codings(cc):
            if c.get("system") == ALPSDX:
                val = c.get("code")
    for c in _codings(cc):
        val = val or codes.answer_value(kind, c.get("system"), c.get("code"))
    return val


def _variant(res: Mapping[str, Any], st: _State, label: str) -> None:
    g = codes.genomics()
    value = res.get("valueCodeableConcept")
    present = codes.system(str(g["present"]["system"])), str(g["present"]["code"])
    if value is not None and not _has_code(value, *present):
        st.warn(label, "valueCodeableConcept", f"variant reported as {_cc_label(value)} (not 'Present'): not imported")
        return
    gene_cc, _ = _component_cc(res, "gene_studied")
    gene = None
    if gene_cc is not None:
        gene = gene_cc.get("text") or next((c.get("display") for c in _codings(gene_cc) if c.get("display")), None)
    if not gene:
        raise FHIRError("variant without a gene symbol", field=f"{label}.component(48018-6 gene studied)",
                        expected="valueCodeableConcept with the HGNC symbol as text or display")
    data: dict[str, Any] = {"gene": gene}
    hgvs = codes.system("hgvs")
    for name, key in (("dna_change", "hgvs_c"), ("amino_acid_change", "hgvs_p")):
        cc, _ = _component_cc(res, name)
        if cc is not None:
            val = next((c.get("code") for c in _codings(cc) if c.get("system") == hgvs and c.get("code")), None)
            data[key] = val or cc.get("text")
    cc, _ = _component_cc(res, "genomic_source_class")
    if cc is not None:
        origin = _coded_answer(cc, "origin", own_codes=False)
        if origin is None:
            text = str(cc.get("text") or "").lower()
            origin = text if text in ("germline", "somatic", "unknown") else None
        if origin is None:
            st.warn(label, "component(48002-0)", f"genomic source class {_cc_label(cc)} not mapped: origin unknown")
        else:
            data["origin"] = origin
    cc, _ = _component_cc(res, "allelic_state")
    if cc is not None:
        zyg = _coded_answer(cc, "zygosity")
        if zyg is None:
            st.warn(label, "component(53034-5)", f"allelic state {_cc_label(cc)} not mapped: zygosity unknown")
        else:
            data["zygosity"] = zyg
    cc, _ = _component_cc(res, "clinical_significance")
    if cc is not None:
        cls = _coded_answer(cc, "significance")
        if cls is None:
            text = str(cc.get("text") or "").lower().replace(" ", "_")
            cls = {"uncertain_significance": "vus", "variant_of_uncertain_significance": "vus"}.get(text, text)
            if cls not in ("pathogenic", "likely_pathogenic", "vus", "likely_benign", "benign"):
                st.warn(label, "component(53037-8)", f"clinical significance {_cc_label(cc)} not mapped")
                cls = None
        if cls is not None:
            data["classification"] = cls
    _, comp = _component_cc(res, "sample_vaf")
    if comp is not None and (comp.get("valueQuantity") or {}).get("value") is not None:
        data["vaf"] = comp["valueQuantity"]["value"]
    data["date"] = _obs_date(res, label)
    for name in ("sample", "consequence", "source"):
        val = _ext_value(res, f"variant-{name}")
        if val is not None:
            data[name] = val
    try:
        st.variants.append(Variant.model_validate(data))
    except ValidationError as exc:
        raise _model_error(exc, f"{label}.component") from None


# --- Condition --------------------------------------------------------------------------


def _condition_names(cc: Any) -> list[str]:
    names: list[str] = []
    for c in _codings(cc):
        name = codes.condition_from_coding(c.get("system"), c.get("code"))
        if name is not None and name not in names:
            names.append(name)
    return names


def _code_of(cc: Any, system_name: str) -> str | None:
    uri = codes.system(system_name)
    return next((str(c.get("code")) for c in _codings(cc) if c.get("system") == uri), None)


def _condition(res: Mapping[str, Any], st: _State, label: str) -> None:
    code = res.get("code")
    names = _condition_names(code)
    if not names:
        st.warn(label, "code", f"condition not mapped by alpsdx: {_cc_label(code)}")
        return
    name = names[0]
    ver = next((str(c.get("code")) for c in _codings(res.get("verificationStatus"))), None)
    clin = next((str(c.get("code")) for c in _codings(res.get("clinicalStatus"))), None)
    if ver == "entered-in-error":
        st.warn(label, "verificationStatus", "entered-in-error: not imported")
        return
    present: bool | None
    if ver == "refuted":
        present = False
    elif ver in _UNSURE:
        present = None
    else:
        present = True
    onset = _date(res.get("onsetDateTime"), label, "onsetDateTime") if res.get("onsetDateTime") else None
    if onset is None and (res.get("onsetPeriod") or {}).get("start"):
        onset = _date(res["onsetPeriod"]["start"], label, "onsetPeriod.start")
    recorded = _date(res.get("recordedDate"), label, "recordedDate") if res.get("recordedDate") else None
    if present and clin in _INACTIVE:
        st.warn(label, "clinicalStatus", f"{name}: clinical status {clin}; counted as a documented finding")

    if name == "hepatosplenomegaly":
        for n in ("hepatomegaly", "splenomegaly"):
            _finding(n, present, onset, recorded, res, st, label)
    elif name in FINDING_CONDITIONS:
        _finding(name, present, onset, recorded, res, st, label)
    elif name in CYTOPENIAS or name == "evans_syndrome":
        lineages = ("hemolytic_anemia", "thrombocytopenia") if name == "evans_syndrome" else (name,)
        if name == "evans_syndrome":
            st.warn(label, "code", "Evans syndrome: imported as autoimmune hemolytic anemia and thrombocytopenia")
        for lin in lineages:
            if present is True:
                if lin not in st.cytopenias:
                    st.cytopenias.append(lin)
            elif present is False:
                st.cytopenias_refuted.add(lin)
            else:
                st.warn(label, "verificationStatus", f"{lin}: verification {ver}; not counted")
    elif name == "lymphoma":
        if present is None:
            st.warn(label, "verificationStatus", f"lymphoma: verification {ver}; not counted")
        elif present or st.flags.get("lymphoma") is not True:
            st.flags["lymphoma"] = present
    elif name in B_SYMPTOMS:
        if present is not True:
            st.warn(label, "verificationStatus", f"{name}: verification {ver}; not counted as a B symptom")
            return
        try:
            st.events.append(ClinicalEvent(kind="b_symptoms", date=onset or recorded, note=name))
        except ValidationError as exc:
            raise _model_error(exc, f"{label}.onsetDateTime") from None
    elif name == "alps":
        st.warn(label, "code", "an existing ALPS diagnosis (D89.82) is not an input to the criteria: not imported")
    elif name == "neutropenia_unqualified":
        st.warn(label, "code", f"neutropenia {_code_of(code, 'icd10cm')} is not coded as autoimmune: not counted as "
                               "an autoimmune cytopenia (record it as autoimmune neutropenia if it is)")
    else:  # pragma: no cover - a table entry without a mapping here
        st.warn(label, "code", f"condition {name} has no alpsdx field")


def _finding(name: str, present: bool | None, onset: dt.date | None, recorded: dt.date | None,
             res: Mapping[str, Any], st: _State, label: str) -> None:
    new: dict[str, Any] = {"present": present, "onset": onset, "date": recorded}
    for ext, key in (("duration-months", "duration_months"), ("malignancy-excluded", "malignancy_excluded"),
                     ("infection-excluded", "infection_excluded")):
        val = _ext_value(res, ext)
        if val is not None:
            new[key] = val
    old = st.findings.get(name)
    st.finding_sources.setdefault(name, []).append(label)
    if old is None:
        st.findings[name] = new
        return
    # Several Conditions for one finding: present wins over absent over unknown; the
    # earliest onset and the latest recorded date are kept.
    rank = {True: 2, False: 1, None: 0}
    merged = dict(old)
    if rank[present] > rank[old.get("present")]:
        merged["present"] = present
    if onset and (not old.get("onset") or onset < old["onset"]):
        merged["onset"] = onset
    if recorded and (not old.get("date") or recorded > old["date"]):
        merged["date"] = recorded
    for key in ("duration_months", "malignancy_excluded", "infection_excluded"):
        if key in new and key not in merged:
            merged[key] = new[key]
    st.findings[name] = merged


# --- Procedure, ServiceRequest ----------------------------------------------------------


def _is_splenectomy(cc: Any) -> bool:
    return any(codes.procedure_from_coding(c.get("system"), c.get("code")) == "splenectomy" for c in _codings(cc))


def _procedure(res: Mapping[str, Any], st: _State, label: str) -> None:
    if not _is_splenectomy(res.get("code")):
        st.warn(label, "code", f"procedure not mapped by alpsdx: {_cc_label(res.get('code'))}")
        return
    status = res.get("status")
    if status == "completed":
        st.flags["splenectomy"] = True
        when = None
        if res.get("performedDateTime"):
            when = _date(res["performedDateTime"], label, "performedDateTime")
        elif (res.get("performedPeriod") or {}).get("start"):
            when = _date(res["performedPeriod"]["start"], label, "performedPeriod.start")
        if when is not None:
            try:
                st.events.append(ClinicalEvent(kind="splenectomy", date=when))
            except ValidationError as exc:
                raise _model_error(exc, f"{label}.performedDateTime") from None
    elif status == "not-done":
        if st.flags.get("splenectomy") is not True:
            st.flags["splenectomy"] = False
    elif status in ("preparation", "in-progress", "on-hold"):
        st.events.append(ClinicalEvent(kind="splenectomy_proposed", note=f"Procedure status {status}"))
        st.warn(label, "status", f"splenectomy with status {status}: imported as 'splenectomy proposed'")
    else:
        st.warn(label, "status", f"splenectomy with status {status}: not imported")


def _service_request(res: Mapping[str, Any], st: _State, label: str) -> None:
    if not _is_splenectomy(res.get("code")):
        st.warn(label, "code", f"service request not mapped by alpsdx: {_cc_label(res.get('code'))}")
        return
    if res.get("status") in ("revoked", "entered-in-error", "completed"):
        st.warn(label, "status", f"splenectomy request with status {res.get('status')}: not imported")
        return
    when = _date(res["authoredOn"], label, "authoredOn") if res.get("authoredOn") else None
    try:
        st.events.append(ClinicalEvent(kind="splenectomy_proposed", date=when))
    except ValidationError as exc:
        raise _model_error(exc, f"{label}.authoredOn") from None


# --- Medications ------------------------------------------------------------------------

_FREQ_WORDS = {(1, 1, "d"): "daily", (2, 1, "d"): "twice daily", (3, 1, "d"): "three times daily",
               (1, 12, "h"): "q12h", (1, 24, "h"): "q24h", (1, 8, "h"): "q8h"}


def _frequency(dosage: Mapping[str, Any]) -> str | None:
    timing = dosage.get("timing") or {}
    if (timing.get("code") or {}).get("text"):
        return str(timing["code"]["text"])
    rep = timing.get("repeat") or {}
    if rep.get("frequency") and rep.get("period") and rep.get("periodUnit"):
        key = (int(rep["frequency"]), int(float(rep["period"])) if float(rep["period"]).is_integer() else rep["period"],
               rep["periodUnit"])
        return _FREQ_WORDS.get(key, f"{rep['frequency']} per {rep['period']} {rep['periodUnit']}")
    if dosage.get("text"):
        return str(dosage["text"])
    return None


def _medication_cc(res: Mapping[str, Any], st: _State) -> Any:
    if res.get("medicationCodeableConcept") is not None:
        return res["medicationCodeableConcept"]
    ref = (res.get("medicationReference") or {}).get("reference")
    if ref:
        if ref.startswith("#"):
            for c in res.get("contained", ()) or ():
                if c.get("id") == ref[1:]:
                    return c.get("code")
        target = st.by_ref.get(ref)
        if target is not None:
            return target.get("code")
    return None


def _medication(res: Mapping[str, Any], st: _State, label: str) -> None:
    rtype = res["resourceType"]
    status = res.get("status")
    if status in ("entered-in-error", "cancelled", "not-taken", "draft"):
        st.warn(label, "status", f"status {status}: not imported")
        return
    cc = _medication_cc(res, st)
    if cc is None:
        st.warn(label, "medication[x]", "medication not identifiable (unresolved reference): not imported")
        return
    name = next((c.get("code") for c in _codings(cc) if c.get("system") == ALPSDX_MEDICATION and c.get("code")), None)
    if name is None:
        texts = [cc.get("text")] + [c.get("display") for c in _codings(cc)]
        for t in texts:
            name = codes.medication_from_text(t)
            if name:
                break
        if name is None:
            name = next((t for t in texts if t), None)
            if name is None:
                st.warn(label, "medication[x]", f"medication {_cc_label(cc)} has no name: not imported")
                return
            st.warn(label, "medication[x]", f"medication {name!r} is not one alpsdx's rules use: kept by name")
    data: dict[str, Any] = {"name": name}
    if rtype == "MedicationStatement":
        period = res.get("effectivePeriod") or {}
        if period.get("start"):
            data["start"] = _date(period["start"], label, "effectivePeriod.start")
        if period.get("end"):
            data["end"] = _date(period["end"], label, "effectivePeriod.end")
        if res.get("effectiveDateTime") and "start" not in data:
            data["start"] = _date(res["effectiveDateTime"], label, "effectiveDateTime")
        dosages = res.get("dosage", ()) or ()
        dpath = "dosage"
    else:
        dosages = res.get("dosageInstruction", ()) or ()
        dpath = "dosageInstruction"
        bounds = ((dosages[0].get("timing") or {}).get("repeat") or {}).get("boundsPeriod") if dosages else None
        if bounds and bounds.get("start"):
            data["start"] = _date(bounds["start"], label, f"{dpath}[0].timing.repeat.boundsPeriod.start")
        elif res.get("authoredOn"):
            data["start"] = _date(res["authoredOn"], label, "authoredOn")
        if bounds and bounds.get("end"):
            data["end"] = _date(bounds["end"], label, f"{dpath}[0].timing.repeat.boundsPeriod.end")
    if dosages:
        d0 = dosages[0]
        if len(dosages) > 1:
            st.warn(label, f"{dpath}[1:]", f"{len(dosages) - 1} further dosage line(s) not imported (first kept)")
        dq = next((dr.get("doseQuantity") for dr in d0.get("doseAndRate", ()) or () if dr.get("doseQuantity")), None)
        if dq is not None:
            unit = _quantity_unit(dq)
            if unit == "mg":
                data["dose_mg"] = dq.get("value")
            elif unit == "g" and dq.get("value") is not None:
                data["dose_mg"] = float(dq["value"]) * 1000.0
            else:
                st.warn(label, f"{dpath}[0].doseAndRate[0].doseQuantity",
                        f"dose {dq.get('value')} {unit or '(no unit)'} is not a mass in mg: dose not imported")
        freq = _frequency(d0)
        if freq:
            data["frequency"] = freq
        if (d0.get("route") or {}).get("text"):
            data["route"] = d0["route"]["text"]
        elif _codings(d0.get("route")):
            data["route"] = _codings(d0["route"])[0].get("display") or _codings(d0["route"])[0].get("code")
    if status in ("stopped", "completed") and "end" not in data:
        st.warn(label, "status", f"{name}: status {status} without an end date; not imported (it would read "
                                 "as still taken)")
        return
    try:
        st.medications.append(Medication.model_validate(data))
    except ValidationError as exc:
        raise _model_error(exc, label) from None


# --- FamilyMemberHistory ----------------------------------------------------------------


def _family_history(res: Mapping[str, Any], st: _State, label: str) -> None:
    if res.get("status") == "entered-in-error":
        st.warn(label, "status", "entered-in-error: not imported")
        return
    wanted = codes.family_history_conditions()
    found = False
    for i, cond in enumerate(res.get("condition", ()) or ()):
        names = _condition_names(cond.get("code"))
        if any(n in wanted for n in names):
            found = True
        else:
            st.warn(label, f"condition[{i}].code",
                    f"family history of {_cc_label(cond.get('code'))} is not nonmalignant lymphoproliferation: not counted")
    if found:
        st.flags["family_history_lymphoproliferation"] = True


# --- assembly ---------------------------------------------------------------------------


def _assemble(st: _State) -> Case:
    data = dict(st.data)
    findings: dict[str, Any] = {}
    for name, f in st.findings.items():
        clean = {k: v for k, v in f.items() if v is not None}
        try:
            findings[name] = Finding.model_validate(clean)
        except ValidationError as exc:
            raise _model_error(exc, ", ".join(st.finding_sources.get(name, [name]))) from None
    if st.cytopenias:
        findings["autoimmune_cytopenias"] = list(st.cytopenias)
    elif st.cytopenias_refuted:
        if st.cytopenias_refuted >= set(CYTOPENIAS):
            findings["autoimmune_cytopenias"] = []
        else:
            st.warn("Condition", "verificationStatus",
                    f"only {', '.join(sorted(st.cytopenias_refuted))} refuted: the other lineages stay unknown")
    for key in ("typical_histology", "family_history_lymphoproliferation", "splenectomy", "lymphoma"):
        if key in st.flags:
            findings[key] = st.flags[key]
    data["findings"] = findings
    for field_name, values in st.vitals.items():
        values.sort(key=lambda t: t[0] or dt.date.min)
        newest_date, data[field_name], _ = values[-1]
        for _d, _v, older in values[:-1]:
            st.warn(older, "valueQuantity", f"{field_name}: an older measurement, not used (the newest, "
                                            f"{newest_date or 'undated'}, is the case's value)")
    data["observations"] = [o for _, o in st.observations]
    data["apoptosis_assays"] = st.assays
    data["variants"] = st.variants
    data["medications"] = st.medications
    data["clinical_events"] = st.events
    if st.genes_tested is not None:
        data["genes_tested"] = st.genes_tested
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = err.get("loc", ())
        msg = str(err.get("msg", "invalid"))
        m = re.search(r"observations\[(\d+)\]", msg)
        if m and int(m.group(1)) < len(st.observations):
            where = st.observations[int(m.group(1))][0] + ".effectiveDateTime"
        else:
            where = "Patient" + (f" ({'.'.join(str(x) for x in loc)})" if loc else "")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        raise FHIRError(msg, field=where) from None
    except InputError as exc:  # pragma: no cover - model raises through pydantic
        raise _model_error(exc, "Patient") from None
