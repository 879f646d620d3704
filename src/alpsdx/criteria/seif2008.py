"""CHOP criteria (Seif et al. 2008), as printed in Br J Haematol 2009;148(2):205, Table I(b).

Three major criteria, or two major plus two minor criteria, one of the counted criteria
being elevated DNT (major 2, "marked", or minor 2, "moderate"). One diagnostic level, shown
as ``definitive``. Rules: knowledge/data/criteria/seif2008.yaml.
"""

from __future__ import annotations

from alpsdx.criteria.base import CombinationSet

MAJOR_DNT = "major.dnt"
MINOR_DNT = "minor.dnt"


class Seif2008(CombinationSet):
    id = "seif2008"

    def reached(self, met: frozenset[str]) -> bool:
        major = [r for r in self.group("major") if r in met]
        minor = [r for r in self.group("minor") if r in met]
        # Three majors including marked DNT elevation ...
        if len(major) >= 3 and MAJOR_DNT in major:
            return True
        # ... or two majors plus two minors, a DNT criterion among those counted.
        return len(major) >= 2 and len(minor) >= 2 and (MAJOR_DNT in major or MINOR_DNT in minor)
