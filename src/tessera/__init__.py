"""Tessera: a distributed, S3-compatible object store.

This package root holds the version only; the layers live in sub-packages
(see DESIGN.md section 2 and ``.importlinter``).
"""

__version__ = "0.1.0"
