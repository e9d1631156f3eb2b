"""Listings: objects (v1/v2), object versions, with prefix and delimiter.

Theory of operation: the metadata store only knows ordered index seeks
("entries after X with prefix P"). Delimiter grouping happens here: when a key
falls under a common prefix ``CP`` we emit ``CP`` once, skip the rest of the
batch beneath it, and the next seek starts past every key that starts with it,
so a listing of 10,000 "directories" costs about 10,000 short seeks, not a scan
of every key beneath them. Batch sizes adapt (:func:`_next_limit`): full batches
while entries come densely, two rows at a time while each seek lands on a new
large prefix. ``U+10FFFF`` is the greatest code
point, and Python compares strings by code point, which is also UTF-8 byte order.
"""

from __future__ import annotations

import asyncio

from tessera.core.base import ServiceBase
from tessera.core.requests import (
    ListRequest,
    ListResult,
    Principal,
    VersionListRequest,
    VersionListResult,
)
from tessera.model.records import ObjectVersion

_MAX = "\U0010ffff"
_BATCH = 1000
_FIRST_DELIMITED = 64
"""First batch of a delimited listing: small, since its rows may all roll up into
one prefix; later batches grow as entries come densely (:func:`_next_limit`)."""
_YIELD_EVERY = 16
"""A delimiter listing makes up to one seek per common prefix, and a short seek
may complete without yielding to the event loop (a point lookup on SQLite), so
every this many seeks the listing yields: other requests wait well under a
millisecond, not the whole page (~40 ms for 1,000 prefixes)."""


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix ``key`` rolls up into, or None."""
    if not delimiter:
        return None
    i = key.find(delimiter, len(prefix))
    return key[: i + len(delimiter)] if i >= 0 else None


class ListingOps(ServiceBase):
    async def list_objects(self, who: Principal, req: ListRequest) -> ListResult:
        """Latest live objects and common prefixes, in key order, at most
        ``max_keys`` entries in all. ``next_after`` is the last entry returned
        (key or common prefix), the position a continuation resumes from."""
        await self._bucket(who, req.bucket, "read")
        objects: list[ObjectVersion] = []
        prefixes: list[str] = []
        after = req.after
        if after and req.prefix and after < req.prefix:
            after = ""
        # Resuming after a common prefix: skip what rolls up into it.
        if after and common_prefix(after, req.prefix, req.delimiter) == after:
            after = after + _MAX
        last = ""
        if req.max_keys <= 0:
            return ListResult([], [], False, "")
        # A plain page asks for one row more than it returns: one seek answers
        # both the page and whether anything follows.
        limit = _BATCH + 1 if not req.delimiter else _FIRST_DELIMITED
        seeks = 0
        while True:
            want = req.max_keys - len(objects) - len(prefixes)
            asked = min(limit, want + 1)
            seeks += 1
            if seeks % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # short seeks may not yield by themselves
            batch = await self.meta.list_latest(req.bucket, req.prefix, after or None, asked)
            if not batch:
                return ListResult(objects, prefixes, False, last)
            if not req.delimiter:  # every row is an entry: take the batch as is
                objects.extend(batch[:want])
                if objects:
                    last = after = objects[-1].key
                if len(batch) > want:
                    return ListResult(objects, prefixes, True, last)
                if len(batch) < asked:
                    return ListResult(objects, prefixes, False, last)
                limit = _next_limit(len(batch))
                continue
            rolled: str | None = None  # the prefix whose keys are being skipped
            produced = 0
            for v in batch:
                if rolled is not None and v.key.startswith(rolled):
                    continue
                cp = common_prefix(v.key, req.prefix, req.delimiter)
                if len(objects) + len(prefixes) == req.max_keys:
                    return ListResult(objects, prefixes, True, last)
                produced += 1
                if cp is not None:
                    prefixes.append(cp)
                    last, rolled = cp, cp
                    after = cp + _MAX  # the next seek skips everything under it
                else:
                    objects.append(v)
                    last, rolled = v.key, None
                    after = v.key
            if len(batch) < asked:
                return ListResult(objects, prefixes, False, last)
            limit = _next_limit(produced)

    async def list_versions(self, who: Principal, req: VersionListRequest) -> VersionListResult:
        """Versions and delete markers by key, newest first within a key."""
        await self._bucket(who, req.bucket, "read")
        versions: list[ObjectVersion] = []
        prefixes: list[str] = []
        after_key: str | None = req.key_marker or None
        after_version: str | None = (req.version_id_marker or None) if req.key_marker else None
        if after_key and common_prefix(after_key, req.prefix, req.delimiter) == after_key:
            after_key, after_version = after_key + _MAX, None
        if req.max_keys <= 0:
            return VersionListResult([], [], False)
        next_key, next_version = "", ""
        limit = _BATCH if not req.delimiter else _FIRST_DELIMITED
        seeks = 0
        while True:
            want = req.max_keys - len(versions) - len(prefixes)
            asked = min(limit, want + 1)
            seeks += 1
            if seeks % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            batch = await self.meta.list_versions(
                req.bucket, req.prefix, after_key, after_version, asked
            )
            if not batch:
                return VersionListResult(versions, prefixes, False)
            rolled: str | None = None
            produced = 0
            for v in batch:
                if rolled is not None and v.key.startswith(rolled):
                    continue
                if len(versions) + len(prefixes) == req.max_keys:
                    return VersionListResult(versions, prefixes, True, next_key, next_version)
                produced += 1
                cp = common_prefix(v.key, req.prefix, req.delimiter)
                if cp is not None:
                    prefixes.append(cp)
                    next_key, next_version = cp, ""
                    after_key, after_version = cp + _MAX, None
                    rolled = cp
                    continue
                versions.append(v)
                next_key, next_version = v.key, v.version_id
                after_key, after_version = v.key, v.version_id
                rolled = None
            if len(batch) < asked:
                return VersionListResult(versions, prefixes, False)
            limit = _next_limit(produced)


def _next_limit(produced: int) -> int:
    """Rows to ask for next, from how many entries the last full batch produced.

    A batch that produced many entries (objects, or many small common prefixes)
    asks for a full batch again; one spent mostly on keys under large common
    prefixes asks for few rows, because the next seek starts past the prefix and
    every further row beneath the next prefix would be fetched only to be
    skipped (10,000 prefixes of 100 keys: ~2 rows per prefix instead of ~500)."""
    return max(2, min(_BATCH, 2 * produced))
