"""Bad input gets a clear error and loses nothing: truncated bodies, dropped
connections, malformed XML, oversized headers, signed-payload mismatches."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import time
import urllib.parse

import harness
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError


def _signed(
    server,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    payload_hash: str | None = None,
):
    creds = Credentials(server.access_key, server.secret_key)
    req = AWSRequest(
        method=method, url=f"{server.endpoint}{path}", data=body, headers=headers or {}
    )
    req.headers["x-amz-content-sha256"] = payload_hash or hashlib.sha256(body).hexdigest()
    S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    return req


def _raw_exchange(server, request_bytes: bytes, *, close_early: bool = False) -> bytes:
    u = urllib.parse.urlsplit(server.endpoint)
    sock = socket.create_connection((u.hostname, u.port), timeout=30)
    if u.scheme == "https":
        sock = (
            server.ssl_context.wrap_socket(sock, server_hostname=u.hostname)
            if server.ssl_context
            else ssl.create_default_context().wrap_socket(sock)
        )
    try:
        sock.sendall(request_bytes)
        if close_early:
            return b""
        out = b""
        sock.settimeout(10)
        try:
            while chunk := sock.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out and (b"</Error>" in out or b"Content-Length: 0" in out):
                    break
        except TimeoutError:
            pass
        return out
    finally:
        sock.close()


def _request_bytes(req) -> bytes:
    u = urllib.parse.urlsplit(req.url)
    path = u.path + (("?" + u.query) if u.query else "")
    lines = [f"{req.method} {path} HTTP/1.1", f"Host: {u.netloc}"]
    for k, v in req.headers.items():
        if k.lower() != "host":
            lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n").encode()


def test_truncated_body_stores_nothing(server, s3, bucket):
    body = b"x" * 100_000
    req = _signed(server, "PUT", f"/{bucket}/trunc", body, payload_hash="UNSIGNED-PAYLOAD")
    head = _request_bytes(req) + f"Content-Length: {len(body)}\r\n\r\n".encode()
    _raw_exchange(server, head + body[:50_000], close_early=True)
    time.sleep(0.5)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="trunc")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_large_truncated_body_stores_nothing(server, s3, bucket):
    size = 20 << 20
    req = _signed(server, "PUT", f"/{bucket}/trunc-big", b"", payload_hash="UNSIGNED-PAYLOAD")
    head = _request_bytes(req) + f"Content-Length: {size}\r\n\r\n".encode()
    _raw_exchange(server, head + b"y" * (size // 2), close_early=True)
    time.sleep(0.5)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="trunc-big")


def test_sha256_mismatch_refused(server, s3, bucket):
    body = b"hello"
    # botocore hashes the body it signs: sign "other", then send "hello" (same length).
    req = _signed(server, "PUT", f"/{bucket}/sha", b"other")
    head = _request_bytes(req) + f"Content-Length: {len(body)}\r\n\r\n".encode()
    out = _raw_exchange(server, head + body)
    assert b"XAmzContentSHA256Mismatch" in out
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="sha")


@pytest.mark.parametrize(
    "doc",
    [
        b"<Delete><Object><Key>a</Key>",
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><Delete><Object><Key>&lol2;</Key></Object></Delete>',
    ],
)
def test_malformed_xml(server, s3, bucket, doc):
    s3.put_object(Bucket=bucket, Key="a", Body=b"keep")
    req = _signed(
        server,
        "POST",
        f"/{bucket}?delete",
        doc,
        headers={"Content-MD5": __import__("base64").b64encode(hashlib.md5(doc).digest()).decode()},
    )
    out = _raw_exchange(
        server, _request_bytes(req) + f"Content-Length: {len(doc)}\r\n\r\n".encode() + doc
    )
    assert b" 400 " in out.split(b"\r\n", 1)[0]
    assert b"MalformedXML" in out
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"keep"


def test_oversized_header_refused(server, s3, bucket):
    req = _signed(server, "GET", f"/{bucket}/a")
    raw = _request_bytes(req) + b"X-Huge: " + b"h" * 200_000 + b"\r\n\r\n"
    out = _raw_exchange(server, raw)
    first = out.split(b"\r\n", 1)[0]
    assert first == b"" or b" 400 " in first or b" 431 " in first


def test_put_bucket_versioning_bad_status(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Maybe"})
    assert e.value.response["Error"]["Code"] in (
        "MalformedXML",
        "IllegalVersioningConfigurationException",
    )


def test_full_disk_answers_507_and_keeps_what_is_stored(tmp_path):
    """The disk is made "full" by asking the server to keep all but 48 MiB of the
    file system's free space (``storage.min_free``): an 8 MiB object still fits,
    a 96 MiB one does not. The refused upload leaves no object and no blocks, and
    the stored objects read back intact; deleting makes room again."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    st = os.statvfs(data_dir)
    min_free = st.f_bavail * st.f_frsize - (48 << 20)
    if min_free <= 0:
        pytest.skip("less than 48 MiB free on the test file system")
    env = {"TESSERA_STORAGE_MIN_FREE": str(min_free)}
    with harness.start_server(data_dir, env=env) as server:
        s3 = harness.boto3_client(server)
        s3.create_bucket(Bucket="full")
        small = os.urandom(8 << 20)
        s3.put_object(Bucket="full", Key="small", Body=small)
        blocks = harness.block_count(server)
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket="full", Key="big", Body=os.urandom(96 << 20))
        assert e.value.response["Error"]["Code"] == "InsufficientStorage"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 507
        assert harness.block_count(server) == blocks
        assert "big" not in [o["Key"] for o in s3.list_objects_v2(Bucket="full")["Contents"]]
        assert s3.get_object(Bucket="full", Key="small")["Body"].read() == small
        s3.put_object(Bucket="full", Key="tiny", Body=b"inline objects live in metadata")
        s3.delete_object(Bucket="full", Key="small")
        s3.put_object(Bucket="full", Key="again", Body=small)
        assert s3.get_object(Bucket="full", Key="again")["Body"].read() == small
