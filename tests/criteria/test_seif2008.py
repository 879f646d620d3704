"""CHOP criteria (Seif et al. 2008) as printed in Br J Haematol 2009;148:205 Table I(b).

Diagnosis: three major, or two major plus two minor criteria, one of them elevated DNT.
Figures the table states (> 6 months, >= 2 nodal groups, DNT >= 5 %, moderate DNT < 5 %) are
tested at the boundary; figures it leaves open are site settings, tested at their defaults.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from criteria_cases import BASE, case

from alpsdx.criteria import Category, Settings, Status, criteria_set, evaluate
from alpsdx.criteria.seif2008 import Seif2008
from alpsdx.model import Case

NODES_2 = [{"kind": "node_size", "site": "cervical", "value": 2.5, "unit": "cm", "date": "2025-01-10"},
           {"kind": "node_size", "site": "axillary", "value": 2.0, "unit": "cm", "date": "2025-01-10"}]
LP = {"lymphadenopathy": {"present": True, "duration_months": 12, "malignancy_excluded": True},
      "splenomegaly": {"present": True, "duration_months": 12, "malignancy_excluded": True}}
FAS = [{"gene": "FAS", "hgvs_p": "p.Asp260Gly", "classification": "pathogenic", "origin": "germline"}]


def status(c: Case, rule: str, settings: Settings | None = None) -> Status:
    return evaluate(c, "seif2008", settings=settings).status_of(rule)


def obs(analyte: str, value: float, unit: str = "%") -> dict[str, Any]:
    return {"analyte": analyte, "value": value, "unit": unit, "date": "2025-02-01"}


# --- major.chronic_lymphoproliferation: > 6 months; splenomegaly and/or nodes in >= 2 nodal groups ---

@pytest.mark.parametrize(("months", "expected"), [(5.9, Status.not_met), (6, Status.not_met), (6.1, Status.met)])
def test_chronic_boundary(months: float, expected: Status) -> None:
    c = case(findings={"splenomegaly": {"present": True, "duration_months": months, "malignancy_excluded": True},
                       "lymphadenopathy": {"present": False}})
    assert status(c, "major.chronic_lymphoproliferation") is expected


def test_lymphadenopathy_needs_two_nodal_groups() -> None:
    nodes = {"lymphadenopathy": {"present": True, "duration_months": 12, "malignancy_excluded": True},
             "splenomegaly": {"present": False}}
    one = case(findings=nodes, clinical_events=NODES_2[:1])
    two = case(findings=nodes, clinical_events=NODES_2)
    same_site_twice = case(findings=nodes, clinical_events=[NODES_2[0], {**NODES_2[0], "date": "2025-02-10"}])
    # Too few recorded groups leaves it open (the extent may simply not be documented).
    assert status(one, "major.chronic_lymphoproliferation") is Status.unknown
    assert status(same_site_twice, "major.chronic_lymphoproliferation") is Status.unknown
    assert status(two, "major.chronic_lymphoproliferation") is Status.met
    ev = evaluate(one, "seif2008")
    assert any("nodal site" in n for r in ev.criteria for n in r.notes)


# --- major.dnt >= 5 % and minor.dnt (> lab mean + 2 SD and < 5 %) -----------------------------------

@pytest.mark.parametrize(("value", "major", "minor"), [
    (2.5, Status.not_met, Status.not_met),   # = default lab limit: not above it
    (2.51, Status.not_met, Status.met),
    (4.99, Status.not_met, Status.met),
    (5.0, Status.met, Status.not_met),       # ">= 5%": marked, no longer moderate
    (5.01, Status.met, Status.not_met),
])
def test_dnt_bands(value: float, major: Status, minor: Status) -> None:
    c = case(observations=[obs("dnt_pct_cd3", value)], findings={**LP, "typical_histology": False})
    assert status(c, "major.dnt") is major
    assert status(c, "minor.dnt") is minor


def test_dnt_denominator_is_a_site_setting() -> None:
    c = case(observations=[obs("dnt_pct_lymphocytes", 5.0), obs("dnt_pct_cd3", 7.0)])
    assert status(c, "major.dnt", Settings(seif2008_dnt_denominator="lymphocytes")) is Status.met
    c = case(observations=[obs("dnt_pct_lymphocytes", 4.0), obs("dnt_pct_cd3", 7.0)])
    assert status(c, "major.dnt", Settings(seif2008_dnt_denominator="lymphocytes")) is Status.not_met
    assert status(c, "major.dnt") is Status.met  # default: % of CD3+
    th = next(r.threshold for r in evaluate(c, "seif2008").criteria if r.id == "major.dnt")
    assert "dnt_pct_cd3 ≥ 5%" in th and "site setting seif2008_dnt_denominator" in th
    with pytest.raises(Exception, match="seif2008_dnt_denominator"):
        Settings(seif2008_dnt_denominator="monocytes")


def test_dnt_of_lymphocytes_at_cutoff_settles_the_cd3_criterion() -> None:
    # The same DNT as a share of fewer cells (CD3+ only) is never smaller.
    c = case(observations=[obs("dnt_pct_lymphocytes", 5.0)])
    res = next(r for r in evaluate(c, "seif2008").criteria if r.id == "major.dnt")
    assert res.status is Status.met
    assert any("dnt_pct_lymphocytes ≤ dnt_pct_cd3" in (e.note or "") for e in res.evidence)
    assert status(case(observations=[obs("dnt_pct_lymphocytes", 4.99)]), "major.dnt") is Status.unknown
    # And a % of TCRab+ T cells below the cut-off settles a lower % of CD3+ as below.
    low = case(observations=[obs("dnt_pct_tcrab", 4.0)])
    assert status(low, "major.dnt") is Status.not_met


def test_lab_upper_limit_setting_and_tissue_dnt() -> None:
    c = case(observations=[obs("dnt_pct_cd3", 3.0)], findings={**LP, "typical_histology": False})
    assert status(c, "minor.dnt") is Status.met
    assert status(c, "minor.dnt", Settings(seif2008_dnt_lab_upper_limit=3.0)) is Status.not_met
    tissue = case(observations=[obs("dnt_pct_cd3", 1.0)], findings={**LP, "typical_histology": True})
    assert status(tissue, "minor.dnt") is Status.met


def test_ungated_dnt_cannot_meet() -> None:
    c = case(observations=[{**obs("dnt_pct_cd3", 9.0), "tcrab_gated": False}])
    ev = evaluate(c, "seif2008")
    assert ev.status_of("major.dnt") is Status.unknown
    assert ev.category is Category.indeterminate
    assert any("TCRab gating" in t.test and t.criterion == "major.dnt" for t in ev.next_tests)


# --- minor biomarkers: "elevated" cut-offs are site settings (default: the NIH 2009 figures) ---------

@pytest.mark.parametrize(("rule", "analyte", "unit", "cut", "setting"), [
    ("minor.il10", "il10", "pg/mL", 20, "seif2008_il10_pg_ml"),
    ("minor.vitamin_b12", "vitamin_b12", "ng/L", 1500, "seif2008_vitamin_b12_ng_l"),
    ("minor.sfasl", "sfasl", "pg/mL", 200, "seif2008_sfasl_pg_ml"),
])
@pytest.mark.parametrize(("delta", "expected"), [(-0.01, Status.not_met), (0.0, Status.not_met), (0.01, Status.met)])
def test_biomarker_boundaries(rule: str, analyte: str, unit: str, cut: float, setting: str,
                              delta: float, expected: Status) -> None:
    c = case(observations=[obs(analyte, cut + delta, unit)])
    assert status(c, rule) is expected
    assert status(c, rule, Settings(**{setting: cut + 10})) is Status.not_met
    th = next(r.threshold for r in evaluate(c, "seif2008").criteria if r.id == rule)
    assert f"site setting {setting}" in th


@pytest.mark.parametrize(("igg", "expected"), [(916, Status.not_met), (917, Status.met)])
def test_igg_above_age_specific_range(igg: float, expected: Status) -> None:
    # 2-year-old: IgG 1-3 years upper limit 916 mg/dL (medscape_immunoglobulins).
    assert status(case(observations=[obs("igg", igg, "mg/dL")]), "minor.igg") is expected


def test_nras_counts_as_a_major_mutation_criterion() -> None:
    nras = case(variants=[{"gene": "NRAS", "hgvs_p": "p.Gly13Asp", "classification": "pathogenic",
                           "origin": "somatic"}])
    assert status(nras, "major.mutation") is Status.met
    assert evaluate(nras, "nih2009").status_of("primary.mutation") is not Status.met


# --- categories: the combination rule -----------------------------------------------------------------

def _brute_force(met: frozenset[str], majors: list[str], minors: list[str]) -> bool:
    """Is there a chosen set of 3 majors, or 2 majors + 2 minors, that includes a DNT criterion?"""
    m = [r for r in majors if r in met]
    n = [r for r in minors if r in met]
    picks = [set(c) for c in itertools.combinations(m, 3)]
    picks += [set(a) | set(b) for a in itertools.combinations(m, 2) for b in itertools.combinations(n, 2)]
    return any({"major.dnt", "minor.dnt"} & p for p in picks)


def test_combination_rule_matches_exhaustive_selection() -> None:
    cs = criteria_set("seif2008")
    assert isinstance(cs, Seif2008)
    majors, minors = cs.group("major"), cs.group("minor")
    assert len(majors) == 4 and len(minors) == 6
    ids = majors + minors
    for bits in range(1 << len(ids)):
        met = frozenset(r for i, r in enumerate(ids) if bits >> i & 1)
        assert cs.reached(met) is _brute_force(met, majors, minors), sorted(met)


NEG = {"findings": {**LP, "typical_histology": False, "autoimmune_cytopenias": []},
       "observations": [obs(a, 0.0, "pg/mL") for a in ("il10", "sfasl", "vitamin_b12")] + [obs("igg", 500, "mg/dL")],
       "apoptosis_assays": [{"result": "normal"}], "genes_tested": ["FAS", "FASLG", "CASP10", "NRAS"],
       "clinical_events": NODES_2}


def neg(**changes: Any) -> Case:
    """Every criterion known; lymphoproliferation met; the rest not met unless changed."""
    data: dict[str, Any] = {**NEG, **changes}
    return case(**data)


def test_three_majors_with_marked_dnt_is_diagnostic() -> None:
    c = neg(observations=[*NEG["observations"], obs("dnt_pct_cd3", 6.0)], variants=FAS)
    assert evaluate(c, "seif2008").category is Category.definitive


def test_three_majors_without_dnt_is_not_enough() -> None:
    c = neg(observations=[*NEG["observations"], obs("dnt_pct_cd3", 1.0)], variants=FAS,
            apoptosis_assays=[{"result": "defective"}])
    ev = evaluate(c, "seif2008")
    assert [ev.status_of(r) for r in ("major.chronic_lymphoproliferation", "major.apoptosis", "major.mutation")] \
        == [Status.met] * 3
    assert ev.category is Category.not_met


def test_two_majors_two_minors_with_moderate_dnt() -> None:
    base_obs = [o for o in NEG["observations"] if o["analyte"] != "il10"]
    moderate = neg(observations=[*base_obs, obs("dnt_pct_cd3", 3.0), obs("il10", 25, "pg/mL")], variants=FAS)
    assert evaluate(moderate, "seif2008").category is Category.definitive
    # One minor only (the moderate DNT): not reached, and nothing is left unknown.
    one_minor = neg(observations=[*NEG["observations"], obs("dnt_pct_cd3", 3.0)], variants=FAS)
    assert evaluate(one_minor, "seif2008").category is Category.not_met
    # Two minors but no DNT criterion among them or the majors.
    no_dnt = neg(observations=[*base_obs, obs("dnt_pct_cd3", 1.0), obs("il10", 25, "pg/mL")], variants=FAS,
                 findings={**NEG["findings"], "autoimmune_cytopenias": ["thrombocytopenia"]})
    assert evaluate(no_dnt, "seif2008").category is Category.not_met


def test_unknowns_make_it_indeterminate_with_next_tests() -> None:
    c = case(findings=LP, clinical_events=NODES_2, observations=[obs("dnt_pct_cd3", 6.0)])
    ev = evaluate(c, "seif2008")
    assert ev.category is Category.indeterminate
    crits = {t.criterion for t in ev.next_tests}
    # Any single further major, or two minors, completes it: every unknown criterion can matter.
    assert {"major.apoptosis", "major.mutation", "minor.il10", "minor.igg"} <= crits
    assert "major.dnt" not in crits and "major.chronic_lymphoproliferation" not in crits  # already met
    # A reached combination has no next tests.
    done = case(findings=LP, clinical_events=NODES_2, observations=[obs("dnt_pct_cd3", 6.0)], variants=FAS)
    assert evaluate(done, "seif2008").category is Category.definitive
    assert evaluate(done, "seif2008").next_tests == ()
    costs = [t.cost for t in ev.next_tests]
    assert costs == sorted(costs)


def test_base_case_has_no_cutoff_to_fall_through() -> None:
    # The shared BASE (DNT 4 % of lymphocytes only) decides nothing about the CD3+ % criteria.
    ev = evaluate(case(findings=BASE["findings"]), "seif2008")
    assert ev.status_of("major.dnt") is Status.unknown
