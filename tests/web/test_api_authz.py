"""Authorization on every JSON API route (anonymous, viewer, clinician, admin), CSRF on session
writes, and the write guard against forged cross-site requests.

The matrix lists every route of ``alpsdx.web.api.router``; a route added without a row here
fails ``test_api_matrix_covers_every_route``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from webtools import PASSWORDS, Session

from alpsdx.model import case_from_dict
from alpsdx.web import api

ROLES = ("viewer", "clinician", "admin")
RANK = {None: -1, "viewer": 0, "clinician": 1, "admin": 2}
VCF = Path(__file__).resolve().parents[1] / "data" / "genetics" / "germline_dd_missense.vep.vcf"
_n = iter(range(100_000))


@pytest.fixture(scope="module")
def ids(app, fcs_bytes: bytes) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """A patient with a case file and an analysed FCS file (real pipeline: it has a gate plot)."""
    from alpsdx.store.audit import SYSTEM
    from alpsdx.web import uploads

    reg = app.state.registry
    pid = reg.create_patient(case_from_dict({"id": "api-authz-1", "sex": "male", "age_years": 12}))
    fid = reg.add_file(pid, "case", "c.json", b'{"id": "api-authz-1"}')
    uploads.process(reg, pid, SYSTEM, "fcs", "tube.fcs", fcs_bytes)
    gid = next(f["id"] for f in reg.files(pid) if f["kind"] == "fcs")
    uid = reg.create_user("api-someone", "someone-pass-1", "viewer")
    return {"pid": pid, "fid": fid, "uid": uid, "gid": gid}


def _h(s: Session) -> dict[str, str]:
    return {"X-CSRF-Token": s.csrf} if s.csrf else {}


def _get(url: str) -> Callable[[Session, dict[str, int]], Any]:
    return lambda s, i: s.client.get(url.format(**i), follow_redirects=False)


def _post(url: str, body: Any) -> Callable[[Session, dict[str, int]], Any]:
    def call(s: Session, i: dict[str, int]) -> Any:
        b = body() if callable(body) else body
        return s.client.post(url.format(**i), json=b, headers=_h(s), follow_redirects=False)

    return call


def _upload(s: Session, i: dict[str, int]) -> Any:
    return s.client.post(f"/api/patients/{i['pid']}/files", params={"kind": "vcf", "filename": "x.vcf"},
                         content=VCF.read_bytes(), headers={**_h(s), "Content-Type": "application/octet-stream"},
                         follow_redirects=False)


def _patch_user(s: Session, i: dict[str, int]) -> Any:
    return s.client.patch(f"/api/users/{i['uid']}", json={"role": "viewer"}, headers=_h(s), follow_redirects=False)


P = "/api/patients/{pid}"
# (method, route path as declared in api.router) -> (minimum role, request, status when allowed)
MATRIX: dict[tuple[str, str], tuple[str, Callable[[Session, dict[str, int]], Any], int]] = {
    ("GET", "/me"): ("viewer", _get("/api/me"), 200),
    ("POST", "/evaluate"): ("viewer", _post("/api/evaluate", {"id": "stateless", "sex": "female"}), 200),
    ("GET", "/patients"): ("viewer", _get("/api/patients"), 200),
    ("POST", "/patients"): ("clinician", _post("/api/patients", lambda: {"id": f"api-new-{next(_n)}"}), 201),
    ("GET", "/patients/{patient_id}"): ("viewer", _get(P), 200),
    ("GET", "/patients/{patient_id}/case"): ("viewer", _get(P + "/case"), 200),
    ("POST", "/patients/{patient_id}/case"): ("clinician", _post(P + "/case", {"id": "api-authz-1", "sex": "male"}), 200),
    ("GET", "/patients/{patient_id}/evaluation"): ("viewer", _get(P + "/evaluation"), 200),
    ("GET", "/patients/{patient_id}/evaluations"): ("viewer", _get(P + "/evaluations"), 200),
    ("POST", "/patients/{patient_id}/evaluate"): ("clinician", _post(P + "/evaluate", {}), 200),
    ("GET", "/patients/{patient_id}/series"): ("viewer", _get(P + "/series?analyte=igg"), 200),
    ("POST", "/patients/{patient_id}/observations"): (
        "clinician", _post(P + "/observations", {"analyte": "igg", "value": 1200, "unit": "mg/dL"}), 200),
    ("POST", "/patients/{patient_id}/findings"): ("clinician", _post(P + "/findings", {"hepatomegaly": {"present": False}}), 200),
    ("POST", "/patients/{patient_id}/variants"): ("clinician", _post(P + "/variants", {"gene": "CASP10", "classification": "vus"}), 200),
    ("POST", "/patients/{patient_id}/medications"): ("clinician", _post(P + "/medications", {"name": "prednisone"}), 200),
    ("POST", "/patients/{patient_id}/apoptosis-assays"): ("clinician", _post(P + "/apoptosis-assays", {"result": "normal"}), 200),
    ("GET", "/patients/{patient_id}/files"): ("viewer", _get(P + "/files"), 200),
    ("POST", "/patients/{patient_id}/files"): ("clinician", _upload, 201),
    ("GET", "/patients/{patient_id}/files/{file_id}"): ("viewer", _get(P + "/files/{fid}"), 200),
    ("GET", "/patients/{patient_id}/files/{file_id}/content"): ("viewer", _get(P + "/files/{fid}/content"), 200),
    ("GET", "/patients/{patient_id}/files/{file_id}/plot.png"): ("viewer", _get(P + "/files/{gid}/plot.png"), 200),
    ("GET", "/patients/{patient_id}/plots/{group}.png"): ("viewer", _get(P + "/plots/igg.png"), 200),
    ("GET", "/patients/{patient_id}/report"): ("viewer", _get(P + "/report"), 200),
    ("GET", "/patients/{patient_id}/report.pdf"): ("viewer", _get(P + "/report.pdf"), 200),
    ("GET", "/audit"): ("admin", _get("/api/audit?limit=5"), 200),
    ("GET", "/audit/verify"): ("admin", _get("/api/audit/verify"), 200),
    ("GET", "/users"): ("admin", _get("/api/users"), 200),
    ("POST", "/users"): ("admin", _post("/api/users", lambda: {"username": f"api-u{next(_n)}", "password": "long-enough-1",
                                                              "role": "viewer"}), 201),
    ("PATCH", "/users/{user_id}"): ("admin", _patch_user, 200),
}


def test_api_matrix_covers_every_route() -> None:
    routes = {(m, r.path) for r in api.router.routes if isinstance(r, APIRoute) for m in r.methods}
    assert routes == set(MATRIX)


@pytest.mark.parametrize("role", [None, *ROLES], ids=["anonymous", *ROLES])
@pytest.mark.parametrize("key", list(MATRIX), ids=[f"{m} {p}" for m, p in MATRIX])
def test_api_route_role(as_role, ids: dict[str, int], key: tuple[str, str], role: str | None) -> None:  # type: ignore[no-untyped-def]
    needed, call, ok_status = MATRIX[key]
    r = call(as_role(role), ids)
    if role is None:
        assert r.status_code == 401, r.text[:300]
        assert r.headers["www-authenticate"] == 'Basic realm="alpsdx"'
        assert r.json()["error"] == "AuthError"
    elif RANK[role] < RANK[needed]:
        assert r.status_code == 403, r.text[:300]
        assert r.json() == {"error": "AuthError", "message": f"this needs the {needed} role"}
    else:
        assert r.status_code == ok_status, r.text[:500]


def _basic(app, user: str, password: str) -> TestClient:  # type: ignore[no-untyped-def]
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return TestClient(app, base_url="https://testserver", headers={"Authorization": f"Basic {token}"})


def test_basic_auth_reads_and_writes_without_csrf(app, ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    with _basic(app, "clinician", PASSWORDS["clinician"]) as c:
        assert c.get("/api/me").json() == {"id": c.get("/api/me").json()["id"], "username": "clinician",
                                           "role": "clinician", "via": "basic"}
        r = c.post(f"/api/patients/{ids['pid']}/medications", json={"name": "sirolimus", "dose_mg": 1.5})
        assert r.status_code == 200, r.text
    with _basic(app, "clinician", "wrong-password") as c:
        r = c.get("/api/patients")
        assert r.status_code == 401
    with _basic(app, "viewer", PASSWORDS["viewer"]) as c:
        assert c.post(f"/api/patients/{ids['pid']}/medications", json={"name": "x"}).status_code == 403
    with TestClient(app, base_url="https://testserver", headers={"Authorization": "Basic !!notbase64"}) as c:
        assert c.get("/api/patients").status_code == 401


def test_session_writes_need_the_csrf_header(as_role, ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    url = f"/api/patients/{ids['pid']}/observations"
    body = {"analyte": "platelets", "value": 140, "unit": "10*9/L"}
    missing = s.client.post(url, json=body)
    assert missing.status_code == 403 and "CSRF" in missing.json()["message"]
    wrong = s.client.post(url, json=body, headers={"X-CSRF-Token": "x" + s.csrf})
    assert wrong.status_code == 403
    ok = s.client.post(url, json=body, headers={"X-CSRF-Token": s.csrf})
    assert ok.status_code == 200
    # Reads need no token.
    assert s.client.get(f"/api/patients/{ids['pid']}").status_code == 200


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_writes_refuse_what_a_cross_site_form_can_send(app, ids: dict[str, int], content_type: str | None) -> None:  # type: ignore[no-untyped-def]
    """A browser that cached Basic credentials replays them on a forged form post: refuse it."""
    reg = app.state.registry
    before = len(reg.patient_record(ids["pid"])["observations"])
    headers = {"Content-Type": content_type} if content_type else {}
    with _basic(app, "admin", PASSWORDS["admin"]) as c:
        r = c.post(f"/api/patients/{ids['pid']}/observations",
                   content=json.dumps({"analyte": "igg", "value": 1, "unit": "g/L"}), headers=headers)
    assert r.status_code == 422
    assert r.json()["field"] == "Content-Type"
    assert len(reg.patient_record(ids["pid"])["observations"]) == before
