"""Original NIH criteria (proposed by NIH investigators in 1999; Bleesing et al. 2000).

All three required criteria (chronic non-malignant lymphoproliferation, elevated DNT,
defective in-vitro Fas-mediated apoptosis) -> ALPS, shown as ``definitive`` (the 1999
criteria have one diagnostic level); genetic mutation and autoimmunity are supporting only.
Source: Br J Haematol 2009;148(2):205, Table I(a). Rules: knowledge/data/criteria/nih1999.yaml.
"""

from __future__ import annotations

from alpsdx.criteria.base import CombinationSet


class NIH1999(CombinationSet):
    id = "nih1999"

    def reached(self, met: frozenset[str]) -> bool:
        return all(r in met for r in self.group("required"))
