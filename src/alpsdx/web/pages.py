"""Server-rendered pages: login, patient list, patient page with forms, uploads, admin."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from alpsdx import units
from alpsdx.errors import AlpsdxError, AuthError, InputError, NotFoundError
from alpsdx.model import today
from alpsdx.report import plots
from alpsdx.store import Registry
from alpsdx.store.users import ROLES
from alpsdx.web import forms, uploads
from alpsdx.web.auth import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CSRFError,
    Principal,
    actor_for,
    check_csrf,
    client_addr,
    cookie_value,
    new_login_csrf,
    principal,
    require,
)

router = APIRouter(include_in_schema=False)

viewer = require("viewer")
clinician = require("clinician")
admin = require("admin")

MAX_UPLOAD_BYTES = uploads.MAX_UPLOAD_BYTES
FORM_NAMES = ("observation", "findings", "variant", "medication", "assay", "case", "fcs", "vcf")


def _reg(request: Request) -> Registry:
    reg: Registry = request.app.state.registry
    return reg


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    p = principal(request)
    base = {"user": p, "csrf": p.csrf if p else None, "csrf_field": CSRF_FIELD}
    base.update(ctx)
    tpl = request.app.state.templates
    resp: Response = tpl.TemplateResponse(request, name, base, status_code=status)
    return resp


async def _form(request: Request, p: Principal) -> Any:
    """The submitted form, after the CSRF check. Page forms are for browser sessions only:
    a request authenticated otherwise (HTTP Basic, which browsers replay by themselves)
    cannot post them, so it cannot skip the token."""
    form = await request.form()
    if p.via != "session":
        raise CSRFError()
    token = form.get(CSRF_FIELD)
    check_csrf(request, p, token if isinstance(token, str) else None)
    return form


def _safe_next(nxt: str | None) -> str:
    """A local path to go to after login; anything that could leave the site is dropped
    (``//host``, ``/\\host`` which browsers read as ``//host``, control characters)."""
    if (nxt and nxt.startswith("/") and not nxt.startswith(("//", "/\\")) and "\\" not in nxt
            and all(c.isprintable() and not c.isspace() for c in nxt)):
        return nxt
    return "/patients"


# ---------------------------------------------------------------- login / logout
@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    token = new_login_csrf()
    resp = _render(request, "login.html", {"login_csrf": token, "next": _safe_next(next), "error": None})
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                    secure=request.app.state.settings.cookie_secure, max_age=3600)
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    submitted = str(form.get(CSRF_FIELD) or "")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    import hmac

    if not submitted or not cookie or not hmac.compare_digest(submitted, cookie):
        raise CSRFError()
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    nxt = _safe_next(str(form.get("next") or ""))
    try:
        user = _reg(request).authenticate(username, password, client_addr(request))
    except AuthError:
        token = new_login_csrf()
        resp = _render(request, "login.html", {"login_csrf": token, "next": nxt,
                                               "error": "Wrong user name or password.", "username": username},
                       status=401)
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.app.state.settings.cookie_secure, max_age=3600)
        return resp
    settings = request.app.state.settings
    token, _csrf = _reg(request).create_session(user["id"], dt.timedelta(hours=settings.session_hours))
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(SESSION_COOKIE, cookie_value(request, token), httponly=True, samesite="lax",
                    secure=settings.cookie_secure, max_age=int(settings.session_hours * 3600))
    resp.delete_cookie(LOGIN_CSRF_COOKIE)
    return resp


@router.post("/logout")
async def logout(request: Request, p: Principal = Depends(viewer)) -> Response:
    await _form(request, p)
    if p.token:
        _reg(request).delete_session(p.token, actor_for(request, p))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


# ---------------------------------------------------------------- patients
@router.get("/patients")
def patient_list(request: Request, q: str | None = None, p: Principal = Depends(viewer)) -> Response:
    rows = _reg(request).list_patients(actor_for(request, p), q=q)
    return _render(request, "patients.html", {"patients": rows, "q": q or ""})


@router.get("/patients/new")
def new_patient_page(request: Request, p: Principal = Depends(clinician)) -> Response:
    return _render(request, "new_patient.html", {"errors": {}, "values": {}})


@router.post("/patients")
async def create_patient(request: Request, p: Principal = Depends(clinician)) -> Response:
    form = await _form(request, p)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        case = forms.new_patient(values)
        pid = _reg(request).create_patient(case, actor_for(request, p))
    except forms.FormErrors as err:
        return _render(request, "new_patient.html", {"errors": err.errors, "values": values}, status=422)
    except InputError as err:
        return _render(request, "new_patient.html", {"errors": {err.field or "id": err.message}, "values": values}, status=422)
    return RedirectResponse(f"/patients/{pid}", status_code=303)


@router.post("/patients/upload")
async def upload_new_case(request: Request, file: UploadFile = File(...), p: Principal = Depends(clinician)) -> Response:
    await _form(request, p)
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    try:
        case = uploads.parse_case_upload(data, file.filename)
    except InputError as err:
        return _render(request, "new_patient.html", {"errors": {"file": str(err)}, "values": {}}, status=422)
    reg = _reg(request)
    pid = reg.save_case(case, actor_for(request, p), trigger="upload_case")
    reg.add_file(pid, "case", file.filename or "case.json", data, actor_for(request, p))
    return RedirectResponse(f"/patients/{pid}", status_code=303)


def _patient_ctx(request: Request, pid: int, p: Principal) -> dict[str, Any]:
    rec = _reg(request).patient_record(pid, actor_for(request, p))
    case = rec["case"]
    ev = rec["evaluation"] or {}
    have = {o["analyte"] for o in rec["observations"]}
    return {
        "rec": rec,
        "case": case,
        "ev": ev,
        "age": case.age,
        "analytes": sorted(units.analytes().items()),
        "plots": {g: spec for g, spec in plots.PLOTS.items() if have & set(spec[1])},
        "plots_empty": [spec[0] for g, spec in plots.PLOTS.items() if not have & set(spec[1])],
        "roles": ROLES,
        "today": today().isoformat(),
        "cytopenias": forms.CYTOPENIAS,
        "finding_objects": forms.FINDING_OBJECTS,
        "finding_flags": forms.FINDING_FLAGS,
        "current_findings": case.findings,
    }


def _patient_page(request: Request, pid: int, p: Principal, *, errors: dict[str, dict[str, str]] | None = None,
                  values: dict[str, dict[str, str]] | None = None, status: int = 200, notice: str | None = None) -> Response:
    ctx = _patient_ctx(request, pid, p)
    ctx.update({"errors": errors or {}, "values": values or {}, "notice": notice})
    return _render(request, "patient.html", ctx, status=status)


@router.get("/patients/{patient_id}")
def patient_page(request: Request, patient_id: int, notice: str | None = None, p: Principal = Depends(viewer)) -> Response:
    return _patient_page(request, patient_id, p, notice=notice)


@router.get("/patients/{patient_id}/plots/{group}.png")
def trend_plot(request: Request, patient_id: int, group: str, p: Principal = Depends(viewer)) -> Response:
    if group not in plots.PLOTS:
        return Response(status_code=404)
    reg = _reg(request)
    actor = actor_for(request, p)
    case = reg.load_case(patient_id, actor)
    pts = reg.series(patient_id, plots.PLOTS[group][1], actor)
    png = plots.render(group, pts, birth_date=case.birth_date, age_years=case.age_years,
                       sex=case.sex.value if case.sex.value in ("female", "male") else None, as_of=case.as_of)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/patients/{patient_id}/files/{file_id}/plot.png")
def file_plot(request: Request, patient_id: int, file_id: int, p: Principal = Depends(viewer)) -> Response:
    reg = _reg(request)
    info = reg.file_info(patient_id, file_id, actor_for(request, p))
    rel = (info["result"] or {}).get("gate_plot") if isinstance(info["result"], dict) else None
    if not rel:
        return Response(status_code=404)
    return Response(reg.blob_path(rel).read_bytes(), media_type="image/png")


@router.get("/patients/{patient_id}/files/{file_id}")
def file_download(request: Request, patient_id: int, file_id: int, p: Principal = Depends(viewer)) -> Response:
    info = _reg(request).file_info(patient_id, file_id, actor_for(request, p))
    return Response(Path(info["path"]).read_bytes(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(info['filename'])}"})


@router.get("/patients/{patient_id}/evaluations/{evaluation_id}")
def past_evaluation(request: Request, patient_id: int, evaluation_id: int, p: Principal = Depends(viewer)) -> Response:
    """One stored evaluation as it was made (its knowledge-base version and input hash)."""
    history = _reg(request).evaluations(patient_id, actor_for(request, p), full=True)
    found = next((h for h in history if h["id"] == evaluation_id), None)
    if found is None:
        raise NotFoundError("no such evaluation for this patient", field="evaluation_id", value=evaluation_id)
    return _render(request, "evaluation.html", {"pid": patient_id, "h": found, "ev": found["result"] or {},
                                                "external_id": (found.get("case") or {}).get("id", "")})


@router.get("/patients/{patient_id}/report")
def report_html(request: Request, patient_id: int, p: Principal = Depends(viewer)) -> Response:
    from alpsdx.report import build_html

    html = build_html(_reg(request), patient_id, actor_for(request, p))
    return HTMLResponse(html)


@router.get("/patients/{patient_id}/report.pdf")
def report_pdf(request: Request, patient_id: int, p: Principal = Depends(viewer)) -> Response:
    from alpsdx.report import build_html, html_to_pdf

    reg = _reg(request)
    pdf = html_to_pdf(build_html(reg, patient_id, actor_for(request, p)))
    # The file name carries the internal number, not the patient identifier.
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="alpsdx-report-{patient_id}.pdf"'})


def _done(pid: int, what: str) -> Response:
    return RedirectResponse(f"/patients/{pid}?notice={quote(what)}#category", status_code=303)


async def _add(request: Request, pid: int, p: Principal, form_name: str, build: Any, store: Any, what: str) -> Response:
    form = await _form(request, p)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
    try:
        item = build(form)
        store(pid, item, actor_for(request, p))
    except forms.FormErrors as err:
        return _patient_page(request, pid, p, errors={form_name: err.errors}, values={form_name: values}, status=422)
    except InputError as err:
        return _patient_page(request, pid, p, errors={form_name: {"form": str(err)}}, values={form_name: values}, status=422)
    return _done(pid, what)


@router.post("/patients/{patient_id}/observations")
async def add_observation(request: Request, patient_id: int, p: Principal = Depends(clinician)) -> Response:
    reg = _reg(request)
    return await _add(request, patient_id, p, "observation", forms.observation, reg.add_observation, "Observation added")


@router.post("/patients/{patient_id}/variants")
async def add_variant(request: Request, patient_id: int, p: Principal = Depends(clinician)) -> Response:
    reg = _reg(request)
    return await _add(request, patient_id, p, "variant", forms.variant, reg.add_variant, "Variant added")


@router.post("/patients/{patient_id}/medications")
async def add_medication(request: Request, patient_id: int, p: Principal = Depends(clinician)) -> Response:
    reg = _reg(request)
    return await _add(request, patient_id, p, "medication", forms.medication, reg.add_medication, "Medication added")


@router.post("/patients/{patient_id}/assays")
async def add_assay(request: Request, patient_id: int, p: Principal = Depends(clinician)) -> Response:
    reg = _reg(request)
    return await _add(request, patient_id, p, "assay", forms.assay, reg.add_assay, "Apoptosis assay added")


@router.post("/patients/{patient_id}/findings")
async def set_findings(request: Request, patient_id: int, p: Principal = Depends(clinician)) -> Response:
    reg = _reg(request)

    def build(form: Any) -> dict[str, Any]:
        return forms.findings(form, [str(c) for c in form.getlist("autoimmune_cytopenias")])

    return await _add(request, patient_id, p, "findings", build, reg.set_findings, "Findings recorded")


@router.post("/patients/{patient_id}/evaluate")
async def re_evaluate(request: Request, patient_id: int, p: Principal = Depends(clinician)) -> Response:
    await _form(request, p)
    _reg(request).evaluate(patient_id, actor_for(request, p), trigger="manual")
    return _done(patient_id, "Re-evaluated")


async def _upload(request: Request, pid: int, p: Principal, kind: str, file: UploadFile) -> Response:
    await _form(request, p)
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    try:
        # The DNT pipeline takes seconds: run it off the event loop so other requests proceed.
        message = await run_in_threadpool(uploads.process, _reg(request), pid, actor_for(request, p), kind,
                                          file.filename or kind, data)
    except AlpsdxError as err:  # InputError, FlowError...: name the problem, keep the page
        return _patient_page(request, pid, p, errors={kind: {"file": str(err)}}, status=422)
    return _done(pid, message)


@router.post("/patients/{patient_id}/uploads/case")
async def upload_case(request: Request, patient_id: int, file: UploadFile = File(...), p: Principal = Depends(clinician)) -> Response:
    return await _upload(request, patient_id, p, "case", file)


@router.post("/patients/{patient_id}/uploads/fcs")
async def upload_fcs(request: Request, patient_id: int, file: UploadFile = File(...), p: Principal = Depends(clinician)) -> Response:
    return await _upload(request, patient_id, p, "fcs", file)


@router.post("/patients/{patient_id}/uploads/vcf")
async def upload_vcf(request: Request, patient_id: int, file: UploadFile = File(...), p: Principal = Depends(clinician)) -> Response:
    return await _upload(request, patient_id, p, "vcf", file)


# ---------------------------------------------------------------- admin
@router.get("/admin/audit")
def audit_page(request: Request, before: int | None = None, patient: int | None = None, p: Principal = Depends(admin)) -> Response:
    reg = _reg(request)
    rows = reg.audit_rows(limit=200, before=before, patient_id=patient)
    n, problems = reg.verify_audit()
    return _render(request, "admin_audit.html", {"rows": rows, "chain_rows": n, "problems": problems, "patient": patient})


@router.get("/admin/users")
def users_page(request: Request, p: Principal = Depends(admin)) -> Response:
    return _render(request, "admin_users.html", {"users": _reg(request).list_users(), "roles": ROLES, "errors": {}, "values": {}})


@router.post("/admin/users")
async def create_user(request: Request, p: Principal = Depends(admin)) -> Response:
    form = await _form(request, p)
    values = {k: str(v) for k, v in form.items() if k in ("username", "role")}
    reg = _reg(request)
    try:
        reg.create_user(str(form.get("username") or ""), str(form.get("password") or ""), str(form.get("role") or ""),
                        actor_for(request, p))
    except InputError as err:
        return _render(request, "admin_users.html", {"users": reg.list_users(), "roles": ROLES,
                                                     "errors": {err.field or "form": err.message}, "values": values}, status=422)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}")
async def update_user(request: Request, user_id: int, p: Principal = Depends(admin)) -> Response:
    form = await _form(request, p)
    active = form.get("active")
    _reg(request).set_role(user_id, str(form.get("role") or ""), actor_for(request, p),
                           active=None if active is None else active == "1")
    return RedirectResponse("/admin/users", status_code=303)
