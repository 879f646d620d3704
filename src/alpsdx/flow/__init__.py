"""Flow cytometry: FCS reading, compensation, transforms, gating, QC and gate plots.

Kept tiny on purpose: import the submodules (``alpsdx.flow.fcs``, ``.compensation``,
``.transforms``, ``.gatingml``, ...) directly.
"""
