"""Header values: Range, HTTP and x-amz dates, ETags, Content-MD5, URI encoding."""

from __future__ import annotations

import random

import pytest
from botocore.utils import percent_encode

from tessera.common.ranges import ByteRange, RangeSpec
from tessera.protocol.s3.headers import (
    content_md5_to_hex,
    format_http_date,
    format_iso8601,
    parse_amz_date,
    parse_etag_list,
    parse_http_date,
    parse_range,
    parse_timestamp,
    quote_etag,
    unquote_etag,
    uri_encode,
)

# ------------------------------------------------------------------- Range


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-0", RangeSpec(0, 0)),
        ("bytes=0-499", RangeSpec(0, 499)),
        ("bytes=500-999", RangeSpec(500, 999)),
        ("bytes=9500-", RangeSpec(9500, None)),
        ("bytes=-500", RangeSpec(None, 500)),
        ("bytes=-0", RangeSpec(None, 0)),
        ("bytes=0-", RangeSpec(0, None)),
        ("bytes=007-010", RangeSpec(7, 10)),
        ("bytes=5-5", RangeSpec(5, 5)),
        (" bytes = 1 - 2 ", RangeSpec(1, 2)),
        ("bytes=0-18446744073709551616", RangeSpec(0, 2**64)),
    ],
)
def test_parse_range_single(value: str, expected: RangeSpec) -> None:
    assert parse_range(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "bytes=",
        "bytes=-",
        "bytes=5-4",  # last before first: syntactically invalid, ignored
        "bytes=0-1,3-4",  # multiple ranges: S3 serves the whole object
        "bytes=0-1, 3-4",
        "bytes=-1,-2",
        "bytes=a-b",
        "bytes=1-b",
        "bytes=0x10-",
        "bytes=+1-2",
        "bytes=1_0-20",
        "bytes=1.5-2",
        "bytes=--1",
        "bytes=1--2",
        "bytes 0-1",
        "items=0-1",
        "0-1",
        "bytes=0-1;x",
        "bytes=\u0663-",  # ARABIC-INDIC DIGIT THREE: int() would take it
        "bytes=0-\u0669",
        "bytes=\uff11-\uff12",  # FULLWIDTH digits
        "bytes=\u00b2-",  # SUPERSCRIPT TWO: str.isdigit() is True
        "bytes=\u00a00-1",  # NO-BREAK SPACE is not HTTP whitespace
    ],
)
def test_parse_range_ignores_what_s3_ignores(value: str) -> None:
    assert parse_range(value) is None


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        ("bytes=0-0", 10, ByteRange(0, 1)),
        ("bytes=0-9", 10, ByteRange(0, 10)),
        ("bytes=0-100", 10, ByteRange(0, 10)),  # last clamped
        ("bytes=9-", 10, ByteRange(9, 10)),
        ("bytes=-3", 10, ByteRange(7, 10)),
        ("bytes=-100", 10, ByteRange(0, 10)),  # suffix longer than the object
        ("bytes=10-", 10, None),  # first at the end: 416
        ("bytes=10-20", 10, None),
        ("bytes=-0", 10, None),
        ("bytes=0-", 0, None),
        ("bytes=-5", 0, None),
    ],
)
def test_parsed_range_resolves(value: str, size: int, expected: ByteRange | None) -> None:
    spec = parse_range(value)
    assert spec is not None
    assert spec.resolve(size) == expected


def test_content_range_of_a_resolved_range() -> None:
    spec = parse_range("bytes=-3")
    assert spec is not None
    resolved = spec.resolve(10)
    assert resolved is not None
    assert resolved.content_range(10) == "bytes 7-9/10"
    assert resolved.length == 3


# ------------------------------------------------------------------- dates

EPOCH_1994 = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", EPOCH_1994),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:37 GMT", EPOCH_1994),  # obsolete RFC 850
        ("Sun Nov  6 08:49:37 1994", EPOCH_1994),  # asctime
        ("Sun, 06 Nov 1994 08:49:37 +0000", EPOCH_1994),
        ("Sun, 06 Nov 1994 09:49:37 +0100", EPOCH_1994),
        ("Sun, 06 Nov 1994 03:49:37 -0500", EPOCH_1994),
        ("06 Nov 1994 08:49:37 GMT", EPOCH_1994),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("Tue, 27 Mar 2007 19:36:42 +0000", 1175024202.0),  # the SigV2 examples' date
        ("Thu, 29 Feb 2024 12:00:00 GMT", 1709208000.0),
        ("Wed, 31 Dec 2025 23:59:59 GMT", 1767225599.0),
    ],
)
def test_parse_http_date(value: str, expected: float) -> None:
    assert parse_http_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "yesterday",
        "Sun, 06 Nov 1994",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 99999999999 08:49:37 GMT",
        "1994-11-06T08:49:37Z",
        # Not dates at all, though a lenient parser rolls them over into one.
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Thu, 29 Feb 2023 12:00:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        # Digits HTTP does not have.
        "Sun, 06 Nov \u0661\u0669\u0669\u0664 08:49:37 GMT",
        "Sun, \uff10\uff16 Nov 1994 08:49:37 GMT",
    ],
)
def test_parse_http_date_refuses(value: str) -> None:
    assert parse_http_date(value) is None


def test_http_date_round_trip() -> None:
    rng = random.Random(7)
    for _ in range(200):
        ts = rng.randint(0, 4102444800)
        text = format_http_date(ts + rng.random())
        assert text.endswith(" GMT")
        assert parse_http_date(text) == float(ts)
    assert format_http_date(EPOCH_1994) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(EPOCH_1994 + 0.999) == "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-01-01T00:00:00.000Z", 1420070400.0),
        ("2015-01-01T00:00:00Z", 1420070400.0),
        ("2015-01-01T00:00:00.250Z", 1420070400.25),
        ("2015-01-01T02:00:00+02:00", 1420070400.0),
        ("2015-01-01T00:00:00", 1420070400.0),  # no offset: UTC
        ("2015-01-01", 1420070400.0),
        ("  2015-01-01T00:00:00Z  ", 1420070400.0),
        ("Thu, 01 Jan 2015 00:00:00 GMT", 1420070400.0),
        ("1 Jan 2015 00:00:00 GMT", 1420070400.0),
    ],
)
def test_parse_timestamp(value: str, expected: float) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "1",
        "2015-13-01T00:00:00Z",
        "2015-02-30",
        "tomorrow",
        "\u0662\u0660\u0661\u0665-01-01",
    ],
)
def test_parse_timestamp_refuses(value: str) -> None:
    assert parse_timestamp(value) is None


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1369353600, "2013-05-24T00:00:00.000Z"),
        (1369353600.123, "2013-05-24T00:00:00.123Z"),
        (1369353600.5, "2013-05-24T00:00:00.500Z"),
        (1369353600.9996, "2013-05-24T00:00:01.000Z"),  # rounds into the next second
        (1709208000, "2024-02-29T12:00:00.000Z"),
    ],
)
def test_format_iso8601(ts: float, expected: str) -> None:
    assert format_iso8601(ts) == expected
    assert parse_timestamp(expected) == pytest.approx(ts, abs=0.0005)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20130524T000000Z", 1369353600.0),
        ("20150830T123600Z", 1440938160.0),
        ("20120229T000000Z", 1330473600.0),
        ("19700101T000000Z", 0.0),
    ],
)
def test_parse_amz_date(value: str, expected: float) -> None:
    assert parse_amz_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "20130524T000000",
        "20130524T000000z",
        "20130524 000000Z",
        "2013-05-24T00:00:00Z",
        "20130524T000000Z\n",
        " 20130524T000000Z",
        "20131324T000000Z",
        "20130229T000000Z",
        "20130524T240000Z",
        "20130524T006000Z",
        "2013052T000000Z",
        "\u0662\u0660\u0661\u06630524T000000Z",
        "Fri, 24 May 2013 00:00:00 GMT",
    ],
)
def test_parse_amz_date_refuses(value: str) -> None:
    assert parse_amz_date(value) is None


# ------------------------------------------------------------------- ETags


def test_etags() -> None:
    assert quote_etag("abc") == '"abc"'
    assert unquote_etag('"abc"') == "abc"
    assert unquote_etag(' "abc" ') == "abc"
    assert unquote_etag('W/"abc"') == "abc"
    assert unquote_etag("abc") == "abc"
    assert unquote_etag('"abc') == '"abc'
    assert unquote_etag('"') == '"'
    assert unquote_etag('""') == ""
    assert unquote_etag('"d41d8cd98f00b204e9800998ecf8427e-2"') == (
        "d41d8cd98f00b204e9800998ecf8427e-2"
    )
    assert parse_etag_list('"a", "b",W/"c" , *') == ["a", "b", "c", "*"]
    assert parse_etag_list("*") == ["*"]
    assert parse_etag_list("") == []
    assert parse_etag_list(" , ,") == []


# ------------------------------------------------------------- Content-MD5


def test_content_md5_to_hex() -> None:
    assert content_md5_to_hex("1B2M2Y8AsgTpgAmY7PhCfg==") == "d41d8cd98f00b204e9800998ecf8427e"
    assert content_md5_to_hex("4gJE4saaMU4BqNR0kLY+lw==") == "e20244e2c69a314e01a8d47490b63e97"
    for bad in (
        "",
        "1B2M2Y8AsgTpgAmY7PhCfg",  # padding missing
        "1B2M2Y8AsgTpgAmY7PhCfg=",
        "1B2M2Y8AsgTpgAmY7PhC fg==",
        "1B2M2Y8AsgTpgAmY7PhCfg==\n",
        "1B2M2Y8A*gTpgAmY7PhCfg==",
        "AAAA",  # valid base64, 3 bytes
        "2jmj7l5rSw0yVb/vlWAYkK/YBwk=",  # a SHA-1, 20 bytes
        "d41d8cd98f00b204e9800998ecf8427e",  # hex, not base64 of 16 bytes
    ):
        assert content_md5_to_hex(bad) is None, bad


# ------------------------------------------------------------ URI encoding


def test_uri_encode() -> None:
    unreserved = "ABCXYZabcxyz0189-_.~"
    assert uri_encode(unreserved) == unreserved
    assert uri_encode("a b") == "a%20b"
    assert uri_encode("a+b") == "a%2Bb"
    assert uri_encode("a/b") == "a%2Fb"
    assert uri_encode("a/b", keep_slash=True) == "a/b"
    assert uri_encode("=&?#%*'!()") == "%3D%26%3F%23%25%2A%27%21%28%29"
    assert uri_encode("\u00e9") == "%C3%A9"
    assert uri_encode("\U0001f600") == "%F0%9F%98%80"
    assert uri_encode("\x00\x7f") == "%00%7F"


def test_uri_encode_matches_botocore() -> None:
    rng = random.Random(3)
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + ["\u00e9", "\u4e2d", "\U0001f600", "\t"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert uri_encode(text) == percent_encode(text, safe="-_.~")
        assert uri_encode(text, keep_slash=True) == percent_encode(text, safe="-_.~/")
