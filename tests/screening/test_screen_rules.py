"""The screen's rules at their published thresholds, on small hand-made OMOP warehouses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from alpsdx.screening.backends import open_omop
from alpsdx.screening.score import score_spec
from alpsdx.screening.screen import ScreenResult, run_screen
from conftest import cond, drug, lab, person

SPEC = score_spec()
LP = "R59.1"


def screen(folder: Path, **kw: Any) -> ScreenResult:
    return run_screen(open_omop(folder), **kw)


def by_id(result: ScreenResult) -> dict[int, Any]:
    return {int(r.person_id): r for r in result.people.itertuples()}


def lp_only(pid: int, **kw: Any) -> list[dict[str, Any]]:
    return [cond(pid, LP, "2019-01-01")]


def test_spec_points_cite_known_criteria() -> None:
    assert SPEC.flag_threshold == 5
    assert SPEC.b12_ng_per_l == 1500
    assert SPEC.dnt_thresholds["dnt_pct_lymphocytes"] == 1.5
    assert SPEC.chronic_days == 183
    assert {p.citation for p in SPEC.points.values()} <= {"oliveira2010", "seif2010_alps_criteria"}


def test_b12_threshold_exactly_1500_is_not_elevated(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(i) for i in (1, 2, 3, 4)],
        "condition_occurrence": [cond(i, LP, "2019-01-01") for i in (1, 2, 3, 4)],
        "measurement": [
            lab(1, "2132-9", 1500.0, "pg/mL", "2019-02-01"),   # at the threshold: not > 1500
            lab(2, "2132-9", 1500.5, "ng/L", "2019-02-01"),    # above
            lab(3, "2132-9", 1107.0, "pmol/L", "2019-02-01"),  # 1107 x 1.355 = 1500.4 ng/L
            lab(4, "2132-9", 1106.0, "pmol/L", "2019-02-01"),  # 1499.0 ng/L
        ],
    }
    p = by_id(screen(omop_dir(rows)))
    assert p[1].pts_b12_elevated == 0
    assert p[2].pts_b12_elevated == SPEC.points["b12_elevated"].points == 2
    assert p[3].pts_b12_elevated == 2
    assert p[3].b12_max_ng_l == pytest.approx(1107 * 1355.37 / 1000, rel=1e-4)
    assert p[4].pts_b12_elevated == 0


def test_dnt_threshold_is_inclusive(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(i) for i in (1, 2, 3, 4, 5)],
        "condition_occurrence": [cond(i, LP, "2019-01-01") for i in (1, 2, 3, 4, 5)],
        "measurement": [
            lab(1, "DNT_PCT_LYMPH", 1.5, "%", "2019-03-01"),
            lab(2, "DNT_PCT_LYMPH", 1.49, "%", "2019-03-01"),
            lab(3, "80699-2", 2.5, "%", "2019-03-01"),
            lab(4, "80699-2", 2.49, "%", "2019-03-01"),
            lab(5, "MYLAB-DNT", 4.0, "%", "2019-03-01"),  # a local code named with --dnt-code
        ],
    }
    folder = omop_dir(rows)
    p = by_id(screen(folder))
    assert p[1].pts_dnt_elevated == 3 and p[1].dnt_high_first_day == (dt.date(2019, 3, 1) - dt.date(1970, 1, 1)).days
    assert p[2].pts_dnt_elevated == 0 and bool(p[2].dnt_measured)
    assert p[3].pts_dnt_elevated == 3
    assert p[4].pts_dnt_elevated == 0
    assert not bool(p[5].dnt_measured)
    p = by_id(screen(folder, extra_dnt_codes=["MYLAB-DNT"]))
    assert p[5].pts_dnt_elevated == 3


def test_chronic_lymphoproliferation_needs_more_than_183_days(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(1), person(2)],
        "condition_occurrence": [
            cond(1, "R59.0", "2019-01-01"), cond(1, "R16.1", "2019-07-03"),  # 183 days
            cond(2, "R59.9", "2019-01-01"), cond(2, "R16.2", "2019-07-04"),  # 184 days
        ],
    }
    p = by_id(screen(omop_dir(rows)))
    assert p[1].lp_span_days == 183 and p[1].pts_lymphoproliferation_chronic == 0
    assert p[2].lp_span_days == 184 and p[2].pts_lymphoproliferation_chronic == 2
    assert p[1].score == 1 and p[2].score == 3


def test_igg_against_the_age_specific_upper_limit(omop_dir: Callable[..., Path]) -> None:
    # born January 2018: 25 months old in February 2020 -> band 1-3 years, upper limit 916 mg/dL
    # born January 2010: 125 months old in June 2020 -> band 10-11 years, upper limit 1560 mg/dL
    rows = {
        "person": [person(1, 2018), person(2, 2018), person(3, 2018), person(4, 2010)],
        "condition_occurrence": [cond(i, LP, "2019-06-01") for i in (1, 2, 3, 4)],
        "measurement": [
            lab(1, "2465-3", 916.0, "mg/dL", "2020-02-15"),
            lab(2, "2465-3", 917.0, "mg/dL", "2020-02-15"),
            lab(3, "2465-3", 9.17, "g/L", "2020-02-15"),
            lab(4, "2465-3", 917.0, "mg/dL", "2020-06-15"),
        ],
    }
    p = by_id(screen(omop_dir(rows)))
    assert p[1].pts_igg_elevated == 0 and p[1].igg_max_ratio == pytest.approx(1.0)
    assert p[2].pts_igg_elevated == 1 and p[2].igg_max_ratio == pytest.approx(917 / 916)
    assert p[3].pts_igg_elevated == 1 and p[3].igg_max_mg_dl == pytest.approx(917.0)
    assert p[4].pts_igg_elevated == 0 and p[4].igg_max_ratio == pytest.approx(917 / 1560)


def test_cytopenia_lineages_and_evans(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(i) for i in (1, 2, 3, 4)],
        "condition_occurrence": [
            cond(1, "D69.3", "2019-01-01"),                                   # ITP: 1 lineage
            cond(2, "D69.41", "2019-01-01"),                                  # Evans: 2 lineages
            cond(3, "D59.11", "2019-01-01"), cond(3, "D70.9", "2019-05-01"),  # AIHA then neutropenia
            cond(4, "D59.0", "2019-01-01"),                                   # drug-induced AIHA: not D59.1x
        ],
    }
    res = screen(omop_dir(rows))
    p = by_id(res)
    assert p[1].cytopenia_lineages == 1 and p[1].pts_cytopenia_multi_lineage == 0
    assert p[2].cytopenia_lineages == 2 and p[2].pts_cytopenia_multi_lineage == 1
    assert p[3].cytopenia_lineages == 2
    assert p[3].cytopenia_second_day == (dt.date(2019, 5, 1) - dt.date(1970, 1, 1)).days
    assert 4 not in p
    assert res.counts["persons_without_evidence"] == 1


def test_lymphoproliferation_after_lymphoma_is_not_counted(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(1)],
        "condition_occurrence": [cond(1, "R59.1", "2019-01-01"), cond(1, "C83.30", "2019-03-01"),
                                 cond(1, "R16.1", "2019-12-01")],
    }
    res = screen(omop_dir(rows))
    r = by_id(res)[1]
    assert r.lp_last_day == r.lp_first_day
    assert r.lp_after_lymphoma == 1 and r.pts_lymphoproliferation_chronic == 0
    assert res.counts["lymphoproliferation_records_after_lymphoma"] == 1
    assert "not counted" in res.ranked.iloc[0].evidence


def test_diagnosed_alps_is_excluded_and_counted(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(1), person(2), person(3)],
        "condition_occurrence": [cond(1, LP, "2019-01-01"), cond(1, "D89.82", "2020-01-01"),
                                 cond(2, LP, "2019-01-01")],
    }
    res = screen(omop_dir(rows))
    assert list(res.ranked.person_id) == [2]
    assert res.counts["excluded_already_diagnosed_alps"] == 1
    assert res.counts["persons_scanned"] == 3
    assert res.counts["persons_without_evidence"] == 1
    assert sum(e["persons"] for e in res.exclusions) + res.counts["persons_ranked"] == 3


def test_family_history_from_observation_and_hypergammaglobulinaemia(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(1), person(2)],
        "observation": [{"person_id": 1, "observation_source_value": "Z83.2", "observation_date": "2019-01-01"}],
        "condition_occurrence": [cond(2, "D89.0", "2019-01-01")],
    }
    p = by_id(screen(omop_dir(rows)))
    assert p[1].pts_family_history == 1 and p[1].score == 1
    assert p[2].pts_igg_elevated == 1 and p[2].score == 1


def test_flag_date_is_when_points_reach_the_threshold(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(1)],
        "condition_occurrence": [cond(1, LP, "2019-01-01"), cond(1, "D69.3", "2019-03-01"),
                                 cond(1, LP, "2019-08-01")],
        "measurement": [lab(1, "2132-9", 2000.0, "pg/mL", "2019-10-01")],
    }
    res = screen(omop_dir(rows))
    r = res.ranked.iloc[0]
    # 1 (LP) on Jan 1, 2 on Mar 1, 4 on Aug 1 (chronic), 6 on Oct 1 (B12) -> flagged Oct 1
    assert r.score == 6 and bool(r.flagged)
    assert r.flag_date == dt.date(2019, 10, 1)
    assert r.next_test == SPEC.next_tests["no_dnt"]
    assert "oliveira2010" in r.citations


def test_ranking_ties_break_on_flag_date_then_person_id(omop_dir: Callable[..., Path]) -> None:
    def chronic(pid: int, start: str, end: str) -> list[dict[str, Any]]:
        return [cond(pid, LP, start), cond(pid, LP, end), cond(pid, "D69.41", start),
                cond(pid, "D89.0", start)]

    rows = {
        "person": [person(i) for i in (1, 2, 3, 4)],
        "condition_occurrence": [*chronic(3, "2018-01-01", "2018-09-01"), *chronic(1, "2019-01-01", "2019-09-01"),
                                 *chronic(2, "2019-01-01", "2019-09-01"), cond(4, LP, "2015-01-01")],
    }
    res = screen(omop_dir(rows))
    assert list(res.ranked.person_id) == [3, 1, 2, 4]
    assert list(res.ranked["rank"]) == [1, 2, 3, 4]
    assert list(res.ranked.score) == [6, 6, 6, 1]
    assert res.counts["persons_flagged"] == 3
    assert len(screen(omop_dir(rows), top=2).ranked) == 2


def test_lab_cytopenias_use_age_and_sex_limits(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(1, 1990, "M"), person(2, 1990, "F"), person(3, 1990, "M"), person(4, 1990, "F")],
        "condition_occurrence": [cond(i, LP, "2019-01-01") for i in (1, 2, 3, 4)],
        "measurement": [
            lab(1, "718-7", 12.5, "g/dL", "2019-02-01"),    # male >= 15 y: < 13.0 is anaemia
            lab(2, "718-7", 12.5, "g/dL", "2019-02-01"),    # female: limit 12.0
            lab(3, "718-7", 130.0, "g/L", "2019-02-01"),    # exactly 13.0 g/dL: not below
            lab(4, "777-3", 99.0, "K/uL", "2019-02-01"),    # platelets < 100 x10^9/L
            lab(4, "751-8", 1.5, "10*9/L", "2019-02-01"),   # ANC exactly at 1.5: not below
        ],
    }
    p = by_id(screen(omop_dir(rows)))
    assert p[1].lab_cytopenia_lineages == 1 and p[1].lab_low_first_day == p[1].lab_low_last_day
    assert p[2].lab_cytopenia_lineages == 0
    assert p[3].lab_cytopenia_lineages == 0 and p[3].hb_min_g_dl == pytest.approx(13.0)
    assert p[4].lab_cytopenia_lineages == 1 and p[4].platelets_min == pytest.approx(99.0)
    # laboratory cytopenias are evidence, not points (NIH 2009 asks for autoimmune cytopenias)
    assert all(p[i].score == 1 for i in (1, 2, 3, 4))


def test_units_that_cannot_convert_are_counted_not_used(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(1)],
        "condition_occurrence": [cond(1, LP, "2019-01-01")],
        "measurement": [lab(1, "2132-9", 3000.0, "mmol/mol", "2019-02-01"),
                        lab(1, "2132-9", 3000.0, None, "2019-02-01"),
                        lab(1, "2132-9", None, "pg/mL", "2019-02-01")],
    }
    res = screen(omop_dir(rows))
    r = by_id(res)[1]
    assert r.pts_b12_elevated == 0 and pd.isna(r.b12_max_ng_l)
    assert res.counts["measurement_rows_unit_not_converted"] == 2
    assert res.counts["measurement_rows_without_value"] == 1
    reasons = {u["unit"]: u["reason"] for u in res.summary()["unconverted_measurements"]}
    assert reasons[None] == "no unit recorded"
    assert "mmol/mol" in reasons["mmol/mol"]


def test_steroid_courses_and_second_line_drugs_are_evidence(omop_dir: Callable[..., Path]) -> None:
    rows = {
        "person": [person(1)],
        "condition_occurrence": [cond(1, "D69.3", "2019-01-01")],
        "drug_exposure": [drug(1, "PredniSONE 20 mg tab", "2019-01-02"), drug(1, "prednisone 5mg", "2019-01-20"),
                          drug(1, "IMMUNE GLOBULIN IV", "2019-04-01"), drug(1, "Sirolimus 1 mg", "2019-06-01")],
        "procedure_occurrence": [{"person_id": 1, "procedure_source_value": "38100", "procedure_date": "2020-01-01"},
                                 {"person_id": 1, "procedure_source_value": "381001", "procedure_date": "2019-01-01"}],
    }
    r = by_id(screen(omop_dir(rows)))[1]
    assert r.steroid_ivig_courses == 2  # January and April
    assert r.second_line_drugs == 1
    assert r.splenectomy_first_day == (dt.date(2020, 1, 1) - dt.date(1970, 1, 1)).days
    assert r.score == 1
