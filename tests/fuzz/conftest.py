"""tests/fuzz: the project's test FCS writer (tests/flow/fcs_writer.py) is importable here."""

from __future__ import annotations

import sys
from pathlib import Path

_FLOW_TESTS = str(Path(__file__).resolve().parents[1] / "flow")
if _FLOW_TESTS not in sys.path:
    sys.path.insert(0, _FLOW_TESTS)
