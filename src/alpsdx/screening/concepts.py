"""Concept sets of the screen, resolved against a warehouse's vocabulary (or not).

The cited sets live in ``knowledge/data/omop_concept_sets.yaml``. Two ways to match:

* **source codes** (always): ``*_source_value`` compared with the set's codes, written
  without dots and in upper case; ``prefix`` codes match every code below them. Engine-
  friendly: an equi-join on the code's first three characters, then a prefix check.
* **standard concepts** (when ``concept`` and ``concept_relationship`` exist): the set's
  codes are looked up in ``concept``, followed through ``Maps to`` to standard concepts,
  then to all descendants through ``concept_ancestor`` when present.

Resolution runs once on the warehouse's own engine and returns small tables that the
feature expression joins against (a semi-join before any aggregation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from alpsdx import knowledge
from alpsdx.screening.omop import OmopTables

__all__ = [
    "ConceptSets",
    "ResolvedConcepts",
    "concept_sets",
    "norm_code",
    "norm_code_expr",
    "resolve",
]

SOURCE_VOCABULARIES = ("ICD10CM", "CPT4", "ICD10PCS")


def norm_code(code: str) -> str:
    """A code as compared: no dots or spaces, upper case ('d89.82' -> 'D8982')."""
    return str(code).replace(".", "").replace(" ", "").strip().upper()


def norm_code_expr(col: ir.StringValue) -> ir.StringValue:
    """The same normalisation as :func:`norm_code`, as an Ibis expression."""
    return col.replace(".", "").replace(" ", "").strip().upper()


@dataclass(frozen=True)
class ConceptSets:
    """The concept sets from knowledge, flattened for matching."""

    conditions: Mapping[str, Mapping[str, Any]]
    procedures: Mapping[str, Mapping[str, Any]]
    measurements: Mapping[str, Mapping[str, Any]]
    drugs: Mapping[str, Mapping[str, Any]]
    unit_aliases: Mapping[str, str]
    gender: Mapping[str, Any]

    @property
    def raw_gender(self) -> Mapping[str, Any]:
        """person.gender_concept_id / gender_source_value values per sex."""
        return self.gender

    def code_rows(self, domain: str) -> list[dict[str, Any]]:
        """(set_id, vocabulary, cat3, prefix, plen) per code of the condition/procedure sets."""
        sets = self.conditions if domain == "condition" else self.procedures
        rows = []
        for set_id, spec in sets.items():
            for c in spec["codes"]:
                code = norm_code(c["code"])
                rows.append({
                    "set_id": set_id,
                    "vocabulary": str(c["vocabulary"]),
                    "cat3": code[:3],
                    "prefix": code,
                    "plen": len(code),
                    "exact": c.get("match", "prefix") == "exact",
                })
        return rows

    def measurement_codes(self, extra_dnt_codes: Iterable[str] = ()) -> dict[str, str]:
        """Source code -> analyte (LOINC and local codes)."""
        out: dict[str, str] = {}
        for spec in self.measurements.values():
            for c in spec["codes"]:
                out[str(c["code"]).strip()] = str(spec["analyte"])
        for code in extra_dnt_codes:
            out[str(code).strip()] = "dnt_pct_lymphocytes"
        return out

    def drug_names(self) -> list[tuple[str, str]]:
        """(set_id, lower-case ingredient name)."""
        return [(sid, str(n).lower()) for sid, spec in self.drugs.items() for n in spec["ingredients"]]


def concept_sets() -> ConceptSets:
    """The cited concept sets (knowledge/data/omop_concept_sets.yaml)."""
    kb = knowledge.load("omop_concept_sets")
    return ConceptSets(
        conditions=kb["conditions"],
        procedures=kb["procedures"],
        measurements=kb["measurements"],
        drugs=kb["drugs"],
        unit_aliases=kb.get("unit_aliases", {}),
        gender=kb["gender"],
    )


@dataclass
class ResolvedConcepts:
    """Small lookup tables for one warehouse (pandas; turned into memtables by features)."""

    mode: str  # "vocabulary" or "source"
    condition_ids: pd.DataFrame  # concept_id, set_id
    procedure_ids: pd.DataFrame  # concept_id, set_id
    drug_ids: pd.DataFrame  # concept_id, set_id
    measurement_ids: pd.DataFrame  # concept_id, analyte
    unit_concepts: pd.DataFrame  # unit_concept_id, unit
    condition_codes: pd.DataFrame  # set_id, cat3, prefix, plen
    procedure_codes: pd.DataFrame
    measurement_codes: pd.DataFrame  # code, analyte
    drug_names: list[tuple[str, str]]
    counts: dict[str, int] = field(default_factory=dict)


def _empty(cols: Sequence[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols})


def _ids(df: pd.DataFrame, key: str) -> pd.DataFrame:
    df = df.dropna().drop_duplicates()
    df["concept_id"] = df["concept_id"].astype("int64")
    df[key] = df[key].astype(str)
    return df.sort_values(["concept_id", key]).reset_index(drop=True)


def _source_concepts(
    omop: OmopTables, rows: list[dict[str, Any]]
) -> pd.DataFrame:
    """concept rows (concept_id, set_id, standard) matching the coded sets."""
    if not rows:
        return _empty([("concept_id", "int64"), ("set_id", "object"), ("standard", "bool")])
    codes = ibis.memtable(pd.DataFrame(rows))
    c = omop["concept"]
    c = c.filter(c.vocabulary_id.isin([*SOURCE_VOCABULARIES, "LOCAL"]))
    c = c.mutate(ncode=norm_code_expr(c.concept_code))
    c = c.mutate(cat3=c.ncode.substr(0, 3))
    j = c.join(codes, [c.cat3 == codes.cat3, c.vocabulary_id == codes.vocabulary])
    j = j.filter(j.ncode.substr(0, j.plen.cast("int32")) == j.prefix)
    j = j.filter(~j.exact | (j.ncode == j.prefix))
    j = j.select(
        concept_id=j.concept_id, set_id=j.set_id,
        standard=(j.standard_concept.fill_null("") == "S"),
    ).distinct()
    return omop.con.execute(j)


def _standard_and_descendants(
    omop: OmopTables, src: pd.DataFrame, key: str
) -> pd.DataFrame:
    """Standard concepts for source concepts (itself if standard, else 'Maps to'), plus descendants."""
    if src.empty:
        return _empty([("concept_id", "int64"), (key, "object")])
    src_t = ibis.memtable(src[["concept_id", key]].drop_duplicates())
    rel = omop["concept_relationship"]
    rel = rel.filter(rel.relationship_id == "Maps to")
    mapped = rel.join(src_t, rel.concept_id_1 == src_t.concept_id).select(
        concept_id=rel.concept_id_2, **{key: src_t[key]}
    )
    own = src[src.get("standard", pd.Series(True, index=src.index)).astype(bool)][["concept_id", key]]
    std = pd.concat([own, omop.con.execute(mapped.distinct())], ignore_index=True)
    std = std.drop_duplicates()
    if omop.has_ancestor and not std.empty:
        std_t = ibis.memtable(std)
        anc = omop["concept_ancestor"]
        desc = anc.join(std_t, anc.ancestor_concept_id == std_t.concept_id).select(
            concept_id=anc.descendant_concept_id, **{key: std_t[key]}
        )
        std = pd.concat([std, omop.con.execute(desc.distinct())], ignore_index=True)
    return _ids(std, key)


def resolve(
    omop: OmopTables, sets: ConceptSets | None = None, *, extra_dnt_codes: Iterable[str] = ()
) -> ResolvedConcepts:
    """Resolve the concept sets against ``omop`` (vocabulary mode when its tables exist)."""
    sets = sets or concept_sets()
    cond_rows = sets.code_rows("condition")
    proc_rows = sets.code_rows("procedure")
    meas_codes = sets.measurement_codes(extra_dnt_codes)
    cond_codes = pd.DataFrame(cond_rows)
    proc_codes = pd.DataFrame(proc_rows)
    meas_code_df = pd.DataFrame(
        {"code": list(meas_codes), "analyte": list(meas_codes.values())}
    )
    drug_names = sets.drug_names()
    empty_ids = _empty([("concept_id", "int64"), ("set_id", "object")])
    if not omop.has_vocabulary:
        return ResolvedConcepts(
            mode="source",
            condition_ids=empty_ids,
            procedure_ids=empty_ids.copy(),
            drug_ids=empty_ids.copy(),
            measurement_ids=_empty([("concept_id", "int64"), ("analyte", "object")]),
            unit_concepts=_empty([("unit_concept_id", "int64"), ("unit", "object")]),
            condition_codes=cond_codes,
            procedure_codes=proc_codes,
            measurement_codes=meas_code_df,
            drug_names=drug_names,
        )
    con = omop.con
    cond_ids = _standard_and_descendants(omop, _source_concepts(omop, cond_rows), "set_id")
    proc_ids = _standard_and_descendants(omop, _source_concepts(omop, proc_rows), "set_id")

    c = omop["concept"]
    loinc = c.filter(c.vocabulary_id.isin(["LOINC", "LOCAL"]) & c.concept_code.isin(list(meas_codes)))
    loinc_df = con.execute(loinc.select("concept_id", "concept_code", "standard_concept"))
    loinc_df["analyte"] = loinc_df["concept_code"].map(meas_codes)
    loinc_df["standard"] = loinc_df["standard_concept"].fillna("") == "S"
    meas_ids = _standard_and_descendants(omop, loinc_df[["concept_id", "analyte", "standard"]], "analyte")

    names = sorted({n for _, n in drug_names})
    ing = c.filter(
        c.vocabulary_id.isin(["RxNorm", "RxNorm Extension"])
        & (c.concept_class_id == "Ingredient")
        & c.concept_name.lower().isin(names)
    )
    ing_df = con.execute(ing.select("concept_id", name=ing.concept_name.lower()))
    by_name: dict[str, list[str]] = {}
    for sid, n in drug_names:
        by_name.setdefault(n, []).append(sid)
    ing_rows = [
        {"concept_id": r.concept_id, "set_id": sid, "standard": True}
        for r in ing_df.itertuples()
        for sid in by_name.get(r.name, [])
    ]
    drug_src = pd.DataFrame(ing_rows) if ing_rows else _empty(
        [("concept_id", "int64"), ("set_id", "object"), ("standard", "bool")]
    )
    drug_ids = _standard_and_descendants(omop, drug_src, "set_id")

    ucum = c.filter(c.vocabulary_id == "UCUM").select(unit_concept_id=c.concept_id, unit=c.concept_code)
    unit_df = con.execute(ucum)
    counts = {
        "condition_concepts": len(cond_ids),
        "procedure_concepts": len(proc_ids),
        "measurement_concepts": len(meas_ids),
        "drug_concepts": len(drug_ids),
        "unit_concepts": len(unit_df),
    }
    return ResolvedConcepts(
        mode="vocabulary",
        condition_ids=cond_ids,
        procedure_ids=proc_ids,
        drug_ids=drug_ids,
        measurement_ids=meas_ids,
        unit_concepts=unit_df,
        condition_codes=cond_codes,
        procedure_codes=proc_codes,
        measurement_codes=meas_code_df,
        drug_names=drug_names,
        counts=counts,
    )
