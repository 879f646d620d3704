"""Load on the real web app: CDS Hooks ``patient-view`` and the patient page, then overload.

``alpsdx serve --workers N`` (default 2, one per core; SQLite registry) runs on 127.0.0.1,
configured to trust one ES256 JWK for CDS clients. This process is an open-loop load
generator (``_loadgen``: pre-serialised keep-alive requests, so the generator takes little of
the CPU the server needs), loopback only, bounded in count and time: requests are scheduled at a fixed rate and each latency is measured from its
*scheduled* send time, so queueing counts.

Phases (each ``--seconds`` long, default 10):

1. baseline: ``GET /healthz`` at 200/s (the framework floor, measured in the same run);
2. CDS Hooks: ``POST /cds-services/alpsdx-patient-view`` at 200/s, a fresh signed JWT and full
   prefetch for one of 50 synthetic patients each (payloads from ``bench_cds.py``);
3. patient page: ``GET /patients/{id}`` at 50/s, signed in (session cookie), 20 patients;
4. overload: the patient page at ``--overload`` requests/s (default 400) with up to 512 in
   flight: the app must shed with 503 (``ALPSDX_MAX_IN_FLIGHT``), not crash or corrupt — after
   it, ``/healthz`` answers, the page works again and ``Registry.check()`` passes.

Targets (issue 9): CDS Hooks p99 < 50 ms at 200/s; patient page p99 < 200 ms at 50/s.
Run: ``.venv/bin/python benchmarks/load.py [--seconds 10] [--overload 400]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_cds  # noqa: E402  (payload builders shared with the CDS benchmark)
from _loadgen import build_request, run_load  # noqa: E402

ISSUER = "https://ehr.load.example"
ADMIN_PASSWORD = "load-admin-pass-1"
PAGE_PATIENTS = 20


def _login(base: str) -> tuple[dict[str, str], str]:
    with httpx.Client(base_url=base, timeout=60) as c:
        c.get("/login")
        r = c.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                   "csrf_token": c.cookies.get("alpsdx_login_csrf") or "", "next": "/patients"})
        if r.status_code != 303:
            raise SystemExit(f"login failed: {r.status_code}")
        m = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/patients").text)
        assert m
        return {"alpsdx_session": c.cookies["alpsdx_session"]}, m.group(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each phase (default 10)")
    ap.add_argument("--cds-rate", type=float, default=200.0)
    ap.add_argument("--page-rate", type=float, default=50.0)
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (alpsdx serve --workers; default 2, one per core)")
    ap.add_argument("--overload", type=float, default=400.0, help="patient-page requests/s in the overload phase")
    args = ap.parse_args()

    import jwt

    private, jwk = bench_cds.signing_key("load")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        proc, port, log = bench_cds.start_server(work, jwk, args.workers, issuer=ISSUER,
                                                 admin_password=ADMIN_PASSWORD)
        base = f"http://127.0.0.1:{port}"
        db_url = f"sqlite:///{work / 'registry.sqlite3'}"
        try:
            cookies, csrf = _login(base)
            pids = []
            with httpx.Client(base_url=base, cookies=cookies, headers={"X-CSRF-Token": csrf}, timeout=60) as c:
                for i in range(PAGE_PATIENTS):
                    r = c.post("/api/patients", json={**bench_cds._case(i), "id": f"load-{i}"})
                    if r.status_code != 201:
                        raise SystemExit(f"creating patients failed: {r.status_code} {r.text[:300]}")
                    pids.append(r.json()["id"])
            for _ in range(bench_cds.WARM_PASSES):  # warm-up (templates, caches) in every worker, new connections
                for pid in pids:
                    httpx.get(f"{base}/patients/{pid}", cookies=cookies, timeout=60)

            service = "alpsdx-patient-view"
            aud = f"{base}/cds-services/{service}"
            bodies: list[bytes | None] = []
            for i in range(bench_cds.PATIENTS):
                pid_s, pre = bench_cds._prefetch(i)
                bodies.append(json.dumps({"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                                          "context": {"userId": "Practitioner/load", "patientId": pid_s},
                                          "prefetch": pre}).encode())
            n_cds = int(args.cds_rate * args.seconds)

            def token() -> str:
                now = int(time.time())
                return jwt.encode({"iss": ISSUER, "sub": "load", "aud": aud, "iat": now, "exp": now + 280,
                                   "jti": str(uuid.uuid4())}, private, algorithm="ES256", headers={"kid": "load"})

            for i in range(bench_cds.PATIENTS * bench_cds.WARM_PASSES):  # warm-up (every worker), not timed
                r = httpx.post(aud, content=bodies[i % bench_cds.PATIENTS], timeout=60,
                               headers={"Authorization": f"Bearer {token()}", "Content-Type": "application/json"})
                if r.status_code != 200:
                    raise SystemExit(f"CDS warm-up failed: {r.status_code} {r.text[:300]}")
            cds_heads = [{"Authorization": f"Bearer {token()}", "Content-Type": "application/json"} for _ in range(n_cds)]

            host = f"127.0.0.1:{port}"
            path = f"/cds-services/{service}"
            floor = run_load("127.0.0.1", port, [build_request("GET", host, "/healthz")], args.cds_rate,
                             args.seconds, 64)
            calls = [build_request("POST", host, path, cds_heads[k], bodies[k % len(bodies)]) for k in range(n_cds)]
            cds = run_load("127.0.0.1", port, calls, args.cds_rate, args.seconds, 64)
            page_urls = [f"{base}/patients/{pid}" for pid in pids]
            cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
            pages = [build_request("GET", host, f"/patients/{pid}", cookie) for pid in pids]
            page = run_load("127.0.0.1", port, pages, args.page_rate, args.seconds, 64)
            over = run_load("127.0.0.1", port, pages, args.overload, min(args.seconds, 5.0), 512)
            alive = proc.poll() is None and httpx.get(f"{base}/healthz", timeout=10).status_code == 200
            time.sleep(1.0)
            after = httpx.get(page_urls[0], cookies=cookies, timeout=30).status_code
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()

        from alpsdx.store import Registry, make_engine

        engine = make_engine(db_url)
        report = Registry(engine, work / "uploads").check()
        engine.dispose()

    load = os.getloadavg()
    print(f"host: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          "(other processes compete with the server and the load generator)")
    print(f"server: alpsdx serve ({args.workers} worker(s), SQLite); ALPSDX_MAX_IN_FLIGHT={os.environ.get('ALPSDX_MAX_IN_FLIGHT', '32')}")
    for name, r in (("healthz (baseline)", floor), ("cds patient-view", cds), ("patient page", page),
                    ("overload page", over)):
        print(f"{name:20s} offered={r['rps']:.0f}/s sent={r['sent']} ok={r['ok']} ok_rps={r['ok_rps']:.1f} "
              f"p50={r['p50_ms']:.1f} ms p95={r['p95_ms']:.1f} ms p99={r['p99_ms']:.1f} ms statuses={r['statuses']} "
              f"generator_cpu={r['generator_cpu_ms_per_request']:.2f} ms/request")
    print(f"cds p99 / baseline p99: x{cds['p99_ms'] / floor['p99_ms']:.1f}; target p99 < 50 ms at {args.cds_rate:g}/s: "
          f"{'met' if cds['p99_ms'] < 50 and cds['errors'] == 0 else 'NOT met'}")
    print(f"patient page target p99 < 200 ms at {args.page_rate:g}/s: "
          f"{'met' if page['p99_ms'] < 200 and page['errors'] == 0 else 'NOT met'}")
    print(f"overload: shed (503) {over['shed']}, other errors {over['errors']} "
          f"({over['errors'] / max(1, over['sent']):.1%}); server alive after: {alive}; page after: {after}; "
          f"db check ok: {report['ok']} {report['problems'][:3]}")
    print(f"RESULT cds_rps={cds['ok_rps']:.1f} cds_p50_ms={cds['p50_ms']:.1f} cds_p95_ms={cds['p95_ms']:.1f} "
          f"cds_p99_ms={cds['p99_ms']:.1f} page_rps={page['ok_rps']:.1f} page_p50_ms={page['p50_ms']:.1f} "
          f"page_p95_ms={page['p95_ms']:.1f} page_p99_ms={page['p99_ms']:.1f} baseline_p99_ms={floor['p99_ms']:.1f} "
          f"overload_sent={over['sent']} overload_shed={over['shed']} overload_errors={over['errors']} "
          f"alive_after={int(alive)} db_check_ok={int(report['ok'])} workers={args.workers}")


if __name__ == "__main__":
    main()
