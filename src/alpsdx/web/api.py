"""The JSON API (mounted under ``/api``), described by FastAPI's OpenAPI at ``/openapi.json``.

Same users, roles and audit as the pages: viewer reads, clinician writes patient data,
admin manages users and reads the audit log. Authenticate with HTTP Basic, or with the
browser session cookie plus an ``X-CSRF-Token`` header on writes.

Writes must also carry a ``Content-Type`` a cross-site HTML form cannot send
(``application/json``; uploads ``application/octet-stream``): a browser that once cached
Basic credentials would otherwise attach them to a forged form post. Patients are
addressed by the registry's internal integer id, never by their case identifier.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from alpsdx.errors import AlpsdxError, InputError, NotFoundError
from alpsdx.model import (
    ApoptosisAssay,
    Case,
    Findings,
    Medication,
    Observation,
    Variant,
    case_from_dict,
    parse_case_text,
)
from alpsdx.store import Registry
from alpsdx.web import uploads
from alpsdx.web.auth import Principal, actor_for, check_csrf, require

__all__ = ["router"]


class ErrorBody(BaseModel):
    """Every error: the alpsdx error type, a message, and the field, value and expectation."""

    error: str
    message: str
    field: str | None = None
    value: str | None = None
    expected: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not authenticated (HTTP Basic or a session cookie)."},
    403: {"model": ErrorBody, "description": "Role too low, or a session write without its CSRF token."},
    404: {"model": ErrorBody, "description": "No such patient, file or user."},
    422: {"model": ErrorBody, "description": "Invalid input: names the field, the value and what was expected."},
}

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_SHAPE_ERRORS = ("model_type", "model_attributes_type", "dict_type", "list_type")


def input_error(exc: RequestValidationError) -> InputError:
    """The first validation error as the CLI's ``InputError``: a clean field path (no pydantic
    union tags), the value and what was expected; unit errors keep their own wording."""
    errors = list(exc.errors())
    # A union body (one item or a list) reports a "wrong shape" error for the branch that did
    # not apply; the useful error is the other branch's.
    useful = [e for e in errors if e.get("type") not in _SHAPE_ERRORS]
    err = (useful or errors or [{}])[0]
    loc = list(err.get("loc", ()))
    where = loc[0] if loc else None
    path = ""
    for part in loc[1:]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and _FIELD.match(part):
            path += ("." if path else "") + part
    if where in ("query", "path", "header") and not path and len(loc) > 1:
        path = str(loc[-1])
    inner = (err.get("ctx") or {}).get("error")
    carried = getattr(inner, "err", None)
    if isinstance(carried, AlpsdxError):  # e.g. a UnitError raised inside the model
        sub = (carried.field or "").split(".")[-1]
        field = f"{path}.{sub}" if path and sub else (path or carried.field)
        return InputError(carried.message, field=field or None, value=carried.value, expected=carried.expected)
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    value = err.get("input")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key (a typo would silently drop data, so it is refused)"
        value = path.rsplit(".", 1)[-1] if path else None
    elif err.get("type") == "missing" or isinstance(value, dict | list | bytes):
        value = None
    if err.get("type") == "json_invalid":
        reason = (err.get("ctx") or {}).get("error")
        return InputError(f"not valid JSON: {reason}" if reason else "not valid JSON", field="body")
    return InputError(msg, field=path or (str(where) if where else None), value=value)


class _DomainErrorRoute(APIRoute):
    """Validation errors become ``InputError`` (422, the same JSON shape as every alpsdx error)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise input_error(exc) from None

        return route_handler


router = APIRouter(responses=_ERRORS, route_class=_DomainErrorRoute)
# Routes answering HTML/PDF/bytes still send their errors as JSON: say so explicitly (FastAPI
# would otherwise document the error schema under the route's own media type).
_JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": spec["description"],
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for code, spec in _ERRORS.items()
}
# Ids are 64-bit integers in every database: anything larger is refused as input, not a crash.
MAX_ID = 2**63 - 1
PatientId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="The registry's internal patient id.")]
FileId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
UserId = Annotated[int, PathParam(ge=1, le=MAX_ID)]

viewer = require("viewer")
clinician = require("clinician")
admin = require("admin")

# Content types a cross-site <form> (or a no-preflight fetch) can send: never accepted for writes.
_SIMPLE_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
MAX_UPLOAD_BYTES = uploads.MAX_UPLOAD_BYTES


# ------------------------------------------------------------------ response models
class Me(BaseModel):
    id: int
    username: str
    role: str
    via: str = Field(description="How this request authenticated: session or basic.")


class PatientSummary(BaseModel):
    id: int = Field(description="The registry's internal patient id (use it in URLs).")
    external_id: str = Field(description="The case identifier the clinic uses.")
    sex: str
    birth_date: str | None = None
    category: str | None = Field(None, description="Current NIH 2009 category from the newest evaluation.")
    subtype: str | None = None
    updated_at: str | None = None


class EvaluationSummary(BaseModel):
    id: int
    created_at: str | None = None
    created_by: str | None = None
    trigger: str | None = None
    evaluation_date: str
    criteria_set: str
    category: str
    subtype: str | None = None
    kb_version: str = Field(description="The knowledge-base version that produced this evaluation.")
    case_sha256: str
    result: dict[str, Any] | None = Field(None, description="The full evaluation (with ?full=true).")
    case: dict[str, Any] | None = Field(None, description="The exact input evaluated (with ?full=true).")


class FileInfo(BaseModel):
    id: int
    kind: str
    filename: str
    sha256: str
    size: int
    recorded_at: str | None = None
    recorded_by: str | None = None
    result: Any = None


class PatientRecord(BaseModel):
    id: int
    external_id: str
    case: dict[str, Any] = Field(description="The whole record as a case file (case-format.md).")
    observations: list[dict[str, Any]] = Field(description="Every observation with original and canonical value, source and provenance.")
    findings_history: list[dict[str, Any]]
    files: list[FileInfo]
    evaluation: dict[str, Any] | None = Field(None, description="The newest evaluation (as `alpsdx evaluate --format json`).")
    evaluation_id: int | None = None
    history: list[EvaluationSummary]


class Created(BaseModel):
    id: int
    external_id: str
    category: str | None = None
    subtype: str | None = None


class Evaluation(BaseModel):
    """The evaluation after a change: the ``alpsdx evaluate --format json`` object."""

    model_config = ConfigDict(extra="allow")
    category: str
    criteria_set: str
    kb_version: str


class SeriesPoint(BaseModel):
    analyte: str
    date: str | None = None
    value: float = Field(description="In the analyte's canonical unit.")
    unit: str


class UploadResult(BaseModel):
    message: str
    file: FileInfo | None = None
    category: str | None = None


class AuditEntry(BaseModel):
    seq: int
    at: str = Field(description="When (UTC, ISO 8601).")
    actor: str = Field(description="Who (user name; cli:<os user> for the command line).")
    role: str | None = None
    action: str = Field(description="What: read, list, lookup, create, update, upload, evaluate, export, login, ...")
    entity: str
    entity_id: str | None = None
    patient_id: int | None = Field(None, description="The internal patient id concerned (never the case identifier).")
    remote_addr: str | None = Field(None, description="From where (client address).")
    detail: dict[str, Any]
    hash: str = Field(description="SHA-256 over this row and the previous row's hash.")


class AuditPage(BaseModel):
    rows: list[AuditEntry]
    next_before: int | None = Field(None, description="Pass as ?before= for the next (older) page.")


class AuditVerification(BaseModel):
    rows: int
    ok: bool
    problems: list[str]


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    active: bool
    created_at: str | None = None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=8, max_length=1000)
    role: str = Field(description="viewer | clinician | admin")


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str | None = Field(None, description="viewer | clinician | admin")
    active: bool | None = None


# ------------------------------------------------------------------ helpers
def _reg(request: Request) -> Registry:
    reg: Registry = request.app.state.registry
    return reg


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def writer(role: str):  # type: ignore[no-untyped-def]
    """A dependency for state-changing routes: ``role`` or better, CSRF token for sessions, and a
    content type a cross-site form cannot forge."""
    need = require(role)

    def dependency(request: Request) -> Principal:
        p: Principal = need(request)
        check_csrf(request, p, None)
        media = _media_type(request)
        if not media or media in _SIMPLE_TYPES:
            raise InputError("this request needs a JSON body (or raw bytes for uploads)", field="Content-Type",
                             value=media or None, expected="application/json (uploads: application/octet-stream)")
        return p

    dependency.__name__ = f"write_{role}"
    return dependency


write_clinician = writer("clinician")
write_admin = writer("admin")


def _iso(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def _file(f: dict[str, Any]) -> FileInfo:
    return FileInfo(**{k: _iso(v) for k, v in f.items() if k in FileInfo.model_fields})


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


# ------------------------------------------------------------------ who am I
@router.get("/me", response_model=Me, tags=["session"], summary="The authenticated user")
def me(p: Principal = Depends(viewer)) -> Me:
    return Me(id=p.id, username=p.username, role=p.role, via=p.via)


# ------------------------------------------------------------------ stateless evaluation
_CASE_BODY = {
    "requestBody": {
        "required": True,
        "description": "One case (case-format.md) as JSON or YAML, or a FHIR R4 Bundle as JSON.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Case"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


async def _case_from_request(request: Request) -> Case:
    data = await request.body()
    if not data:
        raise InputError("empty request body", field="body", expected="a case as JSON or YAML")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError("request body too large", field="body", expected=f"at most {MAX_UPLOAD_BYTES // 2**20} MB")
    media = _media_type(request)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the body is not UTF-8 text", field="body") from None
    if media in YAML_TYPES:
        return parse_case_text(text, fmt="yaml", source="body")
    if media not in JSON_TYPES and not media.endswith("+json"):
        raise InputError("unsupported content type", field="Content-Type", value=media or None,
                         expected="application/json or application/yaml")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field="body") from None
    if isinstance(obj, dict) and obj.get("resourceType") == "Bundle":
        try:
            from alpsdx.interop.fhir_import import bundle_to_case
        except ImportError:
            raise InputError("FHIR Bundle input needs alpsdx.interop", field="resourceType") from None
        return bundle_to_case(obj).case
    return case_from_dict(obj, source=None)


@router.post("/evaluate", response_model=Evaluation, tags=["evaluate"], openapi_extra=_CASE_BODY,
             summary="Evaluate a case without storing it")
async def evaluate_case(
    request: Request,
    criteria: str = Query("nih2009", description="nih2009 | nih1999 | seif2008 | esid | all"),
    date: str | None = Query(None, description="Evaluation date YYYY-MM-DD (default: the case's own, else today)."),
    p: Principal = Depends(viewer),
) -> Any:
    """The same object as ``alpsdx evaluate CASE --format json``. Nothing is stored; the call is
    audited without any identifier from the case."""
    import datetime as dt

    from alpsdx.engine import assess

    when = None
    if date:
        try:
            when = dt.date.fromisoformat(date)
        except ValueError:
            raise InputError("not an ISO date", field="date", value=date, expected="YYYY-MM-DD") from None
    case = await _case_from_request(request)
    result = assess(case, criteria=criteria, date=when)
    _reg(request).audit(actor_for(request, p), "evaluate", "case", detail={"stored": False, "criteria": criteria})
    return JSONResponse(_jsonable(result))


# ------------------------------------------------------------------ patients
@router.get("/patients", response_model=list[PatientSummary], tags=["patients"], summary="List or search patients")
def list_patients(
    request: Request,
    q: str | None = Query(None, max_length=200, description="Matches case id, category, subtype; or sex exactly."),
    limit: int = Query(500, ge=1, le=5000),
    p: Principal = Depends(viewer),
) -> list[PatientSummary]:
    rows = _reg(request).list_patients(actor_for(request, p), q=q, limit=limit)
    return [PatientSummary(**r) for r in rows]


@router.post("/patients", response_model=Created, status_code=201, tags=["patients"],
             summary="Create a patient from a case file")
def create_patient(request: Request, case: Case = Body(..., description="A case (case-format.md); its id must be new."),
                   p: Principal = Depends(write_clinician)) -> Created:
    reg = _reg(request)
    pid = reg.create_patient(case, actor_for(request, p))
    ev = reg.latest_evaluation(pid, actor_for(request, p)) or {}
    return Created(id=pid, external_id=case.id, category=ev.get("category"), subtype=ev.get("subtype"))


@router.get("/patients/{patient_id}", response_model=PatientRecord, tags=["patients"],
            summary="The whole patient record with the newest evaluation and its history")
def patient_record(request: Request, patient_id: PatientId, p: Principal = Depends(viewer)) -> PatientRecord:
    rec = _reg(request).patient_record(patient_id, actor_for(request, p))
    return PatientRecord(
        id=rec["id"], external_id=rec["external_id"], case=rec["case"].to_json_dict(),
        observations=_jsonable(rec["observations"]), findings_history=_jsonable(rec["findings_history"]),
        files=[_file(f) for f in rec["files"]], evaluation=_jsonable(rec["evaluation"]),
        evaluation_id=rec["evaluation_id"], history=[EvaluationSummary(**h) for h in rec["history"]],
    )


@router.get("/patients/{patient_id}/case", tags=["patients"], summary="The record as a case file",
            response_model=dict[str, Any])
def patient_case(request: Request, patient_id: PatientId, p: Principal = Depends(viewer)) -> Any:
    return JSONResponse(_reg(request).load_case(patient_id, actor_for(request, p)).to_json_dict())


@router.post("/patients/{patient_id}/case", response_model=Evaluation, tags=["patients"],
             summary="Merge a case file into the record (same case id)")
def merge_case(request: Request, patient_id: PatientId, case: Case = Body(...),
               p: Principal = Depends(write_clinician)) -> Any:
    reg = _reg(request)
    actor = actor_for(request, p)
    current = reg.load_case(patient_id, actor)
    if case.id != current.id:
        raise InputError("the case file is for another patient", field="id", expected="this patient's case id")
    reg.save_case(case, actor, trigger="api_case")
    ev = reg.latest_evaluation(patient_id, actor) or {}
    return JSONResponse(_jsonable(ev.get("result") or {}))


@router.get("/patients/{patient_id}/evaluation", response_model=Evaluation, tags=["evaluations"],
            summary="The newest stored evaluation")
def latest_evaluation(request: Request, patient_id: PatientId, p: Principal = Depends(viewer)) -> Any:
    ev = _reg(request).latest_evaluation(patient_id, actor_for(request, p))
    if ev is None:
        raise NotFoundError("this patient has no evaluation yet", field="patient_id", value=patient_id)
    return JSONResponse(_jsonable(ev["result"]))


@router.get("/patients/{patient_id}/evaluations", response_model=list[EvaluationSummary], tags=["evaluations"],
            summary="Evaluation history, newest first")
def evaluation_history(request: Request, patient_id: PatientId,
                       full: bool = Query(False, description="Include each stored result and its exact input."),
                       p: Principal = Depends(viewer)) -> list[EvaluationSummary]:
    rows = _reg(request).evaluations(patient_id, actor_for(request, p), full=full)
    return [EvaluationSummary(**_jsonable(r)) for r in rows]


@router.post("/patients/{patient_id}/evaluate", response_model=Evaluation, tags=["evaluations"],
             summary="Re-evaluate now and keep the result",
             openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                 "schema": {"type": "object", "additionalProperties": False}}}}})
def re_evaluate(request: Request, patient_id: PatientId, p: Principal = Depends(write_clinician)) -> Any:
    """Send ``Content-Type: application/json`` (the body may be empty or ``{}``)."""
    result = _reg(request).evaluate(patient_id, actor_for(request, p), trigger="api_manual")
    return JSONResponse(_jsonable(result))


@router.get("/patients/{patient_id}/series", response_model=list[SeriesPoint], tags=["observations"],
            summary="Dated canonical values of analytes, for trends")
def series(request: Request, patient_id: PatientId,
           analyte: list[str] = Query(..., min_length=1, description="Analyte keys, e.g. ?analyte=dnt_pct_lymphocytes&analyte=igg"),
           p: Principal = Depends(viewer)) -> list[SeriesPoint]:
    pts = _reg(request).series(patient_id, analyte, actor_for(request, p))
    return [SeriesPoint(analyte=x["analyte"], date=_iso(x["date"]), value=x["value"], unit=x["unit"]) for x in pts]


def _items(body: Any) -> list[Any]:
    return list(body) if isinstance(body, list) else [body]


@router.post("/patients/{patient_id}/observations", response_model=Evaluation, tags=["observations"],
             summary="Add one or more dated observations (original value and UCUM unit)")
def add_observations(request: Request, patient_id: PatientId,
                     body: Observation | list[Observation] = Body(...),
                     p: Principal = Depends(write_clinician)) -> Any:
    items = _items(body)
    if not items:
        raise InputError("no observations given", field="body", expected="an observation or a non-empty list")
    return JSONResponse(_jsonable(_reg(request).add_observations(patient_id, items, actor_for(request, p))))


@router.post("/patients/{patient_id}/findings", response_model=Evaluation, tags=["findings"],
             summary="Record the current state of findings (only the keys sent change)")
def set_findings(request: Request, patient_id: PatientId, body: Findings = Body(...),
                 p: Principal = Depends(write_clinician)) -> Any:
    values = body.model_dump(mode="json", exclude_unset=True)
    if not values:
        raise InputError("no findings given", field="body", expected="one or more of " + ", ".join(Findings.model_fields))
    return JSONResponse(_jsonable(_reg(request).set_findings(patient_id, values, actor_for(request, p))))


@router.post("/patients/{patient_id}/variants", response_model=Evaluation, tags=["variants"],
             summary="Add one or more reported variants")
def add_variants(request: Request, patient_id: PatientId, body: Variant | list[Variant] = Body(...),
                 p: Principal = Depends(write_clinician)) -> Any:
    items = _items(body)
    if not items:
        raise InputError("no variants given", field="body", expected="a variant or a non-empty list")
    return JSONResponse(_jsonable(_reg(request).add_variants(patient_id, items, actor_for(request, p))))


@router.post("/patients/{patient_id}/medications", response_model=Evaluation, tags=["medications"],
             summary="Add a medication")
def add_medication(request: Request, patient_id: PatientId, body: Medication = Body(...),
                   p: Principal = Depends(write_clinician)) -> Any:
    return JSONResponse(_jsonable(_reg(request).add_medication(patient_id, body, actor_for(request, p))))


@router.post("/patients/{patient_id}/apoptosis-assays", response_model=Evaluation, tags=["apoptosis assays"],
             summary="Add an in-vitro FAS-mediated apoptosis assay")
def add_assay(request: Request, patient_id: PatientId, body: ApoptosisAssay = Body(...),
              p: Principal = Depends(write_clinician)) -> Any:
    return JSONResponse(_jsonable(_reg(request).add_assay(patient_id, body, actor_for(request, p))))


# ------------------------------------------------------------------ files
@router.get("/patients/{patient_id}/files", response_model=list[FileInfo], tags=["files"],
            summary="Uploaded files (case, FCS, VCF) with their SHA-256 and derived results")
def list_files(request: Request, patient_id: PatientId, p: Principal = Depends(viewer)) -> list[FileInfo]:
    return [_file(f) for f in _reg(request).files(patient_id, actor_for(request, p))]


@router.post("/patients/{patient_id}/files", response_model=UploadResult, status_code=201, tags=["files"],
             summary="Upload a case JSON/YAML, an FCS file (runs the DNT pipeline) or a VCF",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_file(
    request: Request, patient_id: PatientId,
    kind: str = Query(..., description="case | fcs | vcf"),
    filename: str = Query(..., min_length=1, max_length=300, description="The file's name (its suffix picks the parser)."),
    p: Principal = Depends(write_clinician),
) -> UploadResult:
    """Send the file's bytes as the body with ``Content-Type: application/octet-stream``."""
    if _media_type(request) != "application/octet-stream":
        raise InputError("uploads are raw bytes", field="Content-Type", value=_media_type(request),
                         expected="application/octet-stream")
    data = await request.body()
    reg = _reg(request)
    actor = actor_for(request, p)
    from starlette.concurrency import run_in_threadpool

    message = await run_in_threadpool(uploads.process, reg, patient_id, actor, kind, filename, data)
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    files = [f for f in reg.files(patient_id, actor) if f["sha256"] == digest and f["kind"] == kind]
    ev = reg.latest_evaluation(patient_id, actor) or {}
    return UploadResult(message=message, file=_file(files[-1]) if files else None, category=ev.get("category"))


@router.get("/patients/{patient_id}/files/{file_id}", response_model=FileInfo, tags=["files"],
            summary="One uploaded file's metadata and derived result")
def file_info(request: Request, patient_id: PatientId, file_id: FileId, p: Principal = Depends(viewer)) -> FileInfo:
    info = _reg(request).file_info(patient_id, file_id, actor_for(request, p))
    return _file(info)


@router.get("/patients/{patient_id}/files/{file_id}/content", tags=["files"], summary="The uploaded bytes",
            response_class=Response,
            responses={**_JSON_ERRORS,
                       200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
def file_content(request: Request, patient_id: PatientId, file_id: FileId, p: Principal = Depends(viewer)) -> Response:
    info = _reg(request).file_info(patient_id, file_id, actor_for(request, p))
    return Response(info["path"].read_bytes(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="alpsdx-file-{file_id}"'})


_PNG = {**_JSON_ERRORS, 200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}}


@router.get("/patients/{patient_id}/files/{file_id}/plot.png", tags=["files"], response_class=Response,
            responses=_PNG, summary="The gate plot of an analysed FCS file")
def file_plot(request: Request, patient_id: PatientId, file_id: FileId, p: Principal = Depends(viewer)) -> Response:
    reg = _reg(request)
    info = reg.file_info(patient_id, file_id, actor_for(request, p))
    rel = info["result"].get("gate_plot") if isinstance(info["result"], dict) else None
    if not isinstance(rel, str) or not rel:
        raise NotFoundError("this file has no gate plot (only analysed FCS files do)", field="file_id", value=file_id)
    return Response(reg.blob_path(rel).read_bytes(), media_type="image/png")


@router.get("/patients/{patient_id}/plots/{group}.png", tags=["observations"], response_class=Response,
            responses=_PNG, summary="A trend plot with reference bands and threshold lines")
def trend_plot(request: Request, patient_id: PatientId,
               group: str = PathParam(..., description="dnt | blood | igg | biomarkers | sirolimus"),
               p: Principal = Depends(viewer)) -> Response:
    from alpsdx.report import plots

    if group not in plots.PLOTS:
        raise InputError("unknown plot", field="group", value=group, expected=" | ".join(plots.PLOTS))
    reg = _reg(request)
    actor = actor_for(request, p)
    case = reg.load_case(patient_id, actor)
    pts = reg.series(patient_id, plots.PLOTS[group][1], actor)
    png = plots.render(group, pts, birth_date=case.birth_date, age_years=case.age_years,
                       sex=case.sex.value if case.sex.value in ("female", "male") else None, as_of=case.as_of)
    return Response(png, media_type="image/png")


# ------------------------------------------------------------------ reports
@router.get("/patients/{patient_id}/report", tags=["reports"], summary="The patient report as HTML",
            response_class=Response,  # errors stay documented as JSON (HTMLResponse would label them text/html)
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}})
def report_html(request: Request, patient_id: PatientId, p: Principal = Depends(viewer)) -> HTMLResponse:
    from alpsdx.report import build_html

    return HTMLResponse(build_html(_reg(request), patient_id, actor_for(request, p)))


@router.get("/patients/{patient_id}/report.pdf", tags=["reports"], summary="The patient report as PDF",
            response_class=Response,
            responses={**_JSON_ERRORS,
                       200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
def report_pdf(request: Request, patient_id: PatientId, p: Principal = Depends(viewer)) -> Response:
    from alpsdx.report import build_html, html_to_pdf

    pdf = html_to_pdf(build_html(_reg(request), patient_id, actor_for(request, p)))
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="alpsdx-report-{patient_id}.pdf"'})


# ------------------------------------------------------------------ audit (admin)
@router.get("/audit", response_model=AuditPage, tags=["audit"], summary="The audit log, newest first (admin)")
def audit_log(
    request: Request,
    limit: int = Query(200, ge=1, le=1000),
    before: int | None = Query(None, ge=1, le=MAX_ID, description="Only rows older than this sequence number."),
    patient_id: int | None = Query(None, ge=1, le=MAX_ID, description="Only rows about this patient."),
    action: str | None = Query(None, max_length=32, description="Only this action (read, create, login, ...)."),
    actor: str | None = Query(None, max_length=100, description="Only this user's rows."),
    p: Principal = Depends(admin),
) -> AuditPage:
    reg = _reg(request)
    rows = reg.audit_rows(limit=limit, before=before, patient_id=patient_id, action=action, actor=actor)
    # Reading the log is itself recorded (who looked, with which filter).
    reg.audit(actor_for(request, p), "read", "audit_log",
              detail={"patient_filter": patient_id is not None, "action": action, "rows": len(rows)})
    entries = [AuditEntry(**{**r, "detail": json.loads(r["detail"] or "{}")}) for r in rows]
    return AuditPage(rows=entries, next_before=rows[-1]["seq"] if len(rows) == limit else None)


@router.get("/audit/verify", response_model=AuditVerification, tags=["audit"],
            summary="Walk the audit hash chain (admin)")
def audit_verify(request: Request, p: Principal = Depends(admin)) -> AuditVerification:
    n, problems = _reg(request).verify_audit()
    return AuditVerification(rows=n, ok=not problems, problems=problems)


# ------------------------------------------------------------------ users (admin)
def _user(u: dict[str, Any]) -> UserOut:
    return UserOut(**u)


@router.get("/users", response_model=list[UserOut], tags=["users"], summary="User accounts (admin)")
def list_users(request: Request, p: Principal = Depends(admin)) -> list[UserOut]:
    return [_user(u) for u in _reg(request).list_users()]


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"], summary="Create a user (admin)")
def create_user(request: Request, body: UserIn, p: Principal = Depends(write_admin)) -> UserOut:
    reg = _reg(request)
    uid = reg.create_user(body.username, body.password, body.role, actor_for(request, p))
    return next(_user(u) for u in reg.list_users() if u["id"] == uid)


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"], summary="Change a role or disable a user (admin)")
def update_user(request: Request, user_id: UserId, body: UserPatch, p: Principal = Depends(write_admin)) -> UserOut:
    reg = _reg(request)
    current = next((u for u in reg.list_users() if u["id"] == user_id), None)
    if current is None:
        raise NotFoundError("no such user", field="user_id", value=user_id)
    reg.set_role(user_id, body.role or current["role"], actor_for(request, p), active=body.active)
    return next(_user(u) for u in reg.list_users() if u["id"] == user_id)
