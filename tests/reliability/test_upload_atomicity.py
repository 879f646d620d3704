"""Uploads are written atomically: a process killed (SIGKILL) while writing a file leaves no
file at its final, content-addressed path — only a ``.tmp-*`` file that nothing references —
and the registry's check stays clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from alpsdx.store import Registry, make_engine, upgrade

SIZE = 256 * 1024 * 1024  # large enough to be caught mid-write

WRITER = f"""
import hashlib, sys
from pathlib import Path
from alpsdx.store import Registry, make_engine
reg = Registry(make_engine(sys.argv[1]), Path(sys.argv[2]))
data = bytes(range(256)) * ({SIZE} // 256)
print(hashlib.sha256(data).hexdigest(), flush=True)
reg.write_blob(data)
print("done", flush=True)
"""


def test_sigkill_during_an_upload_write_leaves_no_partial_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    uploads = tmp_path / "uploads"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url, str(uploads)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    digest = proc.stdout.readline().strip()
    final = uploads / digest[:2] / digest
    deadline = time.monotonic() + 120
    caught = False
    while time.monotonic() < deadline and proc.poll() is None:
        tmps = list((uploads / digest[:2]).glob(".tmp-*")) if (uploads / digest[:2]).is_dir() else []
        if tmps and 0 < tmps[0].stat().st_size < SIZE:
            os.kill(proc.pid, signal.SIGKILL)
            caught = True
            break
        time.sleep(0.001)
    proc.wait(timeout=30)
    print(f"\nupload-atomicity: killed_mid_write={caught}")
    if not caught:  # the write finished before we could catch it: then it must be whole
        assert final.stat().st_size == SIZE
        return
    assert not final.exists(), "a partial upload is visible at its final path"
    leftovers = list((uploads / digest[:2]).glob(".tmp-*"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size < SIZE
    report = Registry(engine, uploads).check()
    assert report["ok"] and report["files"] == 0
    # The next upload of the same bytes completes normally next to the leftover.
    reg = Registry(engine, uploads)
    data = bytes(range(256)) * (SIZE // 256)
    assert reg.write_blob(data) == (digest, f"{digest[:2]}/{digest}")
    assert final.stat().st_size == SIZE
    engine.dispose()
