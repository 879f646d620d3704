"""Crash safety: ``alpsdx serve`` as a real process, concurrent writers through the JSON API,
SIGKILL mid-stream, restart, and check what survived — on SQLite and on PostgreSQL.

Every write is tagged (the observations' ``source`` names the writer and the write), so after
the restart the test can tell, for each write:

- acknowledged (2xx) -> it must be there, whole;
- in flight when the server died (no answer) -> all of it or none of it;
- a patient that exists -> it has every observation of the case that created it and an
  evaluation (no half-written patient), and it was created by one of our writes;
- an upload (VCF) acknowledged -> its file is listed with its SHA-256 and its bytes read back;
  whatever was in flight -> no file row without its complete file on disk.

Then the registry's own integrity check (foreign keys, audit hash chain, every referenced file
present with the right SHA-256, every stored evaluation reproduced from its stored input) must pass. Several kill points, one database, cumulative.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from liveserver import LiveServer

from alpsdx.store import Registry, make_engine

VCF = Path(__file__).resolve().parents[1] / "data" / "genetics" / "germline_dd_missense.vep.vcf"
WRITERS = 4
# Kill when this many writes of the cycle have been acknowledged (the rest are still in flight).
KILL_AFTER = (3, 12, 30)
OBS_PER_WRITE = 3


@dataclass
class Write:
    kind: str  # "create" | "observations" | "upload"
    tag: str
    patient: str  # external id
    sha256: str | None = None
    status: str = "pending"  # "ok" | "in_flight" | "refused:<code>"


@dataclass
class Ledger:
    writes: list[Write] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: int = 0
    server_errors: list[str] = field(default_factory=list)

    def add(self, w: Write) -> None:
        with self.lock:
            self.writes.append(w)

    def ack(self) -> None:
        with self.lock:
            self.acked += 1


def _obs(tag: str, seq: int) -> list[dict[str, Any]]:
    day = dt.date(2001, 1, 1) + dt.timedelta(days=seq % 7000)
    return [
        {"analyte": "igg", "value": 800 + seq % 500, "unit": "mg/dL", "date": day.isoformat(), "source": tag},
        {"analyte": "platelets", "value": 150 + seq % 200, "unit": "10*9/L", "date": day.isoformat(), "source": tag},
        {"analyte": "hemoglobin", "value": 12.5, "unit": "g/dL", "date": day.isoformat(), "source": tag},
    ]


def _writer(server: LiveServer, cycle: int, w: int, ledger: Ledger, stop: threading.Event, counter: list[int]) -> None:
    """Create a patient, then loop: add observations to it, upload a VCF, create another patient."""
    try:
        client = server.session()
    except httpx.HTTPError:
        return
    own: list[tuple[int, str]] = []  # (registry id, external id) of patients this writer created
    i = 0
    try:
        while not stop.is_set():
            i += 1
            seq = cycle * 100_000 + w * 10_000 + i
            tag = f"c{cycle}-w{w}-{i}"
            step = i % 3
            if step == 1 or not own:
                ext = f"crash-{tag}"
                write = Write("create", tag, ext)
                body = {"id": ext, "sex": "female", "age_years": 9, "observations": _obs(tag, seq)}
                call = ("POST", "/api/patients", {"json": body})
            elif step == 2:
                pid, ext = own[-1]
                write = Write("observations", tag, ext)
                call = ("POST", f"/api/patients/{pid}/observations", {"json": _obs(tag, seq)})
            else:
                pid, ext = own[-1]
                # A distinct file per write (a comment line), so each upload writes a new blob.
                data = VCF.read_bytes().replace(b"\n", f"\n##alpsdx_reliability={tag}\n".encode(), 1)
                write = Write("upload", tag, ext, sha256=hashlib.sha256(data).hexdigest())
                call = ("POST", f"/api/patients/{pid}/files",
                        {"params": {"kind": "vcf", "filename": f"{tag}.vcf"}, "content": data,
                         "headers": {"Content-Type": "application/octet-stream"}})
            ledger.add(write)
            method, url, kw = call
            try:
                r = client.request(method, url, **kw)
            except httpx.HTTPError:
                write.status = "in_flight"  # the server died under this request
                return
            if 200 <= r.status_code < 300:
                write.status = "ok"
                if write.kind == "create":
                    own.append((int(r.json()["id"]), write.patient))
                ledger.ack()
            else:
                write.status = f"refused:{r.status_code}"
                if r.status_code >= 500:
                    ledger.server_errors.append(f"{method} {url} -> {r.status_code} {r.text[:200]}")
            counter[0] += 1
    finally:
        client.close()


def _run_cycle(server: LiveServer, cycle: int, kill_after: int, ledger: Ledger) -> None:
    stop = threading.Event()
    counters = [[0] for _ in range(WRITERS)]
    start_acked = ledger.acked
    threads = [threading.Thread(target=_writer, args=(server, cycle, w, ledger, stop, counters[w]), daemon=True)
               for w in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    while ledger.acked - start_acked < kill_after and time.monotonic() < deadline:
        time.sleep(0.005)
    assert ledger.acked - start_acked >= kill_after, f"only {ledger.acked - start_acked} writes acknowledged in 90 s"
    server.kill()  # SIGKILL, with requests in flight
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)


def _state(server: LiveServer) -> dict[str, dict[str, Any]]:
    """Every crash-test patient's record, read back through the restarted server's API."""
    out: dict[str, dict[str, Any]] = {}
    c = server.session()
    try:
        rows = c.get("/api/patients", params={"limit": 5000})
        assert rows.status_code == 200, rows.text
        for row in rows.json():
            if row["external_id"].startswith("crash-"):
                rec = c.get(f"/api/patients/{row['id']}")
                assert rec.status_code == 200, rec.text
                out[row["external_id"]] = rec.json()
        for rec in out.values():
            for f in rec["files"]:
                content = c.get(f"/api/patients/{rec['id']}/files/{f['id']}/content")
                assert content.status_code == 200
                f["content_sha256"] = hashlib.sha256(content.content).hexdigest()
    finally:
        c.close()
    return out


def _tags(rec: dict[str, Any]) -> dict[str, int]:
    n: dict[str, int] = {}
    for o in rec["observations"]:
        if o.get("source"):
            n[o["source"]] = n.get(o["source"], 0) + 1
    return n


def _check(ledger: Ledger, state: dict[str, dict[str, Any]]) -> dict[str, int]:
    creates = {w.patient: w for w in ledger.writes if w.kind == "create"}
    # No phantom patient, none half-written: each has all of its creating case and an evaluation.
    for ext, rec in state.items():
        assert ext in creates, f"patient {ext} exists but no write created it"
        assert creates[ext].status in ("ok", "in_flight"), f"{ext}: created although refused ({creates[ext].status})"
        assert _tags(rec).get(creates[ext].tag) == OBS_PER_WRITE, f"{ext}: half-written creation {_tags(rec)}"
        assert rec["evaluation_id"] is not None and rec["evaluation"], f"{ext}: no evaluation"
        for f in rec["files"]:
            assert f["content_sha256"] == f["sha256"], f"{ext}: file {f['id']} bytes do not match its SHA-256"
    tally = {"ok": 0, "in_flight": 0, "in_flight_committed": 0}
    for w in ledger.writes:
        rec = state.get(w.patient)
        if w.kind in ("create", "observations"):
            present = _tags(rec).get(w.tag, 0) if rec else 0
            assert present in (0, OBS_PER_WRITE), f"{w.kind} {w.tag}: {present} of {OBS_PER_WRITE} observations"
            landed = present == OBS_PER_WRITE
        else:
            names = [f for f in (rec or {}).get("files", []) if f["filename"] == f"{w.tag}.vcf"]
            assert len(names) <= 1
            landed = bool(names)
            if landed:
                assert names[0]["sha256"] == w.sha256
                # The derived variants committed with the file row.
                assert names[0]["result"] == {"variants": 1}
        if w.status == "ok":
            assert landed, f"acknowledged {w.kind} {w.tag} is missing after the restart"
            tally["ok"] += 1
        elif w.status == "in_flight":
            tally["in_flight"] += 1
            tally["in_flight_committed"] += int(landed)
        else:
            assert not landed, f"refused {w.kind} {w.tag} ({w.status}) was stored"
    return tally


def test_sigkill_mid_stream_loses_no_acknowledged_write(database_url: str, tmp_path: Path) -> None:
    server = LiveServer(database_url, tmp_path)
    ledger = Ledger()
    tallies = []
    try:
        server.start()
        for cycle, kill_after in enumerate(KILL_AFTER):
            _run_cycle(server, cycle, kill_after, ledger)
            server.start()  # restart on the same database and upload folder
            tallies.append(_check(ledger, _state(server)))
        assert not ledger.server_errors, ledger.server_errors[:5]
    finally:
        server.stop()
    # The kill really happened mid-stream at least once (a request without an answer).
    final = tallies[-1]  # each check re-reads every write so far: the last one covers all cycles
    assert final["in_flight"] >= 1, tallies
    assert final["ok"] >= sum(KILL_AFTER)
    # The registry's own integrity check: foreign keys, the audit hash chain, every file.
    engine = make_engine(database_url)
    try:
        report = Registry(engine, server.upload_dir).check(reproduce=True)
    finally:
        engine.dispose()
    assert report["ok"], report["problems"][:10]
    # Every stored evaluation is reproduced from its stored input with the same answer.
    assert report["evaluations_reproduced"] >= final["ok"] and report["evaluations_mismatched"] == 0
    print(f"\ncrash-safety {database_url.split(':')[0]}: kills={len(KILL_AFTER)} writes={len(ledger.writes)} "
          f"acknowledged={final['ok']} in_flight={final['in_flight']} "
          f"in_flight_committed={final['in_flight_committed']} files={report['files']} "
          f"audit_rows={report['audit_rows']} evaluations_reproduced={report['evaluations_reproduced']}")
    uploads_ok = sum(1 for w in ledger.writes if w.kind == "upload" and w.status == "ok")
    uploads_maybe = sum(1 for w in ledger.writes if w.kind == "upload" and w.status == "in_flight")
    assert uploads_ok >= 1
    assert uploads_ok <= report["files"] <= uploads_ok + uploads_maybe
