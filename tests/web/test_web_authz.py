"""Authorization on every page route: anonymous, viewer, clinician and admin (role x route).

The matrix lists every route of ``alpsdx.web.pages.router``; a route added without a row
here fails ``test_matrix_covers_every_route``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute
from webtools import Session

from alpsdx.store.audit import SYSTEM
from alpsdx.web import pages, uploads

ROLES = ("viewer", "clinician", "admin")
RANK = {None: -1, "viewer": 0, "clinician": 1, "admin": 2}


@pytest.fixture(scope="module")
def ids(app, fcs_bytes: bytes) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """A patient with an analysed FCS file (real pipeline), and a user to edit."""
    reg = app.state.registry
    from alpsdx.model import case_from_dict

    pid = reg.create_patient(case_from_dict({"id": "authz-1", "sex": "female", "age_years": 30}))
    uploads.process(reg, pid, SYSTEM, "fcs", "sample.fcs", fcs_bytes)
    rec = reg.patient_record(pid)
    fid = next(f["id"] for f in rec["files"] if f["kind"] == "fcs")
    uid = reg.create_user("someone", "someone-pass-1", "viewer")
    # The reports are rendered for a small record (the role check is what is tested here).
    small = reg.create_patient(case_from_dict({"id": "authz-2", "sex": "male", "age_years": 9}))
    eid = reg.evaluations(pid)[-1]["id"]
    return {"pid": pid, "fid": fid, "uid": uid, "small": small, "eid": eid}


def _case_file(n: int) -> dict[str, Any]:
    return {"file": (f"c{n}.json", json.dumps({"id": f"authz-up-{n}", "sex": "male"}).encode(), "application/json")}


_counter = iter(range(10_000))

# (method, route template) -> (minimum role, request builder, status when allowed)
Builder = Callable[[Session, dict[str, int]], Any]
MATRIX: dict[tuple[str, str], tuple[str, Builder, int]] = {
    ("GET", "/patients"): ("viewer", lambda s, i: s.get("/patients"), 200),
    ("GET", "/patients/new"): ("clinician", lambda s, i: s.get("/patients/new"), 200),
    ("POST", "/patients"): ("clinician", lambda s, i: s.post("/patients", {"id": f"authz-new-{next(_counter)}"}), 303),
    ("POST", "/patients/upload"): ("clinician", lambda s, i: s.post("/patients/upload", files=_case_file(next(_counter))), 303),
    ("GET", "/patients/{patient_id}"): ("viewer", lambda s, i: s.get(f"/patients/{i['pid']}"), 200),
    ("GET", "/patients/{patient_id}/plots/{group}.png"): ("viewer", lambda s, i: s.get(f"/patients/{i['pid']}/plots/dnt.png"), 200),
    ("GET", "/patients/{patient_id}/files/{file_id}/plot.png"): (
        "viewer", lambda s, i: s.get(f"/patients/{i['pid']}/files/{i['fid']}/plot.png"), 200),
    ("GET", "/patients/{patient_id}/files/{file_id}"): ("viewer", lambda s, i: s.get(f"/patients/{i['pid']}/files/{i['fid']}"), 200),
    ("GET", "/patients/{patient_id}/evaluations/{evaluation_id}"): (
        "viewer", lambda s, i: s.get(f"/patients/{i['pid']}/evaluations/{i['eid']}"), 200),
    ("GET", "/patients/{patient_id}/report"): ("viewer", lambda s, i: s.get(f"/patients/{i['small']}/report"), 200),
    ("GET", "/patients/{patient_id}/report.pdf"): ("viewer", lambda s, i: s.get(f"/patients/{i['small']}/report.pdf"), 200),
    ("POST", "/patients/{patient_id}/observations"): ("clinician", lambda s, i: s.post(
        f"/patients/{i['pid']}/observations", {"analyte": "igg", "value": "1200", "unit": "mg/dL", "date": "2025-01-02"}), 303),
    ("POST", "/patients/{patient_id}/variants"): ("clinician", lambda s, i: s.post(
        f"/patients/{i['pid']}/variants", {"gene": "CASP10", "classification": "vus"}), 303),
    ("POST", "/patients/{patient_id}/medications"): ("clinician", lambda s, i: s.post(
        f"/patients/{i['pid']}/medications", {"name": "prednisone"}), 303),
    ("POST", "/patients/{patient_id}/assays"): ("clinician", lambda s, i: s.post(
        f"/patients/{i['pid']}/assays", {"result": "normal", "date": "2025-01-02"}), 303),
    ("POST", "/patients/{patient_id}/findings"): ("clinician", lambda s, i: s.post(
        f"/patients/{i['pid']}/findings", {"hepatomegaly.present": "no"}), 303),
    ("POST", "/patients/{patient_id}/evaluate"): ("clinician", lambda s, i: s.post(f"/patients/{i['pid']}/evaluate"), 303),
    ("POST", "/patients/{patient_id}/uploads/case"): ("clinician", lambda s, i: s.post(
        f"/patients/{i['pid']}/uploads/case",
        files={"file": ("c.json", json.dumps({"id": "authz-1", "sex": "female"}).encode(), "application/json")}), 303),
    # Not an FCS file: the route is reached (authorised) and answers with a named error.
    ("POST", "/patients/{patient_id}/uploads/fcs"): ("clinician", lambda s, i: s.post(
        f"/patients/{i['pid']}/uploads/fcs", files={"file": ("x.fcs", b"not an fcs file", "application/octet-stream")}), 422),
    ("POST", "/patients/{patient_id}/uploads/vcf"): ("clinician", lambda s, i: s.post(
        f"/patients/{i['pid']}/uploads/vcf", files={"file": ("x.vcf", b"not a vcf\n", "text/plain")}), 422),
    ("GET", "/admin/audit"): ("admin", lambda s, i: s.get("/admin/audit"), 200),
    ("GET", "/admin/users"): ("admin", lambda s, i: s.get("/admin/users"), 200),
    ("POST", "/admin/users"): ("admin", lambda s, i: s.post(
        "/admin/users", {"username": f"u{next(_counter)}", "password": "long-enough-1", "role": "viewer"}), 303),
    ("POST", "/admin/users/{user_id}"): ("admin", lambda s, i: s.post(f"/admin/users/{i['uid']}", {"role": "viewer", "active": "1"}), 303),
}
# Public, or exercised in their own tests (login/logout change the session used here).
ELSEWHERE = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}


def test_matrix_covers_every_route() -> None:
    routes = {(m, r.path) for r in pages.router.routes if isinstance(r, APIRoute) for m in r.methods}
    assert routes == set(MATRIX) | ELSEWHERE


@pytest.mark.parametrize("role", [None, *ROLES], ids=["anonymous", *ROLES])
@pytest.mark.parametrize("key", list(MATRIX), ids=[f"{m} {p}" for m, p in MATRIX])
def test_route_role(as_role, ids: dict[str, int], key: tuple[str, str], role: str | None) -> None:  # type: ignore[no-untyped-def]
    needed, build, ok_status = MATRIX[key]
    s = as_role(role)
    if role is None:
        # No session: pages redirect to the login form (GET keeps the target).
        s.csrf = "irrelevant"
    r = build(s, ids)
    if role is None:
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")
    elif RANK[role] < RANK[needed]:
        assert r.status_code == 403, r.text[:300]
        assert f"needs the {needed} role" in r.text
    else:
        assert r.status_code == ok_status, r.text[:500]
        if ok_status == 303:
            assert not r.headers["location"].startswith("/login")


def test_login_page_is_public(as_role) -> None:  # type: ignore[no-untyped-def]
    r = as_role(None).get("/login")
    assert r.status_code == 200
    assert 'name="password"' in r.text


def test_logged_out_redirect_keeps_target(as_role, ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    r = as_role(None).get(f"/patients/{ids['pid']}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next=/patients/{ids['pid']}"


def test_viewer_sees_no_edit_forms(as_role, ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    viewer = as_role("viewer").get(f"/patients/{ids['pid']}").text
    clinician = as_role("clinician").get(f"/patients/{ids['pid']}").text
    for form_id in ("form-observation", "form-findings", "form-variant", "form-upload-fcs"):
        assert form_id not in viewer
        assert form_id in clinician
