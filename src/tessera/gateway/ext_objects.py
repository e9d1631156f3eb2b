"""Extension API for the SDK's ObjectStorageApi: accounts, containers and the
object operations S3 lacks (``/_tessera/v1/``; the agreed routes are listed in
:data:`ROUTES`).

Answers are JSON documents whose field names are exactly those of the SDK's
records (``tessera.sdk.records``: AccountInfo, AccessKeyInfo, ContainerInfo,
ObjectInfo, ObjectList, ObjectLocation); the ``*_doc`` functions below build
them from core records, and the embedded SDK backend reuses them, so both
backends describe things identically. Times are float epoch seconds.

Property updates are ``{"set": {k: v}, "delete": [k], "clear": bool}``, applied
clear, then delete, then set, in one metadata write. An object's ``policy`` is
the storage policy of its first segment ("" for inline objects and in listings,
which do not load manifests).

Errors: domain errors as everywhere (the one table in
:mod:`tessera.gateway.errors`); a missing account answers ``NoSuchAccount``
(404) here, where the account is what the path names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tessera.core.account_admin import AccountStats
from tessera.core.browse import ObjectPage
from tessera.core.containers import ContainerStats
from tessera.core.edits import is_drained
from tessera.core.properties import PropertyUpdate, bucket_properties, is_frozen
from tessera.gateway.extension import ExtRequest, Route
from tessera.model.errors import AccountNotFound
from tessera.model.records import AccessKey, Bucket, ObjectVersion
from tessera.protocol.s3.errors import S3Error

__all__ = [
    "ROUTES",
    "account_doc",
    "container_doc",
    "key_doc",
    "location_doc",
    "object_doc",
    "page_doc",
    "property_update",
]


# -- documents ------------------------------------------------------------------------------
def account_doc(stats: AccountStats) -> dict[str, Any]:
    """An AccountInfo document."""
    a = stats.account
    return {
        "id": a.id,
        "display_name": a.display_name,
        "created": a.created,
        "properties": dict(a.properties),
        "containers": stats.containers,
        "objects": stats.objects,
        "bytes": stats.bytes,
    }


def key_doc(key: AccessKey) -> dict[str, Any]:
    """An AccessKeyInfo document (the only time the secret is shown)."""
    return {"access_key_id": key.access_key_id, "secret": key.secret, "account": key.account_id}


def container_doc(bucket: Bucket, objects: int = 0, size: int = 0) -> dict[str, Any]:
    """A ContainerInfo document."""
    return {
        "name": bucket.name,
        "owner": bucket.owner,
        "created": bucket.created,
        "objects": objects,
        "bytes": size,
        "versioning": bucket.versioning,
        "policy": bucket.policy,
        "frozen": is_frozen(bucket),
        "properties": bucket_properties(bucket),
    }


def object_doc(v: ObjectVersion) -> dict[str, Any]:
    """An ObjectInfo document (properties are the user metadata)."""
    return {
        "container": v.bucket,
        "name": v.key,
        "version": v.version_id,
        "size": v.size,
        "etag": v.etag,
        "mtime": v.last_modified,
        "mime_type": v.content_type,
        "properties": dict(v.user_metadata),
        "storage_class": v.storage_class,
        "policy": v.manifest.segments[0].policy if v.manifest.segments else "",
        "deleted": v.delete_marker,
        "is_latest": v.is_latest,
        "checksums": dict(v.checksums),
    }


def page_doc(page: ObjectPage) -> dict[str, Any]:
    """An ObjectList document."""
    return {
        "objects": [object_doc(v) for v in page.versions],
        "prefixes": list(page.prefixes),
        "truncated": page.truncated,
        "next_marker": page.next_marker,
        "next_version_marker": page.next_version_marker,
    }


def location_doc(v: ObjectVersion) -> dict[str, Any]:
    """An ObjectLocation document: each segment at its offset, each fragment on
    the volume (local disk or chunk-server disk) that holds it. A drained
    version has no segments."""
    segments = []
    offset = 0
    for seg in v.manifest.segments:
        segments.append(
            {
                "offset": offset,
                "size": seg.size,
                "policy": seg.policy,
                "hash": seg.hash,
                "fragments": [
                    {"index": f.index, "block": f.block, "size": f.size, "server": f.volume}
                    for f in seg.fragments
                ],
            }
        )
        offset += seg.size
    return {
        "container": v.bucket,
        "name": v.key,
        "version": v.version_id,
        "size": v.size,
        "inline": v.inline is not None and not is_drained(v),
        "segments": segments,
    }


def property_update(doc: dict[str, Any]) -> PropertyUpdate:
    """The update a ``{"set", "delete", "clear"}`` body describes. Raises
    S3Error InvalidArgument for a malformed one."""
    set_ = doc.get("set") or {}
    delete = doc.get("delete") or []
    clear = doc.get("clear", False)
    if (
        not isinstance(set_, dict)
        or not all(isinstance(k, str) and isinstance(x, str) for k, x in set_.items())
        or not isinstance(delete, list)
        or not all(isinstance(k, str) for k in delete)
        or not isinstance(clear, bool)
    ):
        raise S3Error(
            "InvalidArgument",
            'A properties update is {"set": {str: str}, "delete": [str], "clear": bool}',
        )
    return PropertyUpdate(set=set_, delete=tuple(delete), clear=clear)


@contextlib.contextmanager
def _account_errors() -> Iterator[None]:
    try:
        yield
    except AccountNotFound as e:
        raise S3Error("NoSuchAccount", e.message, status=404) from None


def _version(req: ExtRequest) -> str | None:
    return req.query.get("version") or None


# -- accounts -------------------------------------------------------------------------------
async def _accounts(req: ExtRequest) -> Any:
    return {"accounts": await req.service.list_account_ids(req.principal)}


async def _account_create(req: ExtRequest) -> Any:
    doc = await req.json()
    name = doc.get("display_name") or ""
    if not isinstance(name, str):
        raise S3Error("InvalidArgument", "display_name must be a string")
    created = await req.service.create_account_as(req.principal, req.params["account"], name)
    return {"created": created}


async def _account_delete(req: ExtRequest) -> Any:
    with _account_errors():
        await req.service.delete_account_as(req.principal, req.params["account"])
    return {}


async def _account_show(req: ExtRequest) -> Any:
    with _account_errors():
        return account_doc(await req.service.account_stats(req.principal, req.params["account"]))


async def _account_properties(req: ExtRequest) -> Any:
    update = property_update(await req.json())
    with _account_errors():
        await req.service.update_account_properties(req.principal, req.params["account"], update)
    return {}


async def _account_key(req: ExtRequest) -> Any:
    with _account_errors():
        key = await req.service.create_access_key_as(req.principal, req.params["account"])
    return key_doc(key)


# -- containers -----------------------------------------------------------------------------
async def _containers(req: ExtRequest) -> Any:
    buckets = await req.service.list_buckets(req.principal)
    return {"containers": [container_doc(b) for b in buckets]}


async def _container_create(req: ExtRequest) -> Any:
    doc = await req.json()
    properties = doc.get("properties") or {}
    policy = doc.get("policy")
    versioning = doc.get("versioning", False)
    if (
        not isinstance(properties, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in properties.items())
        or not (policy is None or isinstance(policy, str))
        or not isinstance(versioning, bool)
    ):
        raise S3Error(
            "InvalidArgument",
            'Expected {"properties": {str: str}, "policy": str|null, "versioning": bool}',
        )
    created = await req.service.create_container(
        req.principal,
        req.params["container"],
        properties=properties,
        policy=policy or None,
        versioning=versioning,
    )
    return {"created": created}


async def _container_show(req: ExtRequest) -> Any:
    stats: ContainerStats = await req.service.container_stats(
        req.principal, req.params["container"]
    )
    return container_doc(stats.bucket, stats.objects, stats.bytes)


async def _container_delete(req: ExtRequest) -> Any:
    await req.service.delete_container(
        req.principal, req.params["container"], force=req.flag("force")
    )
    return {}


async def _container_properties(req: ExtRequest) -> Any:
    update = property_update(await req.json())
    await req.service.update_bucket_properties(req.principal, req.params["container"], update)
    return {}


async def _container_snapshot(req: ExtRequest) -> Any:
    name = (await req.json()).get("snapshot")
    if not isinstance(name, str) or not name:
        raise S3Error("InvalidArgument", 'Expected {"snapshot": name}')
    bucket = await req.service.snapshot_container(req.principal, req.params["container"], name)
    stats = await req.service.container_stats(req.principal, bucket.name)
    return container_doc(stats.bucket, stats.objects, stats.bytes)


# -- objects --------------------------------------------------------------------------------
async def _list(req: ExtRequest) -> Any:
    q = req.query
    page = await req.service.object_page(
        req.principal,
        req.params["container"],
        prefix=q.get("prefix", ""),
        delimiter=q.get("delimiter", ""),
        marker=q.get("marker", ""),
        end_marker=q.get("end_marker", ""),
        limit=req.integer("limit", 1000) or 0,
        versions=req.flag("versions"),
        version_marker=q.get("version_marker", ""),
        deleted=req.flag("deleted"),
        properties=req.flag("properties"),
    )
    return page_doc(page)


async def _object_show(req: ExtRequest) -> Any:
    p = req.params
    v = await req.service.describe_object(req.principal, p["container"], p["name"], _version(req))
    return object_doc(v)


async def _object_properties(req: ExtRequest) -> Any:
    p = req.params
    update = property_update(await req.json())
    v = await req.service.update_object_properties(
        req.principal, p["container"], p["name"], update, _version(req)
    )
    return object_doc(v)


async def _link(req: ExtRequest) -> Any:
    doc = await req.json()
    src_container, src_name = doc.get("source_container"), doc.get("source_name")
    version = doc.get("version")
    if (
        not isinstance(src_container, str)
        or not isinstance(src_name, str)
        or not (version is None or isinstance(version, str))
    ):
        raise S3Error(
            "InvalidArgument",
            'Expected {"source_container": str, "source_name": str, "version": str|null}',
        )
    p = req.params
    v = await req.service.link_object(
        req.principal, src_container, src_name, p["container"], p["name"], version or None
    )
    return object_doc(v)


async def _locate(req: ExtRequest) -> Any:
    p = req.params
    v = await req.service.locate_object(req.principal, p["container"], p["name"], _version(req))
    return location_doc(v)


async def _truncate(req: ExtRequest) -> Any:
    size = (await req.json()).get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        raise S3Error("InvalidArgument", 'Expected {"size": int}')
    p = req.params
    v = await req.service.truncate_object(
        req.principal, p["container"], p["name"], size, _version(req)
    )
    return object_doc(v)


async def _touch(req: ExtRequest) -> Any:
    p = req.params
    return object_doc(await req.service.touch_object(req.principal, p["container"], p["name"]))


async def _drain(req: ExtRequest) -> Any:
    p = req.params
    await req.service.drain_object(req.principal, p["container"], p["name"], _version(req))
    return {}


async def _append(req: ExtRequest) -> Any:
    p = req.params
    v = await req.service.append_object(req.principal, p["container"], p["name"], req.body.source())
    return object_doc(v)


_LIST_QUERY = (
    "prefix",
    "delimiter",
    "marker",
    "end_marker",
    "limit",
    "versions",
    "version_marker",
    "deleted",
    "properties",
)
_A, _C, _O = "accounts", "containers", "objects"
_OBJ = "{container}/{name+}"

ROUTES: list[Route] = [
    Route("GET", "accounts", _accounts, "Every account id (root)", _A),
    Route(
        "PUT", "accounts/{account}", _account_create, "Create an account (root)", _A, body="json"
    ),
    Route("DELETE", "accounts/{account}", _account_delete, "Delete an empty account (root)", _A),
    Route("GET", "accounts/{account}", _account_show, "An account with its totals", _A),
    Route(
        "POST",
        "accounts/{account}/properties",
        _account_properties,
        "Change an account's properties",
        _A,
        body="json",
    ),
    Route("POST", "accounts/{account}/keys", _account_key, "Create an access key", _A),
    Route("GET", "containers", _containers, "This account's containers", _C),
    Route(
        "PUT",
        "containers/{container}",
        _container_create,
        "Create a container with properties, policy and versioning",
        _C,
        body="json",
    ),
    Route("GET", "containers/{container}", _container_show, "A container with counters", _C),
    Route(
        "DELETE",
        "containers/{container}",
        _container_delete,
        "Delete a container (force: with its objects)",
        _C,
        query=("force",),
    ),
    Route(
        "POST",
        "containers/{container}/properties",
        _container_properties,
        "Change a container's properties",
        _C,
        body="json",
    ),
    Route(
        "POST",
        "containers/{container}/snapshot",
        _container_snapshot,
        "Freeze a copy of a container (no data copied)",
        _C,
        body="json",
    ),
    Route("GET", "list/{container}", _list, "List objects or versions", _O, query=_LIST_QUERY),
    Route("GET", f"objects/{_OBJ}", _object_show, "An object version", _O, query=("version",)),
    Route(
        "POST",
        f"props/{_OBJ}",
        _object_properties,
        "Change an object's properties in place",
        _O,
        query=("version",),
        body="json",
    ),
    Route("POST", f"link/{_OBJ}", _link, "Link an object (shares its data)", _O, body="json"),
    Route("GET", f"locate/{_OBJ}", _locate, "Where an object's bytes are", _O, query=("version",)),
    Route(
        "POST",
        f"truncate/{_OBJ}",
        _truncate,
        "New version of the first N bytes",
        _O,
        query=("version",),
        body="json",
    ),
    Route("POST", f"touch/{_OBJ}", _touch, "Set the modification time to now", _O),
    Route(
        "POST",
        f"drain/{_OBJ}",
        _drain,
        "Drop an object's data, keep its record",
        _O,
        query=("version",),
    ),
    Route(
        "PUT",
        f"append/{_OBJ}",
        _append,
        "Append bytes (creates the object when missing)",
        _O,
        body="binary",
    ),
]
