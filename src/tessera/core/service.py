"""ObjectService: the one facade the front ends (S3 gateway, SDK embedded mode)
call. It composes the operation groups; each group documents its contracts.

Every method takes the calling :class:`~tessera.core.requests.Principal` and
raises domain errors from :mod:`tessera.model.errors` — never protocol errors.
"""

from __future__ import annotations

from tessera.core.account_admin import AccountAdminOps
from tessera.core.accounts import AccountOps
from tessera.core.attributes import AttributesOps
from tessera.core.base import CoreOptions
from tessera.core.browse import BrowseOps
from tessera.core.buckets import BucketOps
from tessera.core.containers import ContainerOps
from tessera.core.edits import ObjectEditOps
from tessera.core.listing import ListingOps
from tessera.core.multipart import CompletedPartSpec, MultipartOps
from tessera.core.pars import ParOps
from tessera.core.properties import PropertiesOps


class ObjectService(
    ContainerOps,  # first: its _bucket refuses writes into snapshots for every group
    ObjectEditOps,  # before Multipart/ObjectOps: its reads refuse drained versions
    AccountAdminOps,
    PropertiesOps,
    BrowseOps,
    AccountOps,
    BucketOps,
    ListingOps,
    MultipartOps,
    AttributesOps,
    ParOps,
):
    """Accounts, buckets, objects, versions, multipart uploads, listings and PARs;
    snapshots, properties, links, truncate/append/touch/drain."""

    async def close(self) -> None:
        """Stop PAR jobs and close the stores. Idempotent."""
        await self.close_par_jobs()
        await self.meta.close()
        close = getattr(self.data, "close", None)
        if close is not None:
            await close()


__all__ = ["CompletedPartSpec", "CoreOptions", "ObjectService"]
