"""Fuzz the FHIR R4 Bundle importer (as `alpsdx evaluate FILE.json` reaches it) and the CDS Hooks
request parser (the endpoint's own body reader, then the hook logic, no network)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import REPO, fuzz_settings, mutated, outcome, with_one_value_replaced
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from alpsdx.commands.core import load_any
from alpsdx.engine import assess
from alpsdx.errors import CDSHooksError, InputError
from alpsdx.interop import cds
from alpsdx.interop.fhir_import import bundle_to_case

FHIR_FILES = sorted((REPO / "tests" / "data" / "fhir").glob("*.json"))
BUNDLES = [json.loads(p.read_text(encoding="utf-8")) for p in FHIR_FILES]
BUNDLES = [b for b in BUNDLES if isinstance(b, dict) and b.get("resourceType") == "Bundle"]
SEED_BYTES = [p.read_bytes() for p in FHIR_FILES]


@pytest.fixture(scope="module")
def tmp_json() -> Iterator[Path]:
    fd, name = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    yield Path(name)
    Path(name).unlink(missing_ok=True)


def _load_and_assess(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    assess(load_any(str(path)), "all", care=False)


@fuzz_settings(25)
@given(data=mutated(SEED_BYTES, max_edits=4))
def test_fhir_file_bytes(tmp_json: Path, data: bytes) -> None:
    assert outcome(_load_and_assess, tmp_json, data) in ("valid", "typed error")


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                      st.text(max_size=10), st.sampled_from(["2025-01-01", "urn:uuid:x", "Patient/p1", "mg/dL"]))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


@fuzz_settings(60)
@given(st.data())
def test_bundle_with_one_value_replaced(data: st.DataObject) -> None:
    doc = with_one_value_replaced(data, BUNDLES, JSON_VALUE)
    assert outcome(lambda: assess(bundle_to_case(doc).case, "all", care=False)) in ("valid", "typed error")


# --- CDS Hooks -----------------------------------------------------------------------------

def _request(body: bytes) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/cds-services/x", "headers": [],
                    "query_string": b""}, receive)


def _no_server(server: str, query: str, auth: Any) -> Any:
    raise cds._Precondition("FHIR server unreachable (test)")


def _hook(service: str, body: bytes) -> None:
    parsed = asyncio.run(cds._json(_request(body)))
    json.dumps(cds.handle_hook(service, parsed, _no_server))


def hook_requests(bundles: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    """(service id, request body) pairs: each bundle as prefetch, for each hook."""
    from alpsdx.interop import cds

    draft = {"resourceType": "Bundle", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "mr1", "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/PID"},
        "medicationCodeableConcept": {"text": "sirolimus"}}}]}
    out = []
    for b in bundles:
        pid = next((e["resource"].get("id") for e in b.get("entry", [])
                    if e.get("resource", {}).get("resourceType") == "Patient"), "p1")
        for service, spec in cds.SERVICES.items():
            ctx: dict[str, Any] = {"patientId": pid, "userId": "Practitioner/1"}
            if spec["hook"] == "order-select":
                ctx["selections"] = ["MedicationRequest/mr1"]
                ctx["draftOrders"] = json.loads(json.dumps(draft).replace("PID", str(pid)))
            body = {"hook": spec["hook"], "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                    "context": ctx, "prefetch": {k: b for k in cds.prefetch_templates()}}
            out.append((service, json.dumps(body).encode()))
    return out


HOOK_SEEDS = hook_requests(BUNDLES)


def test_cds_seeds_give_cards() -> None:
    valid = [s for s, b in HOOK_SEEDS if outcome(_hook, s, b, allowed=(cds._Precondition,)) == "valid"]
    assert set(valid) == set(cds.SERVICES), "each service needs a valid seed request to mutate"


@fuzz_settings(40)
@given(st.data())
def test_cds_hook_bodies(data: st.DataObject) -> None:
    service, seed = data.draw(st.sampled_from(HOOK_SEEDS))
    body = data.draw(mutated([seed], max_edits=4))
    assert outcome(_hook, service, body, allowed=(cds._Precondition,)) in ("valid", "typed error")


@fuzz_settings(60)
@given(st.sampled_from(sorted(cds.SERVICES)), st.binary(max_size=200))
def test_cds_any_bytes(service: str, body: bytes) -> None:
    assert outcome(_hook, service, body, allowed=(cds._Precondition,)) in ("valid", "typed error")


# --- regressions (docs/reliability.md) -------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_regression_cds_deeply_nested_body_is_400_not_500() -> None:
    with pytest.raises(CDSHooksError, match="not JSON"):
        asyncio.run(cds._json(_request(DEEP)))


@pytest.mark.parametrize("text", [b'{"a": ' + DEEP + b"}", b'{"resourceType": "Bundle", "total": ' + b"9" * 5000 + b"}"])
def test_regression_cli_json_file_errors_are_typed(tmp_json: Path, text: bytes) -> None:
    tmp_json.write_bytes(text)
    with pytest.raises(InputError):
        load_any(str(tmp_json))


@pytest.mark.parametrize(("key", "value"), [("fullUrl", 47), ("fullUrl", ["urn:uuid:x"]),
                                            ("request", "POST"), ("request", [1])])
def test_regression_entry_fullurl_and_request_of_the_wrong_type_are_typed(key: str, value: Any) -> None:
    # atheris (fhir_struct, 2026-11-27 second run): a number as the Patient entry's fullUrl
    # reached str.startswith -> AttributeError; a non-object request would have too
    from alpsdx.errors import FHIRError

    bundle = json.loads((REPO / "tests" / "data" / "fhir" / "synthea_alps_fas.json").read_text(encoding="utf-8"))
    bundle["entry"][0][key] = value
    with pytest.raises(FHIRError) as e:
        bundle_to_case(bundle)
    assert e.value.field == f"Bundle.entry[0].{key}"
