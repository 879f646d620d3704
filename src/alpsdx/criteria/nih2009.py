"""Revised NIH criteria (2009 International Workshop; Oliveira et al., Blood 2010).

Both required criteria plus one primary accessory criterion -> definitive; plus one
secondary accessory criterion -> probable. Rules and thresholds: knowledge/data/criteria/nih2009.yaml.
"""

from __future__ import annotations

from alpsdx.criteria.base import RequiredPlusAccessory


class NIH2009(RequiredPlusAccessory):
    id = "nih2009"
