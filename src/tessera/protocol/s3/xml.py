"""S3 XML documents: safe parsing of request documents, rendering of responses.

Parsing goes through :mod:`defusedxml`: DTDs, entity declarations and external
references are refused, so entity-expansion bombs cost nothing. Every parse
failure is an :class:`S3Error` ``MalformedXML`` (or the S3 code the document's
own rules call for); nothing here returns a half-parsed document.

Rendering takes plain data: ``render("Root", {"A": "x", "B": [{"C": 1}, {"C": 2}]})``.
Values: ``None`` is omitted, ``bool`` is ``true``/``false``, a list repeats its
element, a dict nests. In a dict, ``"#text"`` is the element's text and keys
starting with ``"@"`` are attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeTree

from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import parse_timestamp, unquote_etag

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_DELETE_KEYS = 1000
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME")

_MALFORMED = (
    "The XML you provided was not well-formed or did not validate against our published schema"
)


def malformed(message: str = _MALFORMED) -> S3Error:
    return S3Error("MalformedXML", message)


# ---------------------------------------------------------------- parsing


def parse_xml(doc: bytes) -> Element:
    """The root element of ``doc`` with namespaces stripped from every tag."""
    try:
        root = SafeTree.fromstring(doc, forbid_dtd=True)
    except DefusedXmlException as e:
        raise malformed("DTDs and entity declarations are not allowed") from e
    except Exception as e:  # ParseError, ValueError on bad encodings
        raise malformed() from e
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.rsplit("}", 1)[1]
    return root


def _root(doc: bytes, name: str) -> Element:
    root = parse_xml(doc)
    if root.tag != name:
        raise malformed()
    return root


def _text(el: Element | None) -> str | None:
    if el is None:
        return None
    return el.text or ""


def parse_create_bucket(doc: bytes) -> str | None:
    """The LocationConstraint of a CreateBucketConfiguration, or None."""
    root = _root(doc, "CreateBucketConfiguration")
    value = _text(root.find("LocationConstraint"))
    return value.strip() if value else None


def parse_versioning(doc: bytes) -> tuple[str | None, str | None]:
    """(Status, MfaDelete) of a VersioningConfiguration; Status is ``Enabled``,
    ``Suspended`` or None when absent."""
    root = _root(doc, "VersioningConfiguration")
    status = _text(root.find("Status"))
    mfa = _text(root.find("MfaDelete"))
    if status is not None and status not in ("Enabled", "Suspended"):
        raise malformed()
    if mfa is not None and mfa not in ("Enabled", "Disabled"):
        raise malformed()
    return status, mfa


class DeleteEntry(NamedTuple):
    """One ``<Object>`` of a DeleteObjects request. The optional conditions
    (conditional deletes) are None when absent; ``etag`` is unquoted."""

    key: str
    version_id: str | None = None
    etag: str | None = None
    last_modified: float | None = None
    """``LastModifiedTime``, seconds since the epoch."""
    size: int | None = None


def parse_delete(doc: bytes) -> tuple[bool, list[DeleteEntry]]:
    """(quiet, entries) of a DeleteObjects request (1..1000 keys). Each entry
    names a key, optionally a version, and optionally the ``ETag``,
    ``LastModifiedTime`` (HTTP date or ISO 8601) and ``Size`` the object must
    have; unparsable values are MalformedXML."""
    root = _root(doc, "Delete")
    quiet = (_text(root.find("Quiet")) or "").strip().lower() == "true"
    items: list[DeleteEntry] = []
    for obj in root.findall("Object"):
        key = _text(obj.find("Key"))
        if key is None:
            raise malformed()
        version = _text(obj.find("VersionId"))
        etag = _text(obj.find("ETag"))
        mtime_text = _text(obj.find("LastModifiedTime"))
        size_text = _text(obj.find("Size"))
        mtime = None if mtime_text is None else parse_timestamp(mtime_text)
        if mtime_text is not None and mtime is None:
            raise malformed()
        size = None
        if size_text is not None:
            size_text = size_text.strip()
            if not size_text.isdigit() or not size_text.isascii():
                raise malformed()
            size = int(size_text)
        items.append(
            DeleteEntry(
                key,
                version or None,
                None if etag is None else unquote_etag(etag),
                mtime,
                size,
            )
        )
    if not items or len(items) > MAX_DELETE_KEYS:
        raise malformed()
    return quiet, items


def parse_tagging(doc: bytes) -> dict[str, str]:
    """The tags of a Tagging document, in document order. Duplicate keys are InvalidTag."""
    root = _root(doc, "Tagging")
    tagset = root.find("TagSet")
    if tagset is None:
        raise malformed()
    tags: dict[str, str] = {}
    for tag in tagset.findall("Tag"):
        key = _text(tag.find("Key"))
        value = _text(tag.find("Value"))
        if key is None or value is None:
            raise malformed()
        if key in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
        tags[key] = value
    return tags


def parse_tagging_header(value: str) -> dict[str, str]:
    """Tags from an ``x-amz-tagging`` header (URL query encoding)."""
    tags: dict[str, str] = {}
    # "a=1&b" gives b an empty value (S3 and RGW accept it); only empty names fail.
    pairs = parse_qsl(value, keep_blank_values=True)
    if any(not k for k, _ in pairs) or (value and not pairs):
        raise S3Error(
            "InvalidArgument",
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
        )
    for k, v in pairs:
        if k in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
        tags[k] = v
    return tags


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """One part named in a CompleteMultipartUpload document (ETag unquoted)."""

    number: int
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)


def parse_complete_multipart(doc: bytes) -> list[CompletedPart]:
    """The parts of a CompleteMultipartUpload document, in document order."""
    root = _root(doc, "CompleteMultipartUpload")
    parts: list[CompletedPart] = []
    for el in root.findall("Part"):
        number_text = _text(el.find("PartNumber"))
        etag = _text(el.find("ETag"))
        if number_text is None or etag is None:
            raise malformed()
        number_text = number_text.strip()
        # int() alone also takes "1_0", "\u0661" and "\uff11".
        digits = number_text[1:] if number_text.startswith(("+", "-")) else number_text
        if not (digits.isascii() and digits.isdigit()):
            raise malformed()
        number = int(number_text)
        checksums = {}
        for algo in CHECKSUM_ALGORITHMS:
            value = _text(el.find("Checksum" + algo))
            if value:
                checksums[algo] = value.strip()
        parts.append(CompletedPart(number, etag.strip().strip('"'), checksums))
    if not parts:
        raise malformed()
    return parts


# ---------------------------------------------------------------- rendering


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
    ).translate(_CONTROL_REFS)


# XML 1.0 has no raw form for these: written as character references, as S3 does.
_CONTROL_REFS = {c: f"&#x{c:x};" for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _escape(str(value))


def _element(out: list[str], name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list | tuple):
        for item in value:
            _element(out, name, item)
        return
    if isinstance(value, Mapping):
        attrs = "".join(
            f' {k[1:]}="{_scalar(v)}"'
            for k, v in value.items()
            if k.startswith("@") and v is not None
        )
        out.append(f"<{name}{attrs}>")
        _children(out, value)
        out.append(f"</{name}>")
        return
    out.append(f"<{name}>{_scalar(value)}</{name}>")


def _children(out: list[str], content: Mapping[str, Any]) -> None:
    for key, value in content.items():
        if key.startswith("@"):
            continue
        if key == "#text":
            if value is not None:
                out.append(_scalar(value))
            continue
        _element(out, key, value)


def render(root: str, content: Mapping[str, Any]) -> bytes:
    """A complete XML document with ``root`` in the S3 namespace."""
    attrs = "".join(
        f' {k[1:]}="{_scalar(v)}"'
        for k, v in content.items()
        if k.startswith("@") and v is not None
    )
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<{root} xmlns="{S3_NS}"{attrs}>']
    _children(out, content)
    out.append(f"</{root}>")
    return "".join(out).encode("utf-8")
