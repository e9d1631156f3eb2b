"""pytest plugin for ceph/s3-tests: abort leftover multipart uploads between tests.

The suite's per-test fixture deletes every bucket with the run's prefix
(``nuke_prefixed_buckets``): it deletes all object versions, then the bucket, and
raises if any bucket remains. It never aborts multipart uploads, because RGW (the
suite's reference) discards them with the bucket. A server that refuses to delete a
bucket holding in-progress uploads (409 BucketNotEmpty) would then make one test
that leaves an upload behind fail the setup of *every later test*.

Loaded by ``scripts/s3-tests`` (``-p s3tests_isolation``, unless ``--no-isolation``),
this plugin aborts the uploads left in the run's buckets just before each test's
setup and teardown, so each test is judged on its own. Every abort is appended to
the file named by ``$S3TESTS_ISOLATION_LOG`` (``test<TAB>bucket<TAB>key``) so the
report can say how often it was needed. The suite's code is not modified.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from typing import Any

import pytest


def _clients() -> list[Any]:
    from s3tests import functional as s3t  # the suite, importable from its checkout

    factories: list[Callable[[], Any]] = [
        s3t.get_client,
        s3t.get_alt_client,
        s3t.get_tenant_client,
    ]
    return [factory() for factory in factories]


def abort_leftover_uploads(test: str) -> int:
    """Abort in-progress uploads in the run's buckets; return how many."""
    from botocore.exceptions import ClientError
    from s3tests import functional as s3t

    if s3t.prefix is None or not getattr(s3t.config, "main_access_key", None):
        return 0  # not configured yet: no bucket of this run exists
    aborted = []
    for client in _clients():
        try:
            buckets = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
        except ClientError:
            continue
        for bucket in buckets:
            if s3t.prefix not in bucket:
                continue
            try:
                pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
                uploads = [u for page in pages for u in page.get("Uploads", [])]
            except ClientError:
                continue
            for upload in uploads:
                try:
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError:
                    continue
                aborted.append(f"{test}\t{bucket}\t{upload['Key']}\n")
    log = os.environ.get("S3TESTS_ISOLATION_LOG")
    if aborted and log:
        with open(log, "a", encoding="utf-8") as f:
            f.writelines(aborted)
    return len(aborted)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    abort_leftover_uploads(item.name)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    abort_leftover_uploads(item.name)
    return (yield)
