"""The analysis modules the web app calls for uploads: the DNT pipeline and the VCF reader.

Imported lazily (numpy, cyvcf2 and matplotlib are heavy) and wrapped so the pages get
plain data: a JSON summary, domain observations/variants and PNG bytes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from alpsdx.errors import FlowError
from alpsdx.model import Observation, Variant


def analyse_fcs(path: Path, filename: str) -> tuple[dict[str, Any], list[Observation], bytes | None]:
    """Run the DNT pipeline on one FCS file: (summary JSON, observations, gate-plot PNG or None).

    Observations are only produced for a TCRab+ DNT figure (the pipeline's rule: without a
    TCRab channel the CD3+ CD4- CD8- count includes gamma-delta T cells). The gate plot is
    ``None`` when the pipeline cannot draw one (e.g. no event data kept).
    """
    from alpsdx.flow.pipeline import analyse_fcs as _analyse
    from alpsdx.flow.plots import plot_dnt

    result = _analyse(path)
    result.file = filename  # the user's file name, not the content-addressed blob path
    summary = result.to_dict()
    observations = list(result.to_observations())
    png: bytes | None = None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gates.png"
        try:
            plot_dnt(result, out, dpi=80)
            png = out.read_bytes()
        except FlowError:
            png = None
    return summary, observations, png


def read_vcf(path: Path) -> list[Variant]:
    """FAS/FASLG/CASP10 variants of an annotated VCF (VEP CSQ or SnpEff ANN)."""
    from alpsdx.genetics import read_vcf as _read

    return list(_read(path))
