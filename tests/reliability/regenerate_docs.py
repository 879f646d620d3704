"""Regenerate the measured tables of docs/reliability.md in one command.

    .venv/bin/python tests/reliability/regenerate_docs.py [--load] [--fuzz-dir DIR ...]

- runs ``tests/reliability`` (crash safety on SQLite, and on PostgreSQL when
  ``ALPSDX_TEST_POSTGRES_URL`` is set — ``eval "$(.ci/pg-start)"`` first; schemathesis;
  authorization; load shedding) and the route x role matrices of ``tests/web``, reading the
  figures the tests print;
- with ``--load``, runs ``benchmarks/load.py`` and reads its ``RESULT`` line;
- with ``--fuzz-dir``, rewrites the fuzzing table and the atheris row of the top table from
  ``fuzz/summary.py`` (the atheris stats);
- rewrites the table between ``<!-- reliability-table:start -->`` and ``:end -->`` with
  today's date. Nothing else in the file is touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"
START, END = "<!-- reliability-table:start -->", "<!-- reliability-table:end -->"
FUZZ_START, FUZZ_END = "<!-- fuzz-table:start -->", "<!-- fuzz-table:end -->"
PY = sys.executable


def _run(args: list[str], timeout: float = 3600) -> str:
    p = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return p.stdout + p.stderr


def _pytest(*targets: str) -> tuple[str, dict[str, int]]:
    out = _run([PY, "-m", "pytest", *targets, "-q", "-s", "-p", "no:cacheprovider", "-rs"])
    summary = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed)", ln) and " in " in ln]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error)", summary[-1] if summary else "")}
    return out, counts


def _fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def _replace(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{DOC}: markers {start} / {end} not found")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body.rstrip()}\n{end}{tail}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--load", action="store_true", help="also run benchmarks/load.py (about a minute)")
    ap.add_argument("--fuzz-dir", nargs="*", help="atheris work directories for fuzz/summary.py")
    args = ap.parse_args()
    today = dt.date.today().isoformat()
    load_avg = os.getloadavg()[0]

    out, counts = _pytest("tests/reliability")
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"alpsdx-reliability-{today}.log"
    log.write_text(out, encoding="utf-8")
    print(f"full test output: {log}", file=sys.stderr)
    for line in re.findall(r"^schemathesis failure: .*", out, flags=re.M):
        print(line, file=sys.stderr)
    crash = {m.group(1): _fields(m.group(0)) for m in re.finditer(r"crash-safety (\S+):.*", out)}
    st = _fields(next((m.group(0) for m in re.finditer(r"schemathesis:.*", out)), ""))
    _, matrix = _pytest("tests/web/test_web_authz.py", "tests/web/test_api_authz.py",
                        "tests/reliability/test_authz.py")
    rows = ["| check | what was tried | figure | date |", "|---|---|---|---|"]
    for backend, name in (("sqlite", "SQLite"), ("postgresql+psycopg", "PostgreSQL")):
        c = crash.get(backend)
        if c is None:
            rows.append(f"| crash safety, {name} | `tests/reliability/test_crash_safety.py` | not run here "
                        f"(PostgreSQL: set ALPSDX_TEST_POSTGRES_URL) | {today} |")
            continue
        rows.append(
            f"| crash safety, {name} | `alpsdx serve`, 4 concurrent API writers, SIGKILL at {c['kills']} kill points, "
            f"restart | {c['writes']} writes: {c['acknowledged']} acknowledged, all present and whole; "
            f"{c['in_flight']} in flight at the kills, none half-stored ({c['in_flight_committed']} committed whole); "
            f"`db check` ok ({c['audit_rows']} audit rows, {c['files']} files, "
            f"{c.get('evaluations_reproduced', '?')} evaluations reproduced) | {today} |")
    if st:
        rows.append(f"| API robustness | schemathesis over {st['operations']} operations, {st['examples_per_operation']} "
                    f"examples each, admin session | {st['calls']} calls: {st['failures']} operations failing (a 5xx, an "
                    f"undocumented status, a schema violation or a timeout) | {today} |")
    rows.append(f"| authorization | route x role matrices (pages, API, FHIR, CDS), fixation, CSRF, throttling, "
                f"headers, default secrets | {matrix.get('passed', 0)} passed, {matrix.get('failed', 0)} failed | {today} |")
    rows.append(f"| reliability suite | `tests/reliability` | {counts.get('passed', 0)} passed, "
                f"{counts.get('failed', 0)} failed, {counts.get('skipped', 0)} skipped (load average {load_avg:.0f}) | {today} |")
    if args.load:
        res = next((ln for ln in _run([PY, "benchmarks/load.py"]).splitlines() if ln.startswith("RESULT ")), "")
        r = _fields(res)
        if r:
            rows.append(f"| load: CDS Hooks | `alpsdx serve --workers {r.get('workers', 1)}`, patient-view, 200/s offered | "
                        f"{r['cds_rps']}/s served, p50 {r['cds_p50_ms']} ms, "
                        f"p95 {r['cds_p95_ms']} ms, p99 {r['cds_p99_ms']} ms (target p99 < 50 ms) | {today} |")
            rows.append(f"| load: patient page | signed in, 50/s offered | {r['page_rps']}/s served, p50 {r['page_p50_ms']} ms, "
                        f"p95 {r['page_p95_ms']} ms, p99 {r['page_p99_ms']} ms (target p99 < 200 ms) | {today} |")
            rows.append(f"| load: overload | patient page far past capacity | {r['overload_sent']} sent: "
                        f"{r['overload_shed']} shed with 503, {r['overload_errors']} other errors; alive after: "
                        f"{r['alive_after']}; db check ok: {r['db_check_ok']} | {today} |")
    text = DOC.read_text(encoding="utf-8")
    text = _replace(text, START, END, "\n".join(rows))
    if args.fuzz_dir:
        table = _run([PY, "fuzz/summary.py", *args.fuzz_dir])
        text = _replace(text, FUZZ_START, FUZZ_END, table)
        line = _run([PY, "fuzz/summary.py", "--row", *args.fuzz_dir]).strip()
        if not line.startswith("| parser fuzzing, atheris |"):
            raise SystemExit(f"fuzz/summary.py --row printed {line!r}")
        text, n = re.subn(r"^\| parser fuzzing, atheris \|.*$", lambda _: f"{line} {today} |", text,
                          count=1, flags=re.M)
        if n != 1:
            raise SystemExit(f"{DOC}: no '| parser fuzzing, atheris |' row to replace")
    DOC.write_text(text, encoding="utf-8")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
