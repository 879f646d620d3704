"""The one call every adapter makes: assess a case and get the contract JSON.

``assess(case)`` evaluates the criteria (one set or all side by side), classifies the
subtype, lists next tests, considerations, the care section and the annotated variants,
and stamps the knowledge-base version so the result can be reproduced.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from typing import Any

from alpsdx import knowledge
from alpsdx.classify import classify
from alpsdx.criteria import CRITERIA_SETS, Evaluation, Settings, evaluate
from alpsdx.errors import InputError
from alpsdx.model import Case, Variant

__all__ = ["DISCLAIMER", "assess", "disagreements"]

DISCLAIMER = ("alpsdx supports, and does not replace, the clinical judgement of the treating "
              "physician. Every rule shows its source.")


def _evaluation_dict(case: Case, ev: Evaluation) -> dict[str, Any]:
    cls = classify(case, ev)
    out = ev.to_dict()
    out["subtype"] = cls.subtype
    out["subtype_basis"] = cls.basis
    out["considerations"] = list(cls.considerations)
    return out


def disagreements(evals: dict[str, Evaluation]) -> list[str]:
    """Human-readable lines where criteria sets reach different categories."""
    cats = {name: ev.category.value for name, ev in evals.items()}
    if len(set(cats.values())) <= 1:
        return []
    return [", ".join(f"{name}: {cat}" for name, cat in cats.items())]


def _care(case: Case) -> list[dict[str, Any]]:
    from alpsdx.care import care_items

    return [item.to_dict() for item in care_items(case)]


@lru_cache(maxsize=4096)
def _annotated(variants: tuple[Variant, ...]) -> str:
    """Annotation is pure in the variants and costly (HGVS grammar): cache it, as JSON so
    every caller gets its own copy. All of a case's variants go together, so the same change
    seen in blood and in sorted DNT informs each sample's origin."""
    from alpsdx.genetics import annotate_all

    return json.dumps([a.to_dict() for a in annotate_all(variants)])


def _variants(case: Case) -> list[dict[str, Any]]:
    if not case.variants:
        return []
    result: list[dict[str, Any]] = json.loads(_annotated(tuple(case.variants)))
    return result


_WORD = re.compile(r"[a-z][a-z0-9_]+")


@lru_cache(maxsize=1)
def _citation_keys() -> frozenset[str]:
    return frozenset(knowledge.citations())


_NOT_SCANNED = frozenset({"citation_text", "label", "title", "category_label", "disclaimer", "item", "value"})


def _strings(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k not in _NOT_SCANNED:
                _strings(v, out)
    elif isinstance(node, list | tuple):
        for v in node:
            _strings(v, out)


def sources(result: dict[str, Any]) -> dict[str, str]:
    """Every citation key the result mentions (rule sources, notes, care items) -> its text."""
    texts: list[str] = []
    _strings(result, texts)
    found = sorted(set(_WORD.findall(" ".join(texts))) & _citation_keys())
    return {key: knowledge.resolve_citation(key) for key in found}


def assess(case: Case, criteria: str = "nih2009", *, date: dt.date | None = None,
           settings: Settings | None = None, care: bool = True) -> dict[str, Any]:
    """Evaluate ``case`` and return the ``alpsdx evaluate --format json`` object.

    ``criteria="all"`` evaluates every set: the primary object is NIH 2009 and the others
    follow under ``other_sets`` with a ``disagreements`` list.
    """
    case = case.at(date)
    settings = settings or Settings.default()
    if criteria != "all" and criteria not in CRITERIA_SETS:
        raise InputError("unknown criteria set", field="criteria", value=criteria,
                         expected=" | ".join([*CRITERIA_SETS, "all"]))
    names = list(CRITERIA_SETS) if criteria == "all" else [criteria]
    evals = {name: evaluate(case, name, settings=settings) for name in names}
    primary = next(iter(evals.values()))
    out = _evaluation_dict(case, primary)
    out["settings"] = {"dnt_comparator": settings.dnt_comparator}
    if criteria == "all":
        out["other_sets"] = [_evaluation_dict(case, ev) for ev in list(evals.values())[1:]]
        out["disagreements"] = disagreements(evals)
    out["variants"] = _variants(case)
    if care:
        out["care"] = _care(case)
    out["sources"] = sources(out)
    out["kb_version"] = knowledge.kb_version()
    out["disclaimer"] = DISCLAIMER
    return out
