"""alpsdx: decision support for autoimmune lymphoproliferative syndrome (ALPS)."""

__version__ = "0.1.0"
