"""Parsing and redacting PAR link paths (:mod:`tessera.gateway.pars`)."""

from __future__ import annotations

import pytest

from tessera.gateway.pars import _split, redact
from tessera.model.errors import ParNotFound


def test_split() -> None:
    assert _split("/_tessera/p/id1/sec_-2") == ("id1", "sec_-2", None)
    assert _split("/_tessera/p/id1/sec/") == ("id1", "sec", "")
    assert _split("/_tessera/p/id1/sec/a/b%20c?x=1") == ("id1", "sec", "a/b%20c")
    assert _split("/_tessera/p/id1/sec?prefix=a/b") == ("id1", "sec", None)
    for bad in (
        "/_tessera/p/",
        "/_tessera/p/id1",
        "/_tessera/p/id1/",
        "/_tessera/p/../sec/k",
        "/_tessera/p/id1/..",
        "/_tessera/p/id%2F1/sec",
        "/_tessera/p/id1/sec%2F..%2Fx",
        "/_tessera/p/id1/s.c",
    ):
        with pytest.raises(ParNotFound):
            _split(bad)


def test_redact() -> None:
    assert redact("/_tessera/p/abc/SECRET") == "/_tessera/p/abc/***"
    assert redact("/_tessera/p/abc/SECRET/k/x?y=1") == "/_tessera/p/abc/***/k/x?y=1"
    assert redact("/_tessera/p/abc/SECRET?prefix=a") == "/_tessera/p/abc/***?prefix=a"
    assert redact("/_tessera/p/abc") == "/_tessera/p/abc"
    assert redact("/bucket/_tessera/p/abc/SECRET") == "/bucket/_tessera/p/abc/SECRET"
