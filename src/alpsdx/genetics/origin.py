"""Germline vs somatic: the reported origin, else an inference from VAF, with its basis.

A heterozygous germline variant sits near VAF 0.5 in every tissue. A somatic FAS variant
(ALPS-sFAS) is enriched in sorted double-negative T cells (DNT) and low in whole blood
(Dowdell 2010; GeneReviews), so a DNT VAF well above the blood VAF suggests ALPS-sFAS.
The numeric cut-offs are site settings (knowledge/data/genetics_settings.yaml), not
published figures, and the output says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alpsdx import knowledge
from alpsdx.model import Variant

__all__ = ["OriginCall", "infer_origin", "sample_role", "settings"]


@dataclass(frozen=True)
class OriginCall:
    """The origin alpsdx uses for a variant and why."""

    origin: str  # germline / somatic / unknown
    basis: str
    inferred: bool  # False when the lab reported it
    suggests_sfas: bool = False
    zygosity_hint: str | None = None
    citations: tuple[str, ...] = field(default_factory=tuple)


def settings() -> Mapping[str, Any]:
    """The VAF site settings (knowledge/data/genetics_settings.yaml)."""
    s: Mapping[str, Any] = knowledge.load("genetics_settings")["origin_inference"]
    return s


def sample_role(name: str | None) -> str | None:
    """'sorted_dnt', 'whole_blood' or None from a sample name (site-set substrings)."""
    if not name:
        return None
    low = name.lower()
    roles = settings()["sample_roles"]
    for role in ("sorted_dnt", "whole_blood"):  # DNT first: "sorted_dnt_blood" is DNT
        if any(tok in low for tok in roles[role]):
            return role
    return None


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def infer_origin(
    variant: Variant,
    companions: Iterable[Variant] = (),
    depths: Mapping[str | None, int | None] | None = None,
) -> OriginCall:
    """Origin of ``variant``; ``companions`` are the same change seen in other samples.

    ``depths`` maps sample name -> read depth; a VAF from fewer reads than the site's
    ``min_depth`` is not used for inference.
    """
    s = settings()
    site = ("site_setting",)
    support = tuple(str(c) for c in s.get("supporting_citations", ()))
    if variant.origin in ("germline", "somatic"):
        return OriginCall(variant.origin, "reported by the lab", inferred=False)
    depths = depths or {}
    min_depth = int(s["min_depth"])
    samples: list[Variant] = [variant, *[c for c in companions if c is not variant]]
    usable: list[Variant] = []
    shallow: list[str] = []
    for v in samples:
        if v.vaf is None:
            continue
        d = depths.get(v.sample)
        if d is not None and d < min_depth:
            shallow.append(f"{v.sample or 'sample'} depth {d} < {min_depth}")
            continue
        usable.append(v)
    # A lab-reported origin on a companion sample wins too.
    for v in samples:
        if v.origin in ("germline", "somatic"):
            return OriginCall(v.origin, f"reported by the lab (sample {v.sample})", inferred=False)
    het = s["germline_heterozygous_vaf"]
    lo, hi = float(het["low"]), float(het["high"])
    low_max = float(s["low_vaf_max"])
    hom = float(s["homozygous_vaf_min"])
    ratio_min = float(s["dnt_enrichment_ratio_min"])
    dnt = [v for v in usable if sample_role(v.sample) == "sorted_dnt"]
    blood = [v for v in usable if sample_role(v.sample) == "whole_blood"]
    if dnt and blood:
        d_vaf, b_vaf = float(dnt[0].vaf or 0.0), float(blood[0].vaf or 0.0)
        ratio = d_vaf / b_vaf if b_vaf > 0 else float("inf")
        pair = f"VAF {_fmt(b_vaf)} in whole blood ({blood[0].sample}) vs {_fmt(d_vaf)} in sorted DNT ({dnt[0].sample})"
        if b_vaf < low_max and ratio >= ratio_min:
            return OriginCall(
                "somatic",
                f"inferred: {pair}; DNT/blood ratio {'inf' if ratio == float('inf') else _fmt(ratio)} "
                f">= {ratio_min} and blood VAF < {low_max} (site settings) -> somatic, suggests ALPS-sFAS",
                inferred=True,
                suggests_sfas=True,
                citations=site + support,
            )
        if lo <= b_vaf <= hi and lo <= d_vaf <= hi:
            return OriginCall(
                "germline",
                f"inferred: {pair}; both within the heterozygous band {lo}-{hi} (site setting) -> germline",
                inferred=True,
                zygosity_hint="heterozygous",
                citations=site,
            )
        return OriginCall(
            "unknown",
            f"{pair}: neither the somatic (DNT-enriched) nor the germline pattern of the site settings",
            inferred=True,
            citations=site,
        )
    if usable:
        v = usable[0]
        vaf = float(v.vaf or 0.0)
        where = f" in {v.sample}" if v.sample else ""
        if vaf >= hom:
            return OriginCall(
                "germline",
                f"inferred: VAF {_fmt(vaf)}{where} >= {hom} (site setting) -> germline, homozygous or hemizygous",
                inferred=True,
                zygosity_hint="homozygous",
                citations=site,
            )
        if lo <= vaf <= hi:
            return OriginCall(
                "germline",
                f"inferred: VAF {_fmt(vaf)}{where} within the heterozygous band {lo}-{hi} (site setting) -> germline heterozygous",
                inferred=True,
                zygosity_hint="heterozygous",
                citations=site,
            )
        if vaf < low_max:
            role = sample_role(v.sample)
            extra = (
                "; sequencing sorted DNT would confirm ALPS-sFAS"
                if role != "sorted_dnt"
                else "; low even in sorted DNT: consider an artefact or low-level mosaicism"
            )
            return OriginCall(
                "somatic",
                f"inferred: VAF {_fmt(vaf)}{where} < {low_max} (site setting) -> somatic or mosaic{extra}",
                inferred=True,
                suggests_sfas=False,
                citations=site + support,
            )
        return OriginCall(
            "unknown",
            f"VAF {_fmt(vaf)}{where} lies between the heterozygous and homozygous bands (site settings)",
            inferred=True,
            citations=site,
        )
    why = "no origin reported and no VAF given"
    if shallow:
        why = f"no origin reported; VAF not used ({'; '.join(shallow)})"
    return OriginCall("unknown", why, inferred=True)


def group_same_change(variants: Sequence[Variant]) -> list[list[Variant]]:
    """Group variants that are the same change seen in different samples."""
    groups: dict[tuple[str, str | None, str | None], list[Variant]] = {}
    for v in variants:
        groups.setdefault((v.gene, v.hgvs_c, v.hgvs_p), []).append(v)
    return list(groups.values())
