"""Builders for test cases: a complete NIH 2009 definitive case, varied one field at a time."""

from __future__ import annotations

import copy
from typing import Any

from alpsdx.model import Case, case_from_dict

# A 2-year-old (age band with a cited lymphocyte range: Kotylo 1993, 24-30 months 3.9-5.2).
BASE: dict[str, Any] = {
    "id": "t",
    "sex": "female",
    "birth_date": "2023-01-01",
    "evaluation_date": "2025-03-01",
    "findings": {
        "lymphadenopathy": {"present": True, "duration_months": 12, "malignancy_excluded": True,
                            "infection_excluded": True},
        "splenomegaly": {"present": False},
    },
    "observations": [
        {"analyte": "dnt_pct_lymphocytes", "value": 4.0, "unit": "%", "date": "2025-02-01"},
        {"analyte": "lymphocytes_abs", "value": 4.5, "unit": "10*9/L", "date": "2025-02-01"},
    ],
}


def case(**changes: Any) -> Case:
    """BASE with top-level keys replaced (``findings``/``observations`` replace wholesale)."""
    data = copy.deepcopy(BASE)
    data.update(changes)
    return case_from_dict(data)


def with_obs(*obs: dict[str, Any], keep_base: bool = True, **changes: Any) -> Case:
    data = copy.deepcopy(BASE)
    base_obs = data["observations"] if keep_base else []
    data["observations"] = [*base_obs, *obs]
    data.update(changes)
    return case_from_dict(data)
