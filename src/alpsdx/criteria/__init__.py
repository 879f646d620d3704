"""Diagnostic criteria sets for ALPS, evaluated side by side.

>>> from alpsdx.criteria import evaluate
>>> ev = evaluate(case, "nih2009")          # doctest: +SKIP
>>> ev.category, [r.status for r in ev.criteria]   # doctest: +SKIP

Each set is a short class over shared machinery (``base.py``) and a cited YAML file under
``knowledge/data/criteria/``; one contract test suite runs over every set.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from alpsdx.criteria.base import Category, CriteriaSet, Evaluation, NextTest, RuleResult, Status
from alpsdx.criteria.esid import ESID
from alpsdx.criteria.nih1999 import NIH1999
from alpsdx.criteria.nih2009 import NIH2009
from alpsdx.criteria.seif2008 import Seif2008
from alpsdx.criteria.settings import Settings
from alpsdx.errors import InputError
from alpsdx.model import Case

__all__ = [
    "CRITERIA_SETS",
    "Category",
    "CriteriaSet",
    "Evaluation",
    "NextTest",
    "RuleResult",
    "Settings",
    "Status",
    "criteria_set",
    "evaluate",
    "evaluate_all",
]

CRITERIA_SETS: dict[str, type[CriteriaSet]] = {
    NIH2009.id: NIH2009,
    NIH1999.id: NIH1999,
    Seif2008.id: Seif2008,
    ESID.id: ESID,
}


@cache
def criteria_set(name: str) -> CriteriaSet:
    """The criteria set by id, loaded once."""
    try:
        return CRITERIA_SETS[name]()
    except KeyError:
        raise InputError("unknown criteria set", field="criteria", value=name,
                         expected=" | ".join([*CRITERIA_SETS, "all"])) from None


def evaluate(case: Case, criteria: str = "nih2009", *, date: dt.date | None = None,
             settings: Settings | None = None) -> Evaluation:
    """Evaluate a case under one criteria set, as of ``date`` (default: the case's own date)."""
    return criteria_set(criteria).evaluate(case.at(date), settings)


def evaluate_all(case: Case, *, date: dt.date | None = None,
                 settings: Settings | None = None) -> dict[str, Evaluation]:
    """Evaluate a case under every criteria set, keyed by set id (nih2009 first)."""
    return {name: evaluate(case, name, date=date, settings=settings) for name in CRITERIA_SETS}
