"""Care-section speed on longitudinal cases: cases/s through ``care_items`` against the NIH 2009
criteria evaluation of the same parsed cases (baseline, measured in the same run).

Each synthetic case carries a year of monthly platelet/Hb/ANC counts, sirolimus troughs, node
sizes and PET values, so response assessment and surveillance alerts have work to do.
Run: ``.venv/bin/python benchmarks/bench_care.py [N]`` (one core; default 500 cases).
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from alpsdx.care import CareSettings, care_items
from alpsdx.criteria import evaluate
from alpsdx.model import Case, case_from_dict


def synthetic(i: int, rng: random.Random) -> dict[str, Any]:
    start = dt.date(2024, 1, 15)
    obs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for m in range(13):
        d = (start + dt.timedelta(days=30 * m - 10)).isoformat()
        obs.append({"analyte": "platelets", "value": round(rng.uniform(10, 200), 1), "unit": "10*9/L", "date": d})
        obs.append({"analyte": "hemoglobin", "value": round(rng.uniform(7, 14), 1), "unit": "g/dL", "date": d})
        obs.append({"analyte": "anc", "value": round(rng.uniform(0.2, 3), 2), "unit": "10*9/L", "date": d})
        if m:
            obs.append({"analyte": "sirolimus_trough", "value": round(rng.uniform(2, 20), 1), "unit": "ng/mL",
                        "date": d})
        if m % 3 == 0:
            for site in ("cervical", "axillary"):
                events.append({"kind": "node_size", "site": site, "value": round(rng.uniform(0.5, 5), 1),
                               "unit": "cm", "date": d})
            events.append({"kind": "pet_suv", "site": "cervical", "value": round(rng.uniform(4, 25), 1), "date": d})
    return {
        "id": f"bench-{i}", "sex": rng.choice(["female", "male"]), "birth_date": "2014-03-01",
        "evaluation_date": "2025-02-01", "height_cm": 140, "weight_kg": 35,
        "findings": {"autoimmune_cytopenias": ["thrombocytopenia", "hemolytic_anemia"], "splenectomy": i % 4 == 0},
        "observations": [*obs, {"analyte": "igg", "value": 2000, "unit": "mg/dL", "date": "2024-01-01"},
                         {"analyte": "vitamin_b12", "value": 1800, "unit": "pg/mL", "date": "2024-01-01"},
                         {"analyte": "sfasl", "value": 700, "unit": "pg/mL", "date": "2024-01-01"}],
        "medications": [{"name": "sirolimus", "dose_mg": 2.0, "frequency": "daily", "start": start.isoformat()}],
        "clinical_events": events,
        "variants": [{"gene": "FAS", "hgvs_p": "p.Asp260Gly", "origin": "germline", "classification": "pathogenic"}],
    }


def rate(fn: Callable[[Case], object], cases: list[Case]) -> float:
    t0 = time.perf_counter()
    for c in cases:
        fn(c)
    return len(cases) / (time.perf_counter() - t0)


def main(n: int = 500) -> None:
    rng = random.Random(11)
    cases = [case_from_dict(synthetic(i, rng)) for i in range(n)]
    settings = CareSettings()
    care_items(cases[0], settings)  # warm caches (knowledge files, genetics tables)
    evaluate(cases[0], "nih2009")
    base = rate(lambda c: evaluate(c, "nih2009"), cases)
    care = rate(lambda c: care_items(c, settings), cases)
    n_items = sum(len(care_items(c, settings)) for c in cases[:50]) / min(50, n)
    print(f"cases: {n}, ~{n_items:.1f} care items per case")
    print(f"baseline nih2009 evaluate: {base:,.0f} cases/s")
    print(f"care_items:                {care:,.0f} cases/s ({base / care:.2f}x the baseline's time per case)")
    print(f"RESULT cases={n} care_per_s={care:.0f} evaluate_per_s={base:.0f} care_cost_ratio={base / care:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
