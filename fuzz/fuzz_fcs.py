"""Fuzz the FCS reader (alpsdx.flow.fcs.read_fcs_bytes): bytes in, FCSData or FCSError out.

Seeds: small FCS files of every flavour written by the project's test writer
(tests/flow/fcs_writer.py: FCS 2.0-3.2, I/F/D/A, byte orders, NEXTDATA) and the small
files under ../shared/data (FlowIO/FlowKit test files) when present.
Run: .venv/bin/python fuzz/fuzz_fcs.py -max_total_time=600   (see README.md)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, main, shared_files


def make_target() -> tuple[Callable[[bytes], Any], tuple[type[BaseException], ...]]:
    from alpsdx.flow.fcs import read_fcs_bytes

    def target(data: bytes) -> None:
        fcs = read_fcs_bytes(data)
        _ = fcs.events.shape, fcs.channels, fcs.date
        if fcs.n_datasets > 1:
            read_fcs_bytes(data, dataset=fcs.n_datasets - 1)

    return target, ()


def seeds() -> Iterable[tuple[str, bytes]]:
    import numpy as np

    sys.path.insert(0, str(REPO / "tests" / "flow"))
    from fcs_writer import Spec, build, build_multi

    ev = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=float)
    names = ["FSC-A", "CD3", "CD4"]
    yield "f31.fcs", build(Spec(ev, names))
    yield "f30_be.fcs", build(Spec(ev, names, version="3.0", byteord="4,3,2,1"))
    yield "d32.fcs", build(Spec(ev, names, version="3.2", datatype="D"))
    yield "i20.fcs", build(Spec(ev, names, version="2.0", datatype="I", bits=[16, 16, 16]))
    yield "i_mixed.fcs", build(Spec(ev, names, version="3.1", datatype="I", bits=[8, 16, 32]))
    yield "ascii.fcs", build(Spec(ev, names, datatype="A", bits=[4, 4, 4]))
    yield "ascii_free.fcs", build(Spec(ev, names, datatype="A", bits=["*", "*", "*"]))
    yield "multi.fcs", build_multi([Spec(ev, names), Spec(ev[:1], names)])
    for p in shared_files("*.fcs", max_size=32 << 10):
        yield "shared_" + p.name, p.read_bytes()


if __name__ == "__main__":
    main("fcs", make_target, seeds, default_max_len=8192)
