"""Fuzz the Gating-ML 2.0 importer (alpsdx.flow.gatingml.load_gates, FlowKit underneath).

Bytes in (an .xml file in /dev/shm); a GateSet or GatingError out. Seeds: the Gating-ML
reference gates under ../shared/data/flowkit/gate_ref (when present) and a project-made one.
Run: .venv/bin/python fuzz/fuzz_gatingml.py -max_total_time=600   (see README.md)
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import main, shared_files

RECT = b"""<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
  xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <gating:RectangleGate gating:id="Lymph">
    <gating:dimension gating:compensation-ref="uncompensated" gating:min="0" gating:max="100000">
      <data-type:fcs-dimension data-type:name="FSC-A"/></gating:dimension>
  </gating:RectangleGate>
  <gating:RectangleGate gating:id="DNT" gating:parent_id="Lymph">
    <gating:dimension gating:compensation-ref="uncompensated" gating:max="100">
      <data-type:fcs-dimension data-type:name="CD4"/></gating:dimension>
    <gating:dimension gating:compensation-ref="uncompensated" gating:max="100">
      <data-type:fcs-dimension data-type:name="CD8"/></gating:dimension>
  </gating:RectangleGate>
</gating:Gating-ML>
"""


def make_target() -> tuple[Callable[[bytes], Any], tuple[type[BaseException], ...]]:
    from alpsdx.flow.gatingml import load_gates

    tmpdir = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    fd, path = tempfile.mkstemp(suffix=".xml", dir=tmpdir)
    os.close(fd)

    def target(data: bytes) -> None:
        with open(path, "wb") as fh:
            fh.write(data)
        gs = load_gates(path)
        gs.gate_ids()

    return target, ()


def seeds() -> Iterable[tuple[str, bytes]]:
    yield "rect.xml", RECT
    for p in shared_files("*.xml", max_size=16 << 10)[:40]:
        yield "shared_" + p.name, p.read_bytes()


if __name__ == "__main__":
    main("gatingml", make_target, seeds, default_max_len=16384)
