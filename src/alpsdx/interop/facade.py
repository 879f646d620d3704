"""A read-only FHIR R4 facade over the registry (``alpsdx.store.Registry``).

Endpoints (``router``, mounted at ``/fhir``):

- ``GET /fhir/metadata``: the CapabilityStatement (public, as FHIR servers publish it);
- ``GET /fhir/Patient/{id}``: one patient (``id`` = the registry's patient id);
- ``GET /fhir/Patient?identifier=[system|]value`` / ``?_id=``: find a patient by case id;
- ``GET /fhir/Observation?patient=…&code=…`` (``code``: comma-separated ``[system|]code``);
- ``GET /fhir/{Condition|Procedure|MedicationStatement|MedicationRequest|FamilyMemberHistory|
  DiagnosticReport|DetectedIssue|CommunicationRequest|ServiceRequest}?patient=…``;
- ``GET /fhir/{type}/{id}``: read one resource;
- ``GET /fhir/Patient/{id}/$everything``: the record and its latest stored evaluation.

Auth is the registry's (HTTP Basic or the session cookie, role viewer or higher), plus
OAuth-style bearer tokens for machine clients: ``POST /fhir/auth/token`` (authenticated the
same way) returns ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``, a
short-lived JWT (HS256, signed with the app's secret key) naming the user; a CDS Hooks
client hands it to the CDS service as ``fhirAuthorization``. Every patient read is audited
through the registry. Errors are FHIR ``OperationOutcome`` resources.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from alpsdx import __version__
from alpsdx.errors import AlpsdxError, FHIRError, InputError, NotFoundError
from alpsdx.interop import codes
from alpsdx.interop.fhir_export import case_to_resources, evaluation_to_resources, make_bundle
from alpsdx.model import Case
from alpsdx.store import Registry
from alpsdx.web.auth import Forbidden, LoginRequired, Principal, actor_for, check_csrf, principal

__all__ = ["FHIR_JSON", "SEARCH_TYPES", "capability_statement", "issue_access_token", "router"]

FHIR_JSON = "application/fhir+json"
TOKEN_AUDIENCE = "alpsdx-fhir"
TOKEN_ISSUER = "alpsdx"
TOKEN_TTL_S = 3600
TOKEN_SCOPE = "patient/*.read"
SEARCH_TYPES = ("Observation", "Condition", "Procedure", "MedicationStatement", "MedicationRequest",
                "FamilyMemberHistory", "DiagnosticReport", "DetectedIssue", "CommunicationRequest",
                "ServiceRequest")
OUTPUT_TYPES = frozenset({"DiagnosticReport", "DetectedIssue", "CommunicationRequest"})



class FHIRJSONResponse(JSONResponse):
    media_type = FHIR_JSON


_OUTCOME_DOC = {"content": {FHIR_JSON: {"schema": {"type": "object", "description": "A FHIR OperationOutcome"}}}}
_AUTH_DOC = {"content": {"application/json": {"schema": {"type": "object", "description": "An alpsdx error"}}}}
# The statuses the facade answers with, as the spec documents them (schemathesis checks both agree).
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid search (OperationOutcome)", **_OUTCOME_DOC},
    401: {"description": "Not authenticated", **_AUTH_DOC},
    403: {"description": "Role too low", **_AUTH_DOC},
    404: {"description": "No such resource or resource type (OperationOutcome)", **_OUTCOME_DOC},
}

router = APIRouter(prefix="/fhir", tags=["FHIR R4 facade (read-only)"], responses=_RESPONSES,
                   default_response_class=FHIRJSONResponse)


# --- responses ----------------------------------------------------------------------------


def fhir_response(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def outcome(status: int, code: str, diagnostics: str, expression: str | None = None) -> JSONResponse:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return fhir_response({"resourceType": "OperationOutcome", "issue": [issue]}, status)


def _guard(fn: Callable[[], JSONResponse]) -> JSONResponse:
    """Typed alpsdx errors as OperationOutcome (404 not found, 400 bad request)."""
    try:
        return fn()
    except NotFoundError as exc:
        return outcome(404, "not-found", str(exc))
    except InputError as exc:
        return outcome(400, "invalid", str(exc), exc.field)
    except AlpsdxError as exc:
        return outcome(500, "exception", type(exc).__name__)


# --- auth -----------------------------------------------------------------------------------


def issue_access_token(secret: str, user: Principal, ttl_s: int = TOKEN_TTL_S, scope: str = TOKEN_SCOPE) -> str:
    """A short-lived bearer JWT for the FHIR facade, naming ``user`` and their role."""
    now = int(time.time())
    claims = {"iss": TOKEN_ISSUER, "aud": TOKEN_AUDIENCE, "sub": user.username, "uid": user.id, "role": user.role,
              "scope": scope, "iat": now, "exp": now + ttl_s, "jti": secrets.token_urlsafe(12)}
    return jwt.encode(claims, secret, algorithm="HS256")


def _from_bearer(request: Request, token: str) -> Principal | None:
    try:
        claims = jwt.decode(token, request.app.state.secret, algorithms=["HS256"], audience=TOKEN_AUDIENCE,
                            issuer=TOKEN_ISSUER, options={"require": ["exp", "sub", "aud", "iss"]})
    except jwt.PyJWTError:
        return None
    return Principal(int(claims.get("uid", 0)), str(claims["sub"]), str(claims.get("role", "")), "bearer")


def fhir_user(request: Request) -> Principal:
    """The caller: a facade bearer token, else the registry's Basic/session auth; viewer or higher."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        p = _from_bearer(request, header[7:].strip())
        if p is None:
            raise LoginRequired()
        request.state.principal = p
    else:
        p = principal(request)
    if p is None:
        raise LoginRequired()
    if not p.can("viewer"):
        raise Forbidden("viewer")
    return p


def _registry(request: Request) -> Registry:
    reg: Registry = request.app.state.registry
    return reg


@router.post("/auth/token", include_in_schema=True, response_class=JSONResponse)
def token(request: Request) -> JSONResponse:
    """A bearer token for machine clients (authenticate with Basic or the session + CSRF header)."""
    p = principal(request)
    if p is None or p.via == "bearer":
        raise LoginRequired()
    check_csrf(request, p, None)
    if not p.can("viewer"):
        raise Forbidden("viewer")
    _registry(request).audit(actor_for(request, p), "issue", "fhir_token", detail={"ttl_s": TOKEN_TTL_S})
    return JSONResponse({"access_token": issue_access_token(request.app.state.secret, p), "token_type": "Bearer",
                         "expires_in": TOKEN_TTL_S, "scope": TOKEN_SCOPE})


# --- the record as resources --------------------------------------------------------------


def _pid(value: str, param: str) -> int:
    raw = value.split("/")[-1] if value.startswith("Patient/") or "/Patient/" in value else value
    if not raw.isdigit():
        raise FHIRError("not a registry patient id", field=param, value=value, expected="Patient/<number>")
    return int(raw)


def _record_resources(request: Request, p: Principal, pid: int, with_outputs: bool) -> list[dict[str, Any]]:
    reg = _registry(request)
    actor = actor_for(request, p)
    if with_outputs:
        rec = reg.patient_record(pid, actor)
        case: Case = rec["case"]
        inputs = case_to_resources(case, str(pid))
        evaluation = rec.get("evaluation")
        if evaluation:
            return inputs + evaluation_to_resources(case, evaluation, inputs, str(pid))
        return inputs
    return case_to_resources(reg.load_case(pid, actor), str(pid))


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _searchset(request: Request, resources: list[dict[str, Any]]) -> JSONResponse:
    bundle = make_bundle(resources, bundle_type="searchset", base_url=_base(request), validate=False)
    bundle["link"] = [{"relation": "self", "url": str(request.url)}]
    return fhir_response(bundle)


def _code_filter(param: str | None) -> Callable[[dict[str, Any]], bool]:
    if not param:
        return lambda r: True
    wanted: list[tuple[str | None, str]] = []
    for token_ in param.split(","):
        token_ = token_.strip()
        if not token_:
            continue
        if "|" in token_:
            sys_, code = token_.split("|", 1)
            wanted.append((sys_ or None, code))
        else:
            wanted.append((None, token_))

    def match(res: dict[str, Any]) -> bool:
        for c in (res.get("code") or {}).get("coding", ()):
            for sys_, code in wanted:
                if c.get("code") == code and (sys_ is None or c.get("system") == sys_):
                    return True
        return False

    return match


# --- endpoints ----------------------------------------------------------------------------


@router.get("/metadata")
def metadata(request: Request) -> JSONResponse:
    """The CapabilityStatement (no patient data; public like every FHIR server's)."""
    return fhir_response(capability_statement(_base(request)))


@router.get("/Patient/{patient_id}/$everything")
def everything(patient_id: str, request: Request, p: Principal = Depends(fhir_user)) -> JSONResponse:
    """Every resource of the patient, with the latest stored evaluation's output resources."""
    return _guard(lambda: _searchset(request, _record_resources(request, p, _pid(patient_id, "id"), True)))


@router.get("/Patient")
def search_patient(request: Request, p: Principal = Depends(fhir_user)) -> JSONResponse:
    """Find a patient by ``_id`` or by the case-id ``identifier`` (``[system|]value``)."""

    def run() -> JSONResponse:
        q = request.query_params
        reg = _registry(request)
        actor = actor_for(request, p)
        if q.get("_id"):
            pid: int | None = _pid(q["_id"], "_id")
        elif q.get("identifier"):
            value = q["identifier"].split("|", 1)[-1]
            pid = reg.find_patient_id(value, actor)
        else:
            raise FHIRError("a patient search needs _id or identifier (listing every patient is not offered)",
                            field="identifier")
        if pid is None:
            return _searchset(request, [])
        try:
            return _searchset(request, _record_resources(request, p, pid, False)[:1])
        except NotFoundError:
            return _searchset(request, [])

    return _guard(run)


@router.get("/{resource_type}")
def search(resource_type: str, request: Request, p: Principal = Depends(fhir_user)) -> JSONResponse:
    """Search one resource type of one patient: ``patient`` is required, ``code`` optional."""

    def run() -> JSONResponse:
        if resource_type not in SEARCH_TYPES:
            return outcome(404, "not-supported", f"resource type {resource_type} is not served here")
        patient = request.query_params.get("patient") or request.query_params.get("subject")
        if not patient:
            raise FHIRError("the search needs a patient", field="patient", expected="patient=<id>")
        pid = _pid(patient, "patient")
        match = _code_filter(request.query_params.get("code"))
        resources = _record_resources(request, p, pid, resource_type in OUTPUT_TYPES)
        return _searchset(request, [r for r in resources if r["resourceType"] == resource_type and match(r)])

    return _guard(run)


@router.get("/{resource_type}/{resource_id}")
def read(resource_type: str, resource_id: str, request: Request, p: Principal = Depends(fhir_user)) -> JSONResponse:
    """Read one resource by id (ids are ``<patient id>-<kind>-<n>``; a Patient's id is the registry id)."""

    def run() -> JSONResponse:
        if resource_type != "Patient" and resource_type not in SEARCH_TYPES:
            return outcome(404, "not-supported", f"resource type {resource_type} is not served here")
        head = resource_id.split("-", 1)[0]
        if not head.isdigit():
            return outcome(404, "not-found", f"{resource_type}/{resource_id} does not exist")
        resources = _record_resources(request, p, int(head), resource_type in OUTPUT_TYPES)
        for r in resources:
            if r["resourceType"] == resource_type and r["id"] == resource_id:
                return fhir_response(r)
        return outcome(404, "not-found", f"{resource_type}/{resource_id} does not exist")

    return _guard(run)


# --- CapabilityStatement ------------------------------------------------------------------


def capability_statement(base_url: str) -> dict[str, Any]:
    """What the facade serves, as an R4 CapabilityStatement."""
    patient_param = {"name": "patient", "type": "reference", "documentation": "Required: Patient/<registry id>"}
    code_param = {"name": "code", "type": "token",
                  "documentation": "Comma-separated [system|]code, e.g. http://loinc.org|2465-3"}
    resources: list[dict[str, Any]] = [{
        "type": "Patient",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [{"name": "_id", "type": "token"},
                        {"name": "identifier", "type": "token",
                         "documentation": f"The alpsdx case id ({codes.EXT.rsplit('/', 2)[0]}/NamingSystem/case-id)"}],
        "operation": [{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}],
    }]
    for rtype in SEARCH_TYPES:
        params = [patient_param] + ([code_param] if rtype in ("Observation", "Condition", "Procedure") else [])
        resources.append({"type": rtype, "interaction": [{"code": "read"}, {"code": "search-type"}],
                          "searchParam": params})
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": dt.date.today().isoformat(),
        "publisher": "alpsdx",
        "kind": "instance",
        "software": {"name": "alpsdx", "version": __version__},
        "implementation": {"description": "alpsdx registry FHIR R4 facade (read-only)", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {"description": "HTTP Basic or session (role viewer or higher), or a bearer token from "
                                        "POST /fhir/auth/token. Every patient read is audited."},
            "resource": resources,
        }],
    }
