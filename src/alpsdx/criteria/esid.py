"""ESID Registry working definition for the clinical diagnosis of ALPS.

At least one part-A feature (splenomegaly, lymphadenopathy, autoimmune cytopenia of two or
more lineages, lymphoma, affected family member) AND at least one part-B finding (DNT > 6 %
of TCRab+ T cells, two elevated biomarkers, impaired FAS-mediated apoptosis). ESID calls
this a "probable diagnosis (= clinical diagnosis)". Rules: knowledge/data/criteria/esid.yaml.
"""

from __future__ import annotations

from typing import ClassVar

from alpsdx.criteria.base import Category, CombinationSet


class ESID(CombinationSet):
    id = "esid"
    positive: ClassVar[Category] = Category.probable

    def reached(self, met: frozenset[str]) -> bool:
        return any(r in met for r in self.group("part_a")) and any(r in met for r in self.group("part_b"))
