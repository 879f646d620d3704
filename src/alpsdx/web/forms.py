"""Form fields -> domain objects, through the same validation as the CLI (``case_from_dict``).

A form is a flat mapping of strings; empty fields mean "unknown" and are left out. Errors
come back as ``{field: message}`` so the page can show each next to its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alpsdx.errors import InputError
from alpsdx.model import ApoptosisAssay, Case, Medication, Observation, Variant, case_from_dict

FINDING_OBJECTS = ("lymphadenopathy", "splenomegaly", "hepatomegaly")
FINDING_FLAGS = ("typical_histology", "family_history_lymphoproliferation", "splenectomy", "lymphoma")
CYTOPENIAS = ("hemolytic_anemia", "thrombocytopenia", "neutropenia")


class FormErrors(InputError):
    """Field errors of one form: ``errors`` maps a form field to its message."""

    def __init__(self, errors: dict[str, str], source: InputError | None = None) -> None:
        first = next(iter(errors.items()), ("form", "invalid"))
        super().__init__(first[1], field=first[0])
        self.errors = errors
        self.source = source


def _clean(form: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        v = form.get(f)
        if isinstance(v, str):
            v = v.strip()
        if v is None or v == "":
            continue
        out[f] = v
    return out


def _tristate(v: Any) -> bool | None:
    """'yes' / 'no' / '' (unknown) selects."""
    if v in (True, "yes", "true", "on", "1"):
        return True
    if v in (False, "no", "false", "0"):
        return False
    return None


def _field_of(err: InputError, prefix: str) -> str:
    f = err.field or "form"
    f = f.split(": ", 1)[-1]
    if f.startswith(prefix):
        f = f[len(prefix):].lstrip(".")
    return f or "form"


def _message(err: InputError) -> str:
    msg = err.message
    if err.value is not None:
        msg += f" (got {err.value!r})"
    if err.expected:
        msg += f"; expected {err.expected}"
    return msg


def _via_case(key: str, item: dict[str, Any]) -> Any:
    try:
        case = case_from_dict({"id": "form", key: [item]})
    except InputError as err:
        raise FormErrors({_field_of(err, f"{key}[0]"): _message(err)}, err) from None
    return getattr(case, key)[0]


def _number_fields(data: dict[str, Any], fields: tuple[str, ...]) -> None:
    errors = {}
    for f in fields:
        if f in data:
            try:
                data[f] = float(str(data[f]).replace(",", "."))
            except ValueError:
                errors[f] = f"not a number (got {data[f]!r})"
    if errors:
        raise FormErrors(errors)


def observation(form: Mapping[str, Any]) -> Observation:
    data = _clean(form, ("analyte", "value", "unit", "date", "source"))
    missing = {f: "required" for f in ("analyte", "value", "unit") if f not in data}
    if missing:
        raise FormErrors(missing)
    _number_fields(data, ("value",))
    result: Observation = _via_case("observations", data)
    return result


def variant(form: Mapping[str, Any]) -> Variant:
    data = _clean(form, ("gene", "hgvs_c", "hgvs_p", "origin", "zygosity", "classification", "vaf", "sample", "consequence", "date", "source"))
    if "gene" not in data:
        raise FormErrors({"gene": "required"})
    _number_fields(data, ("vaf",))
    result: Variant = _via_case("variants", data)
    return result


def medication(form: Mapping[str, Any]) -> Medication:
    data = _clean(form, ("name", "dose_mg", "frequency", "start", "end", "route"))
    if "name" not in data:
        raise FormErrors({"name": "required"})
    _number_fields(data, ("dose_mg",))
    result: Medication = _via_case("medications", data)
    return result


def assay(form: Mapping[str, Any]) -> ApoptosisAssay:
    data = _clean(form, ("result", "date", "pct_of_control", "lab"))
    if "result" not in data:
        raise FormErrors({"result": "required"})
    _number_fields(data, ("pct_of_control",))
    result: ApoptosisAssay = _via_case("apoptosis_assays", data)
    return result


def findings(form: Mapping[str, Any], cytopenias: list[str]) -> dict[str, Any]:
    """The findings form: each organ finding (present/onset/duration/exclusions), flags, cytopenias.

    Only findings the form sets are returned; a finding left 'unknown' with no details is
    not recorded (so submitting the form never erases data by omission).
    """
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in FINDING_OBJECTS:
        item: dict[str, Any] = {}
        present = _tristate(form.get(f"{name}.present"))
        if present is not None:
            item["present"] = present
        for sub in ("onset", "duration_months", "date"):
            v = form.get(f"{name}.{sub}")
            if isinstance(v, str) and v.strip():
                item[sub] = v.strip()
        for sub in ("malignancy_excluded", "infection_excluded"):
            t = _tristate(form.get(f"{name}.{sub}"))
            if t is not None:
                item[sub] = t
        if "duration_months" in item:
            try:
                item["duration_months"] = float(item["duration_months"])
            except ValueError:
                errors[f"{name}.duration_months"] = f"not a number (got {item['duration_months']!r})"
        if item:
            out[name] = item
    for name in FINDING_FLAGS:
        t = _tristate(form.get(name))
        if t is not None:
            out[name] = t
    if form.get("cytopenias_set") == "1":
        out["autoimmune_cytopenias"] = [c for c in CYTOPENIAS if c in cytopenias]
    if errors:
        raise FormErrors(errors)
    try:
        case_from_dict({"id": "form", "findings": out})
    except InputError as err:
        raise FormErrors({_field_of(err, "findings"): _message(err)}, err) from None
    return out


def new_patient(form: Mapping[str, Any]) -> Case:
    data = _clean(form, ("id", "sex", "birth_date", "age_years", "height_cm", "weight_kg"))
    if "id" not in data:
        raise FormErrors({"id": "required"})
    _number_fields(data, ("age_years", "height_cm", "weight_kg"))
    try:
        return case_from_dict(data)
    except InputError as err:
        raise FormErrors({_field_of(err, ""): _message(err)}, err) from None
