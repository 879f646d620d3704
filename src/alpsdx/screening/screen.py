"""Run the ALPS screen over an OMOP warehouse: rank, explain, count who was left out and why.

Stages (each reported to an optional ``progress`` callback): resolve concept sets against
the warehouse's vocabulary (or source codes), scan measurement units, compute the feature
expression on the engine, then rank and write the evidence for each person.

Ranking: highest score first; ties by the earlier flag date, then by person_id (so every
backend gives the same order). Persons already coded with ALPS (ICD-10-CM D89.82 or its
standard concept) are excluded from the "undiagnosed" list and counted; nobody is dropped
without a count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alpsdx import knowledge
from alpsdx.errors import InputError
from alpsdx.screening.concepts import ConceptSets, ResolvedConcepts, concept_sets, resolve
from alpsdx.screening.features import band_table, features, unit_table
from alpsdx.screening.omop import OmopTables
from alpsdx.screening.score import ELEMENTS, ScoreSpec, score_spec

__all__ = ["STAGES", "ScreenResult", "days_to_date", "run_screen", "write_ranked"]

STAGES = ("concept sets", "measurement units", "features and score", "ranking and evidence")
OUTPUT_COLUMNS = ["rank", "person_id", "score", "flagged", "flag_date", "evidence", "next_test",
                  "citations"]


@dataclass
class ScreenResult:
    """The ranked undiagnosed persons, every person with evidence, and the counts."""

    ranked: pd.DataFrame
    people: pd.DataFrame  # every fetched person (incl. diagnosed), features with dates
    counts: dict[str, int]
    exclusions: list[dict[str, Any]]
    units: pd.DataFrame
    mode: str
    backend: str
    source: str
    spec: ScoreSpec
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary: counts, exclusions with reasons, unit problems, method."""
        bad = self.units[~self.units.convertible]
        return {
            "source": self.source,
            "backend": self.backend,
            "concept_matching": self.mode,
            "score": self.spec.name,
            "flag_threshold": self.spec.flag_threshold,
            "counts": self.counts,
            "exclusions": self.exclusions,
            "unconverted_measurements": [
                {"analyte": r.analyte, "unit": r.unit_key, "rows": int(r.rows), "reason": r.reason}
                for r in bad.itertuples()
            ],
            "notes": self.notes,
            "citations": {k: knowledge.resolve_citation(k) for k in self.spec.citation_keys()},
        }


def days_to_date(s: pd.Series) -> pd.Series:
    """Epoch days (nullable) -> datetime.date objects (None when missing)."""
    out = pd.to_datetime(pd.to_numeric(s, errors="coerce"), unit="D", origin="unix")
    return out.dt.date.where(out.notna(), None)


def _count(con: Any, expr: Any) -> int:
    return int(con.execute(expr))


def run_screen(
    omop: OmopTables,
    *,
    top: int | None = None,
    extra_dnt_codes: Iterable[str] = (),
    progress: Callable[[str], None] | None = None,
    spec: ScoreSpec | None = None,
    sets: ConceptSets | None = None,
) -> ScreenResult:
    """Screen ``omop``; return the top ``top`` undiagnosed persons (all with score > 0 if None)."""
    if top is not None and top < 1:
        raise InputError("top must be a positive number", field="top", value=top, expected=">= 1")
    spec = spec or score_spec()
    sets = sets or concept_sets()
    step = progress or (lambda _stage: None)

    step(STAGES[0])
    rc: ResolvedConcepts = resolve(omop, sets, extra_dnt_codes=extra_dnt_codes)
    step(STAGES[1])
    ut = unit_table(omop, rc, sets)
    step(STAGES[2])
    feats = features(omop, rc, ut.factors, band_table(spec), spec, sets)
    fetched = feats.filter((feats.score > 0) | feats.alps_first_day.notnull() | ~feats.in_person_table)
    people = omop.con.execute(fetched)
    con = omop.con
    p = omop["person"]
    op = omop["observation_period"]
    n_persons = _count(con, p.count())
    n_no_op = _count(con, p.anti_join(op, p.person_id == op.person_id).count())
    n_no_yob = _count(con, p.filter(p.year_of_birth.isnull()).count())
    step(STAGES[3])
    people = _finish(people, spec)
    inp = people[people.in_person_table.astype(bool)]
    diagnosed = inp[inp.alps_first_day.notna()]
    undiagnosed = inp[inp.alps_first_day.isna() & (inp.score > 0)]
    ranked = undiagnosed.sort_values(
        ["score", "flag_day", "person_id"], ascending=[False, True, True], na_position="last"
    ).reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1, dtype=np.int64))
    n_ranked = len(ranked)
    n_flagged = int(ranked.flagged.sum())
    if top is not None:
        ranked = ranked.head(top)
    ranked = _explain(ranked, spec)
    ranked = ranked[OUTPUT_COLUMNS + [c for c in ranked.columns if c not in OUTPUT_COLUMNS]]
    not_in_person = people[~people.in_person_table.astype(bool)]
    bad_units = ut.report[~ut.report.convertible]
    counts = {
        "persons_scanned": n_persons,
        "persons_ranked": n_ranked,
        "persons_flagged": n_flagged,
        "persons_written": len(ranked),
        "excluded_already_diagnosed_alps": len(diagnosed),
        "persons_without_evidence": n_persons - len(diagnosed) - n_ranked,
        "person_ids_with_records_but_no_person_row": len(not_in_person),
        "persons_without_observation_period": n_no_op,
        "persons_without_year_of_birth": n_no_yob,
        "measurement_rows_unit_not_converted": int(bad_units.rows.sum()),
        "measurement_rows_without_value": int(ut.report.no_value.sum()),
        "lymphoproliferation_records_after_lymphoma": int(inp.lp_after_lymphoma.sum()),
    }
    exclusions = [
        {"reason": "ALPS already diagnosed (ICD-10-CM D89.82 or its standard concept)",
         "persons": len(diagnosed), "citation": "icd10cm"},
        {"reason": "no screen element recorded (score 0): not listed",
         "persons": counts["persons_without_evidence"]},
        {"reason": "records for a person_id missing from the person table: not listed",
         "persons": len(not_in_person)},
    ]
    if top is not None and n_ranked > top:
        exclusions.append({"reason": f"beyond --top {top}", "persons": n_ranked - top})
    notes = list(omop.notes)
    if n_no_yob:
        notes.append(f"{n_no_yob} person(s) without year_of_birth: age-specific limits use the fall-backs")
    if n_no_op:
        notes.append(f"{n_no_op} person(s) without an observation_period row are still screened")
    if rc.mode == "source":
        notes.append("no vocabulary tables: concept sets matched by source codes "
                     "(condition/procedure/observation/measurement/drug *_source_value)")
    return ScreenResult(
        ranked=ranked.reset_index(drop=True), people=people, counts=counts, exclusions=exclusions,
        units=ut.report, mode=rc.mode, backend=omop.backend, source=omop.source, spec=spec, notes=notes,
    )


DAY_COLUMNS = [
    "lp_first_day", "lp_last_day", "lp_chronic_day", "lymphoma_first_day", "cytopenia_first_day",
    "cytopenia_second_day", "igg_high_first_day", "hypergamma_first_day", "b12_high_first_day",
    "dnt_high_first_day", "splenectomy_first_day", "family_history_first_day", "alps_first_day",
    "first_sign_day", "flag_day", "lab_low_first_day", "lab_low_last_day",
]


def _finish(people: pd.DataFrame, spec: ScoreSpec) -> pd.DataFrame:
    """Dates and flagged (pandas, on the fetched rows)."""
    df = people.copy()
    for c in DAY_COLUMNS + [f"day_{k}" for k in ELEMENTS]:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df["sex"] = df.sex_id.map({0: "female", 1: "male", 2: "unknown"})
    df["flagged"] = df.score >= spec.flag_threshold
    df["flag_date"] = days_to_date(df.flag_day)
    return df.drop(columns=[f"day_{k}" for k in ELEMENTS if f"day_{k}" in df.columns])


def _explain(ranked: pd.DataFrame, spec: ScoreSpec) -> pd.DataFrame:
    """Evidence text, next test and citations for the rows that are written."""
    df = ranked.copy()
    ev, nxt, cit = [], [], []
    for row in df.itertuples(index=False):
        e, c = _evidence(row, spec)
        ev.append(e)
        cit.append(";".join(c))
        nxt.append(_next_test(row, spec))
    df["evidence"] = ev
    df["next_test"] = nxt
    df["citations"] = cit
    return df


def _d(v: Any) -> str:
    if v is None or pd.isna(v):
        return "?"
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(v))).isoformat()


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _evidence(r: Any, spec: ScoreSpec) -> tuple[str, list[str]]:
    parts: list[str] = []
    cites: set[str] = set()
    P = spec.points

    def scored(key: str, text: str) -> None:
        pt = P[key]
        parts.append(f"{text} [+{pt.points}: {pt.criterion}; {pt.citation}]")
        cites.add(pt.citation)

    if _num(r.pts_lymphoproliferation_any):
        span = int(r.lp_span_days) if _num(r.lp_span_days) is not None else 0
        scored("lymphoproliferation_any",
               f"lymphadenopathy/splenomegaly {_d(r.lp_first_day)}..{_d(r.lp_last_day)} ({span} d)")
    if _num(r.pts_lymphoproliferation_chronic):
        scored("lymphoproliferation_chronic",
               f"lymphoproliferation > {spec.chronic_days} d (from {_d(r.lp_first_day)} to {_d(r.lp_chronic_day)})")
    if _num(r.pts_dnt_elevated):
        scored("dnt_elevated", f"DNT {r.dnt_max_pct:g} % on {_d(r.dnt_high_first_day)} (>= threshold)")
    elif bool(r.dnt_measured):
        parts.append(f"DNT measured, max {r.dnt_max_pct:g} % (below threshold)")
    if _num(r.pts_cytopenia_one_lineage):
        scored("cytopenia_one_lineage",
               f"autoimmune cytopenia coded from {_d(r.cytopenia_first_day)}; "
               f"{int(r.cytopenia_months)} month(s) with a coded cytopenia")
    if _num(r.pts_cytopenia_multi_lineage):
        scored("cytopenia_multi_lineage",
               f"{int(r.cytopenia_lineages)} cytopenia lineages (second on {_d(r.cytopenia_second_day)})")
    if _num(r.pts_igg_elevated):
        bits = []
        if _num(r.igg_high_first_day) is not None:
            bits.append(f"IgG max {r.igg_max_mg_dl:g} mg/dL ({r.igg_max_ratio:.2f} x age upper limit)")
        if _num(r.hypergamma_first_day) is not None:
            bits.append(f"polyclonal hypergammaglobulinaemia coded {_d(r.hypergamma_first_day)}")
        scored("igg_elevated", "; ".join(bits))
    if _num(r.pts_b12_elevated):
        scored("b12_elevated", f"vitamin B12 max {r.b12_max_ng_l:g} ng/L (> {spec.b12_ng_per_l:g})")
    if _num(r.pts_family_history):
        scored("family_history", f"family history coded {_d(r.family_history_first_day)}")
    # shown, not scored
    if int(r.lab_cytopenia_lineages or 0):
        parts.append(f"{int(r.lab_cytopenia_lineages)} lineage(s) below the age/sex limit in laboratory "
                     f"results ({_d(r.lab_low_first_day)}..{_d(r.lab_low_last_day)})")
    if int(r.steroid_ivig_courses or 0):
        parts.append(f"{int(r.steroid_ivig_courses)} month(s) with steroid/IVIG starts")
    if int(r.second_line_drugs or 0):
        parts.append(f"{int(r.second_line_drugs)} second-line drug(s) (rituximab/sirolimus/MMF)")
    if _num(r.splenectomy_first_day) is not None:
        parts.append(f"splenectomy {_d(r.splenectomy_first_day)}")
    if _num(r.lymphoma_first_day) is not None:
        parts.append(f"lymphoma coded {_d(r.lymphoma_first_day)}: {int(r.lp_after_lymphoma)} later "
                     "lymphoproliferation record(s) not counted")
    lym = _num(r.lymphocytes_min)
    if lym is not None and lym < spec.lymphopenia_10e9_per_l:
        parts.append(f"caution: lymphocytes {lym:g} x10^9/L (lymphopenia can raise DNT %)")
    if _num(r.age_first_sign_years) is not None:
        parts.append(f"age at first sign {r.age_first_sign_years:g} y")
    return "; ".join(parts), sorted(cites)


def _next_test(r: Any, spec: ScoreSpec) -> str:
    if _num(r.pts_dnt_elevated):
        return spec.next_tests["dnt_elevated"]
    if bool(r.dnt_measured):
        return spec.next_tests["dnt_normal"]
    return spec.next_tests["no_dnt"]


def write_ranked(ranked: pd.DataFrame, out: str | Path) -> Path:
    """Write the ranked list as CSV or Parquet (by the file suffix)."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError("unknown output format", field="out", value=str(out),
                         expected="a file name ending in .csv or .parquet")
    df = ranked.copy()
    if suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].map(lambda v: None if v is None else (v.isoformat() if isinstance(v, dt.date) else str(v)))
        df.to_parquet(path, index=False)
    return path
