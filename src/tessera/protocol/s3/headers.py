"""HTTP header values as S3 uses them: ranges, dates, ETags, URI encoding."""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import functools
import re
import time
from email.utils import formatdate, parsedate_tz
from urllib.parse import quote

from tessera.common.ranges import RangeSpec

# re.ASCII: a bare \d also matches "٣", which int() would then accept.
_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.ASCII)
_AMZ_DATE_RE = re.compile(r"^(\d{8})T(\d{6})Z$", re.ASCII)


def parse_range(value: str) -> RangeSpec | None:
    """A single byte range from a ``Range`` header, or None when the header is not
    one S3 honours (syntax errors and multiple ranges are ignored: whole object)."""
    m = _RANGE_RE.match(value)
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:
        return RangeSpec(None, int(last))
    if last and int(last) < int(first):
        return None
    return RangeSpec(int(first), int(last) if last else None)


def parse_http_date(value: str) -> float | None:
    """Seconds since the epoch of an HTTP date (RFC 7231 and its legacy forms),
    or None when it does not parse."""
    if not value or not value.isascii():  # int() in parsedate_tz takes "١٩٩٤"
        return None
    try:
        parsed = parsedate_tz(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    # parsedate_tz does not range-check: "32 Nov" or "24:00:00" would roll over
    # into another (valid) date instead of being ignored as RFC 9110 asks.
    year, month, day, hour, minute, second = parsed[:6]
    if not (
        1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and 0 <= hour <= 23
        and 0 <= minute <= 59
        and 0 <= second <= 60  # leap second
    ):
        return None
    try:
        ts = calendar.timegm(parsed[:9])
    except (OverflowError, ValueError):
        return None
    return float(ts - (parsed[9] or 0))


def parse_timestamp(value: str) -> float | None:
    """Seconds since the epoch of a timestamp as SDKs send them in headers and
    documents: an HTTP date (``Thu, 01 Jan 2015 00:00:00 GMT``) or ISO 8601
    (``2015-01-01T00:00:00.000Z``; UTC when no offset is given). None when it
    is neither."""
    value = value.strip()
    if not value:
        return None
    if not value[0].isdigit():
        return parse_http_date(value)
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return parse_http_date(value)  # "1 Jan 2015 ..." (no weekday)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def format_http_date(ts: float) -> str:
    """``Sun, 22 Nov 2026 18:00:00 GMT`` (whole seconds)."""
    return _http_date(int(ts))


@functools.lru_cache(maxsize=4096)
def _http_date(second: int) -> str:
    # Cached: every GET and HEAD formats its Last-Modified (~5 us), and objects
    # written in one burst share their second.
    return formatdate(second, usegmt=True)


def format_iso8601(ts: float) -> str:
    """``2026-11-22T18:00:00.000Z`` as S3 documents show times."""
    whole = int(ts)
    millis = round((ts - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


@functools.lru_cache(maxsize=64)
def parse_amz_date(value: str) -> float | None:
    """Seconds since the epoch of an ``x-amz-date`` (``20261122T180000Z``), or None.

    Cached: every signed request carries one, and requests within a second
    share it."""
    m = _AMZ_DATE_RE.fullmatch(value)
    if not m:
        return None
    d, t = m.group(1), m.group(2)
    try:  # datetime checks the calendar; time.strptime cost ~17 us per request
        when = datetime.datetime(
            int(d[:4]), int(d[4:6]), int(d[6:]), int(t[:2]), int(t[2:4]), int(t[4:])
        )
    except ValueError:
        return None
    return float(calendar.timegm(when.timetuple()))


def quote_etag(etag: str) -> str:
    return f'"{etag}"'


def unquote_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def parse_etag_list(value: str) -> list[str]:
    """The ETags of an ``If-Match``/``If-None-Match`` header, unquoted (``*`` kept)."""
    return [unquote_etag(v) for v in value.split(",") if v.strip()]


def content_md5_to_hex(value: str) -> str | None:
    """The hex digest of a base64 ``Content-MD5`` value, or None when invalid."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    """AWS URI encoding: everything but ``A-Za-z0-9-_.~`` (and ``/`` if kept) is
    percent-encoded from its UTF-8 bytes."""
    return quote(
        value, safe="-_.~/" if keep_slash else "-_.~", encoding="utf-8", errors="surrogatepass"
    )
