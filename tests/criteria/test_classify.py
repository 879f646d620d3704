"""Subtypes (2009 nomenclature) and the differential from the cited gene-disorder table."""

from __future__ import annotations

import pytest
from criteria_cases import case

from alpsdx.classify import classify
from alpsdx.criteria import evaluate

DEFINITIVE = {"apoptosis_assays": [{"result": "defective"}, {"result": "defective"}]}


def subtype(**changes):
    c = case(**{**DEFINITIVE, **changes})
    return classify(c, evaluate(c))


@pytest.mark.parametrize(
    ("gene", "origin", "expected"),
    [("FAS", "germline", "ALPS-FAS"), ("FAS", "somatic", "ALPS-sFAS"), ("FASLG", "germline", "ALPS-FASLG"),
     ("CASP10", "germline", "ALPS-CASP10")],
)
def test_subtypes(gene: str, origin: str, expected: str) -> None:
    cls = subtype(variants=[{"gene": gene, "hgvs_p": "p.Arg10Ter", "classification": "pathogenic", "origin": origin}])
    assert cls.subtype == expected


def test_alps_u_when_tested_and_no_pathogenic_variant() -> None:
    assert subtype(genes_tested=["FAS", "FASLG", "CASP10"]).subtype == "ALPS-U"
    assert subtype().subtype is None  # genetics not reported: pending, not ALPS-U


def test_vus_reported_as_vus_not_subtype() -> None:
    cls = subtype(variants=[{"gene": "FAS", "hgvs_p": "p.Ala10Val", "classification": "vus"}],
                  genes_tested=["FAS", "FASLG", "CASP10"])
    assert cls.subtype == "ALPS-U"
    pending = subtype(variants=[{"gene": "FAS", "hgvs_p": "p.Ala10Val", "classification": "vus"}],
                      genes_tested=["FAS"])
    assert pending.subtype is None and "FASLG, CASP10 not tested" in pending.basis
    assert any("uncertain significance" in c for c in cls.considerations)


def test_related_gene_is_a_differential_not_alps() -> None:
    cls = subtype(variants=[{"gene": "NRAS", "hgvs_p": "p.Gly13Asp", "classification": "pathogenic", "origin": "somatic"}])
    assert cls.subtype is None
    assert any("RALD" in c and "not ALPS" in c for c in cls.considerations)


def test_no_subtype_without_criteria() -> None:
    c = case(findings={}, variants=[{"gene": "FAS", "classification": "pathogenic", "origin": "germline"}])
    assert classify(c, evaluate(c)).subtype is None
