"""The one call every adapter makes: assess a case and get the contract JSON.

``assess(case)`` evaluates the criteria (one set or all side by side), classifies the
subtype, lists next tests, considerations, the care section and the annotated variants,
and stamps the knowledge-base version so the result can be reproduced.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache, lru_cache
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


@cache
def _citation_text(key: str) -> str:
    return knowledge.resolve_citation(key)


@lru_cache(maxsize=65536)
def _keys_in(text: str) -> frozenset[str]:
    """Citation keys named in one text; rule texts repeat across cases, so cache them."""
    return frozenset(_WORD.findall(text)) & _citation_keys()


def _rule_texts(result: dict[str, Any]) -> list[str]:
    """The free text of one criteria-set result where rules name citation keys."""
    texts: list[str] = list(result.get("considerations", []))
    for c in result["criteria"]:
        texts.append(c["citation"])
        texts.append(c["threshold"])
        texts.extend(c.get("notes", []))
        texts.extend(e["note"] for e in c["evidence"] if e.get("note"))
    return texts


def sources(result: dict[str, Any]) -> dict[str, str]:
    """Every citation key the result mentions (rules, notes, variants, care) -> its text."""
    texts = _rule_texts(result)
    for other in result.get("other_sets", []):
        texts.extend(_rule_texts(other))
    found: set[str] = set().union(*map(_keys_in, texts))
    for v in result.get("variants", []):
        found.update(k for k in v.get("citations") or () if k in _citation_keys())
    for item in result.get("care", []):
        extra = [e.get("citation") if isinstance(e, dict) else e for e in item.get("extra_citations") or ()]
        found.update(k for k in [item.get("citation"), *extra] if isinstance(k, str) and k in _citation_keys())
    return {key: _citation_text(key) for key in sorted(found)}


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
