"""Germline vs somatic: reported origin first, else VAF against the labelled site settings.

Every cut-off is read from knowledge/data/genetics_settings.yaml (citation ``site_setting``)
and tested exactly at its value and just beside it.
"""

from __future__ import annotations

import pytest

from alpsdx import knowledge
from alpsdx.genetics.origin import infer_origin, sample_role, settings
from alpsdx.model import Variant

S = settings()
LO = float(S["germline_heterozygous_vaf"]["low"])
HI = float(S["germline_heterozygous_vaf"]["high"])
LOW_MAX = float(S["low_vaf_max"])
HOM = float(S["homozygous_vaf_min"])
RATIO = float(S["dnt_enrichment_ratio_min"])
MIN_DEPTH = int(S["min_depth"])
EPS = 1e-4


def v(vaf: float | None, sample: str | None = None, origin: str = "unknown") -> Variant:
    return Variant(gene="FAS", hgvs_p="p.Asp260Gly", vaf=vaf, sample=sample, origin=origin)


def test_settings_are_labelled_site_settings() -> None:
    assert knowledge.load("genetics_settings")["origin_inference"]["citation"] == "site_setting"
    assert knowledge.resolve_citation("site_setting").startswith("Site setting")


@pytest.mark.parametrize("origin", ["germline", "somatic"])
def test_reported_origin_wins_over_any_vaf(origin: str) -> None:
    call = infer_origin(v(0.02 if origin == "germline" else 0.5, origin=origin))
    assert (call.origin, call.inferred, call.basis) == (origin, False, "reported by the lab")


@pytest.mark.parametrize(
    ("vaf", "origin", "hint"),
    [
        (LO, "germline", "heterozygous"),
        (LO - EPS, "somatic", None),
        (HI, "germline", "heterozygous"),
        (HI + EPS, "unknown", None),
        (HOM - EPS, "unknown", None),
        (HOM, "germline", "homozygous"),
        (1.0, "germline", "homozygous"),
        (0.0 + EPS, "somatic", None),
    ],
)
def test_single_sample_vaf_at_each_cut_off(vaf: float, origin: str, hint: str | None) -> None:
    call = infer_origin(v(vaf))
    assert (call.origin, call.zygosity_hint) == (origin, hint)
    assert call.inferred and "site setting" in call.basis
    assert "site_setting" in call.citations


def test_low_vaf_cites_the_somatic_fas_sources_and_suggests_sorted_dnt() -> None:
    call = infer_origin(v(0.1, "whole_blood"))
    assert call.origin == "somatic" and "dowdell2010" in call.citations
    assert "sequencing sorted DNT would confirm" in call.basis and not call.suggests_sfas


def test_low_vaf_even_in_sorted_dnt_is_flagged() -> None:
    call = infer_origin(v(0.1, "sorted_dnt"))
    assert call.origin == "somatic" and "low even in sorted DNT" in call.basis


@pytest.mark.parametrize(
    ("blood", "dnt", "origin", "sfas"),
    [
        (0.05, 0.05 * RATIO, "somatic", True),              # ratio exactly at the cut-off
        (0.05, 0.05 * RATIO - 0.001, "unknown", False),      # just below it
        (LOW_MAX - EPS, 0.9, "somatic", True),
        (LOW_MAX, 0.9, "unknown", False),                   # blood not low
        (0.0, 0.3, "somatic", True),                        # absent in blood
        (0.48, 0.55, "germline", False),
    ],
)
def test_blood_and_sorted_dnt_pair(blood: float, dnt: float, origin: str, sfas: bool) -> None:
    b, d = v(blood, "whole_blood"), v(dnt, "sorted_DNT")
    for call in (infer_origin(b, [b, d]), infer_origin(d, [b, d])):
        assert (call.origin, call.suggests_sfas) == (origin, sfas)
        assert "whole blood" in call.basis and "sorted DNT" in call.basis


def test_depth_below_minimum_is_not_used() -> None:
    b, d = v(0.05, "whole_blood"), v(0.4, "sorted_DNT")
    shallow = infer_origin(b, [b, d], depths={"whole_blood": MIN_DEPTH - 1, "sorted_DNT": 100})
    assert shallow.origin == "germline"  # only the DNT VAF 0.40 is left: heterozygous band
    enough = infer_origin(b, [b, d], depths={"whole_blood": MIN_DEPTH, "sorted_DNT": 100})
    assert enough.origin == "somatic"
    none = infer_origin(v(0.4, "x"), depths={"x": MIN_DEPTH - 1})
    assert none.origin == "unknown" and f"depth {MIN_DEPTH - 1} < {MIN_DEPTH}" in none.basis


def test_no_vaf_no_origin() -> None:
    call = infer_origin(v(None))
    assert call.origin == "unknown" and call.basis == "no origin reported and no VAF given"


@pytest.mark.parametrize(
    ("name", "role"),
    [("sorted_DNT", "sorted_dnt"), ("DNT_sorted_blood", "sorted_dnt"), ("whole_blood", "whole_blood"),
     ("PBMC-1", "whole_blood"), ("proband", None), (None, None)],
)
def test_sample_roles(name: str | None, role: str | None) -> None:
    assert sample_role(name) == role
