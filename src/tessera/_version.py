"""The package version (kept apart so that layers can read it without importing
the SDK entry points of ``tessera/__init__.py``)."""

__version__ = "0.1.0"
