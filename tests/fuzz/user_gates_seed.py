"""A project-made FlowJo workspace and the FCS sample it gates (seed of the user-gates fuzzing:
tests/fuzz/test_fuzz_gatingml.py and fuzz/fuzz_user_gates.py). Written for alpsdx, not taken
from any data set."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flow"))
from fcs_writer import Spec, build

SAMPLE = "fuzz_sample.fcs"
CHANNELS = ("FSC-A", "SSC-A", "CD3", "CD4", "CD8")

# A minimal FlowJo 10 workspace (written for this harness, not taken from any data set):
# one sample, lymphocytes (rectangle on scatter) -> CD3+ (polygon on CD3 x SSC-A, logicle
# CD3) -> DNT (CD4- CD8- rectangle).
WSP = f"""<?xml version="1.0" encoding="UTF-8"?>
<Workspace version="20.0" flowJoVersion="10.6.1"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
  xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
  xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <Matrices/>
  <Groups>
    <GroupNode name="All Samples" owningGroup="All Samples">
      <Group name="All Samples"><SampleRefs><SampleRef sampleID="1"/></SampleRefs></Group>
    </GroupNode>
  </Groups>
  <SampleList>
    <Sample>
      <DataSet uri="file:{SAMPLE}" sampleID="1"/>
      <Transformations>
        <transforms:linear transforms:minRange="0" transforms:maxRange="262144" gain="1">
          <data-type:parameter data-type:name="FSC-A"/></transforms:linear>
        <transforms:linear transforms:minRange="0" transforms:maxRange="262144" gain="1">
          <data-type:parameter data-type:name="SSC-A"/></transforms:linear>
        <transforms:logicle transforms:T="262144" transforms:W="0.5" transforms:M="4.5" transforms:A="0">
          <data-type:parameter data-type:name="CD3"/></transforms:logicle>
        <transforms:linear transforms:minRange="0" transforms:maxRange="262144" gain="1">
          <data-type:parameter data-type:name="CD4"/></transforms:linear>
        <transforms:linear transforms:minRange="0" transforms:maxRange="262144" gain="1">
          <data-type:parameter data-type:name="CD8"/></transforms:linear>
      </Transformations>
      <Keywords><Keyword name="$TOT" value="400"/></Keywords>
      <SampleNode name="{SAMPLE}" owningGroup="" count="400" sampleID="1">
        <Subpopulations>
          <Population name="Lymphocytes" owningGroup="" count="-1">
            <Gate gating:id="ID1">
              <gating:RectangleGate eventsInside="1">
                <gating:dimension gating:min="1000" gating:max="120000">
                  <data-type:fcs-dimension data-type:name="FSC-A"/></gating:dimension>
                <gating:dimension gating:min="0" gating:max="60000">
                  <data-type:fcs-dimension data-type:name="SSC-A"/></gating:dimension>
              </gating:RectangleGate>
            </Gate>
            <Subpopulations>
              <Population name="CD3+" owningGroup="" count="-1">
                <Gate gating:id="ID2">
                  <gating:PolygonGate eventsInside="1">
                    <gating:dimension><data-type:fcs-dimension data-type:name="CD3"/></gating:dimension>
                    <gating:dimension><data-type:fcs-dimension data-type:name="SSC-A"/></gating:dimension>
                    <gating:vertex><gating:coordinate data-type:value="5000"/><gating:coordinate data-type:value="0"/></gating:vertex>
                    <gating:vertex><gating:coordinate data-type:value="262144"/><gating:coordinate data-type:value="0"/></gating:vertex>
                    <gating:vertex><gating:coordinate data-type:value="262144"/><gating:coordinate data-type:value="60000"/></gating:vertex>
                    <gating:vertex><gating:coordinate data-type:value="5000"/><gating:coordinate data-type:value="60000"/></gating:vertex>
                  </gating:PolygonGate>
                </Gate>
                <Subpopulations>
                  <Population name="DNT" owningGroup="" count="-1">
                    <Gate gating:id="ID3">
                      <gating:RectangleGate eventsInside="1">
                        <gating:dimension gating:max="1000">
                          <data-type:fcs-dimension data-type:name="CD4"/></gating:dimension>
                        <gating:dimension gating:max="1000">
                          <data-type:fcs-dimension data-type:name="CD8"/></gating:dimension>
                      </gating:RectangleGate>
                    </Gate>
                  </Population>
                </Subpopulations>
              </Population>
            </Subpopulations>
          </Population>
        </Subpopulations>
      </SampleNode>
    </Sample>
  </SampleList>
</Workspace>
""".encode()


def sample_events() -> np.ndarray:
    """400 events (float32, CHANNELS order): scatter clouds, CD3+ T cells that are CD4+,
    CD8+ or double negative."""
    rng = np.random.default_rng(7)
    n = 400
    ev = np.empty((n, len(CHANNELS)), dtype=np.float64)
    ev[:, 0] = rng.normal(50_000, 10_000, n)
    ev[:, 1] = rng.normal(20_000, 6_000, n)
    t = rng.random(n) < 0.7
    ev[:, 2] = np.where(t, rng.normal(20_000, 4_000, n), rng.normal(100, 80, n))
    kind = rng.integers(0, 3, n)  # 0 CD4+, 1 CD8+, 2 double negative
    ev[:, 3] = np.where(kind == 0, rng.normal(15_000, 3_000, n), rng.normal(200, 100, n))
    ev[:, 4] = np.where(kind == 1, rng.normal(15_000, 3_000, n), rng.normal(200, 100, n))
    return ev.astype(np.float32)


def sample_bytes() -> bytes:
    """The sample as an FCS 3.1 file (float32 DATA)."""
    return build(Spec(events=sample_events(), names=list(CHANNELS), ranges=[262144] * len(CHANNELS)))
