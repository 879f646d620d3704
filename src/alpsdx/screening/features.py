"""Per-person features and points of the ALPS screen, written once in Ibis.

The same expressions run on every backend Ibis reaches (DuckDB, PySpark, PostgreSQL, ...);
nothing here is backend-specific SQL. Engine-friendly shape:

1. **Semi-join first**: each clinical table is joined to a small resolved lookup before
   anything else: condition/observation/procedure codes to the concept sets, drug names to
   the ingredient sets, and measurement rows to one lookup keyed on their raw
   (concept id, source code, unit concept id, unit source value) that carries the analyte
   and the unit factor (built by :func:`unit_table` from one scan of distinct keys; a key
   column with one value in every row, such as concept ids 0 in a source-only extract, is
   left out of the join). Rows without a value are dropped at the scan. On DuckDB the two
   lookups of this pass are temporary tables (:func:`lookup_table`), not registered
   Python objects (with its lookups as registered pandas frames, the benchmark's
   hand-written SQL ran 2.5x slower).
2. **Aggregate once per person**: laboratory rows are joined to the person (age, sex) and
   to the age band by one integer key, then aggregated straight to one row per person.
3. **Stages**: coded events, laboratory aggregates and the per-person table are each
   materialised on the engine (:func:`materialize`: a DuckDB temporary table, elsewhere
   ``Table.cache()``); distinct counts (months, drugs) run on the small event table. With
   ``cache=False`` the whole computation is one Ibis expression (same result, slower to
   compile).
4. **No window functions**: element dates are minima; "the date the second lineage
   appeared" is the middle of three minima; the flag date is the earliest element date at
   which the points reached so far meet the threshold.

Dates inside the expression are epoch days (integers), so every engine compares them the
same way; :mod:`alpsdx.screening.screen` turns them back into dates.

Age-specific limits (haemoglobin, neutrophils, platelets, IgG) come from
:mod:`alpsdx.reference_ranges` (cited bands, site override), tabulated per month of age
(0-1199 months) and sex, and joined on (analyte, sex, age in months). Age is counted in
whole months from the month of birth (OMOP stores year and month of birth; an unknown month
is taken as July); each month of age is graded at its mid-point.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from alpsdx import knowledge, reference_ranges, units
from alpsdx.errors import UnitError
from alpsdx.screening.concepts import ConceptSets, ResolvedConcepts, concept_sets, norm_code_expr
from alpsdx.screening.omop import OmopTables
from alpsdx.screening.score import ELEMENTS, ScoreSpec

__all__ = [
    "AGE_MONTHS_MAX",
    "BIG_DAY",
    "UnitTable",
    "band_table",
    "features",
    "unit_table",
]

AGE_MONTHS_MAX = 1199
BIG_DAY = 10_000_000  # sentinel "never" in epoch days (year ~29000)
BANDED = ("hemoglobin", "anc", "platelets", "igg")
SEXES = ("female", "male", "unknown")


# ----------------------------------------------------------------------------- units
@dataclass
class UnitTable:
    """Conversion factors for the (analyte, unit) pairs present, and what could not convert."""

    factors: pd.DataFrame  # lookup: the varying key columns (l_cid, l_msrc, l_ucid, l_usrc), f_analyte, factor
    report: pd.DataFrame  # analyte, unit_key, unit_ucum, rows, convertible, reason


KEY_COLUMNS = ("k_cid", "k_msrc", "k_ucid", "k_usrc")


def _measurement_keys(omop: OmopTables) -> ir.Table:
    """measurement with its lookup key: concept ids (0 when null) and source values ('' when null)."""
    m = omop["measurement"]
    return m.select(
        person_id=m.person_id, d=m.measurement_date, v=m.value_as_number,
        k_cid=m.measurement_concept_id.coalesce(0), k_msrc=m.measurement_source_value.coalesce(""),
        k_ucid=m.unit_concept_id.coalesce(0), k_usrc=m.unit_source_value.coalesce(""),
    )


def _ucum(unit: str | None, aliases: Mapping[str, str]) -> str | None:
    if unit is None:
        return None
    u = str(unit).strip()
    if not u:
        return None
    if u in aliases:
        return aliases[u]
    lower = {k.lower(): v for k, v in aliases.items()}
    return lower.get(u.lower(), u)


def unit_table(omop: OmopTables, rc: ResolvedConcepts, sets: ConceptSets | None = None) -> UnitTable:
    """Scan measurement once for its distinct (concept, code, unit) keys; map and convert each.

    A key belongs to an analyte through its measurement_concept_id (vocabulary mode, when the
    id is one of the resolved standard concepts) or else, where the id is 0, through its
    measurement_source_value (LOINC or local code). Its unit is the UCUM code of
    unit_concept_id (vocabulary mode) or unit_source_value read as UCUM after the cited alias
    map (e.g. ``K/uL`` -> ``10*3/uL``). A key whose unit is missing or cannot be converted to
    the analyte's canonical unit is listed in ``report`` with its row count and left out of
    every threshold (never guessed). The resulting lookup table is the semi-join of the main
    pass: concept set and unit factor in one small equi-join.
    """
    sets = sets or concept_sets()
    mk = _measurement_keys(omop)
    keys = omop.con.execute(mk.group_by(*KEY_COLUMNS).agg(rows=mk.count(), no_value=mk.v.isnull().sum()))
    by_id: dict[int, str] = {}
    if rc.mode == "vocabulary":
        by_id = {int(c): str(a) for c, a in zip(rc.measurement_ids.concept_id, rc.measurement_ids.analyte, strict=True)}
    by_code = {str(c).strip(): str(a) for c, a in zip(rc.measurement_codes.code, rc.measurement_codes.analyte,
                                                      strict=True)}
    ucum_of = ({int(c): str(u) for c, u in zip(rc.unit_concepts.unit_concept_id, rc.unit_concepts.unit, strict=True)}
               if rc.mode == "vocabulary" else {})
    rows: list[dict[str, Any]] = []
    for r in keys.itertuples(index=False):
        cid = int(r.k_cid)
        analyte = by_id.get(cid) if cid != 0 else by_code.get(str(r.k_msrc).strip())
        if cid != 0 and analyte is None and not by_id:
            analyte = by_code.get(str(r.k_msrc).strip())  # source mode: ids are not looked at
        if analyte is None:
            continue
        unit_key = ucum_of.get(int(r.k_ucid)) or (str(r.k_usrc).strip() or None)
        ucum = _ucum(unit_key, sets.unit_aliases)
        factor: float | None = None
        reason = ""
        if ucum is None:
            reason = "no unit recorded"
        else:
            try:
                factor = units.factor(analyte, ucum)
            except UnitError as exc:
                reason = str(exc)
        rows.append({"k_cid": cid, "k_msrc": str(r.k_msrc), "k_ucid": int(r.k_ucid), "k_usrc": str(r.k_usrc),
                     "analyte": analyte, "unit_key": unit_key, "unit_ucum": ucum, "rows": int(r.rows),
                     "no_value": int(r.no_value), "convertible": factor is not None, "factor": factor,
                     "reason": reason})
    cols = ["k_cid", "k_msrc", "k_ucid", "k_usrc", "analyte", "unit_key", "unit_ucum", "rows", "no_value",
            "convertible", "factor", "reason"]
    full = pd.DataFrame(rows, columns=cols).astype(
        {"k_cid": "int64", "k_ucid": "int64", "rows": "int64", "no_value": "int64", "convertible": "bool",
         "factor": "float64"})
    ok = full[full.convertible]
    factors = pd.DataFrame({
        "l_cid": ok.k_cid.astype("int64"), "l_msrc": ok.k_msrc.astype(str), "l_ucid": ok.k_ucid.astype("int64"),
        "l_usrc": ok.k_usrc.astype(str), "f_analyte": ok.analyte.astype(str), "factor": ok.factor.astype("float64"),
    }).reset_index(drop=True)
    # A key column holding one value in every measurement row cannot tell rows apart: it is left
    # out of the lookup, so the main pass joins on fewer (often no integer) columns. Exact, since
    # ``keys`` lists every key present in the table.
    constant = [c for c in KEY_COLUMNS if keys[c].nunique(dropna=False) <= 1]
    if len(constant) == len(KEY_COLUMNS):
        constant.remove("k_msrc")
    factors = factors.drop(columns=["l" + c[1:] for c in constant])
    report = (full.assign(unit_key=full.unit_key.astype(object))
              .groupby(["analyte", "unit_key", "convertible", "reason"], dropna=False, as_index=False)
              .agg(rows=("rows", "sum"), no_value=("no_value", "sum")))
    report = report.astype({"rows": "int64", "no_value": "int64", "convertible": "bool"})
    report["unit_key"] = report.unit_key.where(report.unit_key.notna(), None)
    return UnitTable(factors=factors, report=report.sort_values(["analyte", "unit_key"], na_position="first")
                     .reset_index(drop=True))


# ----------------------------------------------------------------------------- age bands
def band_table(spec: ScoreSpec) -> pd.DataFrame:
    """Lower/upper limits per (analyte, sex, month of age), from reference_ranges + fallbacks."""
    rows: list[tuple[str, str, int, float | None, float | None]] = []
    fallback_low = {"hemoglobin": spec.fallback_hb_low_g_dl}
    fallback_high = {"igg": spec.fallback_igg_high_mg_dl}
    for analyte in BANDED:
        for sex in SEXES:
            for m in range(AGE_MONTHS_MAX + 1):
                rng = reference_ranges.reference_range(analyte, (m + 0.5) / 12.0,
                                                       None if sex == "unknown" else sex)
                low = rng.low if rng is not None else fallback_low.get(analyte)
                high = rng.high if rng is not None else fallback_high.get(analyte)
                rows.append((analyte, sex, m, low, high))
    df = pd.DataFrame(rows, columns=["b_analyte", "b_sex", "b_age", "low", "high"])
    df["b_age"] = df["b_age"].astype("int64")
    df["low"] = df["low"].astype("float64")
    df["high"] = df["high"].astype("float64")
    return df


# ----------------------------------------------------------------------------- events
def _code_match(t: ir.Table, rc_codes: pd.DataFrame, code_col: str, sets: set[str]) -> ir.Table:
    """Rows of ``t`` whose normalised source code falls under a set's code (prefix or exact)."""
    df = rc_codes[rc_codes.set_id.isin(sets)][["set_id", "cat3", "prefix", "plen", "exact"]]
    if df.empty:
        return t.select(person_id=t.person_id, d=t.d, set_id=ibis.literal("", "string"), cid=t.cid).limit(0)
    codes = ibis.memtable(df.rename(columns={"cat3": "k3"}).reset_index(drop=True))
    x = t.mutate(ncode=norm_code_expr(t[code_col]))
    x = x.mutate(c3=x.ncode.substr(0, 3))
    j = x.join(codes, x.c3 == codes.k3)
    j = j.filter((j.ncode.substr(0, j.plen.cast("int32")) == j.prefix) & (~j.exact | (j.ncode == j.prefix)))
    return j.select(person_id=j.person_id, d=j.d, set_id=j.set_id, cid=j.cid)


def _id_match(t: ir.Table, ids: pd.DataFrame, sets: set[str]) -> ir.Table:
    df = ids[ids.set_id.isin(sets)].rename(columns={"concept_id": "sid"}).reset_index(drop=True)
    mt = ibis.memtable(df[["sid", "set_id"]])
    j = t.join(mt, t.cid == mt.sid)
    return j.select(person_id=j.person_id, d=j.d, set_id=j.set_id)


def _events(
    t: ir.Table, rc: ResolvedConcepts, codes: pd.DataFrame, ids: pd.DataFrame, sets: set[str]
) -> ir.Table:
    """(person_id, d, set_id) of ``t`` (columns person_id, d, cid, src) in ``sets``."""
    by_src = _code_match(t, codes, "src", sets)
    if rc.mode == "vocabulary" and not ids[ids.set_id.isin(sets)].empty:
        by_src = by_src.filter(by_src.cid.isnull() | (by_src.cid == 0))
        out = _id_match(t, ids, sets).union(by_src.select("person_id", "d", "set_id"), distinct=False)
    else:
        out = by_src.select("person_id", "d", "set_id")
    return out


def _drug_events(t: ir.Table, rc: ResolvedConcepts) -> ir.Table:
    names = rc.drug_names
    low = t.src.lower()
    set_of = ibis.cases(*[(low.contains(n), ibis.literal(sid)) for sid, n in names], else_=ibis.null("string"))
    by_src = t.mutate(set_id=set_of).filter(lambda x: x.set_id.notnull())
    if rc.mode == "vocabulary" and len(rc.drug_ids):
        by_src = by_src.filter(by_src.cid.isnull() | (by_src.cid == 0))
        ids = rc.drug_ids
        return _id_match(t, ids, set(ids.set_id)).union(
            by_src.select("person_id", "d", "set_id"), distinct=False)
    return by_src.select("person_id", "d", "set_id")


def _day(d: ir.DateValue) -> ir.IntegerValue:
    return d.epoch_days().cast("int64")


def _min_days(*vals: ir.IntegerValue) -> ir.IntegerValue:
    """Earliest of nullable epoch days (null when all are null)."""
    big = ibis.literal(BIG_DAY, "int64")
    m = ibis.least(*[v.coalesce(big) for v in vals])
    return ibis.cases((m >= big, ibis.null("int64")), else_=m)


# ----------------------------------------------------------------------------- features
def materialize(omop: OmopTables, expr: ir.Table, stem: str) -> ir.Table:
    """Compute ``expr`` once on the engine and return it as a table (a stage of the screen).

    DuckDB and PostgreSQL: a named temporary table (gone with the session); Spark (and
    others): ``Table.cache()``. Keeps each stage's expression small, so it compiles fast and
    is not recomputed by later stages. (On PostgreSQL, Ibis's cache leaves dropping its
    table to a finalizer that fails when it runs late: "DROP TABLE IF EXISTS" with no name.)
    """
    if omop.backend in ("duckdb", "postgres"):
        name = f"alpsdx_{stem}_{uuid.uuid4().hex[:12]}"
        return omop.con.create_table(name, expr, temp=True)
    pre = getattr(omop.con, "_run_pre_execute_hooks", None)
    if pre is not None:  # registers the in-memory concept tables first (Ibis cache skips it)
        pre(expr)
    return expr.cache()


def lookup_table(omop: OmopTables, df: pd.DataFrame, stem: str) -> ir.Table:
    """A small lookup (unit factors, age bands) as a table of the engine.

    DuckDB: a temporary table (the engine keeps statistics and scans it natively, cheaper per
    probe of the big measurement join than a registered Arrow object); elsewhere an Ibis
    memtable. The expression using it is the same on every backend.
    """
    if omop.backend == "duckdb" and len(df):  # (an empty frame has untyped columns: memtable)
        return omop.con.create_table(f"alpsdx_{stem}_{uuid.uuid4().hex[:12]}", ibis.memtable(df), temp=True)
    return ibis.memtable(df)


def _persons(omop: OmopTables, sets: ConceptSets) -> ir.Table:
    """person_id, year_of_birth, sex ('female'/'male'/'unknown'), sex_id (0/1/2), birth_ym."""
    p = omop["person"]
    gender = sets.raw_gender
    fem_ids = [int(x) for x in gender["female"]["concept_ids"]]
    male_ids = [int(x) for x in gender["male"]["concept_ids"]]
    gsrc = p.gender_source_value.strip().upper()
    sex_id = ibis.cases(
        (p.gender_concept_id.isin(fem_ids), 0),
        (p.gender_concept_id.isin(male_ids), 1),
        (gsrc.isin([str(x).upper() for x in gender["female"]["source_values"]]), 0),
        (gsrc.isin([str(x).upper() for x in gender["male"]["source_values"]]), 1),
        else_=2,
    )
    return p.select(
        pp_id=p.person_id, year_of_birth=p.year_of_birth, sex_id=sex_id.cast("int64"),
        birth_ym=p.year_of_birth * 12 + p.month_of_birth.coalesce(7) - 1,
    )


def events(omop: OmopTables, rc: ResolvedConcepts, sets: ConceptSets) -> ir.Table:
    """Every coded event of a concept set: person_id, e (epoch day), ym, set_id, grp, lineage.

    Conditions (and observations for sets marked ``also_observation``), procedures and
    drug exposures, each semi-joined to its resolved concept set first.
    """
    cond_sets = dict(sets.conditions)
    obs_sets = {sid for sid, s in cond_sets.items() if s.get("also_observation")}
    co = omop["condition_occurrence"]
    co = co.select(person_id=co.person_id, d=co.condition_start_date, cid=co.condition_concept_id,
                   src=co.condition_source_value)
    ev = _events(co, rc, rc.condition_codes, rc.condition_ids, set(cond_sets))
    if obs_sets:
        ob = omop["observation"]
        ob = ob.select(person_id=ob.person_id, d=ob.observation_date, cid=ob.observation_concept_id,
                       src=ob.observation_source_value)
        ev = ev.union(_events(ob, rc, rc.condition_codes, rc.condition_ids, obs_sets), distinct=False)
    po = omop["procedure_occurrence"]
    po = po.select(person_id=po.person_id, d=po.procedure_date, cid=po.procedure_concept_id,
                   src=po.procedure_source_value)
    ev = ev.union(_events(po, rc, rc.procedure_codes, rc.procedure_ids, set(sets.procedures)), distinct=False)
    de = omop["drug_exposure"]
    de = de.select(person_id=de.person_id, d=de.drug_exposure_start_date, cid=de.drug_concept_id,
                   src=de.drug_source_value)
    ev = ev.union(_drug_events(de, rc), distinct=False)

    # set metadata: group and cytopenia lineage (Evans syndrome: two rows)
    meta_rows: list[dict[str, Any]] = []
    for sid, spec in [*cond_sets.items(), *sets.procedures.items(), *sets.drugs.items()]:
        lin = spec.get("lineage")
        lins = list(lin) if isinstance(lin, tuple | list) else [lin]
        for ln in lins:
            meta_rows.append({"m_set": sid, "grp": str(spec["group"]), "lineage": ln})
    meta = ibis.memtable(pd.DataFrame(meta_rows).astype({"lineage": "object"}))
    ev = ev.mutate(e=_day(ev.d), ym=ev.d.year() * 12 + ev.d.month() - 1)
    ev = ev.join(meta, ev.set_id == meta.m_set)
    return ev.select("person_id", "e", "ym", "set_id", "grp", "lineage")


def lab_features(
    omop: OmopTables,
    rc: ResolvedConcepts,
    unit_factors: pd.DataFrame,
    bands: pd.DataFrame,
    spec: ScoreSpec,
    persons: ir.Table,
) -> ir.Table:
    """Per person: laboratory maxima/minima and the first day each threshold was crossed.

    One pass over the measurement table: semi-join to the concept sets, unit conversion
    (join to the factor table), person (age, sex) and age band by one integer key, then one
    aggregation per person.
    """
    analytes = sorted(set(unit_factors.f_analyte) | set(bands.b_analyte))
    code = {a: i for i, a in enumerate(analytes)}
    fac_df = unit_factors.assign(a_code=unit_factors.f_analyte.map(code).astype("int64"))
    band_df = bands.assign(
        bk=(bands.b_analyte.map(code).astype("int64") * 10_000
               + bands.b_sex.map({s: i for i, s in enumerate(SEXES)}).astype("int64") * (AGE_MONTHS_MAX + 1)
               + bands.b_age.astype("int64")),
    )[["bk", "low", "high"]]
    mk = _measurement_keys(omop)
    mk = mk.filter(mk.v.notnull())  # before the join: pushed down to the scan
    fac = lookup_table(omop, fac_df, "unit_factors")
    on = [mk[k] == fac["l" + k[1:]] for k in KEY_COLUMNS if "l" + k[1:] in fac_df.columns]
    x = mk.join(fac, on)
    x = x.select(person_id=x.person_id, e=_day(x.d), ym=x.d.year() * 12 + x.d.month() - 1, a=x.a_code,
                 val=x.v * x.factor)
    x = x.join(persons, x.person_id == persons.pp_id, how="left")
    age_m = ibis.least(ibis.greatest(x.ym - x.birth_ym, 0), AGE_MONTHS_MAX)
    x = x.select(person_id=x.person_id, e=x.e, a=x.a, val=x.val,
                 b_key=x.a * 10_000 + x.sex_id.coalesce(2) * (AGE_MONTHS_MAX + 1) + age_m)
    # (filter between a select over a join and the next join: see _unit_key)
    x = x.filter(x.person_id.notnull())
    band_t = lookup_table(omop, band_df, "age_bands")
    lb = x.left_join(band_t, x.b_key == band_t.bk)

    def is_(name: str) -> ir.BooleanValue:
        return lb.a == code.get(name, -1)

    # (a CASE condition that is null counts as false: no fill_null needed per row)
    dnt = {code[a]: v for a, v in spec.dnt_thresholds.items() if a in code}
    is_dnt = lb.a.isin(list(dnt) or [-1])
    dnt_high = ibis.or_(*[(lb.a == c) & (lb.val >= v) for c, v in dnt.items()]) if dnt else ibis.literal(False)
    cyto_codes = [code.get(a, -1) for a in ("hemoglobin", "anc", "platelets")]
    is_low = lb.a.isin(cyto_codes) & (lb.val < lb.low)
    igg_high = is_("igg") & (lb.val > lb.high)
    b12_high = is_("vitamin_b12") & (lb.val > spec.b12_ng_per_l)

    def when(cond: ir.BooleanValue, val: ir.Value, typ: str) -> ir.Value:
        return ibis.cases((cond, val), else_=ibis.null(typ))

    return lb.group_by(pid=lb.person_id).agg(
        igg_max_mg_dl=when(is_("igg"), lb.val, "float64").max(),
        igg_max_ratio=when(is_("igg"), lb.val / lb.high, "float64").max(),
        igg_high_first_day=when(igg_high, lb.e, "int64").min(),
        b12_max_ng_l=when(is_("vitamin_b12"), lb.val, "float64").max(),
        b12_high_first_day=when(b12_high, lb.e, "int64").min(),
        dnt_results=when(is_dnt, 1, "int64").sum(),
        dnt_max_pct=when(is_dnt, lb.val, "float64").max(),
        dnt_high_first_day=when(dnt_high, lb.e, "int64").min(),
        hb_min_g_dl=when(is_("hemoglobin"), lb.val, "float64").min(),
        platelets_min=when(is_("platelets"), lb.val, "float64").min(),
        anc_min=when(is_("anc"), lb.val, "float64").min(),
        lymphocytes_min=when(is_("lymphocytes_abs"), lb.val, "float64").min(),
        hb_low=when(is_("hemoglobin") & (lb.val < lb.low), 1, "int64").max(),
        plt_low=when(is_("platelets") & (lb.val < lb.low), 1, "int64").max(),
        anc_low=when(is_("anc") & (lb.val < lb.low), 1, "int64").max(),
        lab_low_first_day=when(is_low, lb.e, "int64").min(),
        lab_low_last_day=when(is_low, lb.e, "int64").max(),
    )


def features(
    omop: OmopTables,
    rc: ResolvedConcepts,
    unit_factors: pd.DataFrame,
    bands: pd.DataFrame,
    spec: ScoreSpec,
    sets: ConceptSets | None = None,
    *,
    cache: bool = True,
) -> ir.Table:
    """One row per person with any evidence (or an ALPS code): features, points, score.

    Three stages, each an Ibis expression: coded events and laboratory aggregates (both
    materialised on the engine with ``Table.cache()`` when ``cache``, which keeps the final
    expression small), then the per-person assembly and score.

    Columns (epoch days for ``*_day``): person_id, in_person_table, year_of_birth, sex_id,
    lp_first_day, lp_last_day, lp_span_days, lp_chronic_day, lp_after_lymphoma,
    lymphoma_first_day, cytopenia_lineages, cytopenia_first_day, cytopenia_second_day,
    cytopenia_months (coded), lab_low_first_day, lab_low_last_day, lab_cytopenia_lineages, igg_max_mg_dl,
    igg_max_ratio, igg_high_first_day, hypergamma_first_day, b12_max_ng_l,
    b12_high_first_day, dnt_measured, dnt_max_pct, dnt_high_first_day, hb_min_g_dl,
    platelets_min, anc_min, lymphocytes_min, steroid_ivig_courses, second_line_drugs,
    splenectomy_first_day, family_history_first_day, alps_first_day, first_sign_day,
    age_first_sign_years, day_<element> and pts_<element> for each score element, score,
    flag_day.
    """
    sets = sets or concept_sets()
    persons = _persons(omop, sets)
    ev = events(omop, rc, sets)
    labp = lab_features(omop, rc, unit_factors, bands, spec, persons)
    if cache:
        ev = materialize(omop, ev, "events")
        labp = materialize(omop, labp, "labs")

    def first(cond: ir.BooleanValue) -> ir.IntegerValue:
        return ibis.cases((cond, ev.e), else_=ibis.null("int64")).min()

    evp = ev.group_by(pid=ev.person_id).agg(
        lymphoma_first_day=first(ev.grp == "lymphoma"),
        cytopenia_first_day=first(ev.grp == "cytopenia"),
        red_day=first((ev.grp == "cytopenia") & (ev.lineage == "red_cells")),
        plt_day=first((ev.grp == "cytopenia") & (ev.lineage == "platelets")),
        neu_day=first((ev.grp == "cytopenia") & (ev.lineage == "neutrophils")),
        hypergamma_first_day=first(ev.grp == "igg"),
        alps_first_day=first(ev.grp == "alps"),
        family_history_first_day=first(ev.grp == "family_history"),
        splenectomy_first_day=first(ev.grp == "splenectomy"),
        cytopenia_months=ibis.cases((ev.grp == "cytopenia", ev.ym), else_=ibis.null("int64")).nunique(),
        steroid_ivig_courses=ibis.cases((ev.grp == "steroid_ivig", ev.ym), else_=ibis.null("int64")).nunique(),
        second_line_drugs=ibis.cases((ev.grp == "second_line", ev.set_id), else_=ibis.null("string")).nunique(),
    )
    # lymphoproliferation before any lymphoma diagnosis (NIH 2009: nonmalignant)
    lp_all = ev.filter(ev.grp == "lymphoproliferation")
    lym = evp.select(lpid=evp.pid, lym=evp.lymphoma_first_day)
    lpj = lp_all.left_join(lym, lp_all.person_id == lym.lpid)
    counted = lpj.lym.isnull() | (lpj.e < lpj.lym)
    lp = lpj.group_by(pid=lpj.person_id).agg(
        lp_first_day=ibis.cases((counted, lpj.e), else_=ibis.null("int64")).min(),
        lp_last_day=ibis.cases((counted, lpj.e), else_=ibis.null("int64")).max(),
        lp_after_lymphoma=ibis.cases((counted, 0), else_=1).sum(),
    )
    lpf = lpj.filter(counted).select("person_id", "e")
    lpv = lp.select(lpid=lp.pid, f=lp.lp_first_day).view()
    lpc = lpf.join(lpv, lpf.person_id == lpv.lpid)
    lpc = lpc.filter((lpc.e - lpc.f) > spec.chronic_days)
    lp_chronic = lpc.group_by(pid=lpc.person_id).agg(lp_chronic_day=lpc.e.min())

    # --- every person with any evidence, joined once
    parts = [evp, lp, lp_chronic, labp]
    ids = evp.select("pid").union(labp.select("pid"), distinct=True)
    t = ids
    for part in parts:
        t = t.left_join(part, t.pid == part.pid).drop("pid_right")
    t = t.left_join(persons, t.pid == persons.pp_id)
    t = t.mutate(in_person_table=t.pp_id.notnull()).drop("pp_id")
    t = t.rename(person_id="pid")

    big = ibis.literal(BIG_DAY, "int64")
    r = t.red_day.coalesce(big)
    pl_ = t.plt_day.coalesce(big)
    nu = t.neu_day.coalesce(big)
    second = r + pl_ + nu - ibis.least(r, pl_, nu) - ibis.greatest(r, pl_, nu)
    birth_day = (t.birth_ym - 1970 * 12).cast("float64") * 30.436875 + 14.0
    first_sign = _min_days(t.lp_first_day, t.cytopenia_first_day)
    t = t.select(
        *[c for c in t.columns if c not in ("red_day", "plt_day", "neu_day", "hb_low", "plt_low", "anc_low",
                                            "dnt_results", "birth_ym", "lp_after_lymphoma", "cytopenia_months",
                                            "steroid_ivig_courses", "second_line_drugs")],
        lp_span_days=t.lp_last_day - t.lp_first_day,
        lp_after_lymphoma=t.lp_after_lymphoma.coalesce(0),
        cytopenia_lineages=(t.red_day.notnull().ifelse(1, 0) + t.plt_day.notnull().ifelse(1, 0)
                            + t.neu_day.notnull().ifelse(1, 0)).cast("int64"),
        cytopenia_second_day=ibis.cases((second >= big, ibis.null("int64")), else_=second),
        cytopenia_months=t.cytopenia_months.coalesce(0),
        lab_cytopenia_lineages=(t.hb_low.coalesce(0) + t.plt_low.coalesce(0) + t.anc_low.coalesce(0)),
        dnt_measured=t.dnt_results.coalesce(0) > 0,
        steroid_ivig_courses=t.steroid_ivig_courses.coalesce(0),
        second_line_drugs=t.second_line_drugs.coalesce(0),
        first_sign_day=first_sign,
        age_first_sign_years=((first_sign.cast("float64") - birth_day) / 365.25).round(1),
    )

    # --- points: the day each element became true, then the score and the flag day
    element_day: dict[str, ir.IntegerValue] = {
        "lymphoproliferation_any": t.lp_first_day,
        "lymphoproliferation_chronic": t.lp_chronic_day,
        "dnt_elevated": t.dnt_high_first_day,
        "cytopenia_one_lineage": t.cytopenia_first_day,
        "cytopenia_multi_lineage": t.cytopenia_second_day,
        "igg_elevated": _min_days(t.igg_high_first_day, t.hypergamma_first_day),
        "b12_elevated": t.b12_high_first_day,
        "family_history": t.family_history_first_day,
    }
    assert tuple(element_day) == ELEMENTS
    pts = {k: spec.points[k].points for k in ELEMENTS}
    t = t.mutate(**{f"day_{k}": v for k, v in element_day.items()})
    if cache:
        t = materialize(omop, t, "persons")  # the score and flag day below refer to each element day many times
    pcols = {f"pts_{k}": ibis.cases((t[f"day_{k}"].notnull(), pts[k]), else_=0) for k in ELEMENTS}
    score = sum((pcols[k2] for k2 in list(pcols)[1:]), pcols[f"pts_{ELEMENTS[0]}"])
    cands = []
    for k in ELEMENTS:
        dk = t[f"day_{k}"]
        reached = sum(
            (ibis.cases(((t[f"day_{j}"] <= dk).fill_null(False), pts[j]), else_=0) for j in ELEMENTS),
            ibis.literal(0, "int64"),
        )
        cands.append(ibis.cases(((reached >= spec.flag_threshold) & dk.notnull(), dk), else_=big))
    flag = ibis.least(*cands)
    return t.mutate(**pcols, score=score.cast("int64"),
                    flag_day=ibis.cases((flag >= big, ibis.null("int64")), else_=flag))


def citation_text(key: str) -> str:
    return knowledge.resolve_citation(key)
