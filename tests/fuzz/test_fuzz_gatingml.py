"""Fuzz the Gating-ML 2.0 importer (alpsdx.flow.gatingml.load_gates): GateSet or GatingError;
and the lab's own gates applied to a sample (a FlowJo workspace through analyse_fcs):
DNT figures or a typed error."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_helpers import fuzz_settings, mutated, outcome
from hypothesis import given
from hypothesis import strategies as st
from user_gates_seed import WSP

from alpsdx.flow.gatingml import load_gates

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
# The classic entity-expansion bomb: must be refused, not expanded.
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating">&lol9;</gating:Gating-ML>
"""


@pytest.fixture(scope="module")
def tmp_xml() -> Iterator[Path]:
    fd, name = tempfile.mkstemp(suffix=".xml")
    os.close(fd)
    yield Path(name)
    Path(name).unlink(missing_ok=True)


def load(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    load_gates(path).gate_ids()


def test_seed_is_valid(tmp_xml: Path) -> None:
    assert outcome(load, tmp_xml, RECT) == "valid"


@fuzz_settings(120)
@given(data=mutated([RECT], max_edits=6))
def test_mutated_gatingml(tmp_xml: Path, data: bytes) -> None:
    assert outcome(load, tmp_xml, data) in ("valid", "typed error")


def test_entity_expansion_bomb_is_not_expanded(tmp_xml: Path) -> None:
    t0 = time.process_time()
    assert outcome(load, tmp_xml, BOMB) in ("valid", "typed error")
    assert time.process_time() - t0 < 2.0


# --- the lab's own gates applied to a sample: FlowJo workspace (and Gating-ML) -------------

@pytest.fixture(scope="module")
def user_gates_dir() -> Iterator[Path]:
    from user_gates_seed import SAMPLE, sample_bytes

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / SAMPLE).write_bytes(sample_bytes())
        yield Path(d)


def apply_user_gates(d: Path, name: str, data: bytes) -> dict[str, object]:
    from user_gates_seed import SAMPLE

    from alpsdx.flow.pipeline import analyse_fcs

    (d / name).write_bytes(data)
    return analyse_fcs(d / SAMPLE, gates=d / name, dnt_gate="DNT").to_dict()


def test_flowjo_seed_counts_equal_the_gates_computed_on_the_events(user_gates_dir: Path) -> None:
    # the workspace's gates, evaluated directly on the events the sample holds: FlowKit's
    # workspace reader and alpsdx's hierarchy walk must give the same counts
    import numpy as np
    from user_gates_seed import sample_events

    ev = sample_events().astype(np.float64)
    fsc, ssc, cd3, cd4, cd8 = ev.T
    lymph = (fsc >= 1000) & (fsc < 120_000) & (ssc >= 0) & (ssc < 60_000)
    t = lymph & (cd3 >= 5000) & (cd3 <= 262_144) & (ssc >= 0) & (ssc <= 60_000)
    dnt = t & (cd4 < 1000) & (cd8 < 1000)
    r = apply_user_gates(user_gates_dir, "seed.wsp", WSP)
    assert r["counts"] == {"events": 400, "lymphocytes": int(lymph.sum()), "cd3": int(t.sum()),
                           "dnt": int(dnt.sum())}
    assert 0 < dnt.sum() < t.sum() < lymph.sum()


@fuzz_settings(40)
@given(data=mutated([WSP], max_edits=6))
def test_mutated_flowjo_workspace(user_gates_dir: Path, data: bytes) -> None:
    assert outcome(apply_user_gates, user_gates_dir, "m.wsp", data) in ("valid", "typed error")


@fuzz_settings(40)
@given(data=st.binary(max_size=64), at=st.integers(0, 10_000))
def test_flowjo_workspace_with_bytes_spliced_in(user_gates_dir: Path, data: bytes, at: int) -> None:
    i = at % (len(WSP) + 1)
    assert outcome(apply_user_gates, user_gates_dir, "s.wsp", WSP[:i] + data + WSP[i:]) in ("valid", "typed error")
