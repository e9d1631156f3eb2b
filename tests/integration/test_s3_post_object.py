"""POST Object (browser-based uploads): HTML forms built by aiohttp's client,
policies signed by botocore's ``generate_presigned_post`` (SigV4 and SigV2),
posted over http and https to a real ``tessera serve``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import aiohttp
import boto3
import harness
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tessera.protocol.s3.errors import parse_error_document

MiB = 1 << 20


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str:
        return parse_error_document(self.body)[0]


async def post_form(
    server: harness.Server,
    bucket: str,
    fields: Iterable[tuple[str, str]],
    data: bytes | None = b"hello",
    *,
    filename: str = "upload.bin",
    after: Iterable[tuple[str, str]] = (),
    session: aiohttp.ClientSession | None = None,
) -> Answer:
    """POST a multipart form: ``fields``, then the ``file`` part (unless ``data``
    is None), then ``after``. Redirects are not followed."""
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields:
        form.add_field(name, value)
    if data is not None:
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    for name, value in after:
        form.add_field(name, value)
    own = session is None
    s = session or aiohttp.ClientSession()
    try:
        async with s.post(
            f"{server.endpoint}/{bucket}",
            data=form,
            ssl=server.ssl_context or True,
            allow_redirects=False,
        ) as r:
            return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read())
    finally:
        if own:
            await s.close()


def presigned(
    server: harness.Server, bucket: str, key: str, *, version: str = "s3v4", **kwargs: Any
) -> list[tuple[str, str]]:
    """The fields of botocore's presigned POST (root credentials)."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=harness.REGION,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        verify=server.verify,
        config=Config(signature_version=version, s3={"addressing_style": "path"}),
    )
    post = client.generate_presigned_post(bucket, key, **kwargs)
    return list(post["fields"].items())


def missing(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


# ------------------------------------------------------------------ success


@pytest.mark.parametrize("version", ["s3v4", "s3"])
async def test_presigned_post_upload(
    server: harness.Server, s3: Any, bucket: str, version: str
) -> None:
    fields = presigned(
        server,
        bucket,
        "photos/${filename}",
        version=version,
        Fields={"Content-Type": "image/png", "x-amz-meta-owner": "eric"},
        Conditions=[
            ["starts-with", "$Content-Type", "image/"],
            {"x-amz-meta-owner": "eric"},
            ["content-length-range", 1, 16 * MiB],
        ],
    )
    data = os.urandom(5 * MiB + 123)  # several reads and data-path segments
    r = await post_form(server, bucket, fields, data, filename="cat.png")
    assert r.status == 204, r.body
    etag = f'"{hashlib.md5(data).hexdigest()}"'
    assert r.headers["etag"] == etag
    assert r.headers["location"] == f"{server.endpoint}/{bucket}/photos/cat.png"
    got = s3.get_object(Bucket=bucket, Key="photos/cat.png")
    assert got["Body"].read() == data
    assert got["ETag"] == etag
    assert got["ContentType"] == "image/png"
    assert got["Metadata"] == {"owner": "eric"}


async def test_status_201_returns_post_response(
    server: harness.Server, s3: Any, bucket: str
) -> None:
    fields = presigned(
        server,
        bucket,
        "doc.txt",
        Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}],
    )
    r = await post_form(server, bucket, fields, b"text")
    assert r.status == 201
    root = ElementTree.fromstring(r.body)
    assert root.tag == "PostResponse"
    assert root.findtext("Bucket") == bucket
    assert root.findtext("Key") == "doc.txt"
    assert root.findtext("ETag") == f'"{hashlib.md5(b"text").hexdigest()}"'
    assert root.findtext("Location") == f"{server.endpoint}/{bucket}/doc.txt"


async def test_redirect_after_success(server: harness.Server, s3: Any, bucket: str) -> None:
    target = "https://app.example/done?from=form"
    fields = presigned(
        server,
        bucket,
        "a b.txt",
        Fields={"success_action_redirect": target},
        Conditions=[{"success_action_redirect": target}],
    )
    r = await post_form(server, bucket, fields, b"x")
    assert r.status == 303
    location = urlsplit(r.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "app.example", "/done")
    query = parse_qs(location.query)
    assert query == {
        "from": ["form"],
        "bucket": [bucket],
        "key": ["a b.txt"],
        "etag": [f'"{hashlib.md5(b"x").hexdigest()}"'],
    }
    assert s3.get_object(Bucket=bucket, Key="a b.txt")["Body"].read() == b"x"


async def test_tags_acl_and_checksum_fields(server: harness.Server, s3: Any, bucket: str) -> None:
    data = b"checked bytes"
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    tagging = "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    fields = presigned(
        server,
        bucket,
        "t.txt",
        Fields={"acl": "public-read", "tagging": tagging},
        Conditions=[{"acl": "public-read"}, ["starts-with", "$tagging", ""]],
    )
    r = await post_form(server, bucket, [*fields, ("x-amz-checksum-sha256", good)], data)
    assert r.status == 204, r.body
    assert r.headers["x-amz-checksum-sha256"] == good
    assert s3.get_object_tagging(Bucket=bucket, Key="t.txt")["TagSet"] == [
        {"Key": "k", "Value": "v"}
    ]
    grants = s3.get_object_acl(Bucket=bucket, Key="t.txt")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    head = s3.head_object(Bucket=bucket, Key="t.txt", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == good

    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    r = await post_form(server, bucket, [*fields, ("x-amz-checksum-sha256", bad)], b"new")
    assert (r.status, r.code) == (400, "BadDigest")
    assert s3.get_object(Bucket=bucket, Key="t.txt")["Body"].read() == data  # unchanged


async def test_fields_after_the_file_are_ignored(
    server: harness.Server, s3: Any, bucket: str
) -> None:
    fields = presigned(server, bucket, "late.txt")
    async with aiohttp.ClientSession() as session:
        r = await post_form(
            server,
            bucket,
            fields,
            b"body",
            after=[("x-amz-meta-late", "1"), ("key", "elsewhere")],
            session=session,
        )
        assert r.status == 204
        # the same (kept-alive) connection serves the next form
        again = await post_form(server, bucket, fields, b"body 2", session=session)
        assert again.status == 204
    got = s3.get_object(Bucket=bucket, Key="late.txt")
    assert got["Body"].read() == b"body 2"
    assert got["Metadata"] == {}
    assert missing(s3, bucket, "elsewhere")


# ------------------------------------------------------------------ anonymous


async def test_anonymous_post_needs_public_write(
    server: harness.Server, s3: Any, bucket: str
) -> None:
    form = [("key", "anon.txt"), ("acl", "public-read"), ("Content-Type", "text/plain")]
    r = await post_form(server, bucket, form, b"hi")
    assert (r.status, r.code) == (403, "AccessDenied")
    assert missing(s3, bucket, "anon.txt")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    r = await post_form(server, bucket, [*form, ("success_action_status", "404")], b"hi")
    assert (r.status, r.body) == (204, b"")  # an unusable status is ignored
    got = s3.get_object(Bucket=bucket, Key="anon.txt")
    assert (got["Body"].read(), got["ContentType"]) == (b"hi", "text/plain")


# ------------------------------------------------------------------ refusals


def _resign_v2(server: harness.Server, doc: dict[str, Any]) -> tuple[str, str]:
    import hmac

    policy = base64.b64encode(json.dumps(doc).encode()).decode()
    mac = hmac.new(server.secret_key.encode(), policy.encode(), hashlib.sha1)
    return policy, base64.b64encode(mac.digest()).decode()


def _v2_form(server: harness.Server, doc: dict[str, Any], **extra: str) -> list[tuple[str, str]]:
    policy, signature = _resign_v2(server, doc)
    fields = {"key": "k.txt", "AWSAccessKeyId": server.access_key, **extra}
    return [*fields.items(), ("policy", policy), ("signature", signature)]


async def test_tampered_policy_is_refused(server: harness.Server, s3: Any, bucket: str) -> None:
    fields = dict(presigned(server, bucket, "k.txt", Conditions=[["content-length-range", 0, 4]]))
    doc = json.loads(base64.b64decode(fields["policy"]))
    doc["conditions"] = [c for c in doc["conditions"] if "content-length-range" not in c]
    fields["policy"] = base64.b64encode(json.dumps(doc).encode()).decode()
    r = await post_form(server, bucket, fields.items(), b"far more than four bytes")
    assert (r.status, r.code) == (403, "SignatureDoesNotMatch")
    assert missing(s3, bucket, "k.txt")


async def test_expired_policy_is_refused(server: harness.Server, s3: Any, bucket: str) -> None:
    fields = presigned(server, bucket, "k.txt", ExpiresIn=-60)
    r = await post_form(server, bucket, fields, b"x")
    assert (r.status, r.code) == (403, "AccessDenied")
    assert missing(s3, bucket, "k.txt")


@pytest.mark.parametrize(
    ("low", "high", "size", "error"),
    [(0, MiB, 3 * MiB, "EntityTooLarge"), (100, 200, 99, "EntityTooSmall")],
)
async def test_size_range_violations_store_nothing(
    server: harness.Server, s3: Any, bucket: str, low: int, high: int, size: int, error: str
) -> None:
    fields = presigned(server, bucket, "k.txt", Conditions=[["content-length-range", low, high]])
    blocks = harness.block_count(server)
    r = await post_form(server, bucket, fields, os.urandom(size))
    assert (r.status, r.code) == (400, error)
    assert missing(s3, bucket, "k.txt")
    assert harness.block_count(server) == blocks


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"AWSAccessKeyId": "NOSUCHKEY0000000000"}, 403, "InvalidAccessKeyId"),
        ({"key": "other.txt"}, 403, "AccessDenied"),  # starts-with k fails
        ({"x-amz-meta-extra": "1"}, 403, "AccessDenied"),  # no condition names it
        ({"x-ignore-note": "free"}, 204, ""),
    ],
)
async def test_v2_form_checks(
    server: harness.Server,
    bucket: str,
    change: dict[str, str],
    status: int,
    error: str,
) -> None:
    doc = {
        "expiration": "2099-01-01T00:00:00Z",
        "conditions": [{"bucket": bucket}, ["starts-with", "$key", "k"]],
    }
    r = await post_form(server, bucket, _v2_form(server, doc, **change))
    assert (r.status, r.code) == (status, error)


@pytest.mark.parametrize(
    "doc",
    [
        {"conditions": []},
        {"expiration": "2099-01-01T00:00:00Z", "conditions": [{}]},
        {"expiration": "2099-01-01T00:00:00Z", "conditions": [["content-length-range", -1, 5]]},
    ],
)
async def test_malformed_policy(server: harness.Server, bucket: str, doc: dict[str, Any]) -> None:
    r = await post_form(server, bucket, _v2_form(server, doc))
    assert (r.status, r.code) == (400, "InvalidPolicyDocument")


async def test_form_structure_errors(server: harness.Server, s3: Any, bucket: str) -> None:
    fields = dict(presigned(server, bucket, "k.txt"))
    no_key = [(k, v) for k, v in fields.items() if k != "key"]
    r = await post_form(server, bucket, no_key)
    assert (r.status, r.code) == (400, "InvalidArgument")
    r = await post_form(server, bucket, fields.items(), data=None)  # no file part
    assert (r.status, r.code) == (400, "InvalidArgument")
    no_signature = [(k, v) for k, v in fields.items() if k != "x-amz-signature"]
    r = await post_form(server, bucket, no_signature)
    assert (r.status, r.code) == (400, "InvalidArgument")
    r = await post_form(server, bucket, [("key", "k.txt"), ("tagging", "x" * 30000)])
    assert (r.status, r.code) == (400, "MaxPostPreDataLengthExceededError")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{server.endpoint}/{bucket}",
            data={"key": "k.txt"},  # urlencoded, not multipart
            ssl=server.ssl_context or True,
        ) as resp,
    ):
        assert resp.status == 412
    assert missing(s3, bucket, "k.txt")


async def test_no_such_bucket(server: harness.Server) -> None:
    r = await post_form(server, "no-such-bucket-for-post", [("key", "k")])
    assert (r.status, r.code) == (404, "NoSuchBucket")
