"""Naming and size rules for buckets, keys, tags and metadata (S3 rules)."""

from __future__ import annotations

import re

from tessera.model.errors import (
    InvalidArgument,
    InvalidBucketName,
    InvalidTag,
    KeyTooLong,
    MetadataTooLarge,
)

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_IPV4_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")

MAX_KEY_BYTES = 1024
MAX_USER_METADATA = 2048
MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50


def check_bucket_name(name: str) -> None:
    """Raise InvalidBucketName unless ``name`` follows the S3 bucket naming rules."""
    if (
        not _BUCKET_RE.match(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or _IPV4_RE.match(name)
        or name.startswith(("xn--", "sthree-"))
        or name.endswith(("-s3alias", "--ol-s3"))
    ):
        raise InvalidBucketName(f"The specified bucket is not valid: {name!r}", bucket=name)


def check_key(key: str) -> None:
    """Keys are opaque UTF-8, 1..1024 bytes; never interpreted as paths.

    Refused with InvalidArgument: the empty key, U+0000 (PostgreSQL text cannot hold
    it) and anything that is not valid UTF-8 (lone surrogates from a bad decoding).
    """
    if not key:
        raise InvalidArgument("Object key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument("Object key is not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise KeyTooLong("Your key is too long", key=key[:64])
    if "\x00" in key:
        raise InvalidArgument("Object key must not contain U+0000")


def check_user_metadata(meta: dict[str, str]) -> None:
    size = sum(len(k.encode()) + len(v.encode()) for k, v in meta.items())
    if size > MAX_USER_METADATA:
        raise MetadataTooLarge(
            f"Your metadata headers exceed the maximum allowed metadata size ({size} > {MAX_USER_METADATA})"
        )


def check_tags(tags: dict[str, str], *, limit: int = MAX_OBJECT_TAGS) -> None:
    """S3 tag rules: at most ``limit`` tags, keys 1..128 and values 0..256 characters."""
    if len(tags) > limit:
        raise InvalidTag(f"Object tags cannot be greater than {limit}")
    for k, v in tags.items():
        if not k or len(k) > 128:
            raise InvalidTag("The TagKey you have provided is invalid")
        if len(v) > 256:
            raise InvalidTag("The TagValue you have provided is too long")
        if k.startswith("aws:"):
            raise InvalidTag("Your TagKey cannot be prefixed with aws:")
