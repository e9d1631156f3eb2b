"""Listing documents (ListObjects v1 and v2, ListObjectVersions) rendered by
string building.

A listing page carries up to 1,000 entries of five to eight elements each;
going through the generic :func:`tessera.protocol.s3.xml.render` (a dict per
entry, a type dispatch and a five-pass escape per element) cost more than the
rest of the request together. Here the caller renders each entry with one
f-string, escaping only the values that can need it, and :func:`render_listing`
puts the document together.

The output is byte for byte what :func:`~tessera.protocol.s3.xml.render` makes
of the same content: :func:`escape` produces the same text as its escaping
(``&``, ``<``, ``>``, ``"`` and ``\\r`` as entities, the other C0 controls but
tab and newline as character references), and :class:`Timestamps` the same text
as :func:`~tessera.protocol.s3.headers.format_iso8601`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from tessera.protocol.s3.xml import S3_NS

_NEEDS_ESCAPE = re.compile('[&<>"\x00-\x08\x0b-\x1f]')
"""Characters the escaping changes: the four markup characters, ``\\r`` (0x0d)
and the C0 controls other than tab (0x09) and newline (0x0a)."""

_CONTROL_REFS = {c: f"&#x{c:x};" for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)}


def escape(text: str) -> str:
    """``text`` as XML character data (also valid in a double-quoted attribute).
    Text with nothing to escape (nearly every key) is returned as is, after one
    regular-expression scan."""
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
    ).translate(_CONTROL_REFS)


_MILLIS = tuple(f".{m:03d}Z" for m in range(1000))


class Timestamps:
    """``2026-11-22T18:00:00.000Z`` for seconds since the epoch, as
    :func:`~tessera.protocol.s3.headers.format_iso8601` writes them, with the
    whole-second part formatted once per distinct second (objects of a listing
    page are often written within a few seconds of one another) and the
    millisecond part taken from a table. One instance serves one response; its
    cache grows with the distinct seconds it sees. :attr:`format` is the bound
    method to call in a loop (calling the instance costs a little more)."""

    __slots__ = ("_seconds", "format")

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}
        self.format = self._format

    def __call__(self, ts: float) -> str:
        return self._format(ts)

    def _format(self, ts: float) -> str:
        whole = int(ts)
        millis = round((ts - whole) * 1000)
        if millis == 1000:
            whole, millis = whole + 1, 0
        text = self._seconds.get(whole)
        if text is None:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            self._seconds[whole] = text
        if millis < 0:  # before 1970: as format_iso8601 writes it
            return f"{text}.{millis:03d}Z"
        return text + _MILLIS[millis]


def needs_escape(*texts: str) -> bool:
    """Whether any of ``texts`` holds a character :func:`escape` changes. One
    scan of a page's keys joined together costs far less than one
    :func:`escape` call per key."""
    for t in texts:
        # Printable text without markup (nearly all) is settled by C loops twice
        # as fast as the regular expression's scan; the rest goes through it.
        if not (t.isprintable() and "&" not in t and "<" not in t and ">" not in t):
            if _NEEDS_ESCAPE.search(t) is not None:
                return True
        elif '"' in t:
            return True
    return False


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def elements(fields: Sequence[tuple[str, Any]]) -> str:
    """``<Name>value</Name>`` for each pair in order; None values are left out,
    booleans are ``true``/``false``, other values are escaped ``str(value)``."""
    return "".join(
        f"<{name}>{_scalar(value)}</{name}>" for name, value in fields if value is not None
    )


def owner_element(account_id: str, display_name: str) -> str:
    """An ``<Owner>`` element with ``ID`` and ``DisplayName``."""
    return (
        f"<Owner><ID>{escape(account_id)}</ID>"
        f"<DisplayName>{escape(display_name)}</DisplayName></Owner>"
    )


def prefix_entries(prefixes: Iterable[str]) -> str:
    """``<CommonPrefixes><Prefix>p</Prefix></CommonPrefixes>`` for each
    (already encoded) prefix."""
    return "".join(
        f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes
    )


def render_listing(root: str, head: Sequence[tuple[str, Any]], *body: str) -> bytes:
    """A complete document: ``root`` in the S3 namespace, the scalar ``head``
    elements (as :func:`elements`), then the pre-rendered ``body`` fragments
    verbatim, in order."""
    return "".join(
        (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{S3_NS}">',
            elements(head),
            *body,
            f"</{root}>",
        )
    ).encode("utf-8")
