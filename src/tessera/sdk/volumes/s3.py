"""A storage volume in any S3 bucket (Tessera or not), through boto3.

``S3Volume(bucket, prefix, endpoint_url, access_key, secret_key, region,
verify)``: keys live under ``prefix/`` in ``bucket``. Without keys, boto3's
usual credential chain applies (environment, config files, instance roles).
Uploads use s3transfer with 8 MiB parts from 8 MiB on (the thresholds of
Tessera's remote backend), so ETags agree with ``Bucket`` sync. Sizes come
from the listing or a HEAD; nothing is downloaded to learn a size.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tessera.sdk.errors import NoSuchObject, TesseraClientError, error_for
from tessera.sdk.remote import MULTIPART_THRESHOLD, PART_SIZE
from tessera.sdk.volumes.base import (
    InvalidVolumeConfig,
    IOHandle,
    IteratorReader,
    as_handle,
    check_key,
    join,
    kv_args,
)
from tessera.sdk.volumes.objects import ObjectStoreVolume

READ_SIZE = 1 << 20


@contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Turn botocore errors into SDK errors (by S3 code, else HTTP status)."""
    try:
        yield
    except ClientError as e:
        err = e.response.get("Error", {})
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        code = str(err.get("Code") or status)
        if code == "404":
            code = "NoSuchKey"
        raise error_for(code, f"{what}: {err.get('Message') or code}", status) from e
    except S3UploadFailedError as e:
        raise TesseraClientError(f"{what}: {e}", code="UploadFailed", status=500) from e
    except BotoCoreError as e:
        raise TesseraClientError(f"{what}: {e}", code="ConnectionError", status=503) from e


class S3ObjectHandle(IOHandle):
    def __init__(self, client: Any, bucket: str, key: str, size: int) -> None:
        self.client, self.bucket, self.key, self._size = client, bucket, key, size

    def open(self) -> IO[bytes]:
        with s3_errors(f"GET s3://{self.bucket}/{self.key}"):
            body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"]
        return io.BufferedReader(IteratorReader(body.iter_chunks(READ_SIZE), body.close))

    def size(self) -> int:
        return self._size


class S3Volume(ObjectStoreVolume):
    """Files under ``prefix`` in S3 ``bucket`` (which must exist)."""

    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        verify: bool | str | None = None,
        identifier: str | None = None,
        *,
        client: Any = None,
    ) -> None:
        super().__init__(prefix, identifier)
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.verify = verify
        self._owns_client = client is None
        self.client = client or boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            verify=verify,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_SIZE
        )

    def close(self) -> None:
        if self._owns_client:
            self._owns_client = False
            self.client.close()

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3 volume s3://{join(self.bucket, self.prefix)}{where}"

    def _list_raw(self, prefix: str) -> Iterator[tuple[str, int]]:
        pages = self.client.get_paginator("list_objects_v2")
        with s3_errors(f"list s3://{self.bucket}/{prefix}"):
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                for o in page.get("Contents", []):
                    yield str(o["Key"]), int(o["Size"])

    def _delete_raw(self, keys: Sequence[str]) -> None:
        with s3_errors(f"delete from s3://{self.bucket}"):
            resp = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        errors = resp.get("Errors") or []
        if errors:
            first = errors[0]
            raise error_for(str(first.get("Code")), f"delete {first.get('Key')}: {first}", 500)

    def _handle(self, full_key: str, size: int) -> IOHandle:
        return S3ObjectHandle(self.client, self.bucket, full_key, size)

    def load(self, key: str) -> IOHandle:
        full = self._full(check_key(key))
        try:
            with s3_errors(f"HEAD s3://{self.bucket}/{full}"):
                head = self.client.head_object(Bucket=self.bucket, Key=full)
        except NoSuchObject as e:
            raise NoSuchObject(f"no file {key!r} in {self.describe()}") from e
        return self._handle(full, int(head["ContentLength"]))

    def store(self, file: str | IOHandle | bytes, dst: str) -> None:
        full = self._full(check_key(dst))
        with as_handle(file).open() as src, s3_errors(f"PUT s3://{self.bucket}/{full}"):
            self.client.upload_fileobj(src, self.bucket, full, Config=self._transfer)

    def get_store_for_folder(self, key: str, identifier: str | None = None) -> S3Volume:
        """A volume on ``prefix/key``, sharing this volume's client (closing
        it does not close the client)."""
        return S3Volume(
            self.bucket,
            join(self.prefix, check_key(key)),
            self.endpoint_url,
            self.access_key,
            self.secret_key,
            self.region,
            self.verify,
            identifier,
            client=self.client,
        )

    def args(self, include_secrets: bool = False) -> dict[str, Any]:
        """The access and secret keys are included only with ``include_secrets``."""
        args: dict[str, Any] = {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "verify": self.verify,
        }
        if include_secrets:
            args.update(access_key=self.access_key, secret_key=self.secret_key)
        return args

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> S3Volume:
        args = kv_args(doc)
        if "bucket" not in args:
            raise InvalidVolumeConfig("an S3 volume needs 'bucket'")
        known = {"bucket", "prefix", "endpoint_url", "access_key", "secret_key", "region", "verify"}
        unknown = set(args) - known
        if unknown:
            raise InvalidVolumeConfig(f"unknown S3 volume args {sorted(unknown)}")
        return cls(**args, identifier=doc.get("id"))
