"""Authentication: SigV4 headers, presigned URLs, bad keys, clock skew, anonymous."""

from __future__ import annotations

import datetime
import urllib.error
import urllib.request

import boto3
import harness
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _open(req: urllib.request.Request, server) -> tuple[int, bytes, dict[str, str]]:
    ctx = getattr(server, "ssl_context", None)
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_anonymous_is_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    status, body, _ = _open(urllib.request.Request(f"{server.endpoint}/{bucket}/k"), server)
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body


def test_wrong_secret_and_unknown_key(server, bucket):
    bad = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key="wrong-secret",
        region_name="us-east-1",
        verify=getattr(server, "ca_path", None) or True,
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as e:
        bad.list_objects_v2(Bucket=bucket)
    assert code(e) == "SignatureDoesNotMatch"
    unknown = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id="AKIDONTEXIST000000",
        aws_secret_access_key="x",
        region_name="us-east-1",
        verify=getattr(server, "ca_path", None) or True,
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert code(e) == "InvalidAccessKeyId"


def test_presigned_get_and_put(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned!")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60
    )
    status, body, _ = _open(urllib.request.Request(url), server)
    assert (status, body) == (200, b"presigned!")
    put_url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": "up", "ContentType": "text/plain"},
        ExpiresIn=60,
    )
    req = urllib.request.Request(
        put_url, data=b"uploaded", method="PUT", headers={"Content-Type": "text/plain"}
    )
    status, _, _ = _open(req, server)
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"uploaded"
    tampered = url.replace(f"/{bucket}/p", f"/{bucket}/other")
    status, body, _ = _open(urllib.request.Request(tampered), server)
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_presigned_expired(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"x")
    creds = Credentials(server.access_key, server.secret_key)
    req = AWSRequest(method="GET", url=f"{server.endpoint}/{bucket}/p")
    from botocore.auth import S3SigV4QueryAuth

    signer = S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=1)
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
    from unittest import mock

    with mock.patch("botocore.auth.get_current_datetime", return_value=old.replace(tzinfo=None)):
        signer.add_auth(req)
    status, body, _ = _open(urllib.request.Request(req.url), server)
    assert status == 403 and b"AccessDenied" in body


def test_clock_skew_refused(server, bucket):
    creds = Credentials(server.access_key, server.secret_key)
    req = AWSRequest(method="GET", url=f"{server.endpoint}/{bucket}")
    req.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    signer = S3SigV4Auth(creds, "s3", "us-east-1")
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)
    from unittest import mock

    with mock.patch("botocore.auth.get_current_datetime", return_value=old.replace(tzinfo=None)):
        signer.add_auth(req)
    status, body, _ = _open(urllib.request.Request(req.url, headers=dict(req.headers)), server)
    assert status == 403 and b"RequestTimeTooSkewed" in body


def test_virtual_host_style(server, s3_virtual, s3, bucket):
    s3_virtual.put_object(Bucket=bucket, Key="vh/key", Body=b"virtual")
    assert s3.get_object(Bucket=bucket, Key="vh/key")["Body"].read() == b"virtual"
    assert [o["Key"] for o in s3_virtual.list_objects_v2(Bucket=bucket)["Contents"]] == ["vh/key"]


def test_presigned_out_of_range_expiry_is_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"x")
    creds = Credentials(server.access_key, server.secret_key)
    for seconds in (604801, -7):
        # botocore's own SigV4 query signer: with awscrt installed, generate_presigned_url
        # signs through the CRT, which refuses a negative expiry before any request.
        req = AWSRequest(method="GET", url=f"{server.endpoint}/{bucket}/p")
        S3SigV4QueryAuth(creds, "s3", harness.REGION, expires=seconds).add_auth(req)
        status, body, _ = _open(urllib.request.Request(req.url), server)
        assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_cors_preflight_is_refused(server, bucket):
    url = f"{server.endpoint}/{bucket}/k"
    status, _, _ = _open(urllib.request.Request(url, method="OPTIONS"), server)
    assert status == 400
    headers = {"Origin": "https://example.com", "Access-Control-Request-Method": "GET"}
    status, _, _ = _open(urllib.request.Request(url, method="OPTIONS", headers=headers), server)
    assert status == 403
