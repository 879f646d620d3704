"""Settings of the care module: cited figures and conventions a site may change, always labelled.

Defaults come from ``knowledge/data/dosing.yaml``, ``care_rules.yaml`` and
``biomarker_performance.yaml``. A site overrides any of them with a YAML file named by the
``ALPSDX_CARE_SETTINGS`` environment variable::

    settings:
      sirolimus_start_mg_per_m2_day_low: 2.0
      sirolimus_start_mg_per_m2_day_high: 2.0
      sirolimus_trough_low: 5
      sirolimus_trough_high: 12

An overridden value is labelled "site override" in every item that uses it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml

from alpsdx import knowledge
from alpsdx.errors import InputError

__all__ = ["CARE_SETTINGS_ENV", "SETTING_PATHS", "CareSettings"]

CARE_SETTINGS_ENV = "ALPSDX_CARE_SETTINGS"

# name -> (knowledge file, path to the entry, key holding the value)
SETTING_PATHS: Mapping[str, tuple[str, tuple[str, ...], str]] = {
    "sirolimus_start_mg_per_m2_day_low": ("dosing", ("sirolimus", "starting_dose_mg_per_m2_day"), "low"),
    "sirolimus_start_mg_per_m2_day_high": ("dosing", ("sirolimus", "starting_dose_mg_per_m2_day"), "high"),
    "sirolimus_start_rounding_mg": ("dosing", ("sirolimus", "starting_dose_rounding_mg"), "value"),
    "sirolimus_max_initial_dose_mg": ("dosing", ("sirolimus", "max_initial_dose_mg"), "value"),
    "sirolimus_trough_low": ("dosing", ("sirolimus", "target_trough_ng_per_ml"), "low"),
    "sirolimus_trough_high": ("dosing", ("sirolimus", "target_trough_ng_per_ml"), "high"),
    "sirolimus_dose_rounding_mg": ("dosing", ("sirolimus", "dose_rounding_mg"), "value"),
    "mmf_mg_per_m2_per_dose": ("dosing", ("mmf", "dose_mg_per_m2_per_dose"), "value"),
    "mmf_doses_per_day": ("dosing", ("mmf", "dose_mg_per_m2_per_dose"), "doses_per_day"),
    "fas_sequencing_threshold": ("biomarker_performance", ("decision", "sequencing_threshold"), "value"),
    "hb_partial_rise_g_dl": ("care_rules", ("response", "hemoglobin", "partial"), "rise_from_baseline"),
    "hb_confirm_days": ("care_rules", ("response", "hemoglobin", "confirm_days"), "value"),
    "hb_loss_confirm_days": ("care_rules", ("response", "hemoglobin", "loss_confirm_days"), "value"),
    "anc_confirm_days": ("care_rules", ("response", "anc", "confirm_days"), "value"),
    "anc_loss_confirm_days": ("care_rules", ("response", "anc", "loss_confirm_days"), "value"),
    "anc_partial_at_least": ("care_rules", ("response", "anc", "partial"), "at_least"),
    "anc_partial_fold": ("care_rules", ("response", "anc", "partial"), "fold_of_baseline"),
    "node_resolved_cm": ("care_rules", ("response", "lymphoproliferation", "resolved_node_cm"), "value"),
    "node_partial_decrease": ("care_rules", ("response", "lymphoproliferation", "partial_decrease_fraction"), "value"),
    "periodic_imaging_months": ("care_rules", ("surveillance", "recommendation", "periodic_imaging_months"), "value"),
    "b_symptoms_recent_days": ("care_rules", ("surveillance", "alerts", "b_symptoms_recent_days"), "value"),
    "rapid_enlargement_fraction": ("care_rules", ("surveillance", "alerts", "rapid_enlargement_fraction"), "value"),
    "rapid_enlargement_months": ("care_rules", ("surveillance", "alerts", "rapid_enlargement_months"), "value"),
    "dominant_node_ratio": ("care_rules", ("surveillance", "alerts", "dominant_node_ratio"), "value"),
    "pet_rise_fraction": ("care_rules", ("surveillance", "alerts", "pet_rise_fraction"), "value"),
}


INTEGER_SETTINGS = frozenset({"mmf_doses_per_day", "hb_confirm_days", "hb_loss_confirm_days", "anc_confirm_days",
                              "anc_loss_confirm_days", "b_symptoms_recent_days"})


# Names a site file may still use from earlier releases -> the settings that replaced them.
RENAMED_SETTINGS: dict[str, tuple[str, ...]] = {
    # one starting dose became a cited range (Teachey 2009: 2-3 mg/m2/day): an old single
    # value sets both ends, so a site keeps the dose it chose
    "sirolimus_start_mg_per_m2_day": ("sirolimus_start_mg_per_m2_day_low", "sirolimus_start_mg_per_m2_day_high"),
}


@cache
def _entry(name: str) -> Mapping[str, Any]:
    fname, path, _ = SETTING_PATHS[name]
    node: Any = knowledge.load(fname)
    for p in path:
        node = node[p]
    return node  # type: ignore[no-any-return]


def _default(name: str) -> Any:
    return _entry(name)[SETTING_PATHS[name][2]]


@dataclass(frozen=True)
class CareSettings:
    """Resolved values; ``overrides`` are the site's own values (labelled in output)."""

    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        renamed = [k for k in self.overrides if k in RENAMED_SETTINGS]
        if renamed:
            merged = {k: v for k, v in self.overrides.items() if k not in RENAMED_SETTINGS}
            for old in renamed:
                for new in RENAMED_SETTINGS[old]:
                    merged.setdefault(new, self.overrides[old])
            object.__setattr__(self, "overrides", merged)
        for k, v in self.overrides.items():
            if k not in SETTING_PATHS:
                raise InputError("unknown care setting", field=f"{CARE_SETTINGS_ENV}.{k}", value=k,
                                 expected=", ".join(sorted(SETTING_PATHS)))
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise InputError("care setting must be a positive number", field=f"settings.{k}", value=v)
            if k in INTEGER_SETTINGS and not float(v).is_integer():
                raise InputError("care setting must be a whole number", field=f"settings.{k}", value=v,
                                 expected="a positive integer")
        if self.get("sirolimus_start_mg_per_m2_day_high") < self.get("sirolimus_start_mg_per_m2_day_low"):
            raise InputError("sirolimus starting dose: high must not be below low",
                             field="settings.sirolimus_start_mg_per_m2_day_high",
                             value=(self.get("sirolimus_start_mg_per_m2_day_low"),
                                    self.get("sirolimus_start_mg_per_m2_day_high")))
        lo = self.get("sirolimus_trough_low")
        hi = self.get("sirolimus_trough_high")
        if hi <= lo:
            raise InputError("sirolimus target trough: high must exceed low", field="settings.sirolimus_trough_high",
                             value=(lo, hi))
        if self.get("fas_sequencing_threshold") >= 1:
            raise InputError("FAS sequencing threshold must be below 1", field="settings.fas_sequencing_threshold",
                             value=self.get("fas_sequencing_threshold"))

    def get(self, name: str) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        return _default(name)

    def label(self, name: str) -> str:
        """'site override' or the knowledge-base label ('convention: ...' / cited)."""
        if name in self.overrides:
            return "site override"
        e = _entry(name)
        return str(e.get("label") or f"cited: {e.get('citation')}")

    def citation(self, name: str) -> str:
        if name in self.overrides:
            return "site_setting"
        e = _entry(name)
        return str(e.get("citation") or "site_setting")

    def describe(self, name: str) -> dict[str, Any]:
        return {"setting": name, "value": self.get(name), "label": self.label(name), "citation": self.citation(name)}

    @staticmethod
    def from_env() -> CareSettings:
        """Defaults, overridden by the YAML file named by ``ALPSDX_CARE_SETTINGS`` if set.

        Read once per version of the file (path, size, modification time): a server asks for
        the settings on every evaluation.
        """
        path = os.environ.get(CARE_SETTINGS_ENV, "").strip()
        if not path:
            return _defaults()
        try:
            st = Path(path).stat()
        except FileNotFoundError:
            raise InputError("care settings file not found", field=CARE_SETTINGS_ENV, value=path) from None
        except OSError as exc:
            raise InputError(f"care settings file cannot be read: {exc.strerror}", field=CARE_SETTINGS_ENV,
                             value=path) from None
        return _from_file(path, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=1)
def _defaults() -> CareSettings:
    return CareSettings()


@lru_cache(maxsize=8)
def _from_file(path: str, _size: int, _mtime_ns: int) -> CareSettings:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputError("care settings file not found", field=CARE_SETTINGS_ENV, value=path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"care settings file is not valid YAML: {exc}", field=CARE_SETTINGS_ENV,
                         value=path) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("settings", {}), Mapping):
        raise InputError("care settings file must hold 'settings: {name: value}'", field=CARE_SETTINGS_ENV,
                         value=path)
    return CareSettings(dict(data.get("settings", {})))
