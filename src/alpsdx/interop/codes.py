"""The FHIR code table (``knowledge/data/fhir_codes.yaml``) as fast lookups.

Maps standard codings (LOINC, SNOMED CT, ICD-10-CM, UCUM, HGVS) to alpsdx's domain keys and
back. Concepts with no confirmed standard code travel under alpsdx's own code systems:

- ``https://alpsdx.org/fhir/CodeSystem/analyte``: analyte keys (e.g. ``sfasl``, ``il18``,
  ``dnt_pct_lymphocytes``), code = the key in ``knowledge/data/analytes.yaml``;
- ``https://alpsdx.org/fhir/CodeSystem/alpsdx``: findings, assays and result codes (e.g.
  ``autoimmune-neutropenia``, ``fas-apoptosis-assay``, ``alps-evaluation``);
- ``https://alpsdx.org/fhir/CodeSystem/criterion``: criterion ids of a criteria set;
- ``https://alpsdx.org/fhir/CodeSystem/medication``: the medication name as entered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from alpsdx import knowledge, units
from alpsdx.errors import KnowledgeError

__all__ = [
    "ALPSDX",
    "ALPSDX_ANALYTE",
    "ALPSDX_CRITERION",
    "ALPSDX_MEDICATION",
    "EXT",
    "LOINC",
    "SNOMED",
    "UCUM",
    "analyte_coding",
    "analyte_from_coding",
    "analyte_query_codings",
    "condition_codings",
    "condition_from_coding",
    "genomics",
    "medication_from_text",
    "procedure_codings",
    "procedure_from_coding",
    "system",
    "vital_from_coding",
    "vital_sign",
]

EXT = "https://alpsdx.org/fhir/StructureDefinition/"


@lru_cache(maxsize=1)
def _table() -> Mapping[str, Any]:
    table = knowledge.load("fhir_codes")
    cites = knowledge.citations()
    for path, entry in _walk(table, "fhir_codes"):
        key = entry.get("citation")
        if key is not None and key not in cites:
            raise KnowledgeError("unknown citation key in the FHIR code table", field=path, value=key)
    return table


def _walk(node: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, tuple):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def system(name: str) -> str:
    """The URI of a code system by its short name in the table (``loinc``, ``snomed``...)."""
    try:
        return str(_table()["systems"][name])
    except KeyError as exc:
        raise KnowledgeError("unknown code system name", field="fhir_codes.systems", value=name) from exc


LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ALPSDX = "https://alpsdx.org/fhir/CodeSystem/alpsdx"
ALPSDX_ANALYTE = "https://alpsdx.org/fhir/CodeSystem/analyte"
ALPSDX_CRITERION = "https://alpsdx.org/fhir/CodeSystem/criterion"
ALPSDX_MEDICATION = "https://alpsdx.org/fhir/CodeSystem/medication"


def _coding(entry: Mapping[str, Any]) -> dict[str, str]:
    out = {"system": system(str(entry["system"])), "code": str(entry["code"])}
    if entry.get("display"):
        out["display"] = str(entry["display"])
    return out


# --- analytes ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _analyte_index() -> dict[tuple[str, str], str]:
    index: dict[tuple[str, str], str] = {}
    for key, codings in _table()["analytes"].items():
        for c in codings:
            index[(system(str(c["system"])), str(c["code"]))] = str(key)
    return index


def analyte_coding(key: str) -> dict[str, str]:
    """The coding alpsdx exports for an analyte (first in the table, else its own code)."""
    codings = _table()["analytes"].get(key)
    if codings:
        return _coding(codings[0])
    label = units.analytes().get(key, {}).get("label")
    out = {"system": ALPSDX_ANALYTE, "code": key}
    if label:
        out["display"] = str(label)
    return out


def analyte_from_coding(system_uri: str | None, code: str | None) -> str | None:
    """An analyte key from a coding, or ``None`` when alpsdx does not know the code."""
    if not code:
        return None
    key = _analyte_index().get((system_uri or "", code))
    if key is not None:
        return key
    if system_uri == ALPSDX_ANALYTE and code in units.analytes():
        return code
    if system_uri == LOINC:
        try:
            return units.resolve_analyte(code)
        except Exception:  # a LOINC code not in analytes.yaml either
            return None
    return None


def analyte_query_codings() -> list[dict[str, str]]:
    """Every coding the import recognises for an analyte (for prefetch and searches)."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for (sys_uri, code), _key in _analyte_index().items():
        seen[(sys_uri, code)] = {"system": sys_uri, "code": code}
    for key, info in units.analytes().items():
        for code in info.get("loinc", ()):
            seen.setdefault((LOINC, str(code)), {"system": LOINC, "code": str(code)})
        if not _table()["analytes"].get(key):
            seen.setdefault((ALPSDX_ANALYTE, key), {"system": ALPSDX_ANALYTE, "code": key})
    return list(seen.values())


# --- vital signs ------------------------------------------------------------------------


def vital_sign(field: str) -> Mapping[str, Any]:
    """The table entry for ``height_cm`` or ``weight_kg``."""
    result: Mapping[str, Any] = _table()["vital_signs"][field]
    return result


def vital_from_coding(system_uri: str | None, code: str | None) -> str | None:
    for field, entry in _table()["vital_signs"].items():
        if system(str(entry["system"])) == system_uri and str(entry["code"]) == code:
            return str(field)
    return None


# --- conditions and procedures ----------------------------------------------------------


@lru_cache(maxsize=1)
def _condition_index() -> tuple[dict[tuple[str, str], str], list[tuple[str, str]]]:
    exact: dict[tuple[str, str], str] = {}
    prefixes: list[tuple[str, str]] = []
    for name, entry in _table()["conditions"].items():
        for c in entry.get("codes", ()):
            exact[(system(str(c["system"])), str(c["code"]))] = str(name)
        for p in entry.get("icd10cm_prefixes", ()):
            prefixes.append((str(p), str(name)))
    prefixes.sort(key=lambda t: -len(t[0]))  # longest prefix wins
    return exact, prefixes


def condition_from_coding(system_uri: str | None, code: str | None) -> str | None:
    """The condition name (``lymphadenopathy``, ``thrombocytopenia``...) for a coding."""
    if not code:
        return None
    exact, prefixes = _condition_index()
    name = exact.get((system_uri or "", code))
    if name is not None:
        return name
    if system_uri == system("icd10cm"):
        for prefix, pname in prefixes:
            if code.startswith(prefix):
                return pname
    return None


def condition_codings(name: str) -> list[dict[str, str]]:
    """Codings alpsdx exports for a condition: the first of each code system."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for c in _table()["conditions"][name].get("codes", ()):
        if c["system"] not in seen:
            seen.add(str(c["system"]))
            out.append(_coding(c))
    return out


def procedure_from_coding(system_uri: str | None, code: str | None) -> str | None:
    for name, entry in _table()["procedures"].items():
        for c in entry.get("codes", ()):
            if system(str(c["system"])) == system_uri and str(c["code"]) == code:
                return str(name)
    return None


def procedure_codings(name: str) -> list[dict[str, str]]:
    return [_coding(c) for c in _table()["procedures"][name]["codes"][:1]]


def medication_from_text(text: str | None) -> str | None:
    """The canonical ingredient name when ``text`` names a medication alpsdx's rules know."""
    if not text:
        return None
    low = text.lower()
    for canonical, entry in _table()["medications"].items():
        for n in entry["names"]:
            if str(n) in low:
                return str(canonical)
    return None


def family_history_conditions() -> frozenset[str]:
    return frozenset(str(n) for n in _table()["family_history_conditions"])


def family_member_coding() -> dict[str, str]:
    return _coding(_table()["family_member"])


def genomics() -> Mapping[str, Any]:
    """The genomics section (component codes and answer codes)."""
    result: Mapping[str, Any] = _table()["genomics"]
    return result


def genomics_coding(name: str) -> dict[str, str]:
    return _coding(genomics()[name])


def answer_coding(group: str, value: str) -> dict[str, str] | None:
    entry = genomics()[group].get(value)
    return None if entry is None else _coding(entry)


def answer_value(group: str, system_uri: str | None, code: str | None) -> str | None:
    for value, entry in genomics()[group].items():
        if system(str(entry["system"])) == system_uri and str(entry["code"]) == code:
            return str(value)
    return None

