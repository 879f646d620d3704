"""Shared machinery for diagnostic criteria sets: three-valued rules, evidence, categories.

A criteria set is data (``knowledge/data/criteria/<id>.yaml``: rules, their kind, parameters,
citations and the tests that settle them) plus a short class that says how rule statuses
combine into a category. Rule *kinds* (how one rule reads the case) live in ``rules.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import operator
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, cached_property
from typing import Any, ClassVar, NamedTuple, TypeVar

from alpsdx import knowledge
from alpsdx.criteria.settings import Settings
from alpsdx.model import Case, Medication, Observation

__all__ = [
    "Category",
    "CombinationSet",
    "Context",
    "CriteriaSet",
    "Evaluation",
    "Evidence",
    "NextTest",
    "Rule",
    "RuleResult",
    "Status",
]


class Status(StrEnum):
    met = "met"
    not_met = "not_met"
    unknown = "unknown"


class Category(StrEnum):
    definitive = "definitive"
    probable = "probable"
    not_met = "not_met"
    indeterminate = "indeterminate"


class Evidence(NamedTuple):
    """One datum a rule used: an analyte value with unit and date, or a finding.

    An immutable record (a NamedTuple: every case builds about ten, and a frozen dataclass
    took twice as long to construct)."""

    item: str
    value: Any
    unit: str | None = None
    date: dt.date | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"item": self.item, "value": self.value}
        if self.unit is not None:
            out["unit"] = self.unit
        out["date"] = self.date.isoformat() if self.date else None
        if self.note:
            out["note"] = self.note
        return out


@cache
def _citation_text(key: str) -> str:
    """``knowledge.resolve_citation``, once per key (every rule result of every case asks)."""
    return knowledge.resolve_citation(key)


class RuleResult(NamedTuple):
    """The outcome of one criterion for one case (an immutable record, like :class:`Evidence`)."""

    id: str
    group: str
    label: str
    status: Status
    evidence: tuple[Evidence, ...]
    threshold: str
    citation: str
    notes: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # tests that would settle an unknown, overriding the rule's own

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "label": self.label,
            "status": str(self.status),  # StrEnum: str() is its value, without the enum descriptor
            "evidence": [e.to_dict() for e in self.evidence],
            "threshold": self.threshold,
            "citation": self.citation,
            "citation_text": _citation_text(self.citation),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class NextTest:
    test: str
    why: str
    criterion: str
    cost: int

    def to_dict(self) -> dict[str, Any]:
        return {"test": self.test, "why": self.why, "criterion": self.criterion}


@dataclass(frozen=True)
class Evaluation:
    """A case evaluated under one criteria set on one date."""

    case_id: str
    criteria_set: str
    title: str
    evaluation_date: dt.date
    category: Category
    criteria: tuple[RuleResult, ...]
    next_tests: tuple[NextTest, ...]
    category_label: str = ""

    def status_of(self, rule_id: str) -> Status:
        for r in self.criteria:
            if r.id == rule_id:
                return r.status
        raise KeyError(rule_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "criteria_set": self.criteria_set,
            "title": self.title,
            "evaluation_date": self.evaluation_date.isoformat(),
            "category": self.category.value,
            "category_label": self.category_label,
            "criteria": [r.to_dict() for r in self.criteria],
            "next_tests": [t.to_dict() for t in self.next_tests],
        }


class Context:
    """A case as of its evaluation date: newest observation per analyte, active drugs.

    Observations dated after the evaluation date are ignored; undated ones count as current
    (and the evidence says so). Built once per evaluation and shared by every rule.
    """

    def __init__(self, case: Case, settings: Settings) -> None:
        self.case = case
        self.as_of: dt.date = case.as_of
        self.settings = settings

    @cached_property
    def _latest(self) -> dict[str, Observation]:
        best: dict[str, Observation] = {}
        as_of = self.as_of
        for o in self.case.observations:
            if o.date is not None and o.date > as_of:
                continue
            cur = best.get(o.analyte)
            if cur is None:
                best[o.analyte] = o
                continue
            # An undated value counts as current: it wins over any dated one.
            if cur.date is None:
                continue
            if o.date is None or o.date >= cur.date:
                best[o.analyte] = o
        return best

    def latest(self, analyte: str) -> Observation | None:
        """Newest observation of ``analyte`` on or before the evaluation date."""
        return self._latest.get(analyte)

    def series(self, analyte: str) -> list[Observation]:
        """All dated observations of ``analyte`` up to the evaluation date, oldest first."""
        obs = [o for o in self.case.observations if o.analyte == analyte and o.date and o.date <= self.as_of]
        return sorted(obs, key=lambda o: o.date or dt.date.min)

    def evidence(self, obs: Observation, note: str | None = None) -> Evidence:
        """Evidence for an observation, in the canonical unit, noting original unit and dating."""
        notes = []
        unit = obs.canonical_unit
        if obs.unit != unit:
            notes.append(f"reported as {obs.value:g} {obs.unit}")
        if obs.date is None:
            notes.append("undated: counted as current")
        if note:
            notes.append(note)
        return Evidence(
            item=obs.analyte,
            value=round(obs.canonical_value, 6),
            unit=unit,
            date=obs.date,
            note="; ".join(notes) or None,
        )

    def active_medications(self, on: dt.date | None = None) -> list[Medication]:
        day = on or self.as_of
        return [
            m
            for m in self.case.medications
            if (m.start is None or m.start <= day) and (m.end is None or m.end >= day)
        ]


RuleFn = Callable[["Rule", Context], RuleResult]
T = TypeVar("T")


@dataclass(frozen=True)
class Rule:
    """One criterion as declared in a criteria YAML file, bound to its kind's function."""

    id: str
    group: str
    kind: str
    label: str
    citation: str
    params: Mapping[str, Any]
    tests: tuple[Mapping[str, Any], ...]
    fn: RuleFn
    _derived: dict[Hashable, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def evaluate(self, ctx: Context) -> RuleResult:
        return self.fn(self, ctx)

    def derived(self, key: Hashable, make: Callable[[], T]) -> T:
        """A value derived from the rule's params (threshold text, parsed cut-offs), made once.

        ``key`` names what else it depends on (e.g. the site settings); params never change.
        """
        try:
            value: T = self._derived[key]
        except KeyError:
            value = self._derived[key] = make()
        return value

    def result(
        self,
        status: Status,
        evidence: Iterable[Evidence] = (),
        threshold: str = "",
        notes: Iterable[str] = (),
        needs: Iterable[str] = (),
        citation: str | None = None,
    ) -> RuleResult:
        return RuleResult(
            id=self.id,
            group=self.group,
            label=self.label,
            status=status,
            evidence=tuple(evidence),
            threshold=threshold,
            citation=citation or self.citation,
            notes=tuple(notes),
            needs=tuple(needs),
        )


@dataclass
class CriteriaSet:
    """Base class: load the set's YAML, evaluate every rule, combine into a category.

    Subclasses set ``id`` and implement ``categorize``; everything else is shared, including
    the search for next tests (each unknown rule tried both ways).
    """

    id: ClassVar[str]
    rules: tuple[Rule, ...] = field(init=False)
    title: str = field(init=False)
    citation: str = field(init=False)
    category_labels: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        from alpsdx.criteria.rules import KINDS

        spec = knowledge.load(f"criteria/{self.id}")
        self.title = str(spec["title"])
        self.citation = str(spec["citation"])
        self.category_labels = spec.get("categories", {})
        rules = []
        for r in spec["rules"]:
            rules.append(
                Rule(
                    id=r["id"],
                    group=r["group"],
                    kind=r["kind"],
                    label=r["label"],
                    citation=r["citation"],
                    params=r.get("params", {}),
                    tests=tuple(r.get("tests", ())),
                    fn=KINDS[r["kind"]],
                )
            )
        self.rules = tuple(rules)
        self._by_id = {r.id: r for r in self.rules}
        # statuses -> their tuple in rule order, the key of the memo tables below
        self._status_key: Callable[[Mapping[str, Status]], tuple[Status, ...]] = operator.itemgetter(
            *(r.id for r in self.rules))
        self._groups: dict[str, list[str]] = {}
        self._categories: dict[tuple[Status, ...], Category] = {}
        self._next_tests: dict[Hashable, tuple[NextTest, ...]] = {}

    # -- to be provided by each set -------------------------------------------------------
    def categorize(self, statuses: Mapping[str, Status]) -> Category:  # pragma: no cover
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    def group(self, name: str) -> list[str]:
        ids = self._groups.get(name)
        if ids is None:
            ids = self._groups[name] = [r.id for r in self.rules if r.group == name]
        return ids

    def category_of(self, statuses: Mapping[str, Status]) -> Category:
        """``categorize``, memoised: a set has few status combinations and next tests try many."""
        key = self._status_key(statuses)
        cat = self._categories.get(key)
        if cat is None:
            cat = self._categories[key] = self.categorize(statuses)
        return cat

    def why_decisive(self, rule_id: str, statuses: Mapping[str, Status], category: Category) -> str | None:
        """Why settling unknown ``rule_id`` could change ``category`` (tried both ways), or None."""
        outcomes = {s: self.category_of({**statuses, rule_id: s}) for s in (Status.met, Status.not_met)}
        changes = [s for s, c in outcomes.items() if c != category]
        if not changes:
            return None
        why = "; ".join(f"if {s.value.replace('_', ' ')}: {outcomes[s].value}" for s in changes)
        return f"{rule_id} is unknown ({why})"

    def evaluate(self, case: Case, settings: Settings | None = None) -> Evaluation:
        ctx = Context(case, settings or Settings.default())
        results = tuple(rule.evaluate(ctx) for rule in self.rules)
        statuses = {r.id: r.status for r in results}
        category = self.category_of(statuses)
        return Evaluation(
            case_id=case.id,
            criteria_set=self.id,
            title=self.title,
            evaluation_date=ctx.as_of,
            category=category,
            criteria=results,
            next_tests=self.next_tests(results, statuses, category),
            category_label=str(self.category_labels.get(category.value, "")),
        )

    def next_tests(
        self, results: Sequence[RuleResult], statuses: Mapping[str, Status], category: Category
    ) -> tuple[NextTest, ...]:
        """Tests whose result could change the category: each unknown rule tried both ways."""
        if category in (Category.definitive, Category.not_met):
            return ()
        # The answer depends only on the statuses, the category and the unknown results' needs,
        # and few combinations occur: worked out once per combination (NextTest is immutable).
        unknown = tuple(r for r in results if r.status is Status.unknown)
        key = (self._status_key(statuses), category, tuple((r.id, r.needs) for r in unknown))
        found = self._next_tests.get(key)
        if found is None:
            found = self._next_tests[key] = self._search_next_tests(unknown, statuses, category)
        return found

    def _search_next_tests(
        self, unknown: Sequence[RuleResult], statuses: Mapping[str, Status], category: Category
    ) -> tuple[NextTest, ...]:
        by_id = self._by_id
        found: list[NextTest] = []
        seen: set[str] = set()
        for res in unknown:
            why = self.why_decisive(res.id, statuses, category)
            if why is None:
                continue
            tests: list[Mapping[str, Any]]
            if res.needs:
                # A rule's specific need costs what the rule's own tests cost (sequencing stays
                # behind flow cytometry and serum markers).
                cost = min((int(t.get("cost", 9)) for t in by_id[res.id].tests), default=9)
                tests = [{"test": t, "cost": cost} for t in res.needs]
            else:
                tests = list(by_id[res.id].tests)
            for t in tests:
                name = str(t["test"])
                if name in seen:
                    continue
                seen.add(name)
                found.append(NextTest(test=name, why=why, criterion=res.id, cost=int(t.get("cost", 9))))
        found.sort(key=lambda t: t.cost)
        return tuple(found)


class RequiredPlusAccessory(CriteriaSet):
    """Required criteria plus primary (definitive) or secondary (probable) accessory criteria.

    A failed required criterion -> not_met; all required met plus a primary -> definitive,
    plus a secondary -> probable; all required met and every accessory known not met ->
    not_met; anything else cannot be decided from the data -> indeterminate.
    """

    def categorize(self, statuses: Mapping[str, Status]) -> Category:
        req = [statuses[i] for i in self.group("required")]
        if Status.not_met in req:
            return Category.not_met
        prim = [statuses[i] for i in self.group("primary")]
        sec = [statuses[i] for i in self.group("secondary")]
        if all(s is Status.met for s in req):
            if Status.met in prim:
                return Category.definitive
            if Status.met in sec:
                return Category.probable
            if all(s is Status.not_met for s in prim + sec):
                return Category.not_met
        return Category.indeterminate


class CombinationSet(CriteriaSet):
    """A set whose diagnosis is a monotone combination of met criteria (counts, any/all).

    Subclasses give ``reached(met)``: whether the criteria in ``met`` are enough for the
    diagnosis, and ``positive``: the category that a reached combination gives. Because adding
    a met criterion can never undo a diagnosis, three-valued logic is exact: reached with the
    met criteria alone -> ``positive``; not reached even if every unknown were met ->
    ``not_met``; otherwise ``indeterminate``.
    """

    positive: ClassVar[Category] = Category.definitive
    # Above this many unknown criteria, every unknown criterion counts as possibly decisive
    # (2**n completions would be tried otherwise).
    max_exhaustive: ClassVar[int] = 12

    def __post_init__(self) -> None:
        super().__post_init__()
        self._groups: dict[str, list[str]] = {}

    def group(self, name: str) -> list[str]:
        if name not in self._groups:
            self._groups[name] = super().group(name)
        return self._groups[name]

    def reached(self, met: frozenset[str]) -> bool:  # pragma: no cover
        raise NotImplementedError

    def next_tests(
        self, results: Sequence[RuleResult], statuses: Mapping[str, Status], category: Category
    ) -> tuple[NextTest, ...]:
        if category is self.positive:  # a reached combination cannot be undone by more data
            return ()
        return super().next_tests(results, statuses, category)

    def why_decisive(self, rule_id: str, statuses: Mapping[str, Status], category: Category) -> str | None:
        """Tried both ways with the other unknowns left open; failing that, whether some
        outcome of the other unknowns makes this criterion the one that completes the combination."""
        direct = super().why_decisive(rule_id, statuses, category)
        if direct is not None:
            return direct
        met = frozenset(i for i, s in statuses.items() if s is Status.met)
        others = [i for i, s in statuses.items() if s is Status.unknown and i != rule_id]
        pivotal = len(others) > self.max_exhaustive
        for n in range(len(others) + 1):
            if pivotal:
                break
            for extra in itertools.combinations(others, n):
                with_extra = met | frozenset(extra)
                if self.reached(with_extra | {rule_id}) and not self.reached(with_extra):
                    pivotal = True
                    break
        if not pivotal:
            return None
        return (f"{rule_id} is unknown (together with other unknown criteria it could complete the "
                f"{self.positive.value} combination)")

    def categorize(self, statuses: Mapping[str, Status]) -> Category:
        met = frozenset(i for i, s in statuses.items() if s is Status.met)
        if self.reached(met):
            return self.positive
        could = met | frozenset(i for i, s in statuses.items() if s is Status.unknown)
        if not self.reached(could):
            return Category.not_met
        return Category.indeterminate
