"""Population screening of an OMOP CDM v5.4 warehouse for undiagnosed ALPS.

One Ibis expression (:mod:`alpsdx.screening.features`) computes per-person features and a
transparent points score (:mod:`alpsdx.screening.score`, every point citing its NIH 2009
criterion); it runs unchanged on DuckDB (embedded, default) or PySpark
(:mod:`alpsdx.screening.backends`). :mod:`alpsdx.screening.synthetic` makes OMOP data
with planted ALPS-like patients; :mod:`alpsdx.screening.evaluate` measures the screen.
"""
