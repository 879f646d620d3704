"""The screen's points, thresholds and next tests, read from cited knowledge.

``knowledge/data/screening_score.yaml`` holds a labelled convention (no published ALPS
screening score exists): each point names the NIH 2009 criterion it stands for and its
citation key, and the flag threshold is a site setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alpsdx import knowledge
from alpsdx.errors import KnowledgeError

__all__ = ["ELEMENTS", "Point", "ScoreSpec", "score_spec"]

# score elements in the order they are shown (keys of screening_score.yaml `points`)
ELEMENTS = (
    "lymphoproliferation_any",
    "lymphoproliferation_chronic",
    "dnt_elevated",
    "cytopenia_one_lineage",
    "cytopenia_multi_lineage",
    "igg_elevated",
    "b12_elevated",
    "family_history",
)


@dataclass(frozen=True)
class Point:
    """One element of the score."""

    key: str
    points: int
    label: str
    criterion: str
    citation: str


@dataclass(frozen=True)
class ScoreSpec:
    """Points, thresholds and next-test texts of the screen."""

    name: str
    points: Mapping[str, Point]
    flag_threshold: int
    chronic_days: int
    dnt_thresholds: Mapping[str, float]
    b12_ng_per_l: float
    fallback_hb_low_g_dl: float
    fallback_igg_high_mg_dl: float
    lymphopenia_10e9_per_l: float
    next_tests: Mapping[str, str]
    raw: Mapping[str, Any]

    def citation_keys(self) -> list[str]:
        keys = {p.citation for p in self.points.values()}
        keys.add(str(self.raw["flag_threshold"]["citation"]))
        return sorted(keys)


def score_spec() -> ScoreSpec:
    """The score as cited data; a missing element is a knowledge-base bug."""
    kb = knowledge.load("screening_score")
    pts: dict[str, Point] = {}
    for key in ELEMENTS:
        spec = kb["points"].get(key)
        if spec is None:
            raise KnowledgeError("score element missing", field="screening_score.points", value=key)
        knowledge.citation(str(spec["citation"]))
        pts[key] = Point(key, int(spec["points"]), str(spec["label"]), str(spec["criterion"]),
                         str(spec["citation"]))
    th = kb["thresholds"]
    dnt = {k: float(v) for k, v in th["dnt_pct"].items() if k.startswith("dnt_")}
    return ScoreSpec(
        name=str(kb["name"]),
        points=pts,
        flag_threshold=int(kb["flag_threshold"]["value"]),
        chronic_days=int(th["chronic_days"]["value"]),
        dnt_thresholds=dnt,
        b12_ng_per_l=float(th["b12_ng_per_l"]["value"]),
        fallback_hb_low_g_dl=float(th["fallback_hb_low_g_dl"]["value"]),
        fallback_igg_high_mg_dl=float(th["fallback_igg_high_mg_dl"]["value"]),
        lymphopenia_10e9_per_l=float(th["lymphopenia_10e9_per_l"]["value"]),
        next_tests={k: str(v) for k, v in kb["next_tests"].items() if k != "citation"},
        raw=kb,
    )
