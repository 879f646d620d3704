"""A lean open-loop HTTP/1.1 load generator for the loopback benchmarks (bench_cds, load).

Why not httpx: on a 2-core machine the generator shares the CPU with the server it measures.
httpx's async client spends about a millisecond of CPU per request, which at 200 requests/s
is a fifth of a core taken from the server and shows up as server latency. This generator
writes pre-serialised requests on keep-alive connections (asyncio protocols, uvloop when
present, TCP_NODELAY) and parses only the status line and the body length, so its own cost
is small; its CPU time is reported alongside the figures.

Open loop: request k is *due* at ``t0 + k / rate``; its latency runs from that due time to
the last byte of the response, so a request that waits for a free connection or queues in
the server counts its wait (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import re
import resource
import socket
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["build_request", "run_load"]

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)


def build_request(method: str, host: str, path: str, headers: dict[str, str] | None = None,
                  body: bytes | None = None) -> bytes:
    """One HTTP/1.1 keep-alive request, serialised once."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: Any = None  # asyncio or uvloop transport
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.buf.clear()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buf[: end + 2])
        m = _CONTENT_LENGTH.search(head)
        if m is not None:
            complete = len(self.buf) >= end + 4 + int(m.group(1))
        elif _CHUNKED.search(head):
            complete = self.buf.endswith(b"0\r\n\r\n")
        else:
            complete = True  # no body (e.g. 204/304)
        if complete:
            self.waiter.set_result(int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))


async def _run(host: str, port: int, requests: Sequence[bytes], rate: float, n: int,
               max_in_flight: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    idle: list[_Connection] = []
    opened = 0
    slots = asyncio.Semaphore(max_in_flight)
    lat_ok: list[float] = []
    statuses: Counter[str] = Counter()
    t0 = time.perf_counter() + 0.2

    async def one(k: int) -> None:
        nonlocal opened
        due = t0 + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        async with slots:
            conn = None
            while idle:
                c = idle.pop()
                if not c.closed:
                    conn = c
                    break
            try:
                if conn is None:
                    _, conn = await loop.create_connection(_Connection, host, port)
                    opened += 1
                status = await asyncio.wait_for(conn.send(requests[k % len(requests)]), 60.0)
            except (TimeoutError, OSError, ConnectionError) as exc:
                statuses[type(exc).__name__] += 1
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                return
            statuses[str(status)] += 1
            if status == 200:
                lat_ok.append((time.perf_counter() - due) * 1000.0)
            if not conn.closed:
                idle.append(conn)

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(n)))
    elapsed = time.perf_counter() - max(start, t0)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for c in idle:
        if c.transport is not None:
            c.transport.close()
    lat_ok.sort()

    def pct(q: float) -> float:
        return lat_ok[min(len(lat_ok) - 1, int(q * len(lat_ok)))] if lat_ok else float("nan")

    ok = statuses.get("200", 0)
    gen_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"sent": n, "ok": ok, "statuses": dict(statuses), "rps": n / elapsed, "ok_rps": ok / elapsed,
            "p50_ms": statistics.median(lat_ok) if lat_ok else float("nan"), "p95_ms": pct(0.95),
            "p99_ms": pct(0.99), "max_ms": lat_ok[-1] if lat_ok else float("nan"),
            "errors": n - ok - statuses.get("503", 0), "shed": statuses.get("503", 0),
            "connections": opened, "generator_cpu_ms_per_request": 1000.0 * gen_cpu / max(1, n)}


def run_load(host: str, port: int, requests: Sequence[bytes], rate: float, seconds: float,
             max_in_flight: int = 64) -> dict[str, Any]:
    """Send ``rate * seconds`` requests (cycling ``requests``) at a fixed rate; latency figures in ms.

    Latency percentiles cover the 200 responses; ``errors`` counts everything that is neither
    200 nor 503 (503 = shed load, counted in ``shed``).
    """
    n = int(rate * seconds)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # plain asyncio works too, at a higher generator cost
        runner = asyncio.run
    return runner(_run(host, port, requests, rate, n, max_in_flight))  # type: ignore[no-any-return]
