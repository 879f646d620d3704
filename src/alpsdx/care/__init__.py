"""Clinical course: cytopenia grading, FAS-mutation probability, sirolimus/MMF dosing and
trough monitoring, response assessment, splenectomy safety and lymphoma surveillance.

    care_items(case, settings=None, *, pre_test_probability=None, treatment_start=None)
        -> list[CareItem]          every item: id, category, severity, message, evidence,
                                   citation (+ citation_text), settings used, disclaimer
    care_section(case, ...) -> dict   {"case_id", "evaluation_date", "care", "settings", "disclaimer"}
                                   ("settings": every care setting with value, label, citation)

Pure domain code (no files except the optional site-settings file, no HTTP, no database).
Nothing here replaces the clinical judgement of the treating team; every item says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from alpsdx.care.clinic import biomarker_items, cytopenia_items
from alpsdx.care.dosing import dosing_items
from alpsdx.care.items import DISCLAIMER, CareItem
from alpsdx.care.response import response_items
from alpsdx.care.safety import safety_items
from alpsdx.care.settings import CARE_SETTINGS_ENV, SETTING_PATHS, CareSettings
from alpsdx.care.surveillance import surveillance_items
from alpsdx.model import Case

__all__ = ["CARE_SETTINGS_ENV", "DISCLAIMER", "CareItem", "CareSettings", "care_items", "care_section"]


def care_items(case: Case, settings: CareSettings | None = None, *, pre_test_probability: float | None = None,
               treatment_start: dt.date | None = None) -> list[CareItem]:
    """All care items for ``case`` as of its evaluation date, in a fixed order.

    ``settings`` defaults to the site settings named by ``ALPSDX_CARE_SETTINGS`` (else the
    knowledge-base defaults).
    """
    s = settings if settings is not None else CareSettings.from_env()
    items: list[CareItem] = []
    items += cytopenia_items(case)
    items += biomarker_items(case, s, pre_test_probability)
    items += dosing_items(case, s)
    items += response_items(case, s, treatment_start)
    items += safety_items(case)
    items += surveillance_items(case, s)
    return items


def care_section(case: Case, settings: CareSettings | None = None, **kw: Any) -> dict[str, Any]:
    """The ``alpsdx care`` JSON object for one case."""
    s = settings if settings is not None else CareSettings.from_env()
    items = care_items(case, s, **kw)
    return {"case_id": case.id, "evaluation_date": case.as_of.isoformat(),
            "care": [i.to_dict() for i in items],
            "settings": [s.describe(name) for name in SETTING_PATHS],
            "disclaimer": DISCLAIMER}
