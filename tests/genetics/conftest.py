"""Fixtures for the genetics tests: the project-made VCFs in tests/data/genetics."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "genetics"


@pytest.fixture(scope="session")
def gdata() -> Path:
    return DATA


@pytest.fixture()
def bgzipped(tmp_path: Path) -> Path:
    """The germline death-domain VCF, bgzipped (and tabix-indexed) with pysam."""
    import pysam

    out = tmp_path / "germline_dd_missense.vep.vcf.gz"
    pysam.tabix_compress(str(DATA / "germline_dd_missense.vep.vcf"), str(out), force=True)
    return out
