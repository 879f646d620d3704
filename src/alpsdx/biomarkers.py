"""Probability of a FAS mutation from biomarkers (Rensing-Ehl et al., Haematologica 2013).

The paper gives predictive values, not likelihood ratios. Likelihood ratios are derived
from the published PPV/NPV and the prevalence of the source cohort (38 FAS-mutated of 98
sequenced), because post-test odds = pre-test odds x LR:

    LR+ = [PPV / (1 - PPV)] / [p / (1 - p)]        LR- = [(1 - NPV) / NPV] / [p / (1 - p)]

A user's pre-test probability (default: the cohort's p) then gives the post-test
probability. The derivation, the rounding range of the published percentages and every
assumption are returned with the result. At the cohort counts, exactly one integer 2x2
table reproduces each published PPV/NPV pair (:func:`consistent_tables`); it is shown in the
derivation as a check. Caminha 2010 and Molnar 2020 are not used
numerically (their figures could not be confirmed) and the output says so.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal

from alpsdx import knowledge, units
from alpsdx.cytopenias import newest, observation_evidence
from alpsdx.errors import InputError
from alpsdx.model import Case

__all__ = [
    "FasPrediction",
    "RuleResult",
    "TwoByTwo",
    "consistent_tables",
    "derive_likelihood_ratios",
    "post_test_probability",
    "predict_fas_mutation",
    "rule_performance",
]


@dataclass(frozen=True)
class TwoByTwo:
    """A 2x2 table of test result against mutation status."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def ppv(self) -> float:
        return self.tp / (self.tp + self.fp)

    @property
    def npv(self) -> float:
        return self.tn / (self.tn + self.fn)

    @property
    def sensitivity(self) -> float:
        return self.tp / (self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return self.tn / (self.tn + self.fp)

    @property
    def prevalence(self) -> float:
        return (self.tp + self.fn) / (self.tp + self.fp + self.fn + self.tn)

    @property
    def lr_positive(self) -> float:
        return self.sensitivity / (1 - self.specificity)

    @property
    def lr_negative(self) -> float:
        return (1 - self.sensitivity) / self.specificity


def _odds(p: float) -> float:
    return p / (1 - p)


def _prob(odds: float) -> float:
    return odds / (1 + odds)


def _check_p(p: float, name: str) -> None:
    if not 0 < p < 1:
        raise InputError("probability must be strictly between 0 and 1", field=name, value=p)


def derive_likelihood_ratios(ppv: float, npv: float, prevalence: float) -> dict[str, Any]:
    """LR+, LR-, sensitivity and specificity implied by PPV, NPV and the cohort prevalence."""
    for name, v in (("ppv", ppv), ("npv", npv), ("prevalence", prevalence)):
        _check_p(v, name)
    pre = _odds(prevalence)
    lr_pos = _odds(ppv) / pre
    lr_neg = (1 - npv) / npv / pre
    q = (prevalence - (1 - npv)) / (ppv - (1 - npv))  # P(test positive) in the cohort
    sens = ppv * q / prevalence
    spec = npv * (1 - q) / (1 - prevalence)
    steps = [
        f"cohort pre-test odds = p/(1-p) = {prevalence:.4f}/{1 - prevalence:.4f} = {pre:.4f}",
        f"LR+ = [PPV/(1-PPV)] / pre-test odds = [{ppv:.2f}/{1 - ppv:.2f}] / {pre:.4f} = {lr_pos:.2f}",
        f"LR- = [(1-NPV)/NPV] / pre-test odds = [{1 - npv:.2f}/{npv:.2f}] / {pre:.4f} = {lr_neg:.3f}",
        f"implied sensitivity {sens:.3f}, specificity {spec:.3f} "
        f"(P(test+) = (p - (1-NPV)) / (PPV - (1-NPV)) = {q:.3f})",
    ]
    return {"lr_positive": lr_pos, "lr_negative": lr_neg, "sensitivity": sens, "specificity": spec,
            "p_test_positive": q, "steps": steps}


def consistent_tables(ppv_pct: int, npv_pct: int, mutated: int, unmutated: int) -> list[TwoByTwo]:
    """Every integer 2x2 table with ``mutated``/``unmutated`` patients whose PPV and NPV round
    (half up) to the published whole percentages. For Rensing-Ehl 2013 (38 of 98 mutated)
    there is exactly one table per rule, so the published figures pin down the counts."""
    if mutated < 1 or unmutated < 1:
        raise InputError("cohort counts must be positive", field="mutated/unmutated", value=(mutated, unmutated))
    out: list[TwoByTwo] = []
    for tp in range(mutated + 1):
        for fp in range(unmutated + 1):
            fn, tn = mutated - tp, unmutated - fp
            if tp + fp == 0 or tn + fn == 0:
                continue
            if (int(100 * tp / (tp + fp) + 0.5) == ppv_pct and int(100 * tn / (tn + fn) + 0.5) == npv_pct):
                out.append(TwoByTwo(tp, fp, fn, tn))
    return out


def post_test_probability(pre_test: float, lr: float) -> float:
    """Post-test probability from a pre-test probability and a likelihood ratio (odds form)."""
    _check_p(pre_test, "pre_test_probability")
    if lr <= 0:
        raise InputError("likelihood ratio must be positive", field="lr", value=lr)
    return _prob(_odds(pre_test) * lr)


def _kb() -> Mapping[str, Any]:
    return knowledge.load("biomarker_performance")


def _cohort_prevalence() -> float:
    c = _kb()["rensingehl2013"]["cohort"]
    return float(c["fas_mutated"]) / float(c["sequenced"])


def rule_performance(rule: str) -> dict[str, Any]:
    """Published PPV/NPV of a Rensing-Ehl rule with the derived LRs and their rounding range."""
    return copy.deepcopy(_rule_performance(rule))


@lru_cache(maxsize=16)
def _rule_performance(rule: str) -> dict[str, Any]:
    spec = _kb()["rensingehl2013"]["rules"][rule]
    p = _cohort_prevalence()
    ppv, npv = float(spec["ppv"]), float(spec["npv"])
    d = derive_likelihood_ratios(ppv, npv, p)
    # the published values are whole percentages: show the LR span their rounding allows
    lo = derive_likelihood_ratios(ppv - 0.005, npv + 0.005 - 1e-9, p)
    hi = derive_likelihood_ratios(ppv + 0.005 - 1e-9, npv - 0.005, p)
    d["lr_positive_rounding_range"] = (round(lo["lr_positive"], 2), round(hi["lr_positive"], 2))
    d["lr_negative_rounding_range"] = (round(lo["lr_negative"], 4), round(hi["lr_negative"], 4))
    d.update({"ppv": ppv, "npv": npv, "prevalence": p, "label": str(spec["label"])})
    c = _kb()["rensingehl2013"]["cohort"]
    mutated = int(c["fas_mutated"])
    tables = consistent_tables(round(ppv * 100), round(npv * 100), mutated, int(c["sequenced"]) - mutated)
    d["consistent_tables"] = [asdict(t) for t in tables]
    if len(tables) == 1:
        t = tables[0]
        d["steps"].append(
            f"the only integer 2x2 table with {mutated} FAS-mutated of {c['sequenced']} whose PPV/NPV round to "
            f"{ppv:.0%}/{npv:.0%}: TP {t.tp}, FP {t.fp}, FN {t.fn}, TN {t.tn} (PPV {t.ppv:.3f}, NPV {t.npv:.3f}; "
            f"sensitivity {t.sensitivity:.3f}, specificity {t.specificity:.3f}; LR+ {t.lr_positive:.2f}, "
            f"LR- {t.lr_negative:.3f})")
    return d


_OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


@dataclass(frozen=True)
class RuleResult:
    """One published rule applied to the case: positive / negative / unknown (missing markers)."""

    rule: str
    label: str
    result: Literal["positive", "negative", "unknown"]
    evidence: tuple[dict[str, Any], ...]
    missing: tuple[str, ...]
    ppv: float
    npv: float
    lr: float | None
    post_test_probability: float | None
    derivation: tuple[str, ...]
    note: str
    citation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "label": self.label, "result": self.result,
            "evidence": list(self.evidence), "missing": list(self.missing),
            "published_ppv": self.ppv, "published_npv": self.npv, "likelihood_ratio": self.lr,
            "post_test_probability": self.post_test_probability, "derivation": list(self.derivation),
            "note": self.note, "citation": self.citation,
            "citation_text": knowledge.resolve_citation(self.citation),
        }


def _apply_rule(case: Case, rule: str, pre_test: float) -> RuleResult:
    spec = _kb()["rensingehl2013"]["rules"][rule]
    evidence: list[dict[str, Any]] = []
    missing: list[str] = []
    hits: list[bool] = []
    for m in spec["markers"]:
        key = str(m["analyte"])
        cut = units.to_canonical(key, float(m["value"]), str(m["unit"]))
        o = newest(case, key)
        if o is None:
            missing.append(key)
            continue
        above = _OPS[str(m["op"])](o.canonical_value, cut)
        ev = observation_evidence(o)
        ev["threshold"] = f"{m['op']} {m['value']} {m['unit']}"
        ev["above_threshold"] = above
        evidence.append(ev)
        hits.append(above)
    mode = str(spec["positive_when"])
    result: Literal["positive", "negative", "unknown"]
    if mode == "all":
        if hits and not all(hits):
            result = "negative"  # one marker below its cut-off decides, whatever the other
        elif missing:
            result = "unknown"
        else:
            result = "positive"
    else:  # any
        if any(hits):
            result = "positive"
        elif missing:
            result = "unknown"
        else:
            result = "negative"
    perf = _rule_performance(rule)  # cached and shared: read only here (steps copied below)
    lr = None if result == "unknown" else (perf["lr_positive"] if result == "positive" else perf["lr_negative"])
    post = None if lr is None else post_test_probability(pre_test, lr)
    steps = list(perf["steps"])
    steps.append(
        f"LR+ span allowed by rounding of the published percentages: {perf['lr_positive_rounding_range'][0]}"
        f"-{perf['lr_positive_rounding_range'][1]}; LR- span {perf['lr_negative_rounding_range'][0]}"
        f"-{perf['lr_negative_rounding_range'][1]}"
    )
    if post is not None and lr is not None:
        steps.append(
            f"post-test odds = pre-test odds x LR = {_odds(pre_test):.4f} x {lr:.3f} = {_odds(pre_test) * lr:.4f}; "
            f"post-test probability = odds/(1+odds) = {post:.3f}"
        )
    return RuleResult(rule, str(spec["label"]), result, tuple(evidence), tuple(missing), float(spec["ppv"]),
                      float(spec["npv"]), lr, post, tuple(steps), str(spec.get("note", "")), "rensingehl2013")


@dataclass(frozen=True)
class FasPrediction:
    """Post-test probability of a FAS mutation and whether (and how) to sequence FAS."""

    pre_test_probability: float
    pre_test_source: str
    primary: RuleResult | None
    rules: tuple[RuleResult, ...]
    sequencing_recommended: bool | None
    recommendation: str
    threshold: float
    threshold_label: str
    not_used: Mapping[str, str] = field(default_factory=dict)
    prevalence_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "pre_test_probability": self.pre_test_probability,
            "pre_test_source": self.pre_test_source,
            "primary_rule": None if self.primary is None else self.primary.rule,
            "post_test_probability": None if self.primary is None else self.primary.post_test_probability,
            "rules": [r.to_dict() for r in self.rules],
            "sequencing_recommended": self.sequencing_recommended,
            "recommendation": self.recommendation,
            "decision_threshold": self.threshold,
            "decision_threshold_label": self.threshold_label,
            "sources_not_used": dict(self.not_used),
            "prevalence_note": self.prevalence_note,
        }


def _fas_status(case: Case) -> tuple[str, str | None]:
    """('known', text) if a pathogenic FAS variant is recorded, ('blood_negative', ...) if FAS was
    sequenced without one and no DNT-sorted test is recorded, else ('untested', None)."""
    fas = [v for v in case.variants if v.gene == "FAS"]
    for v in fas:
        if v.is_pathogenic:
            return "known", f"{v.origin} FAS variant {v.hgvs_p or v.hgvs_c or ''} ({v.classification})".strip()
    tested: Sequence[str] = getattr(case, "genes_tested", None) or ()
    if "FAS" in {g.upper() for g in tested}:
        sorted_dnt = any((v.sample or "").lower() in ("sorted_dnt", "dnt") for v in fas)
        return ("tested_dnt" if sorted_dnt else "blood_negative"), None
    return "untested", None


def predict_fas_mutation(case: Case, pre_test_probability: float | None = None,
                         threshold: float | None = None) -> FasPrediction:
    """Apply the Rensing-Ehl 2013 rules to the case's newest B12, sFASL and DNT values."""
    kb = _kb()
    spec = kb["rensingehl2013"]
    if pre_test_probability is None:
        pre = _cohort_prevalence()
        src = (f"source cohort prevalence: {spec['cohort']['fas_mutated']} FAS-mutated of "
               f"{spec['cohort']['sequenced']} sequenced (Rensing-Ehl 2013)")
    else:
        _check_p(pre_test_probability, "pre_test_probability")
        pre, src = pre_test_probability, "set by the user"
    dec = kb["decision"]["sequencing_threshold"]
    thr = float(dec["value"]) if threshold is None else threshold
    _check_p(thr, "sequencing_threshold")
    thr_label = str(dec["label"]) if threshold is None else "set by the user"
    rules = (_apply_rule(case, "b12_sfasl", pre), _apply_rule(case, "dnt", pre))
    # B12+sFASL is the paper's best predictor; the DNT rule (same cohort, not independent)
    # is used only when B12/sFASL cannot be applied, never multiplied with it.
    primary = next((r for r in rules if r.result != "unknown"), None)
    status, detail = _fas_status(case)
    somatic = (f"somatic FAS mutations were {spec['cohort']['somatic']} of {spec['cohort']['fas_mutated']} "
               "FAS mutations in this cohort")
    recommended: bool | None
    if status == "known":
        recommended = False
        rec = f"A pathogenic FAS variant is already recorded ({detail}); biomarker prediction is not needed."
    elif primary is None:
        recommended = None
        rec = ("Cannot estimate: measure vitamin B12 and sFASL (the paper's recommended first step), "
               "then decide on FAS sequencing.")
    else:
        post = primary.post_test_probability or 0.0
        recommended = post >= thr
        where = ("in sorted DNT cells (or by a method sensitive to low-level somatic variants) because "
                 f"{somatic}")
        if status == "blood_negative":
            where = f"in sorted DNT cells: FAS was sequenced without a pathogenic variant, and {somatic}"
        elif status == "tested_dnt":
            where = "(FAS has already been sequenced in sorted DNT cells; consider other genes)"
        verb = "FAS sequencing is recommended" if recommended else "FAS sequencing is not indicated by this rule"
        rec = (f"Post-test probability of a FAS mutation {post:.0%} by '{primary.label}' "
               f"({primary.result}); {verb} at the decision threshold {thr:.0%} ({thr_label})"
               + (f", {where}." if recommended else "."))
        if primary.rule == "dnt":
            rec += " DNT alone is a weak predictor (PPV 61%, NPV 77%): measure B12 and sFASL."
    return FasPrediction(pre, src, primary, rules, recommended, rec, thr, thr_label,
                         dict(kb["not_confirmed"]), str(spec["prevalence_note"]))
