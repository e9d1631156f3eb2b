"""ObjectService: the one facade the front ends (S3 gateway, SDK embedded mode)
call. It composes the operation groups; each group documents its contracts.

Every method takes the calling :class:`~tessera.core.requests.Principal` and
raises domain errors from :mod:`tessera.model.errors` — never protocol errors.
"""

from __future__ import annotations

from tessera.core.accounts import AccountOps
from tessera.core.attributes import AttributesOps
from tessera.core.base import CoreOptions
from tessera.core.buckets import BucketOps
from tessera.core.listing import ListingOps
from tessera.core.multipart import CompletedPartSpec, MultipartOps


class ObjectService(AccountOps, BucketOps, ListingOps, MultipartOps, AttributesOps):
    """Accounts, buckets, objects, versions, multipart uploads and listings."""

    async def close(self) -> None:
        """Close the stores. Idempotent."""
        await self.meta.close()
        close = getattr(self.data, "close", None)
        if close is not None:
            await close()


__all__ = ["CompletedPartSpec", "CoreOptions", "ObjectService"]
