"""Object listings as the SDK asks for them: one page between a start marker
and an end marker, of latest objects or of every version, optionally with each
object's properties.

Built on :mod:`tessera.core.listing` (same order, same seeks). ``end_marker``
is exclusive: entries (keys or common prefixes) at or after it are dropped, and
a page cut there is not truncated. ``properties`` costs one metadata read per
object listed (listings themselves never load user metadata).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tessera.core.listing import ListingOps
from tessera.core.requests import ListRequest, Principal, VersionListRequest
from tessera.model.errors import InvalidArgument, NotFound
from tessera.model.records import ObjectVersion

MAX_PAGE = 10_000
"""Most entries one page may ask for."""


@dataclass(frozen=True, slots=True)
class ObjectPage:
    """One page of a listing: versions (listing records, or full metadata with
    ``properties``) and common prefixes, in key order."""

    versions: list[ObjectVersion]
    prefixes: list[str]
    truncated: bool
    next_marker: str = ""
    """Pass as ``marker`` for the next page ("" when not truncated)."""
    next_version_marker: str = ""
    """With ``versions``: pass as ``version_marker`` too."""


class BrowseOps(ListingOps):
    async def object_page(
        self,
        who: Principal,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        marker: str = "",
        end_marker: str = "",
        limit: int = 1000,
        versions: bool = False,
        version_marker: str = "",
        deleted: bool = False,
        properties: bool = False,
    ) -> ObjectPage:
        """One page of at most ``limit`` entries strictly after ``marker`` (and,
        with ``versions``, after ``version_marker`` within that key). Without
        ``versions``: latest live objects. With ``versions``: every version,
        newest first per key; delete markers only with ``deleted``. Raises
        BucketNotFound, AccessDenied, InvalidArgument (limit out of 1..10000)."""
        if limit < 1 or limit > MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}", argument="limit")
        if versions:
            vres = await self.list_versions(
                who,
                VersionListRequest(
                    bucket,
                    prefix=prefix,
                    delimiter=delimiter,
                    key_marker=marker,
                    version_id_marker=version_marker if marker else "",
                    max_keys=limit,
                ),
            )
            found = [v for v in vres.versions if deleted or not v.delete_marker]
            page = ObjectPage(
                found,
                vres.common_prefixes,
                vres.truncated,
                vres.next_key_marker if vres.truncated else "",
                vres.next_version_id_marker if vres.truncated else "",
            )
        else:
            res = await self.list_objects(
                who,
                ListRequest(
                    bucket, prefix=prefix, delimiter=delimiter, after=marker, max_keys=limit
                ),
            )
            page = ObjectPage(
                res.objects,
                res.common_prefixes,
                res.truncated,
                res.next_after if res.truncated else "",
            )
        if end_marker:
            page = _cut(page, end_marker)
        if properties:
            page = dataclasses.replace(page, versions=await self._with_properties(page.versions))
        return page

    async def _with_properties(self, listed: list[ObjectVersion]) -> list[ObjectVersion]:
        out = []
        for v in listed:
            if v.delete_marker:
                out.append(v)
                continue
            try:
                full = await self.meta.get_version(v.bucket, v.key, v.version_id)
            except NotFound:
                continue  # deleted since it was listed
            out.append(
                dataclasses.replace(
                    v,
                    user_metadata=dict(full.user_metadata),
                    content_type=full.content_type,
                    checksums=dict(full.checksums),
                )
            )
        return out


def _cut(page: ObjectPage, end_marker: str) -> ObjectPage:
    """``page`` without the entries at or after ``end_marker``."""
    kept = [v for v in page.versions if v.key < end_marker]
    prefixes = [p for p in page.prefixes if p < end_marker]
    if len(kept) == len(page.versions) and len(prefixes) == len(page.prefixes):
        return page
    return ObjectPage(kept, prefixes, False)
