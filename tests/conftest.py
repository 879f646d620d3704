"""Shared fixtures: the public test data in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: a user's clone has no ../shared."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (only the project's own data runs here)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return REPO / "examples"
