"""Fuzz the lab's own gates applied to a sample: FlowJo workspaces and Gating-ML 2.0 files.

What ``alpsdx dnt FILE --gates ws.wsp|gates.xml --dnt-gate DNT`` runs: byte 0 picks the
format (even: a FlowJo ``.wsp``, odd: Gating-ML 2.0 ``.xml``), the rest is the gate file,
written to /dev/shm and applied by ``alpsdx.flow.pipeline.analyse_fcs`` (FlowKit's workspace
and Gating-ML readers underneath, then alpsdx's hierarchy walk and denominators) to a small
project-made FCS file named as the workspace's sample. ``fuzz_gatingml.py`` fuzzes loading
Gating-ML alone, faster; this harness reaches the FlowJo importer and gate application.
Seeds: the project-made FlowJo workspace of ``tests/fuzz/user_gates_seed.py`` (rectangle,
polygon and rectangle nested three deep; linear and logicle transforms) and the Gating-ML
file of ``fuzz_gatingml.py``.
Run: .venv/bin/python fuzz/fuzz_user_gates.py -max_total_time=600   (see README.md)
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, main
from fuzz_gatingml import RECT

sys.path.insert(0, str(REPO / "tests" / "fuzz"))
from user_gates_seed import SAMPLE, WSP, sample_bytes


def make_target() -> tuple[Callable[[bytes], Any], tuple[type[BaseException], ...]]:
    from alpsdx.flow.pipeline import analyse_fcs

    tmpdir = Path(tempfile.mkdtemp(prefix="alpsdx-fuzz-gates-",
                                   dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    fcs = tmpdir / SAMPLE
    fcs.write_bytes(sample_bytes())
    wsp, xml = tmpdir / "gates.wsp", tmpdir / "gates.xml"

    def target(data: bytes) -> None:
        if not data:
            return
        path = wsp if data[0] % 2 == 0 else xml
        path.write_bytes(data[1:])
        analyse_fcs(fcs, gates=path, dnt_gate="DNT").to_dict()

    return target, ()


def seeds() -> Iterable[tuple[str, bytes]]:
    yield "wsp", b"\x00" + WSP
    yield "gatingml", b"\x01" + RECT


if __name__ == "__main__":
    main("user_gates", make_target, seeds, default_max_len=16384)
