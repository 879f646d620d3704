"""Genetics: FAS, FASLG and CASP10 variants from lab reports (HGVS) and annotated VCFs.

    parse_hgvs(text, gene=None) -> Variant        HGVS syntax via the hgvs package
    read_vcf(path, sample=None) -> list[Variant]  VEP CSQ / SnpEff ANN, panel genes only
    annotate(variant) -> AnnotatedVariant         domain, region, mechanism, origin, risk

Pure domain code: no files except the VCF reader's input, no HTTP, no database.
"""

from __future__ import annotations

from alpsdx.genetics.annotate import AnnotatedVariant, annotate, annotate_all
from alpsdx.genetics.hgvs_input import parse_hgvs
from alpsdx.genetics.vcf import VcfCall, read_vcf, read_vcf_calls

__all__ = [
    "AnnotatedVariant",
    "VcfCall",
    "annotate",
    "annotate_all",
    "parse_hgvs",
    "read_vcf",
    "read_vcf_calls",
]
