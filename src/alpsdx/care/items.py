"""The care item: one recommendation, alert or reminder with its evidence and source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from alpsdx import knowledge

__all__ = ["DISCLAIMER", "CareItem", "Severity"]

Severity = Literal["info", "warning", "alert"]

DISCLAIMER = str(knowledge.load("care_rules")["disclaimer"]).strip()


@dataclass(frozen=True)
class CareItem:
    """One care item. ``citation`` is a key of knowledge/data/citations.yaml."""

    id: str
    message: str
    citation: str
    severity: Severity = "info"
    evidence: tuple[dict[str, Any], ...] = ()
    category: str = "care"
    settings: tuple[dict[str, Any], ...] = ()
    extra_citations: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        knowledge.citation(self.citation)  # an unknown key is a knowledge-base bug
        for c in self.extra_citations:
            knowledge.citation(c)

    @property
    def citation_text(self) -> str:
        return knowledge.resolve_citation(self.citation)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "category": self.category,
            "severity": self.severity,
            "message": self.message,
            "evidence": list(self.evidence),
            "citation": self.citation,
            "citation_text": self.citation_text,
        }
        if self.extra_citations:
            d["extra_citations"] = [{"citation": c, "citation_text": knowledge.resolve_citation(c)}
                                    for c in self.extra_citations]
        if self.settings:
            d["settings"] = list(self.settings)
        if self.details:
            d["details"] = self.details
        d["disclaimer"] = DISCLAIMER
        return d
