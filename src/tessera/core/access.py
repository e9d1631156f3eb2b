"""Who may do what: account ownership plus S3 canned ACLs.

Tessera's access model is deliberately small. Every bucket and object has an
owner (the account that created it) and a canned ACL:

=====================  ======================================================
``private``            owner only (the default)
``public-read``        anyone, signed or anonymous, may read
``public-read-write``  (buckets) anyone may also write objects into the bucket
``authenticated-read`` any signed request, from any account, may read
=====================  ======================================================

Objects also accept ``aws-exec-read``, ``bucket-owner-read`` and
``bucket-owner-full-control``, which grant nothing beyond private: the bucket
owner controls every object in its bucket anyway (S3's default object ownership).

What each permission covers:

* bucket *read*: list objects, versions and multipart uploads;
* bucket *write*: put, copy into, delete objects, multipart uploads;
* object *read*: get and head an object (decided by the object's ACL, not the
  bucket's, as in S3; the bucket must exist);
* everything else (bucket configuration, versioning, ACLs, tags, deleting the
  bucket): the owner only.

Anonymous requests carry :data:`ANONYMOUS` and get exactly what the public
ACLs grant: nothing, unless an owner made something public. Finer grants
(grantee lists, bucket policies) are not supported; pre-authenticated requests
(PARs) are the way to share one object or prefix with someone.
"""

from __future__ import annotations

from tessera.core.requests import Principal
from tessera.model.errors import AccessDenied, InvalidArgument
from tessera.model.records import Bucket, ObjectVersion

ANONYMOUS = Principal("")
"""The principal of an unsigned request."""

BUCKET_ACLS = ("private", "public-read", "public-read-write", "authenticated-read")
OBJECT_ACLS = (*BUCKET_ACLS, "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control")

ACL_CONFIG = "canned-acl"
"""Key of :attr:`Bucket.config` holding the bucket's canned ACL (absent: private)."""


def check_acl(acl: str, *, bucket: bool) -> str:
    """``acl`` if it is a canned ACL valid for a bucket (or an object), the empty
    string meaning ``private``. Raises InvalidArgument."""
    acl = acl or "private"
    if acl not in (BUCKET_ACLS if bucket else OBJECT_ACLS):
        raise InvalidArgument(f"Invalid canned ACL {acl!r}", argument="x-amz-acl", value=acl)
    return acl


def bucket_acl(bucket: Bucket) -> str:
    return bucket.config.get(ACL_CONFIG, "private")


def _public(acl: str, who: Principal, *, write: bool = False) -> bool:
    if acl == "public-read-write":
        return True
    if write:
        return False
    return acl == "public-read" or (acl == "authenticated-read" and who != ANONYMOUS)


def require_bucket(who: Principal, bucket: Bucket, need: str) -> None:
    """Raise AccessDenied unless ``who`` has ``need`` (``owner``, ``read`` or
    ``write``) on ``bucket``."""
    if who.account_id and who.account_id == bucket.owner:
        return
    if need in ("read", "write") and _public(bucket_acl(bucket), who, write=need == "write"):
        return
    raise AccessDenied("Access Denied", bucket=bucket.name)


def require_object_read(who: Principal, bucket: Bucket, v: ObjectVersion) -> None:
    """Raise AccessDenied unless ``who`` may read version ``v`` of ``bucket``: its
    writer, the bucket owner (who controls every object in the bucket, as with S3's
    default object ownership), or anyone the object's ACL makes it public to."""
    if who.account_id and who.account_id in (v.owner, bucket.owner):
        return
    if _public(v.acl, who):
        return
    raise AccessDenied("Access Denied", bucket=bucket.name, key=v.key)
