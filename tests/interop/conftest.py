"""Fixtures for the interop tests: the project-made FHIR bundles in tests/data/fhir."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "fhir"


def _load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alpsdx_test_fhir_bundles", DATA / "make_bundles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = _load_builder()


@pytest.fixture(scope="session")
def fdata() -> Path:
    return DATA


@pytest.fixture(scope="session")
def builder() -> ModuleType:
    return BUILDER


@pytest.fixture()
def read_bundle() -> Any:
    """``read_bundle(name)``: a fresh copy of a bundle file (tests may mutate it)."""

    def read(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
        return data

    return read
