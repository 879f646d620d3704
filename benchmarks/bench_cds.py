"""CDS Hooks ``patient-view`` under a bounded loopback load, against the same service's
discovery endpoint (the framework floor) measured in the same run.

The service is the deployment itself, ``alpsdx serve --workers N`` (default 2, one per core;
``--workers 1`` for the single-process figure), with a SQLite registry, on 127.0.0.1. This
process is an open-loop load generator (``_loadgen``: pre-serialised keep-alive requests, its
own CPU cost printed): requests are scheduled at a fixed rate (default 200/s for 10 s, at most
64 in flight) and each latency is measured from its *scheduled* send time, so queueing behind
a slow server counts. Every
``patient-view`` call carries a fresh ES256-signed JWT (iss, aud, exp, iat, jti) and full
prefetch (Patient, Observations, Conditions, Procedures, medications, family history) for
one of 50 distinct synthetic patients, cycled. The content-addressed FHIR validation cache
(``alpsdx.interop.validation``) is warm after the warm-up passes over the 50 patients, as it is
for an EHR that re-sends a chart's unchanged resources; the evaluation itself (criteria,
care, genetics) runs on every call.

Run: ``.venv/bin/python benchmarks/bench_cds.py [--rate 200] [--seconds 10] [--workers 2]``.
Target (issue 7): p99 < 50 ms at 200 requests/s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loadgen import build_request, run_load

ISSUER = "https://ehr.bench.example"
SECRET = "bench-secret-0123456789abcdefghij"
PATIENTS = 50
# Warm-up passes over the patients, each request on a new connection: the kernel hands
# connections to either worker process, and each process keeps its own validation cache.
WARM_PASSES = 8
MAX_IN_FLIGHT = 64


def signing_key(kid: str) -> tuple[Any, dict[str, Any]]:
    """A fresh ES256 key for the simulated EHR, and its public JWK."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=kid, alg="ES256", use="sig")
    return private, jwk


def start_server(workdir: Path, jwk: dict[str, Any], workers: int, *, issuer: str = ISSUER,
                 admin_password: str = "bench-admin-pass-7") -> tuple[subprocess.Popen[bytes], int, Any]:
    """``alpsdx serve`` on a free loopback port trusting ``jwk`` for CDS clients; waits for /healthz."""
    import socket

    import httpx

    (workdir / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "ALPSDX_DATABASE_URL": f"sqlite:///{workdir / 'registry.sqlite3'}",
           "ALPSDX_SECRET_KEY": SECRET, "ALPSDX_ADMIN_PASSWORD": admin_password,
           "ALPSDX_UPLOAD_DIR": str(workdir / "uploads"), "ALPSDX_COOKIE_SECURE": "0",
           "ALPSDX_CDS_JWKS": str(workdir / "jwks.json"), "ALPSDX_CDS_ISSUERS": issuer}
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "alpsdx.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(1200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port, log
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server did not start: {(workdir / 'server.log').read_text()[-2000:]}")


def _case(i: int) -> dict[str, Any]:
    today = dt.date.today()
    d = (today - dt.timedelta(days=3)).isoformat()
    onset = (today - dt.timedelta(days=500)).isoformat()
    return {
        "id": f"bench-{i}", "sex": "female" if i % 2 else "male",
        "birth_date": (today - dt.timedelta(days=820 + i)).isoformat(),
        "findings": {"lymphadenopathy": {"present": True, "onset": onset},
                     "splenomegaly": {"present": True, "onset": onset},
                     "autoimmune_cytopenias": ["hemolytic_anemia", "thrombocytopenia"],
                     "family_history_lymphoproliferation": bool(i % 3)},
        "observations": [
            {"analyte": "dnt_pct_lymphocytes", "value": 2.0 + (i % 7) * 0.5, "unit": "%", "date": d},
            {"analyte": "lymphocytes_abs", "value": 4.5, "unit": "10*9/L", "date": d},
            {"analyte": "igg", "value": 1500 + 20 * i, "unit": "mg/dL", "date": d},
            {"analyte": "vitamin_b12", "value": 900 + 30 * i, "unit": "pg/mL", "date": d},
            {"analyte": "sfasl", "value": 150 + 10 * i, "unit": "pg/mL", "date": d},
            {"analyte": "il10", "value": 10 + i, "unit": "pg/mL", "date": d},
            {"analyte": "hemoglobin", "value": 9.0, "unit": "g/dL", "date": d},
            {"analyte": "platelets", "value": 60 + i, "unit": "10*9/L", "date": d},
            {"analyte": "sirolimus_trough", "value": 2.0 + (i % 20), "unit": "ng/mL", "date": d},
        ],
        "variants": [{"gene": "FAS", "hgvs_c": "NM_000043.6:c.779A>G", "hgvs_p": "p.Asp260Gly",
                      "origin": "germline", "zygosity": "heterozygous", "classification": "pathogenic"}]
        if i % 2 else [],
        "medications": [{"name": "sirolimus", "dose_mg": 1.0, "frequency": "twice daily",
                         "start": (today - dt.timedelta(days=90)).isoformat()}],
        "clinical_events": [{"kind": "b_symptoms", "date": d, "note": "fever"}] if i % 5 == 0 else [],
        "height_cm": 90, "weight_kg": 13,
    }


def _prefetch(i: int) -> tuple[str, dict[str, Any]]:
    """The discovery templates' answers for one patient, built from alpsdx's own R4 export."""
    from alpsdx.interop.fhir_export import case_to_resources, make_bundle
    from alpsdx.model import case_from_dict

    pid = f"bench-{i}"
    resources = case_to_resources(case_from_dict(_case(i)), pid)

    def search(*types: str) -> dict[str, Any]:
        return make_bundle([r for r in resources if r["resourceType"] in types], bundle_type="searchset")

    return pid, {"patient": resources[0], "observations": search("Observation"), "conditions": search("Condition"),
                 "procedures": search("Procedure"), "medicationRequests": search("MedicationRequest"),
                 "medicationStatements": search("MedicationStatement"),
                 "familyHistory": search("FamilyMemberHistory")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each phase (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (default 2, one per core)")
    args = ap.parse_args()

    import httpx
    import jwt

    private, jwk = signing_key("bench")
    with tempfile.TemporaryDirectory() as tmp:
        proc, port, log = start_server(Path(tmp), jwk, args.workers)
        try:
            base = f"http://127.0.0.1:{port}"
            service = "alpsdx-patient-view"
            aud = f"{base}/cds-services/{service}"
            bodies = []
            for i in range(PATIENTS):
                pid, pre = _prefetch(i)
                bodies.append(json.dumps({"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                                          "context": {"userId": "Practitioner/bench", "patientId": pid},
                                          "prefetch": pre}).encode())
            n = int(args.rate * args.seconds)
            now = int(time.time())
            tokens = [jwt.encode({"iss": ISSUER, "sub": "bench", "aud": aud, "iat": now, "exp": now + 280,
                                  "jti": str(uuid.uuid4())}, private, algorithm="ES256", headers={"kid": "bench"})
                      for _ in range(n + PATIENTS * WARM_PASSES)]
            # warm-up (imports, caches in every worker), not timed
            for i in range(PATIENTS * WARM_PASSES):
                res = httpx.post(aud, content=bodies[i % PATIENTS], timeout=60,
                                 headers={"Authorization": f"Bearer {tokens[n + i]}",
                                          "Content-Type": "application/json"})
                if res.status_code != 200:
                    raise SystemExit(f"warm-up failed: {res.status_code} {res.text[:300]}")
            cards = len(res.json()["cards"])
            # service time: one request at a time (no queueing), for reference
            seq: list[float] = []
            with httpx.Client(timeout=60) as client:
                for k in range(min(100, n)):
                    now = int(time.time())
                    tok = jwt.encode({"iss": ISSUER, "sub": "bench", "aud": aud, "iat": now, "exp": now + 280,
                                      "jti": str(uuid.uuid4())}, private, algorithm="ES256", headers={"kid": "bench"})
                    t = time.perf_counter()
                    client.post(aud, content=bodies[k % PATIENTS], headers={"Authorization": f"Bearer {tok}",
                                                                            "Content-Type": "application/json"})
                    seq.append((time.perf_counter() - t) * 1000.0)
            seq.sort()
            host = f"127.0.0.1:{port}"
            path = f"/cds-services/{service}"
            floor = run_load("127.0.0.1", port, [build_request("GET", host, "/cds-services")], args.rate,
                             args.seconds, MAX_IN_FLIGHT)
            calls = [build_request("POST", host, path, {"Authorization": f"Bearer {tokens[k]}",
                                                        "Content-Type": "application/json"}, bodies[k % PATIENTS])
                     for k in range(n)]
            pv = run_load("127.0.0.1", port, calls, args.rate, args.seconds, MAX_IN_FLIGHT)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()

    load = os.getloadavg()
    print(f"host: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          "(other processes compete with the server and the load generator)")
    print(f"server: alpsdx serve --workers {args.workers} (SQLite registry)")
    print(f"offered load {args.rate:g} req/s for {args.seconds:g} s per phase, <= {MAX_IN_FLIGHT} in flight, "
          f"{PATIENTS} patients cycled ({cards} cards for the last warm-up patient)")
    for name, r in (("discovery (baseline)", floor), ("patient-view", pv)):
        print(f"{name:22s} sent={r['sent']} not_ok={r['sent'] - r['ok']} rps={r['rps']:.1f} "
              f"p50={r['p50_ms']:.1f} ms p99={r['p99_ms']:.1f} ms max={r['max_ms']:.1f} ms "
              f"statuses={r['statuses']} connections={r['connections']} generator_cpu={r['generator_cpu_ms_per_request']:.2f} ms/request")
    print(f"patient-view one at a time: n={len(seq)} p50={statistics.median(seq):.1f} ms "
          f"p99={seq[min(len(seq) - 1, int(0.99 * len(seq)))]:.1f} ms (service time without queueing)")
    print(f"patient-view / discovery: p50 x{pv['p50_ms'] / floor['p50_ms']:.1f}, "
          f"p99 x{pv['p99_ms'] / floor['p99_ms']:.1f}; target p99 < 50 ms at {args.rate:g}/s: "
          f"{'met' if pv['p99_ms'] < 50 and (pv['sent'] - pv['ok']) == 0 else 'NOT met'}")
    print(f"RESULT rps={pv['rps']:.1f} p50_ms={pv['p50_ms']:.1f} p99_ms={pv['p99_ms']:.1f} "
          f"baseline_rps={floor['rps']:.1f} baseline_p50_ms={floor['p50_ms']:.1f} "
          f"baseline_p99_ms={floor['p99_ms']:.1f} workers={args.workers} errors={(pv['sent'] - pv['ok'])}")


if __name__ == "__main__":
    main()
