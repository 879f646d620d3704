"""Fuzz the Gating-ML 2.0 importer (alpsdx.flow.gatingml.load_gates): GateSet or GatingError."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_helpers import fuzz_settings, mutated, outcome
from hypothesis import given

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
