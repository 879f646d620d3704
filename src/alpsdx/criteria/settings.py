"""Site settings for the criteria: conventions a site may change, labelled as such.

Defaults live in ``knowledge/data/settings.yaml``; a site overrides them with a YAML file
named by the ``ALPSDX_SETTINGS`` environment variable (``settings: {name: value}``) or
programmatically (``Settings(dnt_comparator=">")``). Every setting used is shown in output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from alpsdx import knowledge
from alpsdx.errors import InputError

__all__ = ["Settings"]


def _defaults() -> dict[str, Any]:
    spec = knowledge.load("settings")["settings"]
    return {name: entry["value"] for name, entry in spec.items()}


def _allowed(name: str) -> tuple[Any, ...] | None:
    entry = knowledge.load("settings")["settings"].get(name)
    if entry is None:
        raise InputError("unknown site setting", field="settings", value=name,
                         expected=", ".join(knowledge.load("settings")["settings"]))
    allowed = entry.get("allowed")
    return tuple(allowed) if allowed is not None else None


@dataclass(frozen=True)
class Settings:
    dnt_comparator: str = ">="
    # Conventions for the comparison sets (nih1999, seif2008, esid): see settings.yaml notes.
    nih1999_dnt_pct_lymphocytes: float = 1.0
    nih1999_dnt_pct_cd3: float = 2.5
    nih1999_dnt_comparator: str = ">="
    nih1999_chronic_months: float = 6
    seif2008_dnt_denominator: str = "cd3"
    seif2008_dnt_lab_upper_limit: float = 2.5
    seif2008_il10_pg_ml: float = 20
    seif2008_vitamin_b12_ng_l: float = 1500
    seif2008_sfasl_pg_ml: float = 200
    esid_apoptosis_placement: str = "alternative"

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            allowed = _allowed(name)
            if allowed is not None and value not in allowed:
                raise InputError("invalid site setting", field=f"settings.{name}", value=value,
                                 expected=" or ".join(map(str, allowed)))

    @staticmethod
    @lru_cache(maxsize=1)
    def default() -> Settings:
        values = _defaults()
        path = os.environ.get("ALPSDX_SETTINGS")
        if path:
            try:
                data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise InputError(f"cannot read site settings: {exc}", field="ALPSDX_SETTINGS", value=path) from None
            overrides = data.get("settings", {}) if isinstance(data, dict) else {}
            for k, v in overrides.items():
                _allowed(k)
                values[k] = v
        known = {k: v for k, v in values.items() if k in Settings.__dataclass_fields__}
        return Settings(**known)

    def with_(self, **changes: Any) -> Settings:
        return Settings(**{**self.__dict__, **changes})
