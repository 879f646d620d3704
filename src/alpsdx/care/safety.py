"""Splenectomy and infection safety (``knowledge/data/care_rules.yaml``, section ``splenectomy``).

- An asplenic patient (``findings.splenectomy`` or a ``splenectomy`` event) gets the
  vaccination and penicillin-prophylaxis reminders GeneReviews gives ("strongly
  recommended") with the vaccine list of Lee 2020; vaccinations and prophylaxis recorded
  as ``clinical_events`` are shown, and the ones not recorded are named.
- A proposed splenectomy (a ``splenectomy_proposed`` event with no splenectomy after it)
  gets the warning of Price 2014 (post-splenectomy sepsis and lymphoma are the major causes
  of death in ALPS-FAS) and Teachey 2012 (avoid, except for uncontrolled hypersplenism).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alpsdx import knowledge
from alpsdx.care.items import CareItem
from alpsdx.model import Case, ClinicalEvent

__all__ = ["VACCINE_KEYS", "is_asplenic", "safety_items"]

# Words that identify each listed vaccine in a recorded vaccination's ``site``/``note``.
VACCINE_KEYS: Mapping[int, tuple[str, ...]] = {
    0: ("pneumococ", "pcv", "ppsv", "ppv23"),
    1: ("menacwy", "acwy", "meningococcal conjugate", "menveo", "nimenrix", "menquadfi"),
    2: ("menb", "meningococcal b", "bexsero", "trumenba"),
    3: ("hib", "haemophilus", "hemophilus"),
    4: ("influenza", "flu"),
}


def _spec() -> Mapping[str, Any]:
    return knowledge.load("care_rules")["splenectomy"]  # type: ignore[no-any-return]


def _events(case: Case, kind: str) -> list[ClinicalEvent]:
    return [e for e in case.clinical_events if e.kind == kind and (e.date is None or e.date <= case.as_of)]


def is_asplenic(case: Case) -> bool:
    return bool(case.findings.splenectomy) or bool(_events(case, "splenectomy"))


def _ev(e: ClinicalEvent) -> dict[str, Any]:
    return {"event": e.kind, "date": None if e.date is None else e.date.isoformat(), "site": e.site, "note": e.note}


def safety_items(case: Case) -> list[CareItem]:
    spec = _spec()
    items: list[CareItem] = []
    splenectomies = _events(case, "splenectomy")
    if is_asplenic(case):
        evidence: list[dict[str, Any]] = [_ev(e) for e in splenectomies]
        if case.findings.splenectomy:
            evidence.insert(0, {"finding": "splenectomy", "value": True})
        vaccines = [str(v) for v in spec["vaccines"]["list"]]
        recorded = _events(case, "vaccination")
        text = " ".join(f"{e.site or ''} {e.note or ''}".lower() for e in recorded)
        missing = [v for i, v in enumerate(vaccines) if not any(k in text for k in VACCINE_KEYS.get(i, ()))]
        prophylaxis = _events(case, "antibiotic_prophylaxis")
        msg = str(spec["reminders"]["text"]).strip()
        msg += " Vaccines for asplenia (Lee 2020): " + "; ".join(vaccines) + ". " + str(spec["vaccines"]["note"])
        if recorded:
            msg += f" Recorded vaccinations: {len(recorded)}."
        if missing:
            msg += " Not recorded: " + "; ".join(missing) + "."
        if not prophylaxis:
            msg += " No antibiotic prophylaxis is recorded."
        items.append(CareItem(
            "safety.asplenia", msg, str(spec["reminders"]["citation"]), "warning" if (missing or not prophylaxis)
            else "info", tuple(evidence + [_ev(e) for e in recorded + prophylaxis]), "safety",
            extra_citations=(str(spec["vaccines"]["citation"]),),
            details={"vaccines_not_recorded": missing, "prophylaxis_recorded": bool(prophylaxis)}))
    proposals = _events(case, "splenectomy_proposed")
    if proposals:
        last = max(proposals, key=lambda e: e.date or case.as_of)
        done_after = [e for e in splenectomies if e.date is not None and last.date is not None and e.date >= last.date]
        if not done_after and not (case.findings.splenectomy and last.date is None):
            msg = (str(spec["proposed_warning"]["text"]).strip() + " "
                   + str(spec["proposed_warning"]["avoid_text"]).strip())
            items.append(CareItem("safety.splenectomy_proposed", msg, str(spec["proposed_warning"]["citation"]),
                                  "alert", (_ev(last),), "safety",
                                  extra_citations=(str(spec["proposed_warning"]["avoid_citation"]),)))
    return items
