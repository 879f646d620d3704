"""Kaplan-Meier time to response across cases, checked against a hand-computed product-limit
estimate; exclusions; and the CLI ``alpsdx care DIR --km platelets``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from alpsdx.care.cohort import kaplan_meier_time_to_response, time_to_response
from alpsdx.care.settings import CARE_SETTINGS_ENV
from alpsdx.cli import main
from alpsdx.errors import InputError
from alpsdx.model import case_from_dict

START = dt.date(2025, 1, 10)


@pytest.fixture(autouse=True)
def _no_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CARE_SETTINGS_ENV, raising=False)


def _d(days: int) -> str:
    return (START + dt.timedelta(days=days)).isoformat()


def responder(cid: str, day: int) -> dict[str, Any]:
    """Baseline 20 before the start; 150 at ``day`` and ``day + 7`` (confirmed CR at ``day``)."""
    return {"id": cid, "sex": "female", "birth_date": "2015-01-01", "evaluation_date": "2025-12-31",
            "observations": [{"analyte": "platelets", "value": v, "unit": "10*9/L", "date": d}
                             for d, v in (("2025-01-05", 20), (_d(day), 150), (_d(day + 7), 150))],
            "medications": [{"name": "sirolimus", "dose_mg": 2, "frequency": "daily", "start": START.isoformat()}]}


def censored(cid: str, last_day: int) -> dict[str, Any]:
    """No response: counts stay at 25 up to ``last_day``."""
    c = responder(cid, 1)
    c["observations"] = [{"analyte": "platelets", "value": v, "unit": "10*9/L", "date": d}
                         for d, v in (("2025-01-05", 20), (_d(10), 25), (_d(last_day), 25))]
    return c


COHORT = [responder("a", 20), censored("b", 30), responder("c", 40), censored("d", 60)]


def test_time_to_response_event_and_censoring() -> None:
    t = time_to_response(case_from_dict(responder("a", 20)), "platelets")
    assert not isinstance(t, str) and (t.days, t.responded) == (20, True)
    t = time_to_response(case_from_dict(censored("b", 30)), "platelets")
    assert not isinstance(t, str) and (t.days, t.responded) == (30, False)
    with pytest.raises(InputError):
        time_to_response(case_from_dict(responder("a", 20)), "igg")


def test_kaplan_meier_matches_product_limit_by_hand() -> None:
    km = kaplan_meier_time_to_response([case_from_dict(c) for c in COHORT], "platelets", at_days=(19, 20, 35, 40, 60))
    # At risk 4 at day 20 (1 event): S = 3/4. Day 30 censored. At risk 2 at day 40 (1 event): S = 3/4 * 1/2.
    assert km["n"] == 4 and km["events"] == 2
    assert km["cumulative_response"] == {"19": 0.0, "20": 0.25, "35": 0.25, "40": 0.625, "60": 0.625}
    assert km["median_days"] == 40.0  # first time S(t) <= 0.5
    assert km["citation"] == "rodeghiero2009"


def test_median_not_reached_and_exclusions() -> None:
    healthy = responder("e", 20)
    healthy["observations"][0]["value"] = 250  # not cytopenic at baseline
    untreated = responder("f", 20)
    untreated["medications"] = []
    km = kaplan_meier_time_to_response([case_from_dict(c) for c in (censored("b", 30), censored("d", 60), healthy,
                                                                    untreated)], "platelets")
    assert km["median_days"] is None and km["events"] == 0
    assert {e["case_id"] for e in km["excluded"]} == {"e", "f"}
    assert kaplan_meier_time_to_response([], "platelets")["median_days"] is None


def test_cli_km_over_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for c in COHORT:
        (tmp_path / f"{c['id']}.json").write_text(json.dumps(c), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["care", str(tmp_path), "--km", "platelets", "--format", "json"])
    assert exc.value.code == 0
    km = json.loads(capsys.readouterr().out)
    assert km["median_days"] == 40.0 and km["n"] == 4
    with pytest.raises(SystemExit) as exc:
        main(["care", str(tmp_path), "--format", "json"])
    assert exc.value.code == 0
    assert [r["case_id"] for r in json.loads(capsys.readouterr().out)] == ["a", "b", "c", "d"]
