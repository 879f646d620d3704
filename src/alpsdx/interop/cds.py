"""A CDS Hooks 2.0 service (https://cds-hooks.hl7.org/2.0/, citation ``cds_hooks_2``).

``router`` serves:

- ``GET  /cds-services``: discovery (two services, with prefetch templates);
- ``POST /cds-services/alpsdx-patient-view`` (hook ``patient-view``): evaluates the patient
  and returns cards: "ALPS criteria met (definitive|probable)" with a suggestion to record
  the D89.82 Condition; "DNT not measured — order TCRαβ+ DNT flow cytometry" when the
  presentation fits; "Sirolimus trough out of range" (and "no trough recorded"); each
  lymphoma warning sign from the surveillance rules;
- ``POST /cds-services/alpsdx-order-select`` (hook ``order-select``): a selected splenectomy
  ServiceRequest, or a sirolimus / mycophenolate MedicationRequest, gets its card;
- ``POST /cds-services/{id}/feedback``: accepted, checked and stored in the registry's
  audit log (``cds_feedback``).

Data come from ``prefetch``; a prefetch key that is absent (or ``null``) is fetched from
``fhirServer`` with the ``fhirAuthorization`` bearer token; without either the service
answers 412. Every card has a summary of at most 140 characters, an indicator, a
``source`` naming the rule's citation (label and URL), links, and suggestions with FHIR
actions where they make sense.

**Authentication** (spec "Trusting CDS Clients"): every service call carries
``Authorization: Bearer <JWT>`` signed by the EHR with ES256, ES384 or RS384. The key comes
from the configured JWK Set (``ALPSDX_CDS_JWKS``: a file path or https URL) or, when the JWT
header names a ``jku``, from that URL only if it is on the allow-list
(``ALPSDX_CDS_JKU_ALLOWLIST``, comma-separated). ``iss`` must be a configured issuer
(``ALPSDX_CDS_ISSUERS``; when unset any issuer whose key verifies is accepted), ``aud`` the
service's own URL (``ALPSDX_CDS_BASE_URL`` + ``/cds-services/<id>``, else the request URL),
``exp`` in the future and at most 5 minutes away, ``iat`` present and ``jti`` not seen
before (replays refused). Anything else: 401. Discovery is public (it holds no patient
data).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from alpsdx import knowledge
from alpsdx.engine import assess
from alpsdx.errors import AlpsdxError, AuthError, CDSHooksError, FHIRError, InputError
from alpsdx.interop import codes
from alpsdx.interop.codes import ALPSDX, LOINC
from alpsdx.interop.fhir_export import alps_condition
from alpsdx.interop.fhir_import import EVENT_PREFIX, resources_to_case
from alpsdx.model import Case, ClinicalEvent, Medication
from alpsdx.store import Actor

__all__ = [
    "ALGORITHMS",
    "SERVICES",
    "CDSConfig",
    "discovery",
    "handle_hook",
    "order_select_cards",
    "patient_view_cards",
    "router",
    "verify_client_jwt",
]

ALGORITHMS = ("ES256", "ES384", "RS384")
MAX_JWT_LIFETIME_S = 300  # "exp ... no more than 5 minutes in the future"
LEEWAY_S = 30
SUMMARY_MAX = 140
DNT_ANALYTES = ("dnt_pct_lymphocytes", "dnt_pct_cd3", "dnt_pct_tcrab", "dnt_abs")
PATIENT_VIEW = "alpsdx-patient-view"
ORDER_SELECT = "alpsdx-order-select"


# --- configuration ----------------------------------------------------------------------


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@dataclass
class CDSConfig:
    """Who may call the service and how keys are found (see the module docstring)."""

    jwks: Mapping[str, Any] | None = None
    jwks_url: str | None = None
    jku_allowlist: tuple[str, ...] = ()
    issuers: tuple[str, ...] = ()
    base_url: str | None = None
    fhir_timeout_s: float = 10.0
    _jku_cache: dict[str, tuple[float, Mapping[str, Any]]] = field(default_factory=dict, repr=False)
    _jti_seen: OrderedDict[str, float] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env(cls) -> CDSConfig:
        src = os.environ.get("ALPSDX_CDS_JWKS") or None
        jwks: Mapping[str, Any] | None = None
        url = None
        if src and src.startswith(("https://", "http://")):
            url = src
        elif src:
            try:
                jwks = json.loads(Path(src).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CDSHooksError(f"cannot read the JWK Set: {exc}", field="ALPSDX_CDS_JWKS", value=src) from None
        return cls(jwks=jwks, jwks_url=url, jku_allowlist=_split(os.environ.get("ALPSDX_CDS_JKU_ALLOWLIST")),
                   issuers=_split(os.environ.get("ALPSDX_CDS_ISSUERS")),
                   base_url=(os.environ.get("ALPSDX_CDS_BASE_URL") or "").rstrip("/") or None)

    # keys ----------------------------------------------------------------------------------
    def _fetch_jwks(self, url: str) -> Mapping[str, Any]:
        now = time.monotonic()
        with self._lock:
            hit = self._jku_cache.get(url)
            if hit and now - hit[0] < 300:
                return hit[1]
        try:
            resp = httpx.get(url, timeout=5.0, follow_redirects=False)
            resp.raise_for_status()
            data = resp.json()
        except (httpx.HTTPError, ValueError):
            raise AuthError("the JWK Set could not be fetched", field="jku", value=url) from None
        with self._lock:
            self._jku_cache[url] = (now, data)
        return data  # type: ignore[no-any-return]

    def key_set(self, jku: str | None) -> Mapping[str, Any]:
        if jku:
            if jku not in self.jku_allowlist:
                raise AuthError("the JWT's jku is not on the allow-list", field="jku", value=jku)
            return self._fetch_jwks(jku)
        if self.jwks is not None:
            return self.jwks
        if self.jwks_url:
            return self._fetch_jwks(self.jwks_url)
        raise AuthError("no trusted keys are configured", field="ALPSDX_CDS_JWKS",
                        expected="a JWK Set file or URL, or a jku allow-list")

    def remember_jti(self, jti: str, exp: float) -> bool:
        """False when ``jti`` was seen before (a replay); expired entries are forgotten."""
        now = time.time()
        with self._lock:
            while self._jti_seen and next(iter(self._jti_seen.values())) < now - LEEWAY_S:
                self._jti_seen.popitem(last=False)
            if jti in self._jti_seen:
                return False
            self._jti_seen[jti] = exp
            return True


@lru_cache(maxsize=64)
def _public_key(jwk_json: str, alg: str) -> Any:
    """The key object of one JWK (parsing a JWK into a key costs more than verifying with it)."""
    try:
        return jwt.PyJWK(json.loads(jwk_json), algorithm=alg).key
    except jwt.PyJWTError as exc:
        raise AuthError(f"a trusted JWK is unusable: {exc}", field="kid") from None


def verify_client_jwt(authorization: str | None, audiences: list[str], config: CDSConfig,
                      remember: Callable[[str, float], bool] | None = None) -> dict[str, Any]:
    """Verify the CDS client's JWT; returns its claims or raises ``AuthError``.

    ``remember(jti, exp)`` records the token's id and answers False for a replay; by default
    the ids are kept in ``config`` (one process), the apps pass the registry's shared table.
    """
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthError("a signed JWT is required", field="Authorization", expected="Bearer <JWT>")
    token = authorization[7:].strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("not a JWT", field="Authorization") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AuthError("JWT signing algorithm not accepted", field="alg", value=alg, expected=" | ".join(ALGORITHMS))
    keys = [k for k in config.key_set(header.get("jku")).get("keys", ()) if isinstance(k, Mapping)]
    kid = header.get("kid")
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
    keys = [k for k in keys if k.get("alg") in (None, alg) and k.get("use") in (None, "sig")]
    if not keys:
        raise AuthError("no trusted key matches the JWT", field="kid", value=kid)
    last: Exception | None = None
    for k in keys:
        try:
            key = _public_key(json.dumps(k, sort_keys=True), alg)
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=audiences, leeway=LEEWAY_S,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]})
            break
        except jwt.InvalidSignatureError as exc:
            last = exc
            continue
        except jwt.PyJWTError as exc:
            raise AuthError(f"JWT refused: {exc}", field="Authorization") from None
    else:
        raise AuthError(f"JWT refused: {last}", field="Authorization")
    if config.issuers and claims["iss"] not in config.issuers:
        raise AuthError("JWT issuer is not trusted", field="iss", value=claims["iss"])
    if float(claims["exp"]) - time.time() > MAX_JWT_LIFETIME_S + LEEWAY_S:
        raise AuthError("JWT expires too far in the future", field="exp", expected="at most 5 minutes ahead")
    if not (remember or config.remember_jti)(str(claims["jti"]), float(claims["exp"])):
        raise AuthError("JWT replayed (jti seen before)", field="jti")
    return claims


# --- discovery and prefetch ---------------------------------------------------------------


def _observation_codes() -> list[str]:
    out = [f"{c['system']}|{c['code']}" for c in codes.analyte_query_codings()]
    for name in ("height_cm", "weight_kg"):
        v = codes.vital_sign(name)
        out.append(f"{codes.system(str(v['system']))}|{v['code']}")
    g = codes.genomics()["variant"]
    out.append(f"{codes.system(str(g['system']))}|{g['code']}")
    from alpsdx.model import EVENT_KINDS

    for code in ("fas-apoptosis-assay", "typical-alps-histology", "family-history-lymphoproliferation",
                 "genes-tested", *(EVENT_PREFIX + k for k in EVENT_KINDS)):
        out.append(f"{ALPSDX}|{code}")
    return list(dict.fromkeys(out))


@lru_cache(maxsize=1)
def _templates() -> tuple[tuple[str, str], ...]:
    pid = "{{context.patientId}}"
    return tuple({
        "patient": f"Patient/{pid}",
        "observations": f"Observation?patient={pid}&code=" + ",".join(_observation_codes()),
        "conditions": f"Condition?patient={pid}",
        "procedures": f"Procedure?patient={pid}",
        "medicationRequests": f"MedicationRequest?patient={pid}",
        "medicationStatements": f"MedicationStatement?patient={pid}",
        "familyHistory": f"FamilyMemberHistory?patient={pid}",
    }.items())


def prefetch_templates() -> dict[str, str]:
    """Prefetch templates (the same for both services): patient, LOINC-coded Observations, ..."""
    return dict(_templates())


SERVICES: dict[str, dict[str, Any]] = {
    PATIENT_VIEW: {
        "hook": "patient-view",
        "title": "alpsdx: ALPS decision support",
        "description": ("Evaluates the revised NIH 2009 ALPS criteria (Oliveira 2010) on the open chart: "
                        "criteria met, DNT not measured, sirolimus trough out of range, lymphoma warning signs."),
        "usageRequirements": "Needs read access to the patient's Observations, Conditions, Procedures, "
                             "medications and family history.",
    },
    ORDER_SELECT: {
        "hook": "order-select",
        "title": "alpsdx: ALPS order checks",
        "description": "Cards for splenectomy, sirolimus and mycophenolate orders in patients with ALPS features.",
        "usageRequirements": "Same data as alpsdx-patient-view plus the draft orders.",
    },
}


@lru_cache(maxsize=1)
def _discovery_json() -> bytes:
    templates = prefetch_templates()
    return json.dumps({"services": [{**spec, "id": sid, "prefetch": templates}
                                    for sid, spec in SERVICES.items()]}).encode()


def discovery() -> dict[str, Any]:
    """The discovery document (built once: it depends only on the code table)."""
    result: dict[str, Any] = json.loads(_discovery_json())
    return result


# --- gathering data -----------------------------------------------------------------------

Fetcher = Callable[[str, str, Mapping[str, Any] | None], Any]


def _render(template: str, context: Mapping[str, Any]) -> str:
    out = template
    for key, value in context.items():
        if isinstance(value, str):
            out = out.replace("{{context." + key + "}}", value)
    if "{{" in out:
        raise CDSHooksError("prefetch template needs a context value that is missing", field="context",
                            value=out.split("{{", 1)[1].split("}}", 1)[0])
    return out


def http_fetch(server: str, query: str, authorization: Mapping[str, Any] | None, timeout: float = 10.0) -> Any:
    """GET ``server/query`` as the CDS client authorised us to (``fhirAuthorization``)."""
    headers = {"Accept": "application/fhir+json"}
    if authorization and authorization.get("access_token"):
        headers["Authorization"] = f"Bearer {authorization['access_token']}"
    url = server.rstrip("/") + "/" + query
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise _Precondition(f"the FHIR server could not be reached: {type(exc).__name__}") from None
    if resp.status_code == 404 and query.startswith("Patient/"):
        raise _Precondition("the FHIR server has no such patient")
    if resp.status_code != 200:
        raise _Precondition(f"the FHIR server answered {resp.status_code} for {query.split('?', 1)[0]}")
    try:
        return resp.json()
    except ValueError:
        raise _Precondition("the FHIR server's answer is not JSON") from None


class _Precondition(Exception):
    """The data needed could not be obtained (HTTP 412)."""


def _flatten(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        return []
    if value.get("resourceType") == "Bundle":
        out = []
        for e in value.get("entry", ()) or ():
            res = e.get("resource") if isinstance(e, Mapping) else None
            if isinstance(res, Mapping) and res.get("resourceType") != "OperationOutcome":
                out.append(res)
        return out
    return [value]


def gather(body: Mapping[str, Any], fetch: Fetcher | None = None) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The resources the service needs: prefetch first, else the client's FHIR server."""
    context = body["context"]
    prefetch = body.get("prefetch") or {}
    if not isinstance(prefetch, Mapping):
        raise CDSHooksError("prefetch must be an object", field="prefetch")
    server = body.get("fhirServer")
    auth = body.get("fhirAuthorization")
    fetch = fetch or http_fetch
    resources: list[Mapping[str, Any]] = []
    fetched: list[str] = []
    seen: set[tuple[str, str]] = set()
    for key, template in prefetch_templates().items():
        value = prefetch.get(key)
        if value is None:
            if not server:
                raise _Precondition(f"prefetch '{key}' is missing and no fhirServer was given")
            value = fetch(str(server), _render(template, context), auth)
            fetched.append(key)
        for res in _flatten(value):
            ident = (str(res.get("resourceType")), str(res.get("id")))
            if ident not in seen:
                seen.add(ident)
                resources.append(res)
    return resources, fetched


# --- cards --------------------------------------------------------------------------------


def _citation_url(key: str) -> str | None:
    c = knowledge.citation(key)
    if c.get("url"):
        return str(c["url"])
    if c.get("doi"):
        return f"https://doi.org/{c['doi']}"
    if c.get("pmid"):
        return f"https://pubmed.ncbi.nlm.nih.gov/{c['pmid']}/"
    return None


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _source(key: str, topic: str) -> dict[str, Any]:
    text = knowledge.resolve_citation(key)
    src: dict[str, Any] = {"label": _short(f"alpsdx · {text}", 200),
                           "topic": {"system": ALPSDX, "code": topic}}
    url = _citation_url(key)
    if url:
        src["url"] = url
    return src


def _link(key: str, label: str) -> list[dict[str, str]]:
    url = _citation_url(key)
    return [{"label": label, "url": url, "type": "absolute"}] if url else []


def card(summary: str, indicator: str, source_key: str, topic: str, detail: str | None = None,
         suggestions: list[dict[str, Any]] | None = None, links: list[dict[str, str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"uuid": str(uuid.uuid4()), "summary": _short(summary, SUMMARY_MAX),
                           "indicator": indicator, "source": _source(source_key, topic)}
    if detail:
        out["detail"] = detail
    if suggestions:
        out["suggestions"] = suggestions
        out["selectionBehavior"] = "at-most-one"
    if links:
        out["links"] = links
    return out


def _suggestion(label: str, action_type: str, description: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"label": label, "uuid": str(uuid.uuid4()), "isRecommended": False,
            "actions": [{"type": action_type, "description": description, "resource": resource}]}


def _evidence_md(crit: Mapping[str, Any]) -> str:
    parts = []
    for e in crit.get("evidence", ()) or ():
        val = e.get("value")
        if isinstance(val, list):
            val = ", ".join(map(str, val))
        s = f"{e.get('item')} {val}" + (f" {e['unit']}" if e.get("unit") else "")
        if e.get("date"):
            s += f" ({e['date']})"
        parts.append(s)
    return "; ".join(parts) or "—"


def _criteria_card(case: Case, a: Mapping[str, Any], patient_id: str,
                   recorded: str | None = None) -> dict[str, Any] | None:
    category = a.get("category")
    if category not in ("definitive", "probable"):
        return None
    subtype = f", {a['subtype']}" if a.get("subtype") else ""
    summary = f"ALPS criteria met ({category}{subtype}): {a.get('title') or a.get('criteria_set')}"
    lines = [f"**{a.get('category_label') or category}** — evaluated {a.get('evaluation_date')}.", ""]
    for c in a.get("criteria", ()):
        mark = {"met": "✔", "not_met": "✘"}.get(c["status"], "?")
        lines.append(f"- {mark} **{c['label']}** — {_evidence_md(c)} (threshold: {c['threshold']}; "
                     f"source: {c['citation']})")
    for t in a.get("next_tests", ()):
        lines.append(f"- Next: {t['test']} — {t['why']}")
    when = str(a.get("evaluation_date") or case.as_of.isoformat())[:10]
    condition = alps_condition(patient_id, str(category), when, a.get("subtype"))
    ver = condition["verificationStatus"]["coding"][0]["code"]
    sugg = _suggestion(f"Record ALPS (ICD-10-CM D89.82) as {ver}", "create",
                       f"Add ALPS to the problem list, verification status {ver}", condition)
    if recorded == ver or recorded == "confirmed":
        lines.append(f"\nALPS (D89.82) is already recorded in the chart ({recorded}).")
        return card(summary, "info", "oliveira2010", "alps-criteria", "\n".join(lines),
                    links=_link("oliveira2010", "Revised NIH criteria (Oliveira 2010)"))
    return card(summary, "warning", "oliveira2010", "alps-criteria", "\n".join(lines), [sugg],
                _link("oliveira2010", "Revised NIH criteria (Oliveira 2010)"))


def _dnt_card(case: Case, a: Mapping[str, Any], patient_id: str) -> dict[str, Any] | None:
    if any(o.analyte in DNT_ANALYTES for o in case.observations):
        return None
    statuses = {c["id"]: c["status"] for c in a.get("criteria", ())}
    if statuses.get("required.dnt") == "met":
        return None
    f = case.findings
    lympho = any(x is not None and x.present for x in (f.lymphadenopathy, f.splenomegaly))
    evans = len(f.autoimmune_cytopenias or []) >= 2
    if not ((lympho and statuses.get("required.chronic_lymphoproliferation") != "not_met") or evans):
        return None
    why = []
    if lympho:
        why.append("lymphadenopathy/splenomegaly is recorded and elevated TCRαβ+ DNT cells are the second "
                   "required NIH 2009 criterion (≥1.5% of lymphocytes or ≥2.5% of CD3+ T cells)")
    if evans:
        why.append("autoimmune cytopenias of two or more lineages (Evans syndrome): Seif 2010 recommends "
                   "screening such children for ALPS with DNT (DNT ≥5% had PPV 94%)")
    order = {
        "resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
        "code": {"coding": [{"system": LOINC, "code": "80699-2",
                             "display": "CD4-CD8- cells/CD3+TCR alpha beta+ cells in Blood"}],
                 "text": "TCRαβ+ CD4−CD8− double-negative T cells by flow cytometry"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "reasonCode": [{"text": "ALPS evaluation (revised NIH 2009 criteria)"}],
    }
    return card("DNT not measured — order TCRαβ+ DNT flow cytometry", "info",
                "oliveira2010" if lympho else "seif2010_alps_criteria", "dnt-not-measured",
                "No double-negative T-cell result is recorded, but " + "; and ".join(why) + ".",
                [_suggestion("Order TCRαβ+ DNT flow cytometry", "create", "Draft a DNT flow cytometry order", order)],
                _link("oliveira2010", "Revised NIH criteria (Oliveira 2010)")
                + (_link("seif2010_alps_criteria", "Seif 2010: Evans syndrome and ALPS") if evans else []))


def _trough_fallback(case: Case) -> list[dict[str, Any]]:
    """Without care items: the care settings' target trough (Teachey 2009 unless the site overrides it)."""
    from alpsdx.care import CareSettings

    troughs = sorted((o for o in case.observations if o.analyte == "sirolimus_trough"),
                     key=lambda o: o.date or dt.date.min)
    if not troughs:
        return []
    s = CareSettings.from_env()
    lo, hi = float(s.get("sirolimus_trough_low")), float(s.get("sirolimus_trough_high"))
    o = troughs[-1]
    v = o.canonical_value
    if lo <= v <= hi:
        return []
    word = "below" if v < lo else "above"
    return [{"id": "dosing.sirolimus_trough", "severity": "warning", "citation": s.citation("sirolimus_trough_low"),
             "message": f"Sirolimus trough {v:g} ng/mL is {word} the target {lo:g}-{hi:g} ng/mL "
                        f"({s.label('sirolimus_trough_low')})",
             "details": {"status": "low" if v < lo else "high"}}]


def _care_cards(case: Case, a: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = a.get("care")
    if items is None:
        items = _trough_fallback(case)
    cards = []
    for item in items:
        iid = str(item.get("id", ""))
        msg = str(item.get("message", ""))
        if iid == "dosing.sirolimus_trough" and item.get("severity") in ("warning", "alert"):
            status = (item.get("details") or {}).get("status")
            word = {"low": "below", "high": "above"}.get(str(status), "out of")
            value = next((o.value for o in sorted((o for o in case.observations if o.analyte == "sirolimus_trough"),
                                                  key=lambda o: o.date or dt.date.min)[-1:]), None)
            summary = f"Sirolimus trough {value:g} ng/mL {word} target range" if value is not None else \
                "Sirolimus trough out of range"
            cards.append(card(summary, "warning", str(item.get("citation")), "sirolimus-trough", msg,
                              links=_link(str(item.get("citation")), "Sirolimus dosing and monitoring")))
        elif iid == "dosing.sirolimus_trough_missing":
            cards.append(card("Sirolimus without a recorded trough level", "warning", str(item.get("citation")),
                              "sirolimus-trough", msg))
        elif iid.startswith("surveillance.") and item.get("severity") == "alert":
            first = msg.split(": ", 1)[0] if ": " in msg else msg
            cards.append(card(f"Lymphoma warning sign: {first}", "warning", str(item.get("citation")),
                              "lymphoma-warning", msg, links=_link(str(item.get("citation")),
                                                                   "Investigate for malignancy (Teachey 2012)")))
    return cards


def _recorded_alps(resources: list[Mapping[str, Any]]) -> str | None:
    """The verification status of an ALPS (D89.82) Condition already in the chart, if any."""
    found = None
    for r in resources:
        if r.get("resourceType") != "Condition" or not any(
                c.get("code") == "D89.82" for c in (r.get("code") or {}).get("coding", ()) or ()):
            continue
        ver = next((str(c.get("code")) for c in (r.get("verificationStatus") or {}).get("coding", ()) or ()),
                   "confirmed")
        if ver in ("refuted", "entered-in-error"):
            continue
        if found != "confirmed":
            found = ver
    return found


def patient_view_cards(case: Case, assessment: Mapping[str, Any], patient_id: str,
                       recorded_alps: str | None = None) -> list[dict[str, Any]]:
    """Cards for the open chart (see the module docstring). ``recorded_alps``: the verification
    status of a D89.82 Condition already in the chart (its suggestion is then left out when it
    would record the same thing)."""
    cards = [c for c in (_criteria_card(case, assessment, patient_id, recorded_alps),
                         _dnt_card(case, assessment, patient_id)) if c]
    return cards + _care_cards(case, assessment)


def _selected(context: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    draft = context.get("draftOrders") or {}
    if not isinstance(draft, Mapping) or draft.get("resourceType") != "Bundle":
        raise CDSHooksError("order-select needs context.draftOrders as a Bundle", field="context.draftOrders")
    selections = context.get("selections")
    if not isinstance(selections, list) or not selections:
        raise CDSHooksError("order-select needs context.selections", field="context.selections",
                            expected="a non-empty array of 'Type/id'")
    wanted = {str(s) for s in selections}
    out = []
    for e in draft.get("entry", ()) or ():
        res = e.get("resource") if isinstance(e, Mapping) else None
        if isinstance(res, Mapping) and f"{res.get('resourceType')}/{res.get('id')}" in wanted:
            out.append(res)
    return out


def _med_name(res: Mapping[str, Any]) -> str | None:
    cc = res.get("medicationCodeableConcept") or {}
    for t in [cc.get("text")] + [c.get("display") for c in cc.get("coding", ()) or ()]:
        name = codes.medication_from_text(t)
        if name:
            return name
    return None


def order_select_cards(case: Case, assessment: Mapping[str, Any], context: Mapping[str, Any],
                       has_alps_condition: bool) -> list[dict[str, Any]]:
    """Cards for the selected draft orders: splenectomy, sirolimus, mycophenolate."""
    alps_features = has_alps_condition or assessment.get("category") in ("definitive", "probable")
    today = case.as_of
    cards: list[dict[str, Any]] = []
    for res in _selected(context):
        rtype = res.get("resourceType")
        if rtype in ("ServiceRequest", "ProcedureRequest") and any(
                codes.procedure_from_coding(c.get("system"), c.get("code")) == "splenectomy"
                for c in (res.get("code") or {}).get("coding", ()) or ()):
            if not alps_features:
                continue
            proposed = case.model_copy(update={"clinical_events": [
                *case.clinical_events, ClinicalEvent(kind="splenectomy_proposed", date=today)]})
            items = [i for i in assess(proposed).get("care", ()) if i["id"] == "safety.splenectomy_proposed"]
            if items:
                item = items[0]
                cards.append(card("Splenectomy in ALPS: avoid unless hypersplenism fails medical treatment", "warning",
                                  str(item["citation"]), "splenectomy", str(item["message"]),
                                  links=_link(str(item["citation"]), "Price 2014: outcome in ALPS-FAS")
                                  + _link("teachey_review2012", "Teachey 2012: avoid splenectomy")))
        elif rtype == "MedicationRequest":
            name = _med_name(res)
            if name is None:
                continue
            dose = None
            for d in res.get("dosageInstruction", ()) or ():
                for dr in d.get("doseAndRate", ()) or ():
                    q = dr.get("doseQuantity") or {}
                    if q.get("code", q.get("unit")) == "mg":
                        dose = q.get("value")
            planned = case.model_copy(update={"medications": [
                *case.medications, Medication(name=name, dose_mg=dose, start=today)]})
            items = assess(planned).get("care", ())
            ids = ("dosing.sirolimus_start",) if name == "sirolimus" else ("dosing.mmf",)
            picked = [i for i in items if i["id"] in ids]
            detail = "\n\n".join(str(i["message"]) for i in picked)
            if name == "sirolimus":
                detail += ("\n\nTherapeutic drug monitoring is required: check a trough 7-14 days after starting "
                           "or changing the dose (Rapamune labelling).")
                cards.append(card("Sirolimus in ALPS: BSA-based dose and trough monitoring", "info",
                                  "bride2016", "sirolimus", detail.strip(),
                                  links=_link("bride2016", "Bride 2016: sirolimus in ALPS")
                                  + _link("rapamune_label", "Sirolimus labelling: monitoring")))
            elif picked:
                cards.append(card("Mycophenolate in ALPS: BSA-based dose", "info", str(picked[0]["citation"]),
                                  "mmf", detail.strip(), links=_link("rao_oliveira2011", "Rao & Oliveira 2011")))
    return cards


# --- the hook call ------------------------------------------------------------------------


def _check_request(service_id: str, body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise CDSHooksError("the request body must be a JSON object", field="body")
    spec = SERVICES[service_id]
    if body.get("hook") != spec["hook"]:
        raise CDSHooksError("wrong hook for this service", field="hook", value=body.get("hook"),
                            expected=spec["hook"])
    instance = body.get("hookInstance")
    try:
        uuid.UUID(str(instance))
    except ValueError:
        raise CDSHooksError("hookInstance must be a UUID", field="hookInstance", value=instance) from None
    context = body.get("context")
    if not isinstance(context, Mapping) or not isinstance(context.get("patientId"), str) or not context["patientId"]:
        raise CDSHooksError("context.patientId is required", field="context.patientId")
    if body.get("fhirAuthorization") is not None and not body.get("fhirServer"):
        raise CDSHooksError("fhirAuthorization given without fhirServer", field="fhirServer")
    return context


def handle_hook(service_id: str, body: Any, fetch: Fetcher | None = None) -> dict[str, Any]:
    """Cards for one hook call. Raises ``CDSHooksError`` (400) or ``_Precondition`` (412)."""
    context = _check_request(service_id, body)
    resources, _fetched = gather(body, fetch)
    patient_id = str(context["patientId"])
    try:
        case, _warnings = resources_to_case(resources, patient_id=patient_id)
    except FHIRError as exc:
        if "no Patient" in exc.message:
            raise _Precondition("the patient resource is missing from prefetch and the FHIR server") from None
        raise
    assessment = assess(case)
    recorded = _recorded_alps(resources)
    if service_id == PATIENT_VIEW:
        cards = patient_view_cards(case, assessment, patient_id, recorded)
    else:
        cards = order_select_cards(case, assessment, context, recorded is not None)
    return {"cards": cards}


# --- HTTP ---------------------------------------------------------------------------------

_ERR_DOC = {"content": {"application/json": {"schema": {"type": "object", "description": "An alpsdx error"}}}}
# Every status a hook call answers with, as the OpenAPI spec documents it.
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid hook request", **_ERR_DOC},
    401: {"description": "Missing, unsigned or invalid client JWT", **_ERR_DOC},
    404: {"description": "No such CDS service", **_ERR_DOC},
    412: {"description": "Prefetch missing and the FHIR server could not supply it", **_ERR_DOC},
}
router = APIRouter(tags=["CDS Hooks 2.0"])


def _remember_in(registry: Any) -> Callable[[str, float], bool] | None:
    """JWT ids recorded in the registry, where every worker process sees them (None: the config's)."""
    if registry is None:
        return None

    def remember(jti: str, exp: float) -> bool:
        now = time.time()
        return bool(registry.record_jti(jti, exp, now, now - LEEWAY_S))

    return remember


def _card_mac(secret: str, service_id: str, head: bytes) -> bytes:
    mac = bytearray(hmac.new(secret.encode(), service_id.encode() + b"\x00" + head, hashlib.sha256).digest()[:8])
    mac[0] = (mac[0] & 0x3F) | 0x80  # the UUID variant bits
    return bytes(mac)


def issued_card_id(secret: str, service_id: str) -> str:
    """A random UUID whose second half authenticates it as issued here by ``service_id``.

    Feedback names cards by uuid; an HMAC (the deployment's secret key) in the id lets any
    worker process, or a restarted one, tell its own cards from others without storing them.
    """
    head = bytearray(os.urandom(8))
    head[6] = (head[6] & 0x0F) | 0x40  # version 4
    return str(uuid.UUID(bytes=bytes(head) + _card_mac(secret, service_id, bytes(head))))


def card_issued_by(secret: str, service_id: str, card_id: str) -> bool:
    """True when ``card_id`` came from ``issued_card_id(secret, service_id)``."""
    try:
        raw = uuid.UUID(str(card_id)).bytes
    except ValueError:
        return False
    return hmac.compare_digest(raw[8:], _card_mac(secret, service_id, raw[:8]))


def _config(request: Request) -> CDSConfig:
    cfg = getattr(request.app.state, "cds_config", None)
    if cfg is None:
        cfg = CDSConfig.from_env()
        request.app.state.cds_config = cfg
    return cfg  # type: ignore[no-any-return]


def _error(status: int, exc: AlpsdxError | str) -> JSONResponse:
    body = exc.to_dict() if isinstance(exc, AlpsdxError) else {"error": "PreconditionFailed", "message": exc}
    return JSONResponse(body, status_code=status)


def _audiences(request: Request, cfg: CDSConfig, service_id: str) -> list[str]:
    base = cfg.base_url or (str(request.base_url).rstrip("/") + "/cds-services")
    if cfg.base_url and not base.endswith("/cds-services"):
        base += "/cds-services"
    endpoint = f"{base}/{service_id}"
    return [endpoint, endpoint + "/feedback"]


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except (ValueError, RecursionError):  # RecursionError: deeply nested JSON (found by fuzzing)
        raise CDSHooksError("the request body is not JSON", field="body") from None


@router.get("/cds-services")
async def cds_discovery() -> Response:
    """The services this CDS service offers, with their prefetch templates."""
    return Response(_discovery_json(), media_type="application/json")


@router.post("/cds-services/{service_id}", responses=_RESPONSES)
async def cds_call(service_id: str, request: Request) -> JSONResponse:
    """A hook call from a CDS client (signed JWT required)."""
    from starlette.concurrency import run_in_threadpool

    if service_id not in SERVICES:
        return _error(404, CDSHooksError("no such CDS service", field="service", value=service_id,
                                         expected=" | ".join(SERVICES)))
    cfg = _config(request)
    raw = await request.body()
    auth = request.headers.get("authorization")
    audiences = _audiences(request, cfg, service_id)
    registry = getattr(request.app.state, "registry", None)
    secret = str(request.app.state.secret)

    def verified_body() -> Any:
        verify_client_jwt(auth, audiences, cfg, _remember_in(registry))
        try:  # after the JWT: nothing is parsed for a stranger
            return json.loads(raw)
        except ValueError:
            raise CDSHooksError("the request body is not JSON", field="body") from None

    def cards(body: Any) -> dict[str, Any]:
        result = handle_hook(service_id, body, None)
        for c in result["cards"]:
            c["uuid"] = issued_card_id(secret, service_id)
        return result

    # The work is CPU-bound (a few ms): done on the event loop, as a worker thread would only
    # add GIL hand-offs. What may wait on the network goes to a thread: keys fetched from a
    # JWKS URL or jku, a JWT id recorded in PostgreSQL, FHIR reads from the client's fhirServer.
    verify_waits = (cfg.jwks_url is not None or bool(cfg.jku_allowlist)
                    or (registry is not None and registry.engine.dialect.name != "sqlite"))
    try:
        body = await run_in_threadpool(verified_body) if verify_waits else verified_body()
        fetches = isinstance(body, Mapping) and bool(body.get("fhirServer"))
        result = await run_in_threadpool(cards, body) if fetches else cards(body)
    except AuthError as exc:
        return _error(401, exc)
    except _Precondition as exc:
        return _error(412, str(exc))
    except InputError as exc:
        return _error(400, exc)
    except AlpsdxError as exc:
        return _error(500, exc)
    return JSONResponse(result)


_OUTCOMES = ("accepted", "overridden")


@router.post("/cds-services/{service_id}/feedback", responses=_RESPONSES)
async def cds_feedback(service_id: str, request: Request) -> JSONResponse:
    """Feedback on cards (accepted / overridden): checked and stored in the audit log."""
    from starlette.concurrency import run_in_threadpool

    if service_id not in SERVICES:
        return _error(404, CDSHooksError("no such CDS service", field="service", value=service_id))
    cfg = _config(request)
    registry = getattr(request.app.state, "registry", None)

    try:
        claims = await run_in_threadpool(verify_client_jwt, request.headers.get("authorization"),
                                         _audiences(request, cfg, service_id), cfg, _remember_in(registry))
    except AuthError as exc:
        return _error(401, exc)
    try:
        body = await _json(request)
        items = body.get("feedback") if isinstance(body, Mapping) else None
        if not isinstance(items, list) or not items:
            raise CDSHooksError("feedback must be a non-empty array", field="feedback")
        records = []
        for i, fb in enumerate(items):
            where = f"feedback[{i}]"
            if not isinstance(fb, Mapping) or not fb.get("card"):
                raise CDSHooksError("each feedback needs the card's uuid", field=f"{where}.card")
            if fb.get("outcome") not in _OUTCOMES:
                raise CDSHooksError("unknown outcome", field=f"{where}.outcome", value=fb.get("outcome"),
                                    expected=" | ".join(_OUTCOMES))
            if not fb.get("outcomeTimestamp"):
                raise CDSHooksError("outcomeTimestamp is required", field=f"{where}.outcomeTimestamp")
            accepted = [str(s.get("id")) for s in fb.get("acceptedSuggestions", ()) or () if isinstance(s, Mapping)]
            if fb["outcome"] == "accepted" and fb.get("overrideReason"):
                raise CDSHooksError("an accepted card has no override reason", field=f"{where}.overrideReason")
            reason = fb.get("overrideReason") or {}
            known = card_issued_by(str(request.app.state.secret), service_id, str(fb["card"]))
            records.append({
                "service": service_id, "card": str(fb["card"]), "outcome": fb["outcome"],
                "outcomeTimestamp": str(fb["outcomeTimestamp"]), "acceptedSuggestions": accepted,
                "overrideReason": (reason.get("reason") or {}).get("code") if isinstance(reason, Mapping) else None,
                "userComment": reason.get("userComment") if isinstance(reason, Mapping) else None,
                "card_issued_here": known,
            })
    except AlpsdxError as exc:
        return _error(400, exc)
    actor = Actor(f"cds-client:{claims.get('iss')}", None, request.client.host if request.client else None)
    for rec in records:
        if registry is not None:
            await run_in_threadpool(registry.audit, actor, "cds_feedback", "cds_card", entity_id=rec["card"],
                                    detail=rec)
        else:  # an app without a registry keeps feedback in memory
            request.app.state.__dict__.setdefault("cds_feedback", []).append(rec)
    return JSONResponse({})
