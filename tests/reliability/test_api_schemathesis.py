"""API robustness: schemathesis drives every operation of the app's own OpenAPI spec
(``/openapi.json``) with generated requests, signed in as admin (session cookie + CSRF header,
so every route is reachable), over a real app and SQLite registry.

Accepted: a documented status with a body matching its documented schema and media type.
Never: a 5xx, an undocumented status, a response that breaks its schema. Examples per
operation are bounded (``ALPSDX_SCHEMATHESIS_EXAMPLES``, default 12) so the run stays short.

Half of the generated patient and file ids are replaced by ones that exist, so the handlers
behind the 404 are exercised too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings

from alpsdx.model import case_from_dict
from alpsdx.store.audit import SYSTEM
from alpsdx.web import uploads
from alpsdx.web.app import create_app
from alpsdx.web.settings import Settings

EXAMPLES = int(os.environ.get("ALPSDX_SCHEMATHESIS_EXAMPLES", "12"))
TIMEOUT_S = 120  # per request: a timeout is not a finding about the API
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
VCF = Path(__file__).resolve().parents[1] / "data" / "genetics" / "germline_dd_missense.vep.vcf"
PASSWORD = "schemathesis-admin-1"
# PDF rendering (WeasyPrint) is slow and has its own tests; its inputs are the HTML report's.
SLOW = {"/api/patients/{patient_id}/report.pdf"}

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]

@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    app = create_app(Settings(database_url=f"sqlite:///{tmp / 'registry.sqlite3'}", secret_key="s" * 40,
                              env="production", upload_dir=tmp / "uploads", cookie_secure=False))
    reg = app.state.registry
    reg.create_user("admin", PASSWORD, "admin")
    import json

    pids = []
    for name in ("case-001-alps-fas-definitive.json", "case-009-indeterminate-no-dnt.json"):
        pids.append(reg.create_patient(case_from_dict(json.loads((EXAMPLES_DIR / name).read_text()))))
    uploads.process(reg, pids[0], SYSTEM, "vcf", "sample.vcf", VCF.read_bytes())
    fid = reg.files(pids[0])[0]["id"]
    with TestClient(app) as c:
        c.get("/login")
        r = c.post("/login", data={"username": "admin", "password": PASSWORD,
                                   "csrf_token": c.cookies.get("alpsdx_login_csrf"), "next": "/patients"},
                   follow_redirects=False)
        assert r.status_code == 303
        import re

        csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/patients").text)
        assert csrf
        cookie = c.cookies.get("alpsdx_session")
    return {"app": app, "pids": pids, "fid": fid, "cookies": {"alpsdx_session": cookie},
            "headers": {"X-CSRF-Token": csrf.group(1)}}


@pytest.fixture(scope="module")
def api_schema(live: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_asgi("/openapi.json", live["app"])
    return schema.exclude(path=list(SLOW))


def _real_ids(case: Any, live: dict[str, Any]) -> None:
    params = case.path_parameters or {}
    if "patient_id" in params and isinstance(params["patient_id"], int) and params["patient_id"] % 2 == 0:
        params["patient_id"] = live["pids"][0]
        if "file_id" in params and isinstance(params["file_id"], int) and params["file_id"] % 2 == 0:
            params["file_id"] = live["fid"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " | ".join(line for line in text.splitlines()[:6] if line.strip())


def _fuzz_operation(op: Any, live: dict[str, Any], failures: dict[str, str], calls: dict[str, int]) -> None:
    label = op.label

    @given(case=op.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case: Any) -> None:
        if label in failures:
            return  # one precise report per operation is enough
        _real_ids(case, live)
        calls["n"] += 1
        try:
            # The HTML report (plots) can take over schemathesis's default 10 s on a loaded machine.
            case.call_and_validate(headers=live["headers"], cookies=live["cookies"], checks=CHECKS,
                                   timeout=TIMEOUT_S)
        except BaseException as exc:  # schemathesis.Failure / FailureGroup: record, keep going
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures[label] = f"{type(exc).__name__}: {_first_line(exc)}"

    run()


def test_api_conforms_to_its_openapi_spec(api_schema: Any, live: dict[str, Any]) -> None:
    failures: dict[str, str] = {}
    calls = {"n": 0}
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 30, [op.label for op in operations]

    for op in operations:
        _fuzz_operation(op, live, failures, calls)
    assert calls["n"] >= len(operations)
    print(f"\nschemathesis: operations={len(operations)} calls={calls['n']} examples_per_operation={EXAMPLES} "
          f"failures={len(failures)}")
    for k, v in sorted(failures.items()):
        print(f"schemathesis failure: {k}: {v}")
    assert not failures, "\n".join(f"{k}: {v}" for k, v in sorted(failures.items()))
