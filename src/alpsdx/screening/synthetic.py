"""A synthetic OMOP CDM v5.4 warehouse with ALPS-like patients planted at a known rate.

Nothing here is real patient data. Persons get realistic background records: common
conditions that no concept set matches, blood counts, IgG and vitamin B12 in several unit
spellings (g/dL and g/L, mg/dL and g/L, pg/mL, ng/L and pmol/L, 10*9/L, 10*3/uL and K/uL),
and confounders that an ALPS screen must not confuse with ALPS: immune thrombocytopenia,
autoimmune haemolytic anaemia, Evans syndrome, neutropenia, a single episode of reactive
lymphadenopathy, and lymphoma (with lymphadenopathy and splenomegaly). Planted ALPS-like
persons have chronic lymphoproliferation from childhood, autoimmune cytopenias, raised IgG
and vitamin B12, sometimes a DNT result and a family history; a fraction receive an ALPS
diagnosis (ICD-10-CM D89.82) one to four years after onset, which makes lead time
measurable. ``truth.csv`` lists the planted persons (``person_id,onset_date,
diagnosis_date``).

Two flavours:

* ``vocabulary=False`` (default): a research extract with source codes only
  (``*_source_value`` ICD-10-CM / CPT-4 / LOINC / UCUM / drug names, every ``*_concept_id``
  0, no vocabulary tables).
* ``vocabulary=True``: concept ids filled and ``concept``, ``concept_relationship`` and
  ``concept_ancestor`` written. Concept ids are synthetic, in the OMOP range reserved for
  local concepts (above 2,000,000,000), except the OMOP gender concepts 8507/8532. Some
  condition and drug records carry a standard concept reachable only through
  ``concept_ancestor``, so the mapping path is exercised; with
  ``blank_source_values=True`` the source columns are emptied, so only the vocabulary can
  find the records.

Tables are written in chunks of persons (Parquet parts under ``<table>/`` or one CSV file
per table), so a 1 M person / 100 M measurement warehouse fits in modest memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from alpsdx.errors import InputError

__all__ = ["SyntheticSummary", "generate"]

EPOCH = np.datetime64("1970-01-01", "D")
DATA_START = np.datetime64("2010-01-01", "D")
DATA_END = np.datetime64("2025-06-30", "D")
LOCAL_ID = 2_000_000_001  # first synthetic concept id (OMOP: > 2e9 are local concepts)

# analyte: (LOINC/local code, mean, sd in canonical unit, [(unit, factor canonical->unit)])
LABS: dict[str, tuple[str, float, float, list[tuple[str, float]]]] = {
    "hemoglobin": ("718-7", 13.5, 1.3, [("g/dL", 1.0), ("g/L", 10.0), ("g/dl", 1.0)]),
    "platelets": ("777-3", 260.0, 60.0, [("10*9/L", 1.0), ("10*3/uL", 1.0), ("K/uL", 1.0)]),
    "anc": ("751-8", 4.0, 1.3, [("10*9/L", 1.0), ("10^9/L", 1.0), ("10*3/uL", 1.0)]),
    "lymphocytes_abs": ("731-0", 2.2, 0.6, [("10*9/L", 1.0), ("10*3/uL", 1.0)]),
    "igg": ("2465-3", 1050.0, 220.0, [("mg/dL", 1.0), ("g/L", 0.01)]),
    "vitamin_b12": ("2132-9", 450.0, 150.0, [("pg/mL", 1.0), ("ng/L", 1.0), ("pmol/L", 1 / 1.35537)]),
}
LAB_WEIGHTS = {"hemoglobin": 0.27, "platelets": 0.27, "anc": 0.2, "lymphocytes_abs": 0.2,
               "igg": 0.03, "vitamin_b12": 0.03}
DNT_CODE = "DNT_PCT_LYMPH"
NOISE_CONDITIONS = ["J06.9", "I10", "E11.9", "K21.9", "J45.909", "M54.5", "R50.9", "D64.9",
                    "L20.9", "R19.7"]
UNIT_CODES = ["g/dL", "g/L", "10*9/L", "10*3/uL", "mg/dL", "pg/mL", "ng/L", "pmol/L", "%"]

# condition code -> (synthetic standard concept name, set parent); used for the vocabulary
CONDITION_CODES = ["R59.0", "R59.1", "R59.9", "R16.1", "R16.2", "D59.11", "D59.12", "D69.3",
                   "D69.41", "D70.9", "D70.0", "D89.0", "D89.82", "C83.30", "C81.90", "Z83.2"]
DRUGS = {
    "prednisone": "prednisone 20 MG Oral Tablet",
    "methylprednisolone": "methylprednisolone 40 MG Injection",
    "immune globulin": "immune globulin 100 MG/ML Injectable Solution",
    "rituximab": "rituximab 10 MG/ML Injectable Solution",
    "sirolimus": "sirolimus 1 MG Oral Tablet",
    "mycophenolate mofetil": "mycophenolate mofetil 500 MG Oral Tablet",
}
PROCEDURES = {"38100": "CPT4", "38120": "CPT4"}


@dataclass
class SyntheticSummary:
    """What was written: counts per table and the planted persons."""

    path: Path
    persons: int
    planted: int
    diagnosed: int
    rows: dict[str, int] = field(default_factory=dict)
    vocabulary: bool = False
    fmt: str = "parquet"


@dataclass
class _Vocab:
    """Synthetic concept ids for every code the generator writes."""

    ids: dict[tuple[str, str], int] = field(default_factory=dict)
    concepts: list[dict[str, Any]] = field(default_factory=list)
    rels: list[tuple[int, int]] = field(default_factory=list)
    ancestors: list[tuple[int, int]] = field(default_factory=list)

    def add(self, vocab: str, code: str, name: str, *, standard: bool, cls: str = "") -> int:
        key = (vocab, code)
        if key in self.ids:
            return self.ids[key]
        cid = LOCAL_ID + len(self.concepts)
        self.ids[key] = cid
        self.concepts.append({
            "concept_id": cid, "concept_name": name, "domain_id": "", "vocabulary_id": vocab,
            "concept_class_id": cls, "standard_concept": "S" if standard else None,
            "concept_code": code,
        })
        return cid


def _build_vocab() -> tuple[_Vocab, dict[str, int], dict[str, int], dict[str, int], dict[str, int], dict[str, int]]:
    """Synthetic vocabulary: ICD10CM source -> 'Maps to' -> standard, with descendants."""
    v = _Vocab()
    cond_std: dict[str, int] = {}
    parents = {"R59": "Lymphadenopathy", "D59.1": "Autoimmune hemolytic anemia",
               "D70": "Neutropenia", "C83": "Non-follicular lymphoma"}
    parent_ids = {p: v.add("SYNTH", f"STD-{p}", name, standard=True, cls="Clinical Finding")
                  for p, name in parents.items()}
    for p, pid in parent_ids.items():
        v.ancestors.append((pid, pid))
        src = v.add("ICD10CM", p, parents[p], standard=False, cls="3-char nonbill code")
        v.rels.append((src, pid))
    for code in [*CONDITION_CODES, *NOISE_CONDITIONS]:
        std = v.add("SYNTH", f"STD-{code}", f"synthetic standard concept for {code}", standard=True,
                    cls="Clinical Finding")
        src = v.add("ICD10CM", code, f"ICD-10-CM {code}", standard=False)
        v.rels.append((src, std))
        v.ancestors.append((std, std))
        for p, pid in parent_ids.items():
            if code.replace(".", "").startswith(p.replace(".", "")):
                v.ancestors.append((pid, std))
        cond_std[code] = std
    # a standard concept below AIHA that no ICD-10-CM code maps to (reachable via ancestor only)
    warm = v.add("SYNTH", "STD-warm-AIHA", "Warm autoimmune hemolytic anemia (synthetic)",
                 standard=True, cls="Clinical Finding")
    v.ancestors += [(warm, warm), (parent_ids["D59.1"], warm)]
    cond_std["warm_aiha"] = warm
    lab_ids = {a: v.add("LOINC", spec[0], f"LOINC {spec[0]}", standard=True, cls="Lab Test")
               for a, spec in LABS.items()}
    lab_ids["dnt"] = v.add("LOCAL", DNT_CODE, "DNT % of lymphocytes (site code)", standard=True,
                           cls="Lab Test")
    unit_ids = {u: v.add("UCUM", u, u, standard=True, cls="Unit") for u in UNIT_CODES}
    drug_ids: dict[str, int] = {}
    for ing, product in DRUGS.items():
        iid = v.add("RxNorm", f"ING-{ing}", ing.title() if ing != "immune globulin" else "immune globulin G",
                    standard=True, cls="Ingredient")
        # the ingredient row is named as RxNorm names it (lower-case comparison in the screen)
        v.concepts[-1]["concept_name"] = ing
        pid = v.add("RxNorm", f"SCD-{ing}", product, standard=True, cls="Clinical Drug")
        v.ancestors += [(iid, iid), (pid, pid), (iid, pid)]
        drug_ids[ing] = pid
    proc_ids = {}
    for code, vocab in PROCEDURES.items():
        proc_ids[code] = v.add(vocab, code, f"{vocab} {code}", standard=True, cls="Procedure")
        v.ancestors.append((proc_ids[code], proc_ids[code]))
    return v, cond_std, lab_ids, unit_ids, drug_ids, proc_ids


class _Writer:
    """Appends Arrow tables per OMOP table: Parquet parts or one CSV file."""

    def __init__(self, root: Path, fmt: str) -> None:
        self.root, self.fmt = root, fmt
        self.rows: dict[str, int] = {}
        self.parts: dict[str, int] = {}
        self.csv: dict[str, Any] = {}

    def write(self, name: str, table: pa.Table) -> None:
        self.rows[name] = self.rows.get(name, 0) + table.num_rows
        if self.fmt == "parquet":
            folder = self.root / name
            folder.mkdir(exist_ok=True)
            n = self.parts.get(name, 0)
            pq.write_table(table, folder / f"part-{n:05d}.parquet", compression="zstd")
            self.parts[name] = n + 1
        else:
            if name not in self.csv:
                self.csv[name] = pacsv.CSVWriter(str(self.root / f"{name}.csv"), table.schema)
            self.csv[name].write_table(table)

    def close(self) -> None:
        for w in self.csv.values():
            w.close()


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype("int32"), type=pa.int32()).cast(pa.date32())


def _strings(values: np.ndarray | list[str]) -> pa.Array:
    return pa.array(list(values) if not isinstance(values, np.ndarray) else values.tolist(), type=pa.string())


def _cat(codes: np.ndarray, labels: list[str | None]) -> pa.Array:
    """String column from category indices (fast for millions of rows)."""
    arr = pa.DictionaryArray.from_arrays(pa.array(codes.astype("int32")), pa.array(labels, type=pa.string()))
    return arr.cast(pa.string())


def generate(
    out: str | Path,
    *,
    persons: int = 1000,
    alps_rate: float = 0.01,
    diagnosed_fraction: float = 0.5,
    measurements_per_person: float = 20.0,
    seed: int = 0,
    fmt: str = "parquet",
    vocabulary: bool = False,
    blank_source_values: bool = False,
    chunk_persons: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> SyntheticSummary:
    """Write a synthetic OMOP warehouse to folder ``out`` and return what was written.

    ``progress`` (optional) is called with the number of persons finished after each chunk.
    """
    if persons < 1:
        raise InputError("persons must be at least 1", field="persons", value=persons, expected=">= 1")
    if not 0.0 <= alps_rate <= 1.0:
        raise InputError("alps_rate must be a fraction", field="alps_rate", value=alps_rate, expected="0-1")
    if fmt not in ("parquet", "csv"):
        raise InputError("unknown format", field="fmt", value=fmt, expected="parquet or csv")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise InputError("output folder is not empty", field="out", value=str(root),
                         expected="a new or empty folder")
    rng = np.random.default_rng(seed)
    vocab = _build_vocab() if vocabulary else None
    w = _Writer(root, fmt)
    truth: list[tuple[int, str, str]] = []
    planted_total = diagnosed_total = 0
    for start in range(0, persons, chunk_persons):
        n = min(chunk_persons, persons - start)
        planted, diagnosed = _chunk(w, rng, start, n, alps_rate, diagnosed_fraction,
                                    measurements_per_person, vocab, blank_source_values, truth)
        planted_total += planted
        diagnosed_total += diagnosed
        if progress is not None:
            progress(n)
    if vocab is not None:
        v = vocab[0]
        w.write("concept", pa.Table.from_pylist(v.concepts, schema=pa.schema([
            ("concept_id", pa.int64()), ("concept_name", pa.string()), ("domain_id", pa.string()),
            ("vocabulary_id", pa.string()), ("concept_class_id", pa.string()),
            ("standard_concept", pa.string()), ("concept_code", pa.string())])))
        w.write("concept_relationship", pa.table({
            "concept_id_1": pa.array([a for a, _ in v.rels], pa.int64()),
            "concept_id_2": pa.array([b for _, b in v.rels], pa.int64()),
            "relationship_id": pa.array(["Maps to"] * len(v.rels), pa.string())}))
        w.write("concept_ancestor", pa.table({
            "ancestor_concept_id": pa.array([a for a, _ in v.ancestors], pa.int64()),
            "descendant_concept_id": pa.array([b for _, b in v.ancestors], pa.int64())}))
    w.close()
    with (root / "truth.csv").open("w", encoding="utf-8") as fh:
        fh.write("person_id,onset_date,diagnosis_date\n")
        for pid, onset, dx in truth:
            fh.write(f"{pid},{onset},{dx}\n")
    return SyntheticSummary(path=root, persons=persons, planted=planted_total,
                            diagnosed=diagnosed_total, rows=dict(w.rows), vocabulary=vocabulary, fmt=fmt)


def _chunk(
    w: _Writer,
    rng: np.random.Generator,
    start: int,
    n: int,
    alps_rate: float,
    diagnosed_fraction: float,
    mpp: float,
    vocab: tuple[Any, ...] | None,
    blank: bool,
    truth: list[tuple[int, str, str]],
) -> tuple[int, int]:
    pid = np.arange(start + 1, start + n + 1, dtype=np.int64)
    planted = rng.random(n) < alps_rate
    yob = np.where(planted, rng.integers(2000, 2020, n), rng.integers(1940, 2023, n))
    mob = rng.integers(1, 13, n)
    female = rng.random(n) < 0.5
    birth = _births(yob, mob)
    obs_start = np.maximum(birth, DATA_START) + rng.integers(0, 4 * 365, n).astype("timedelta64[D]")
    obs_end = np.minimum(DATA_END - rng.integers(0, 365, n).astype("timedelta64[D]"),
                         obs_start + rng.integers(3 * 365, 14 * 365, n).astype("timedelta64[D]"))
    obs_end = np.maximum(obs_end, obs_start + np.timedelta64(200, "D"))
    s_days = (obs_start - EPOCH).astype(np.int64)
    e_days = (obs_end - EPOCH).astype(np.int64)
    span = e_days - s_days

    voc = vocab[0] if vocab else None
    gender_cid = np.where(female, 8532, 8507) if voc else np.zeros(n, dtype=np.int64)
    w.write("person", pa.table({
        "person_id": pid, "gender_concept_id": pa.array(gender_cid, pa.int64()),
        "year_of_birth": pa.array(yob, pa.int64()), "month_of_birth": pa.array(mob, pa.int64()),
        "gender_source_value": _cat(female.astype(int), ["M", "F"]),
    }))
    w.write("observation_period", pa.table({
        "observation_period_id": pid, "person_id": pid,
        "observation_period_start_date": _dates(s_days), "observation_period_end_date": _dates(e_days),
    }))

    cond: list[tuple[np.ndarray, np.ndarray, str]] = []  # (person index, day, code)
    meas: list[tuple[np.ndarray, np.ndarray, str, np.ndarray, int]] = []  # idx, day, analyte, value(canon), unit idx
    drugs: list[tuple[np.ndarray, np.ndarray, str]] = []
    procs: list[tuple[np.ndarray, np.ndarray, str]] = []

    def at(idx: np.ndarray, frac: np.ndarray | float) -> np.ndarray:
        return s_days[idx] + (np.asarray(frac) * span[idx]).astype(np.int64)

    # background noise conditions
    k = rng.poisson(3, n)
    idx = np.repeat(np.arange(n), k)
    codes = rng.integers(0, len(NOISE_CONDITIONS), idx.size)
    for ci, code in enumerate(NOISE_CONDITIONS):
        sel = idx[codes == ci]
        cond.append((sel, at(sel, rng.random(sel.size)), code))

    bg = ~planted
    # confounders
    def pick(p: float) -> np.ndarray:
        return np.flatnonzero(bg & (rng.random(n) < p))

    reactive = pick(0.04)  # one episode of reactive lymphadenopathy (1-2 records, < 2 months)
    t = at(reactive, rng.random(reactive.size) * 0.9)
    cond.append((reactive, t, "R59.0"))
    two = reactive[rng.random(reactive.size) < 0.5]
    cond.append((two, t[np.searchsorted(reactive, two)] + rng.integers(7, 55, two.size), "R59.9"))
    itp = pick(0.006)
    _episodes(rng, cond, meas, drugs, itp, at, "D69.3", lineage_lab=("platelets", 35.0, 20.0))
    aiha = pick(0.001)
    _episodes(rng, cond, meas, drugs, aiha, at, "D59.11", lineage_lab=("hemoglobin", 8.0, 1.2))
    evans = pick(0.0008)
    _episodes(rng, cond, meas, drugs, evans, at, "D69.41", lineage_lab=("platelets", 40.0, 20.0))
    neut = pick(0.01)
    _episodes(rng, cond, meas, drugs, neut, at, "D70.9", lineage_lab=("anc", 0.8, 0.25), steroids=False)
    lymphoma = pick(0.002)
    t0 = at(lymphoma, rng.random(lymphoma.size) * 0.6)
    for j in range(4):  # lymphadenopathy before and after the lymphoma diagnosis
        cond.append((lymphoma, t0 + (j - 1) * 120 + rng.integers(0, 30, lymphoma.size), "R59.1"))
    cond.append((lymphoma, t0 + 130, "R16.1"))
    cond.append((lymphoma, t0 + 60, "C83.30"))
    hyper = pick(0.001)
    cond.append((hyper, at(hyper, rng.random(hyper.size)), "D89.0"))

    # planted ALPS-like persons
    pl = np.flatnonzero(planted)
    onset = at(pl, rng.random(pl.size) * 0.35)
    n_lp = rng.integers(2, 7, pl.size)
    for j in range(int(n_lp.max(initial=0))):
        sel = n_lp > j
        cond.append((pl[sel], onset[sel] + j * rng.integers(60, 150, int(sel.sum())), "R59.1" if j % 2 else "R59.0"))
    sp = rng.random(pl.size) < 0.6
    cond.append((pl[sp], onset[sp] + rng.integers(0, 200, int(sp.sum())), "R16.1"))
    for code, p, lab in (("D69.3", 0.45, ("platelets", 40.0, 20.0)), ("D59.11", 0.35, ("hemoglobin", 8.5, 1.0)),
                         ("D69.41", 0.15, ("platelets", 45.0, 20.0)), ("D70.9", 0.2, ("anc", 0.9, 0.2))):
        sel = rng.random(pl.size) < p
        ti = onset[sel] + rng.integers(0, 500, int(sel.sum()))
        cond.append((pl[sel], ti, code))
        cond.append((pl[sel], ti + rng.integers(30, 200, int(sel.sum())), code))
        lab_v = np.clip(rng.normal(lab[1], lab[2], int(sel.sum())), 0.05, None)
        meas.append((pl[sel], ti, lab[0], lab_v, -1))
        st = sel.copy()
        st[sel] = rng.random(int(sel.sum())) < 0.7
        drugs.append((pl[st], onset[st] + rng.integers(0, 600, int(st.sum())), "prednisone"))
    fh = rng.random(pl.size) < 0.15
    cond.append((pl[fh], onset[fh] + rng.integers(0, 400, int(fh.sum())), "Z83.2"))
    igg_sel = rng.random(pl.size) < 0.7
    ig = pl[igg_sel]
    meas.append((ig, onset[igg_sel] + rng.integers(30, 400, ig.size), "igg", rng.uniform(1700, 3200, ig.size), -1))
    b12_sel = rng.random(pl.size) < 0.45
    bb = pl[b12_sel]
    meas.append((bb, onset[b12_sel] + rng.integers(30, 600, bb.size), "vitamin_b12", rng.uniform(1550, 5000, bb.size), -1))
    dnt_sel = rng.random(pl.size) < 0.25
    dd = pl[dnt_sel]
    meas.append((dd, onset[dnt_sel] + rng.integers(100, 700, dd.size), "dnt", rng.uniform(1.6, 9.0, dd.size), -1))
    second = rng.random(pl.size) < 0.2
    drugs.append((pl[second], onset[second] + rng.integers(300, 900, int(second.sum())), "sirolimus"))
    dx_sel = rng.random(pl.size) < diagnosed_fraction
    dx_day = onset + rng.integers(365, 4 * 365, pl.size)
    dx_sel &= dx_day <= e_days[pl]
    cond.append((pl[dx_sel], dx_day[dx_sel], "D89.82"))
    splen = pl[rng.random(pl.size) < 0.05]
    procs.append((splen, at(splen, 0.8), "38100"))
    for i, p_i in enumerate(pl):
        truth.append((int(pid[p_i]), str(EPOCH + int(onset[i])),
                      str(EPOCH + int(dx_day[i])) if dx_sel[i] else ""))

    # routine labs for everyone
    k = rng.poisson(mpp, n)
    idx = np.repeat(np.arange(n), k)
    analytes = list(LAB_WEIGHTS)
    which = rng.choice(len(analytes), idx.size, p=np.array(list(LAB_WEIGHTS.values())))
    day = s_days[idx] + (rng.random(idx.size) * span[idx]).astype(np.int64)
    for ai, a in enumerate(analytes):
        sel = which == ai
        _, mean, sd, _ = LABS[a]
        meas.append((idx[sel], day[sel], a, np.clip(rng.normal(mean, sd, int(sel.sum())), mean * 0.05, None), -2))

    # separate streams, so the vocabulary flavour writes the same records as the source one
    s1, s2 = (int(x) for x in rng.integers(0, 2**62, 2))
    _write_conditions(w, pid, cond, vocab, blank, np.random.default_rng(s1))
    _write_measurements(w, pid, meas, vocab, blank, np.random.default_rng(s2))
    _write_drugs(w, pid, drugs, vocab, blank)
    _write_procedures(w, pid, procs, vocab, blank)
    w.write("observation", pa.table({
        "observation_id": pa.array([], pa.int64()), "person_id": pa.array([], pa.int64()),
        "observation_concept_id": pa.array([], pa.int64()), "observation_date": pa.array([], pa.date32()),
        "observation_source_value": pa.array([], pa.string())}))
    return int(planted.sum()), int(dx_sel.sum())


def _births(yob: np.ndarray, mob: np.ndarray) -> np.ndarray:
    months = (yob - 1970) * 12 + (mob - 1)
    return months.astype("datetime64[M]").astype("datetime64[D]") + np.timedelta64(14, "D")


def _episodes(
    rng: np.random.Generator,
    cond: list[Any],
    meas: list[Any],
    drugs: list[Any],
    idx: np.ndarray,
    at: Callable[[np.ndarray, Any], np.ndarray],
    code: str,
    *,
    lineage_lab: tuple[str, float, float],
    steroids: bool = True,
) -> None:
    """A confounder with 1-4 coded records, low labs at those times and (often) steroids."""
    if idx.size == 0:
        return
    t0 = at(idx, rng.random(idx.size) * 0.8)
    reps = rng.integers(1, 5, idx.size)
    for j in range(4):
        sel = reps > j
        tj = t0[sel] + j * rng.integers(20, 200, int(sel.sum()))
        cond.append((idx[sel], tj, code))
        meas.append((idx[sel], tj, lineage_lab[0],
                     np.clip(rng.normal(lineage_lab[1], lineage_lab[2], int(sel.sum())), 0.05, None), -1))
    if steroids:
        sel = rng.random(idx.size) < 0.6
        drugs.append((idx[sel], t0[sel] + 3, "prednisone"))
        ivig = rng.random(idx.size) < 0.2
        drugs.append((idx[ivig], t0[ivig] + 5, "immune globulin"))


def _concat(parts: list[tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    idx = np.concatenate([p[0] for p in parts]) if parts else np.array([], np.int64)
    day = np.concatenate([np.asarray(p[1], np.int64) for p in parts]) if parts else np.array([], np.int64)
    sizes = [len(p[0]) for p in parts]
    return idx, day, sizes


def _write_conditions(w: _Writer, pid: np.ndarray, cond: list[Any], vocab: Any, blank: bool,
                      rng: np.random.Generator) -> None:
    idx, day, sizes = _concat(cond)
    labels = sorted({c[2] for c in cond})
    code_idx = np.concatenate([np.full(s, labels.index(c[2])) for s, c in zip(sizes, cond, strict=True)]) \
        if cond else np.array([], int)
    if vocab:
        std = vocab[1]
        cid_map = np.array([std[c] for c in labels], dtype=np.int64)
        cid = cid_map[code_idx]
        # some AIHA records carry a standard concept only reachable via concept_ancestor
        aiha = np.flatnonzero(np.isin(code_idx, [labels.index(c) for c in labels if c.startswith("D59.1")]))
        cid[aiha[rng.random(aiha.size) < 0.5]] = std["warm_aiha"]
    else:
        cid = np.zeros(idx.size, np.int64)
    src = _cat(code_idx, [None] * len(labels) if blank else labels)
    w.write("condition_occurrence", pa.table({
        "condition_occurrence_id": pa.array(np.arange(idx.size, dtype=np.int64) + int(pid[0]) * 100),
        "person_id": pa.array(pid[idx]), "condition_concept_id": pa.array(cid),
        "condition_start_date": _dates(day), "condition_source_value": src,
    }))


def _write_measurements(w: _Writer, pid: np.ndarray, meas: list[Any], vocab: Any, blank: bool,
                        rng: np.random.Generator) -> None:
    idx, day, sizes = _concat(meas)
    values = np.concatenate([m[3] for m in meas]).astype(np.float64)
    analyte_names = [*LABS, "dnt"]
    a_idx = np.concatenate([np.full(s, analyte_names.index(m[2])) for s, m in zip(sizes, meas, strict=True)])
    unit_labels = sorted({u for spec in LABS.values() for u, _ in spec[3]} | {"%", "mmol/mol"})
    u_idx = np.zeros(idx.size, dtype=np.int64)
    out_v = values.copy()
    for ai, a in enumerate(analyte_names):
        sel = np.flatnonzero(a_idx == ai)
        if a == "dnt":
            u_idx[sel] = unit_labels.index("%")
            continue
        variants = LABS[a][3]
        pick = rng.integers(0, len(variants), sel.size)
        for vi, (u, f) in enumerate(variants):
            s = sel[pick == vi]
            u_idx[s] = unit_labels.index(u)
            out_v[s] = values[s] * f
    # a few haemoglobin results in a unit that is not a concentration (counted, not used)
    hb = np.flatnonzero(a_idx == analyte_names.index("hemoglobin"))
    bad = hb[rng.random(hb.size) < 0.001]
    u_idx[bad] = unit_labels.index("mmol/mol")
    out_v = np.round(out_v, 2)
    codes = [LABS[a][0] for a in LABS] + [DNT_CODE]
    if vocab:
        lab_ids, unit_ids = vocab[2], vocab[3]
        mcid = np.array([lab_ids[a] for a in LABS] + [lab_ids["dnt"]], dtype=np.int64)[a_idx]
        ucid = np.array([unit_ids.get(u, 0) for u in unit_labels], dtype=np.int64)[u_idx]
    else:
        mcid = np.zeros(idx.size, np.int64)
        ucid = np.zeros(idx.size, np.int64)
    w.write("measurement", pa.table({
        "measurement_id": pa.array(np.arange(idx.size, dtype=np.int64) + int(pid[0]) * 1000),
        "person_id": pa.array(pid[idx]), "measurement_concept_id": pa.array(mcid),
        "measurement_date": _dates(day), "value_as_number": pa.array(out_v),
        "unit_concept_id": pa.array(ucid),
        "unit_source_value": _cat(u_idx, unit_labels),
        "measurement_source_value": _cat(a_idx, [None] * len(codes) if blank else codes),
    }))


def _write_drugs(w: _Writer, pid: np.ndarray, drugs: list[Any], vocab: Any, blank: bool) -> None:
    idx, day, sizes = _concat(drugs)
    names = list(DRUGS)
    d_idx = np.concatenate([np.full(s, names.index(d[2])) for s, d in zip(sizes, drugs, strict=True)]) \
        if drugs else np.array([], int)
    if vocab:
        cid = np.array([vocab[4][nm] for nm in names], dtype=np.int64)[d_idx]
    else:
        cid = np.zeros(idx.size, np.int64)
    labels = [None] * len(names) if blank else [DRUGS[nm] for nm in names]
    w.write("drug_exposure", pa.table({
        "drug_exposure_id": pa.array(np.arange(idx.size, dtype=np.int64) + int(pid[0]) * 100),
        "person_id": pa.array(pid[idx]), "drug_concept_id": pa.array(cid),
        "drug_exposure_start_date": _dates(day), "drug_source_value": _cat(d_idx, labels),
    }))


def _write_procedures(w: _Writer, pid: np.ndarray, procs: list[Any], vocab: Any, blank: bool) -> None:
    idx, day, sizes = _concat(procs)
    names = list(PROCEDURES)
    p_idx = np.concatenate([np.full(s, names.index(p[2])) for s, p in zip(sizes, procs, strict=True)]) \
        if procs else np.array([], int)
    cid = np.array([vocab[5][c] for c in names], dtype=np.int64)[p_idx] if vocab else np.zeros(idx.size, np.int64)
    w.write("procedure_occurrence", pa.table({
        "procedure_occurrence_id": pa.array(np.arange(idx.size, dtype=np.int64) + int(pid[0]) * 100),
        "person_id": pa.array(pid[idx]), "procedure_concept_id": pa.array(cid),
        "procedure_date": _dates(day), "procedure_source_value": _cat(p_idx, [None] * len(names) if blank else names),
    }))

