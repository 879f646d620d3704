"""FAS-mutation prediction: published figures reproduced, LR derivation, thresholds, decisions."""

from __future__ import annotations

from typing import Any

import pytest

from alpsdx import knowledge
from alpsdx.biomarkers import (
    TwoByTwo,
    consistent_tables,
    derive_likelihood_ratios,
    post_test_probability,
    predict_fas_mutation,
    rule_performance,
)
from alpsdx.errors import InputError
from alpsdx.model import case_from_dict

P_COHORT = 38 / 98


def case(obs: list[tuple[str, float, str]], **kw: Any) -> Any:
    return case_from_dict({"id": "t", "observations": [
        {"analyte": a, "value": v, "unit": u, "date": "2025-01-01"} for a, v, u in obs], **kw})


def test_cohort_figures_from_the_abstract() -> None:
    c = knowledge.load("biomarker_performance")["rensingehl2013"]["cohort"]
    assert (c["patients"], c["sequenced"], c["germline"] + c["somatic"], c["fas_mutated"]) == (163, 98, 38, 38)


@pytest.mark.parametrize(("rule", "ppv", "npv"), [("b12_sfasl", 0.92, 0.97), ("dnt", 0.61, 0.77)])
def test_derived_lrs_reproduce_published_ppv_npv_at_cohort_prevalence(rule: str, ppv: float, npv: float) -> None:
    perf = rule_performance(rule)
    assert perf["ppv"] == ppv and perf["npv"] == npv and perf["prevalence"] == pytest.approx(P_COHORT)
    # applying LR+ / LR- to the cohort's own pre-test probability must give back PPV and NPV
    assert post_test_probability(P_COHORT, perf["lr_positive"]) == pytest.approx(ppv)
    assert pytest.approx(npv) == 1 - post_test_probability(P_COHORT, perf["lr_negative"])
    # and the implied sensitivity/specificity rebuild the same predictive values by Bayes
    s, sp, p = perf["sensitivity"], perf["specificity"], P_COHORT
    assert s * p / (s * p + (1 - sp) * (1 - p)) == pytest.approx(ppv)
    assert sp * (1 - p) / (sp * (1 - p) + (1 - s) * p) == pytest.approx(npv)
    lo, hi = perf["lr_positive_rounding_range"]
    assert lo < perf["lr_positive"] < hi


def test_lr_values_b12_sfasl() -> None:
    perf = rule_performance("b12_sfasl")
    assert perf["lr_positive"] == pytest.approx((0.92 / 0.08) / (38 / 60))
    assert perf["lr_negative"] == pytest.approx((0.03 / 0.97) / (38 / 60))


def test_two_by_two_arithmetic() -> None:
    t = TwoByTwo(tp=8, fp=2, fn=2, tn=88)
    assert (t.ppv, t.npv, t.sensitivity, t.specificity, t.prevalence) == (0.8, 88 / 90, 0.8, 88 / 90, 0.1)
    assert t.lr_positive == pytest.approx(0.8 / (2 / 90)) and t.lr_negative == pytest.approx(0.2 / (88 / 90))


@pytest.mark.parametrize(
    ("rule", "ppv", "npv", "table"),
    [("b12_sfasl", 92, 97, (36, 3, 2, 57)), ("dnt", 61, 77, (25, 16, 13, 44))],
)
def test_published_counts_determine_the_2x2_table(rule: str, ppv: int, npv: int,
                                                   table: tuple[int, int, int, int]) -> None:
    # Published counts: 98 sequenced, 38 FAS-mutated (32 germline + 6 somatic), so 60 without.
    # Searching every integer table, exactly one gives the published PPV/NPV percentages.
    tables = consistent_tables(ppv, npv, 38, 60)
    assert [(t.tp, t.fp, t.fn, t.tn) for t in tables] == [table]
    t = tables[0]
    assert round(t.ppv * 100) == ppv and round(t.npv * 100) == npv  # the published figures reproduced
    assert t.prevalence == pytest.approx(P_COHORT)
    perf = rule_performance(rule)
    lo, hi = perf["lr_positive_rounding_range"]
    assert lo <= t.lr_positive <= hi
    lo, hi = perf["lr_negative_rounding_range"]
    assert lo <= t.lr_negative <= hi
    assert perf["consistent_tables"] == [{"tp": table[0], "fp": table[1], "fn": table[2], "tn": table[3]}]
    assert any(f"TP {table[0]}, FP {table[1]}" in step for step in perf["steps"])


def test_consistent_tables_rounding_boundaries() -> None:
    # NPV 100% forces FN = 0, so TP = all mutated; PPV then decides on FP alone.
    def fps(tp: int) -> set[int]:
        return {t.fp for t in consistent_tables(92, 100, tp, 5)}

    assert fps(11) == {1}  # 11/12 = 91.7% -> 92
    assert fps(12) == {1}  # 12/13 = 92.3% -> 92
    assert fps(10) == set()  # 10/11 = 90.9%, 10/10 = 100%
    # exactly at the rounding boundary: 183/200 = 91.5% rounds half up to 92
    assert any(t.fp == 17 for t in consistent_tables(92, 100, 183, 18))
    with pytest.raises(InputError):
        consistent_tables(92, 97, 0, 60)


def test_derive_refuses_bad_probabilities() -> None:
    with pytest.raises(InputError):
        derive_likelihood_ratios(1.0, 0.9, 0.3)
    with pytest.raises(InputError):
        post_test_probability(0.0, 2)
    with pytest.raises(InputError):
        post_test_probability(0.5, 0)


@pytest.mark.parametrize(
    ("b12", "sfasl", "result"),
    [
        (1256, 560, "positive"),
        (1255, 560, "negative"),  # at the cut-off is not above it
        (1256, 559, "negative"),
        (1255.01, 559.01, "positive"),
        (2000, 100, "negative"),
    ],
)
def test_b12_sfasl_boundaries(b12: float, sfasl: float, result: str) -> None:
    r = predict_fas_mutation(case([("vitamin_b12", b12, "pg/mL"), ("sfasl", sfasl, "pg/mL")]))
    assert r.primary is not None and r.primary.rule == "b12_sfasl" and r.primary.result == result
    expected = 0.92 if result == "positive" else 0.03
    assert r.primary.post_test_probability == pytest.approx(expected)


def test_b12_in_pmol_per_litre() -> None:
    # 926 pmol/L x 1.35537 = 1255.1 ng/L (> 1255); 925 pmol/L = 1253.7 (not above)
    assert predict_fas_mutation(case([("vitamin_b12", 926, "pmol/L"), ("sfasl", 600, "pg/mL")])).primary.result == "positive"  # type: ignore[union-attr]
    assert predict_fas_mutation(case([("vitamin_b12", 925, "pmol/L"), ("sfasl", 600, "pg/mL")])).primary.result == "negative"  # type: ignore[union-attr]


def test_missing_marker_and_fallback_to_dnt() -> None:
    r = predict_fas_mutation(case([("vitamin_b12", 2000, "pg/mL")]))
    assert r.rules[0].result == "unknown" and r.rules[0].missing == ("sfasl",)
    assert r.primary is None and r.sequencing_recommended is None and "B12 and sFASL" in r.recommendation
    # one marker below its cut-off decides negative even if the other is missing
    r = predict_fas_mutation(case([("vitamin_b12", 500, "pg/mL")]))
    assert r.rules[0].result == "negative"
    r = predict_fas_mutation(case([("dnt_pct_cd3", 2.5, "%")]))
    assert r.primary is not None and r.primary.rule == "dnt" and r.primary.result == "positive"
    assert r.primary.post_test_probability == pytest.approx(0.61)
    assert "weak predictor" in r.recommendation
    r = predict_fas_mutation(case([("dnt_pct_cd3", 2.49, "%"), ("dnt_pct_lymphocytes", 1.49, "%")]))
    assert r.primary is not None and r.primary.result == "negative"
    assert r.primary.post_test_probability == pytest.approx(0.23)


def test_user_pre_test_probability_changes_post_test() -> None:
    c = case([("vitamin_b12", 2000, "pg/mL"), ("sfasl", 900, "pg/mL")])
    low = predict_fas_mutation(c, pre_test_probability=0.05)
    lr = rule_performance("b12_sfasl")["lr_positive"]
    expected = (0.05 / 0.95 * lr) / (1 + 0.05 / 0.95 * lr)
    assert low.primary is not None and low.primary.post_test_probability == pytest.approx(expected)
    assert low.pre_test_source == "set by the user"
    with pytest.raises(InputError):
        predict_fas_mutation(c, pre_test_probability=1.5)


def test_decision_threshold_boundary() -> None:
    c = case([("vitamin_b12", 100, "pg/mL")])  # negative: post-test = 1 - NPV = 3% at cohort p
    post = predict_fas_mutation(c).primary.post_test_probability  # type: ignore[union-attr]
    assert post is not None
    assert predict_fas_mutation(c, threshold=post).sequencing_recommended is True  # at threshold
    assert predict_fas_mutation(c, threshold=post + 1e-6).sequencing_recommended is False
    default = predict_fas_mutation(c)
    assert default.threshold == 0.10 and "convention" in default.threshold_label


def test_sorted_dnt_and_known_variant() -> None:
    pos = [("vitamin_b12", 2000, "pg/mL"), ("sfasl", 900, "pg/mL")]
    r = predict_fas_mutation(case(pos))
    assert r.sequencing_recommended is True and "sorted DNT" in r.recommendation and "somatic" in r.recommendation
    known = case(pos, variants=[{"gene": "FAS", "hgvs_p": "p.Asp260Gly", "origin": "germline",
                                 "classification": "pathogenic"}])
    r = predict_fas_mutation(known)
    assert r.sequencing_recommended is False and "already recorded" in r.recommendation


def test_sources_not_used_are_named() -> None:
    d = predict_fas_mutation(case([])).to_dict()
    assert set(d["sources_not_used"]) == {"caminha2010", "molnar2020"}
    assert "not" in d["sources_not_used"]["caminha2010"]
