"""Fuzz the CDS Hooks request parser: an HTTP body as the service reads it, then the hook logic.

Bytes in -> alpsdx.interop.cds._json (the endpoint's own body reader, on a real Starlette
Request) -> handle_hook(patient-view or order-select); cards, a CDSHooksError/FHIRError,
or the designed 412 precondition (``_Precondition``: data missing and no FHIR server) out.
No network: the FHIR-server fetcher is replaced by one that reports the server unreachable.
Seeds: hook requests built around tests/data/fhir bundles.
Run: .venv/bin/python fuzz/fuzz_cds.py -max_total_time=600   (see README.md)
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, main


def make_target() -> tuple[Callable[[bytes], Any], tuple[type[BaseException], ...]]:
    from starlette.requests import Request

    from alpsdx.interop import cds

    services = list(cds.SERVICES)

    def no_server(server: str, query: str, auth: Any) -> Any:
        raise cds._Precondition("FHIR server unreachable (fuzz harness)")

    def request_for(body: bytes) -> Request:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "path": "/cds-services/x", "headers": [],
                 "query_string": b""}
        return Request(scope, receive)

    # one event loop for every input: asyncio.run() per input (a new loop, signal handlers)
    # cost more than the parsing under test
    loop = asyncio.new_event_loop()

    def target(data: bytes) -> None:
        if not data:
            return
        service = services[data[0] % len(services)]
        body = loop.run_until_complete(cds._json(request_for(data[1:])))
        json.dumps(cds.handle_hook(service, body, no_server))

    return target, (cds._Precondition,)


def seeds() -> Iterable[tuple[str, bytes]]:
    from alpsdx.interop import cds

    services = list(cds.SERVICES)
    draft = {"resourceType": "Bundle", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "mr1", "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/PID"}, "medicationCodeableConcept": {"text": "sirolimus"}}}]}
    for i, p in enumerate(sorted((REPO / "tests" / "data" / "fhir").glob("*.json"))):
        bundle = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            continue
        pid = next((e["resource"].get("id") for e in bundle.get("entry", [])
                    if e.get("resource", {}).get("resourceType") == "Patient"), "p1")
        for j, (service, spec) in enumerate(cds.SERVICES.items()):
            ctx: dict[str, Any] = {"patientId": pid, "userId": "Practitioner/1"}
            if spec["hook"] == "order-select":
                ctx["selections"] = ["MedicationRequest/mr1"]
                ctx["draftOrders"] = json.loads(json.dumps(draft).replace("PID", str(pid)))
            req = {"hook": spec["hook"], "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                   "context": ctx, "prefetch": {k: bundle for k in cds.prefetch_templates()}}
            yield f"req{i}_{j}", bytes([services.index(service)]) + json.dumps(req).encode()


if __name__ == "__main__":
    main("cds", make_target, seeds, default_max_len=65536)
