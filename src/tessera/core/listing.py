"""Listings: objects (v1/v2), object versions, with prefix and delimiter.

Theory of operation: the metadata store only knows ordered index seeks
("entries after X with prefix P"). Delimiter grouping happens here: when a key
falls under a common prefix ``CP`` we emit ``CP`` once and seek past every key
that starts with it, so a listing of 10,000 "directories" costs about 10,000
seeks, not a scan of every key beneath them. ``U+10FFFF`` is the greatest code
point, and Python compares strings by code point, which is also UTF-8 byte order.
"""

from __future__ import annotations

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
        while True:
            want = req.max_keys - len(objects) - len(prefixes)
            batch = await self.meta.list_latest(
                req.bucket, req.prefix, after or None, min(_BATCH, want + 1)
            )
            if not batch:
                return ListResult(objects, prefixes, False, last)
            for v in batch:
                cp = common_prefix(v.key, req.prefix, req.delimiter)
                entry = cp if cp is not None else v.key
                if len(objects) + len(prefixes) == req.max_keys:
                    return ListResult(objects, prefixes, True, last)
                if cp is not None:
                    prefixes.append(cp)
                    last = cp
                    after = max(cp + _MAX, v.key)
                    break  # seek past everything under this prefix
                objects.append(v)
                last = entry
                after = v.key
            else:
                if len(batch) < min(_BATCH, want + 1):
                    return ListResult(objects, prefixes, False, last)

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
        while True:
            want = req.max_keys - len(versions) - len(prefixes)
            limit = min(_BATCH, want + 1)
            batch = await self.meta.list_versions(
                req.bucket, req.prefix, after_key, after_version, limit
            )
            if not batch:
                return VersionListResult(versions, prefixes, False)
            for v in batch:
                if len(versions) + len(prefixes) == req.max_keys:
                    return VersionListResult(versions, prefixes, True, next_key, next_version)
                cp = common_prefix(v.key, req.prefix, req.delimiter)
                if cp is not None:
                    prefixes.append(cp)
                    next_key, next_version = cp, ""
                    after_key, after_version = max(cp + _MAX, v.key), None
                    break
                versions.append(v)
                next_key, next_version = v.key, v.version_id
                after_key, after_version = v.key, v.version_id
            else:
                if len(batch) < limit:
                    return VersionListResult(versions, prefixes, False)
