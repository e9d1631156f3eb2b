"""RemoteBackend: the :class:`~tessera.sdk.backend.Backend` of a Tessera server.

Theory of operation:

* S3 operations (put, get, delete, copy, delete-many, multipart) go through a
  botocore S3 client (path-style addressing, SigV4, botocore's retries and
  connection pool); the rest (accounts, containers, metadata records, links,
  locate, drain, truncate, append) through the JSON extension API under
  ``/_tessera/v1/`` with :class:`~tessera.sdk.http.SignedClient`. Records of
  both are built from the same server-side data, so they agree.
* Uploads: a body under :data:`MULTIPART_THRESHOLD` bytes is one PutObject;
  from it on, a multipart upload with :data:`PART_SIZE` parts (the last one
  shorter), :data:`CONCURRENCY` parts in flight. These are s3transfer's
  thresholds set to 8 MiB, so the resulting ETag follows the multipart rule
  with 8 MiB parts that ``Bucket`` sync relies on. The orchestration is done
  here on botocore calls rather than with s3transfer's manager because the
  manager returns no response (no ETag, no version id) and cannot refuse to
  complete once the body proves to differ from the promised ETag. The body is
  read in this thread, so an exception raised by the caller's iterator (a
  deadline) stops the upload; any failure aborts the multipart upload, so
  nothing is stored.
* Downloads stream the botocore StreamingBody in :data:`READ_SIZE` pieces; the
  returned iterator closes the body (and frees the connection) when exhausted
  or closed.
* The account is the one the credentials belong to (``GET whoami``, asked once
  at construction, which also checks the credentials).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import fields
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tessera.sdk.errors import (
    BadRequest,
    EtagMismatch,
    NoSuchObject,
    TesseraClientError,
    error_for,
)
from tessera.sdk.http import Endpoint, SignedClient, quote_path
from tessera.sdk.records import (
    AccessKeyInfo,
    AccountInfo,
    ContainerInfo,
    FragmentLocation,
    ObjectInfo,
    ObjectList,
    ObjectLocation,
    SegmentLocation,
)

MULTIPART_THRESHOLD = 8 << 20
"""Bodies of at least this many bytes are sent as multipart uploads."""
PART_SIZE = 8 << 20
CONCURRENCY = 4
"""Parts uploaded at once (memory: about CONCURRENCY + 1 parts)."""
READ_SIZE = 1 << 20
DELETE_BATCH = 1000
"""Keys per DeleteObjects request (the S3 maximum)."""

R = TypeVar("R")


@contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Raise botocore failures as :mod:`tessera.sdk.errors` (by S3 code, else
    by status; transport failures as code ``ConnectionError``, status 0)."""
    try:
        yield
    except ClientError as e:
        err = e.response.get("Error", {})
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        code = str(err.get("Code") or f"HTTP{status}")
        if code.isdigit():  # HEAD errors carry no body, hence no code
            code = f"HTTP{status}"
        raise error_for(code, str(err.get("Message", "")), status) from e
    except BotoCoreError as e:
        raise TesseraClientError(f"{what}: {e}", code="ConnectionError", status=0) from e


def record(cls: type[R], doc: dict[str, Any]) -> R:
    """``cls(**doc)`` ignoring keys ``cls`` does not know (newer servers)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in doc.items() if k in names})


def location_of(doc: dict[str, Any]) -> ObjectLocation:
    segments = [
        record(
            SegmentLocation,
            {**s, "fragments": [record(FragmentLocation, f) for f in s.get("fragments", [])]},
        )
        for s in doc.get("segments", [])
    ]
    return record(ObjectLocation, {**doc, "segments": segments})


def _unquote_etag(value: str) -> str:
    return value.strip().strip('"')


def _content_md5(etag: str) -> str:
    """The Content-MD5 header value promising the hex MD5 ``etag``."""
    try:
        digest = binascii.unhexlify(etag)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise BadRequest(f"etag must be a hex MD5 (32 hex digits), got {etag!r}")
    return base64.b64encode(digest).decode()


class _Chunker:
    """Cuts an iterator of byte pieces into blocks of a given size."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._buffer = bytearray()
        self.total = 0

    def take(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at the end of the data (b"" then)."""
        while len(self._buffer) < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buffer += piece
        block = bytes(self._buffer[:n])
        del self._buffer[:n]
        self.total += len(block)
        return block


class _BodyStream(Iterator[bytes]):
    """The pieces of a StreamingBody; closing (or reaching the end) closes it."""

    def __init__(self, body: Any, what: str) -> None:
        self._body = body
        self._what = what
        self._closed = False

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            with s3_errors(self._what):
                piece: bytes = self._body.read(READ_SIZE)
        except BaseException:
            self.close()
            raise
        if not piece:
            self.close()
            raise StopIteration
        return piece

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._body.close()


class RemoteBackend:
    """A Tessera server at ``endpoint`` (``http(s)://host:port``), acting for
    the account of ``access_key``. ``verify``: TLS verification (True, False or
    a CA bundle path). Thread-safe. Raises Unauthorized for bad credentials."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        region: str = "us-east-1",
        verify: bool | str = True,
        timeout: tuple[float, float] = (10.0, 300.0),
    ) -> None:
        url = endpoint.rstrip("/")
        self._ext = SignedClient(
            Endpoint(url, access_key, secret_key, region, verify),
            timeout=timeout,
            pool=CONCURRENCY * 2,
        )
        self._s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            verify=verify,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                connect_timeout=timeout[0],
                read_timeout=timeout[1],
                max_pool_connections=CONCURRENCY * 2,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )
        self._parts = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="tessera-part")
        """Uploads parts; its threads start with the first multipart upload."""
        try:
            self._account = str(self._ext.ext("GET", "whoami")["account"])
        except BaseException:
            self.close()
            raise

    @property
    def account(self) -> str:
        return self._account

    @property
    def signed_client(self) -> SignedClient:
        """The signed extension-API client (shared with PARs and blocks)."""
        return self._ext

    def close(self) -> None:
        self._ext.close()
        self._s3.close()
        self._parts.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ accounts

    def account_create(self, account: str, display_name: str = "") -> bool:
        doc = self._ext.ext(
            "PUT", f"accounts/{quote_path(account)}", json_body={"display_name": display_name}
        )
        return bool(doc["created"])

    def account_delete(self, account: str) -> None:
        self._ext.ext("DELETE", f"accounts/{quote_path(account)}")

    def account_list(self) -> list[str]:
        return [str(a) for a in self._ext.ext("GET", "accounts")["accounts"]]

    def account_show(self, account: str) -> AccountInfo:
        return record(AccountInfo, self._ext.ext("GET", f"accounts/{quote_path(account)}"))

    def account_update(
        self, account: str, set_: dict[str, str], delete: Sequence[str], clear: bool
    ) -> None:
        self._ext.ext(
            "POST",
            f"accounts/{quote_path(account)}/properties",
            json_body=_update(set_, delete, clear),
        )

    def access_key_create(self, account: str) -> AccessKeyInfo:
        return record(AccessKeyInfo, self._ext.ext("POST", f"accounts/{quote_path(account)}/keys"))

    # ---------------------------------------------------------- containers

    def container_create(
        self,
        container: str,
        properties: dict[str, str] | None = None,
        policy: str | None = None,
        versioning: bool = False,
    ) -> bool:
        body = {"properties": properties or {}, "policy": policy, "versioning": versioning}
        doc = self._ext.ext("PUT", f"containers/{quote_path(container)}", json_body=body)
        return bool(doc["created"])

    def container_delete(self, container: str, force: bool = False) -> None:
        query = {"force": "1"} if force else None
        self._ext.ext("DELETE", f"containers/{quote_path(container)}", query=query)

    def container_list(self) -> list[ContainerInfo]:
        return [record(ContainerInfo, c) for c in self._ext.ext("GET", "containers")["containers"]]

    def container_show(self, container: str) -> ContainerInfo:
        return record(ContainerInfo, self._ext.ext("GET", f"containers/{quote_path(container)}"))

    def container_update(
        self, container: str, set_: dict[str, str], delete: Sequence[str], clear: bool
    ) -> None:
        self._ext.ext(
            "POST",
            f"containers/{quote_path(container)}/properties",
            json_body=_update(set_, delete, clear),
        )

    def container_snapshot(self, container: str, snapshot: str) -> ContainerInfo:
        doc = self._ext.ext(
            "POST", f"containers/{quote_path(container)}/snapshot", json_body={"snapshot": snapshot}
        )
        return record(ContainerInfo, doc)

    # -------------------------------------------------------- object data

    def object_put(
        self,
        container: str,
        name: str,
        data: Iterable[bytes],
        *,
        size: int | None = None,
        mime_type: str | None = None,
        properties: dict[str, str] | None = None,
        policy: str | None = None,
        etag: str | None = None,
        append: bool = False,
    ) -> ObjectInfo:
        """See :meth:`Backend.object_put`. ``policy`` is sent as the storage
        class. ``size``, when given, must be the body's (BadRequest otherwise,
        nothing stored)."""
        if append:
            path = f"append/{quote_path(container)}/{quote_path(name)}"
            return record(ObjectInfo, self._ext.ext("PUT", path, data=iter(data)))
        extra: dict[str, Any] = {}
        if mime_type:
            extra["ContentType"] = mime_type
        if properties:
            extra["Metadata"] = dict(properties)
        if policy:
            extra["StorageClass"] = policy
        content_md5 = _content_md5(etag) if etag and "-" not in etag else None
        chunker = _Chunker(data)
        first = chunker.take(MULTIPART_THRESHOLD)
        if len(first) < MULTIPART_THRESHOLD:
            _check_size(size, len(first))
            if content_md5:
                extra["ContentMD5"] = content_md5
            elif etag:
                raise EtagMismatch(f"{container}/{name}: a single-part body has no ETag {etag}")
            with s3_errors(f"PUT {container}/{name}"):
                resp = self._s3.put_object(Bucket=container, Key=name, Body=first, **extra)
        else:
            resp = self._multipart(container, name, first, chunker, extra, size, etag)
        return self._written(container, name, resp)

    def _multipart(
        self,
        container: str,
        name: str,
        first: bytes,
        chunker: _Chunker,
        extra: dict[str, Any],
        size: int | None,
        etag: str | None,
    ) -> dict[str, Any]:
        what = f"multipart upload {container}/{name}"
        with s3_errors(what):
            upload_id = self._s3.create_multipart_upload(Bucket=container, Key=name, **extra)[
                "UploadId"
            ]
        whole, part_digests = hashlib.md5(usedforsecurity=False), []
        futures: list[Future[str]] = []
        try:
            block, number = first, 0
            while block:
                number += 1
                whole.update(block)
                part_digests.append(hashlib.md5(block, usedforsecurity=False).digest())
                futures.append(
                    self._parts.submit(self._part, container, name, upload_id, number, block)
                )
                pending = [f for f in futures if not f.done()]
                if len(pending) >= CONCURRENCY:
                    wait(pending, return_when=FIRST_COMPLETED)
                for f in futures:
                    if f.done():
                        f.result()  # raise a failed part at once
                block = chunker.take(PART_SIZE)
            etags = [f.result() for f in futures]
            _check_size(size, chunker.total)
            if etag:
                multipart = hashlib.md5(b"".join(part_digests), usedforsecurity=False)
                actual = (
                    f"{multipart.hexdigest()}-{len(part_digests)}"
                    if "-" in etag
                    else whole.hexdigest()
                )
                if actual != etag.lower():
                    raise EtagMismatch(f"{container}/{name}: content ETag {actual} != {etag}")
            parts = [{"ETag": e, "PartNumber": i} for i, e in enumerate(etags, 1)]
            with s3_errors(what):
                return dict(
                    self._s3.complete_multipart_upload(
                        Bucket=container,
                        Key=name,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
                )
        except BaseException:
            for f in futures:
                f.cancel()
            wait(futures)
            with suppress(ClientError, BotoCoreError):
                self._s3.abort_multipart_upload(Bucket=container, Key=name, UploadId=upload_id)
            raise

    def _part(self, container: str, name: str, upload_id: str, number: int, block: bytes) -> str:
        with s3_errors(f"part {number} of {container}/{name}"):
            resp = self._s3.upload_part(
                Bucket=container, Key=name, UploadId=upload_id, PartNumber=number, Body=block
            )
        return str(resp["ETag"])

    def _written(self, container: str, name: str, resp: dict[str, Any]) -> ObjectInfo:
        """The record of the version a PUT/copy just wrote: by its version id, or
        (unversioned) the latest, which must carry the ETag the write answered."""
        etag = _unquote_etag(str(resp.get("ETag") or resp.get("CopyObjectResult", {})["ETag"]))
        version = resp.get("VersionId")
        info = self.object_head(container, name, version=version)
        if info.etag != etag:
            raise TesseraClientError(
                f"{container}/{name} was replaced before it could be read back",
                code="Conflict",
                status=409,
            )
        return info

    def object_get(
        self,
        container: str,
        name: str,
        *,
        version: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> tuple[ObjectInfo, Iterator[bytes]]:
        kwargs: dict[str, Any] = {"Bucket": container, "Key": name}
        if version:
            kwargs["VersionId"] = version
        if start is not None or end is not None:
            if start is None:
                kwargs["Range"] = f"bytes=-{end}"
            else:
                kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        what = f"GET {container}/{name}"
        with s3_errors(what):
            resp = self._s3.get_object(**kwargs)
        size = int(resp.get("ContentLength", 0))
        if resp.get("ContentRange"):
            size = int(str(resp["ContentRange"]).rsplit("/", 1)[1])
        info = ObjectInfo(
            container=container,
            name=name,
            version=str(resp.get("VersionId") or "null"),
            size=size,
            etag=_unquote_etag(str(resp.get("ETag", ""))),
            mtime=resp["LastModified"].timestamp() if resp.get("LastModified") else 0.0,
            mime_type=str(resp.get("ContentType") or "binary/octet-stream"),
            properties=dict(resp.get("Metadata") or {}),
            storage_class=str(resp.get("StorageClass") or "STANDARD"),
        )
        return info, _BodyStream(resp["Body"], what)

    def object_copy(
        self,
        src_container: str,
        src_name: str,
        dst_container: str,
        dst_name: str,
        *,
        version: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> ObjectInfo:
        source: dict[str, str] = {"Bucket": src_container, "Key": src_name}
        if version:
            source["VersionId"] = version
        kwargs: dict[str, Any] = {"Bucket": dst_container, "Key": dst_name, "CopySource": source}
        if properties is not None:
            src = self.object_head(src_container, src_name, version=version)
            kwargs.update(
                MetadataDirective="REPLACE", Metadata=dict(properties), ContentType=src.mime_type
            )
        with s3_errors(f"copy {src_container}/{src_name} to {dst_container}/{dst_name}"):
            resp = self._s3.copy_object(**kwargs)
        return self._written(dst_container, dst_name, resp)

    def object_delete(self, container: str, name: str, *, version: str | None = None) -> ObjectInfo:
        info = self.object_head(container, name, version=version)
        if version is None and info.deleted:
            raise NoSuchObject(f"{container}/{name} is deleted", code="NoSuchKey", status=404)
        kwargs: dict[str, Any] = {"Bucket": container, "Key": name}
        if version:
            kwargs["VersionId"] = version
        with s3_errors(f"DELETE {container}/{name}"):
            resp = self._s3.delete_object(**kwargs)
        if version is None and resp.get("DeleteMarker"):
            marker = str(resp.get("VersionId") or "null")
            return self.object_head(container, name, version=marker)
        return info

    def object_delete_many(self, container: str, names: Sequence[str]) -> list[tuple[str, bool]]:
        present: list[str] = []
        for name in dict.fromkeys(names):
            with suppress(NoSuchObject):
                if not self.object_head(container, name).deleted:
                    present.append(name)
        failed: set[str] = set()
        for i in range(0, len(present), DELETE_BATCH):
            batch = [{"Key": n} for n in present[i : i + DELETE_BATCH]]
            with s3_errors(f"DeleteObjects {container}"):
                resp = self._s3.delete_objects(
                    Bucket=container, Delete={"Objects": batch, "Quiet": True}
                )
            failed.update(str(e["Key"]) for e in resp.get("Errors", []))
        done = set(present) - failed
        return [(n, n in done) for n in names]

    # ---------------------------------------------------- object metadata

    def object_head(self, container: str, name: str, *, version: str | None = None) -> ObjectInfo:
        return record(ObjectInfo, self._object_call("GET", "objects", container, name, version))

    def object_list(
        self,
        container: str,
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
    ) -> ObjectList:
        query = {
            "prefix": prefix,
            "delimiter": delimiter,
            "marker": marker,
            "end_marker": end_marker,
            "limit": str(limit),
            "versions": "1" if versions else "0",
            "version_marker": version_marker,
            "deleted": "1" if deleted else "0",
            "properties": "1" if properties else "0",
        }
        doc = self._ext.ext("GET", f"list/{quote_path(container)}", query=query)
        objects = [record(ObjectInfo, o) for o in doc.get("objects", [])]
        return record(ObjectList, {**doc, "objects": objects, "prefixes": doc.get("prefixes", [])})

    def object_update(
        self,
        container: str,
        name: str,
        set_: dict[str, str],
        delete: Sequence[str],
        clear: bool,
        *,
        version: str | None = None,
    ) -> ObjectInfo:
        doc = self._object_call(
            "POST", "props", container, name, version, json_body=_update(set_, delete, clear)
        )
        return record(ObjectInfo, doc)

    def object_link(
        self,
        src_container: str,
        src_name: str,
        dst_container: str,
        dst_name: str,
        *,
        version: str | None = None,
    ) -> ObjectInfo:
        body = {"source_container": src_container, "source_name": src_name, "version": version}
        doc = self._object_call("POST", "link", dst_container, dst_name, None, json_body=body)
        return record(ObjectInfo, doc)

    def object_locate(
        self, container: str, name: str, *, version: str | None = None
    ) -> ObjectLocation:
        return location_of(self._object_call("GET", "locate", container, name, version))

    def object_truncate(
        self, container: str, name: str, size: int, *, version: str | None = None
    ) -> ObjectInfo:
        doc = self._object_call(
            "POST", "truncate", container, name, version, json_body={"size": size}
        )
        return record(ObjectInfo, doc)

    def object_touch(self, container: str, name: str) -> ObjectInfo:
        return record(ObjectInfo, self._object_call("POST", "touch", container, name, None))

    def object_drain(self, container: str, name: str, *, version: str | None = None) -> None:
        self._object_call("POST", "drain", container, name, version)

    def _object_call(
        self,
        method: str,
        route: str,
        container: str,
        name: str,
        version: str | None,
        **kwargs: Any,
    ) -> Any:
        path = f"{route}/{quote_path(container)}/{quote_path(name)}"
        query = {"version": version} if version else None
        return self._ext.ext(method, path, query=query, **kwargs)


def _update(set_: dict[str, str], delete: Sequence[str], clear: bool) -> dict[str, Any]:
    """A properties update body (routes.md): clear, then delete, then set."""
    return {"set": dict(set_), "delete": list(delete), "clear": clear}


def _check_size(expected: int | None, actual: int) -> None:
    if expected is not None and expected != actual:
        raise BadRequest(f"the body has {actual} bytes, {expected} were announced")
