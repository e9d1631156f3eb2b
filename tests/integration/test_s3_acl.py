"""Canned ACLs: what the owner makes public is readable (or writable) by anyone,
everything else stays owner-only, and anonymous callers learn nothing about
private buckets."""

from __future__ import annotations

import urllib.request
from typing import Any

import harness
import pytest
from botocore.exceptions import ClientError


def _anon(server: harness.Server, method: str, path: str, body: bytes | None = None):
    req = urllib.request.Request(server.endpoint + path, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30, context=server.ssl_context) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_private_by_default(server: harness.Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    assert _anon(server, "GET", f"/{bucket}/k")[0] == 403
    assert _anon(server, "GET", f"/{bucket}/missing")[0] == 403  # existence not leaked
    assert _anon(server, "GET", f"/{bucket}")[0] == 403
    assert _anon(server, "PUT", f"/{bucket}/new", b"x")[0] == 403
    assert _anon(server, "GET", "/no-such-bucket-here/k")[0] == 404
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]


def test_public_read_object(server: harness.Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="pub", Body=b"hello", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="priv", Body=b"no")
    assert _anon(server, "GET", f"/{bucket}/pub") == (200, b"hello")
    assert _anon(server, "GET", f"/{bucket}/priv")[0] == 403
    assert _anon(server, "GET", f"/{bucket}")[0] == 403  # the bucket itself is private
    grants = s3.get_object_acl(Bucket=bucket, Key="pub")["Grants"]
    uris = [g["Grantee"].get("URI") for g in grants]
    assert "http://acs.amazonaws.com/groups/global/AllUsers" in uris
    s3.put_object_acl(Bucket=bucket, Key="pub", ACL="private")
    assert _anon(server, "GET", f"/{bucket}/pub")[0] == 403


def test_public_bucket_listing_and_writes(server: harness.Server, s3: Any, bucket: str) -> None:
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    status, body = _anon(server, "GET", f"/{bucket}?list-type=2")
    assert status == 200 and b"<Key>k</Key>" in body
    assert _anon(server, "GET", f"/{bucket}/gone")[0] == 404  # listable: 404, not 403
    assert _anon(server, "PUT", f"/{bucket}/anon", b"x")[0] == 403
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert _anon(server, "PUT", f"/{bucket}/anon", b"from anyone")[0] == 200
    assert s3.get_object(Bucket=bucket, Key="anon")["Body"].read() == b"from anyone"
    assert _anon(server, "DELETE", f"/{bucket}")[0] == 403  # owner-only operations stay so
    assert _anon(server, "GET", f"/{bucket}?acl")[0] == 403


def test_authenticated_read(server: harness.Server, s3: Any, other_s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"members", ACL="authenticated-read")
    assert other_s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"members"
    assert _anon(server, "GET", f"/{bucket}/k")[0] == 403
    with pytest.raises(ClientError) as e:
        other_s3.put_object(Bucket=bucket, Key="k2", Body=b"x")
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_invalid_and_unsupported_acls(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.put_bucket_acl(Bucket=bucket, ACL="everyone-please")
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_acl(Bucket=bucket, GrantRead='id="someone-else"')
    assert e.value.response["Error"]["Code"] == "NotImplemented"
    assert [g["Permission"] for g in s3.get_bucket_acl(Bucket=bucket)["Grants"]] == ["FULL_CONTROL"]
