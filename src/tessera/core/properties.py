"""Free key/value properties of accounts, buckets (containers) and objects.

Where they live (no schema of their own):

* account properties: :attr:`Account.properties`;
* bucket properties: one JSON document in :attr:`Bucket.config` under
  :data:`PROPERTIES_CONFIG` (the S3 sub-resources use other names, so S3
  clients never see it); a snapshot's frozen flag sits beside it under
  :data:`FROZEN_CONFIG`;
* object properties: the version's user metadata (``x-amz-meta-*`` over S3).

An update (:class:`PropertyUpdate`) clears first, then deletes, then sets, and is
stored in one metadata write. It is a read-modify-write: two concurrent updates
of one record do not merge (the later write wins whole), as for S3 metadata.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tessera.core.base import ServiceBase
from tessera.core.requests import Principal
from tessera.core.validation import check_user_metadata
from tessera.model.errors import InvalidArgument
from tessera.model.records import Bucket, ObjectVersion

PROPERTIES_CONFIG = "tessera-properties"
"""Key of the bucket properties document in :attr:`Bucket.config`."""
FROZEN_CONFIG = "tessera-frozen"
"""Key of the frozen flag (``"1"``) of a snapshot in :attr:`Bucket.config`."""
MAX_PROPERTIES = 1000
"""Properties per account or bucket."""


@dataclass(frozen=True, slots=True)
class PropertyUpdate:
    """A change of properties: drop all when ``clear``, then ``delete``, then ``set``."""

    set: Mapping[str, str] = field(default_factory=dict)
    delete: Sequence[str] = ()
    clear: bool = False

    def apply(self, current: Mapping[str, str]) -> dict[str, str]:
        """The properties after this update. Raises InvalidArgument for a
        non-string key or value."""
        out: dict[str, str] = {} if self.clear else dict(current)
        for name in self.delete:
            out.pop(name, None)
        for name, value in self.set.items():
            if not isinstance(name, str) or not isinstance(value, str) or not name:
                raise InvalidArgument("Property names and values must be non-empty strings")
            out[name] = value
        if len(out) > MAX_PROPERTIES:
            raise InvalidArgument(f"At most {MAX_PROPERTIES} properties are allowed")
        return out


def bucket_properties(bucket: Bucket) -> dict[str, str]:
    """The bucket's properties ({} when none)."""
    text = bucket.config.get(PROPERTIES_CONFIG)
    if not text:
        return {}
    doc = json.loads(text)
    return {str(k): str(v) for k, v in doc.items()}


def with_bucket_properties(bucket: Bucket, properties: Mapping[str, str]) -> Bucket:
    """A copy of ``bucket`` carrying ``properties`` (the document dropped when empty)."""
    config = {k: v for k, v in bucket.config.items() if k != PROPERTIES_CONFIG}
    if properties:
        config[PROPERTIES_CONFIG] = json.dumps(dict(properties), sort_keys=True)
    return dataclasses.replace(bucket, config=config)


def is_frozen(bucket: Bucket) -> bool:
    """True for a snapshot: its objects cannot be written or deleted."""
    return bucket.config.get(FROZEN_CONFIG) == "1"


class PropertiesOps(ServiceBase):
    async def update_bucket_properties(
        self, who: Principal, name: str, update: PropertyUpdate
    ) -> Bucket:
        """Change the bucket's properties (owner only; allowed on a snapshot,
        whose objects stay frozen). Returns the updated record. Raises
        BucketNotFound, AccessDenied, InvalidArgument."""
        bucket = await self._bucket(who, name)
        updated = with_bucket_properties(bucket, update.apply(bucket_properties(bucket)))
        await self._update_bucket(updated)
        return updated

    async def update_object_properties(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        update: PropertyUpdate,
        version_id: str | None = None,
    ) -> ObjectVersion:
        """Change a version's properties (its user metadata) in place: same
        version, same data, same modification time. Owner of the bucket only.
        Raises BucketNotFound, AccessDenied, FrozenBucket, ObjectNotFound,
        VersionNotFound, DeleteMarkerHit, MetadataTooLarge, InvalidArgument."""
        await self._bucket(who, bucket_name, "write")
        await self._bucket(who, bucket_name)
        v = await self.meta.get_version(bucket_name, key, version_id)
        if v.delete_marker:
            raise InvalidArgument("A delete marker has no properties", key=key)
        metadata = {k.lower(): val for k, val in update.apply(v.user_metadata).items()}
        check_user_metadata(metadata)
        updated = dataclasses.replace(v, user_metadata=metadata)
        await self.meta.update_version(updated)
        return updated
