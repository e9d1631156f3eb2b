"""Listing documents rendered by string building are byte for byte what the
generic renderer makes of the same content (hostile keys, url encoding, owners,
checksums, delete markers, timestamps on millisecond and second boundaries)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tessera.gateway.handlers.listing import _url_encode, object_entries, version_entries
from tessera.meta.sql.rows import dump_map, load_flat_map, load_map
from tessera.model.records import ObjectVersion
from tessera.protocol.s3.headers import format_iso8601, quote_etag, uri_encode
from tessera.protocol.s3.listing_xml import (
    Timestamps,
    escape,
    needs_escape,
    owner_element,
    prefix_entries,
    render_listing,
)
from tessera.protocol.s3.xml import render

HOSTILE = [
    "plain/key.txt",
    "a&b<c>d\"e'f",
    "tab\tnew\nline\rcr",
    "ctl\x01\x08\x0b\x0c\x1f\x7f",
    "üñï©ødé/日本語/\U0001f600",
    "&amp;already",
    "",
    " spaced  out ",
]
STAMPS = [0.0, 1.0, 1.0004, 1.0005, 1.9995, 1.9999, 1764876000.123, 1764876000.9996, 1e9 + 0.5]
NAMES = {"acct-1": "Alice & <Bob>", "acct-2": "acct-2"}


def _owner(account_id: str) -> dict[str, Any]:
    return {"ID": account_id, "DisplayName": NAMES.get(account_id) or account_id}


def _owner_of(account_id: str) -> str:
    return owner_element(account_id, NAMES.get(account_id) or account_id)


def _versions() -> list[ObjectVersion]:
    out = []
    for i, key in enumerate(HOSTILE):
        out.append(
            ObjectVersion(
                bucket="b",
                key=key,
                version_id=f"v{i}&<",
                last_modified=STAMPS[i % len(STAMPS)],
                size=i * 1000,
                etag=f"{i:032x}" if i % 3 else f"{i:032x}-3",
                delete_marker=i % 4 == 3,
                is_latest=i % 2 == 0,
                checksums={"CRC32": "abc=", "SHA256": "x"} if i % 2 else {},
                storage_class="STANDARD" if i % 3 else "REDUCED<REDUNDANCY>",
                owner="acct-1" if i % 2 else "acct-2",
            )
        )
    return out


def _encoders() -> list[Any]:
    def as_is(s: str) -> str:
        return s

    def url(s: str) -> str:
        return uri_encode(s, keep_slash=True)

    return [as_is, url]


@pytest.mark.parametrize("text", [*HOSTILE, "\x00", "&#13;", "a\r\nb"])
def test_escape_matches_generic_renderer(text: str) -> None:
    assert render("R", {"A": text}) == render_listing("R", (("A", text),))
    assert f"<A>{escape(text)}</A>" in render("R", {"A": text}).decode()


def test_timestamps_match_format_iso8601() -> None:
    stamp = Timestamps()
    for ts in STAMPS + STAMPS:  # second pass hits the per-second cache
        assert stamp(ts) == format_iso8601(ts)


@pytest.mark.parametrize("with_owner", [False, True])
def test_object_entries_match_generic_renderer(with_owner: bool) -> None:
    objects = [v for v in _versions() if not v.delete_marker]
    for enc in _encoders():
        contents = []
        for v in objects:
            entry: dict[str, Any] = {
                "Key": enc(v.key),
                "LastModified": format_iso8601(v.last_modified),
                "ETag": quote_etag(v.etag),
                "Size": v.size,
                "StorageClass": v.storage_class,
            }
            if v.checksums:
                entry["ChecksumAlgorithm"] = list(v.checksums)
            if with_owner:
                entry["Owner"] = _owner(v.owner)
            contents.append(entry)
        prefixes = [enc(p) for p in ["a/", "<&>/", "ü/"]]
        head = (("Name", "bkt"), ("Prefix", enc("p&")), ("MaxKeys", 1000), ("IsTruncated", True),
                ("Delimiter", None), ("KeyCount", len(contents) + 3))  # fmt: skip
        expected = render(
            "ListBucketResult",
            {
                **dict(head),
                "Contents": contents,
                "CommonPrefixes": [{"Prefix": p} for p in prefixes],
            },
        )
        got = render_listing(
            "ListBucketResult",
            head,
            object_entries(objects, enc, _owner_of if with_owner else None),
            prefix_entries(prefixes),
        )
        assert got == expected


def test_version_entries_match_generic_renderer() -> None:
    versions = _versions()
    assert any(v.delete_marker for v in versions) and not all(v.delete_marker for v in versions)
    for enc in _encoders():
        found, markers = [], []
        for v in versions:
            common = {
                "Key": enc(v.key),
                "VersionId": v.version_id,
                "IsLatest": v.is_latest,
                "LastModified": format_iso8601(v.last_modified),
            }
            if v.delete_marker:
                markers.append({**common, "Owner": _owner(v.owner)})
            else:
                found.append({**common, "ETag": quote_etag(v.etag), "Size": v.size,
                              "StorageClass": v.storage_class, "Owner": _owner(v.owner)})  # fmt: skip
        head = (("Name", "bkt"), ("KeyMarker", ""), ("NextVersionIdMarker", None))
        expected = render(
            "ListVersionsResult",
            {**dict(head), "Version": found, "DeleteMarker": markers, "CommonPrefixes": []},
        )
        got = render_listing(
            "ListVersionsResult", head, version_entries(versions, enc, _owner_of), ""
        )
        assert got == expected


@pytest.mark.parametrize(
    "value",
    [
        {"CRC32": "abc=="},
        {"CRC32": "a", "SHA256": "b/+="},
        {'a"b': "c"},
        {"x": "\\"},
        {"é": "ü\n"},
        {"k": '","'},
        {"a": ""},
        {"": ""},
        {'a":"': "b"},
        {'":"': ""},
        {},
    ],
)
def test_load_flat_map_matches_json(value: dict[str, str]) -> None:
    text = dump_map(value)
    assert load_flat_map(text) == load_map(text) == value


@pytest.mark.parametrize("key", [*HOSTILE, "A-Z_a.z~0/9", "a+b%c", "\ud800x", "a/\n"])
def test_url_encode_fast_path_matches_uri_encode(key: str) -> None:
    assert _url_encode(key) == uri_encode(key, keep_slash=True)


@pytest.mark.parametrize(
    "text", [*HOSTILE, "\x00", "&#13;", "a\r\nb", "plain", "é\u2028x", "\x7f\x85", 'q"', "\t"]
)
def test_needs_escape_says_when_escape_changes_text(text: str) -> None:
    assert needs_escape(text) == (escape(text) != text)
    assert needs_escape("ok", text, "ok") == (escape(text) != text)
    assert not needs_escape() and not needs_escape("", "plain/key")


def test_listing_records_are_the_records_the_constructor_makes() -> None:
    from tessera.meta.sql import rows

    assert rows._FAST  # ObjectVersion still has the slot layout the shell copies
    live = ("k/1", "null", 1764876000.123, 42, "e" * 32, "STANDARD", "acct", "text/plain",
            '{"CRC32":"abc="}')  # fmt: skip
    got = rows.live_version_from_row("bkt", live)
    want = ObjectVersion("bkt", "k/1", "null", 1764876000.123, 42, "e" * 32, False, True,
                         "text/plain", checksums={"CRC32": "abc="}, owner="acct")  # fmt: skip
    assert type(got) is ObjectVersion and got == want and repr(got) == repr(want)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.key = "other"  # type: ignore[misc]
    assert dataclasses.replace(got, size=1).size == 1
    marker = rows.version_from_listing_row(
        "bkt", ("k", "v1", 0, 1, 5.0, 0, "", "STANDARD", "a", "x/y", None)
    )
    assert marker.delete_marker and not marker.is_latest and marker.checksums == {}
    assert marker.headers == {} and marker.headers is not got.headers  # not shared
