"""Wire-level S3 behaviour that boto3 never exercises by itself: signed aws-chunked
bodies, unsigned bodies with checksum trailers, Expect: 100-continue, dropped
connections. Requests are written by hand on a raw socket; the main request is
signed by botocore, chunk signatures by the client half of ``tessera.protocol``
(itself checked against the AWS examples in the unit tests)."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import zlib
from typing import Any
from urllib.parse import quote

import harness
import pytest
from botocore.exceptions import ClientError

from tessera.protocol.s3.chunked import ChunkSigning, encode_chunked
from tessera.protocol.s3.sigv4 import signing_key

STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def _chunk_signing(server: harness.Server, headers: dict[str, str]) -> ChunkSigning:
    auth = headers["Authorization"]
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/", 1)[1]
    date, region, service, _ = scope.split("/")
    return ChunkSigning(
        key=signing_key(server.secret_key, date, region, service),
        amz_date=headers["X-Amz-Date"],
        scope=scope,
        seed_signature=auth.rsplit("Signature=", 1)[1],
    )


def _exchange(server: harness.Server, head: bytes, body: bytes) -> harness.RawResponse:
    with harness.raw_connect(server) as sock:
        sock.sendall(head + body)
        return harness.read_response(sock)


def _put_chunked(
    server: harness.Server,
    bucket: str,
    key: str,
    data: bytes,
    *,
    tamper: bool = False,
    chunk_size: int = 65536,
) -> harness.RawResponse:
    target = f"/{bucket}/{quote(key)}"
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
    }
    signed = harness.signed_head(server, "PUT", target, headers, payload_hash=STREAMING)
    body = encode_chunked(data, chunk_size=chunk_size, signing=_chunk_signing(server, signed))
    if tamper:  # flip one data byte of the second chunk, keep its signature
        at = body.index(b"\r\n", body.index(b"\r\n") + 2 + chunk_size + 2) + 2 + 10
        body = body[:at] + bytes([body[at] ^ 1]) + body[at + 1 :]
    signed["Content-Length"] = str(len(body))
    return _exchange(server, harness.request_head("PUT", target, signed), body)


def test_signed_aws_chunked_upload(server: harness.Server, s3: Any, bucket: str) -> None:
    data = os.urandom(300_000)
    r = _put_chunked(server, bucket, "chunked", data)
    assert r.status == 200, r.body
    assert r.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == data
    assert got.get("ContentEncoding") in (None, "")  # aws-chunked is not stored


def test_bad_chunk_signature_stores_nothing(server: harness.Server, s3: Any, bucket: str) -> None:
    blocks = harness.block_count(server)
    r = _put_chunked(server, bucket, "tampered", os.urandom(300_000), tamper=True)
    assert r.status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in r.body
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="tampered")
    assert harness.block_count(server) == blocks


def _put_trailer(
    server: harness.Server, bucket: str, key: str, data: bytes, crc: str | None
) -> harness.RawResponse:
    target = f"/{bucket}/{key}"
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    signed = harness.signed_head(server, "PUT", target, headers, payload_hash=UNSIGNED_TRAILER)
    trailers = [("x-amz-checksum-crc32", crc)] if crc is not None else []
    body = encode_chunked(data, chunk_size=8192, trailers=trailers)
    signed["Content-Length"] = str(len(body))
    return _exchange(server, harness.request_head("PUT", target, signed), body)


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_unsigned_body_with_crc32_trailer(server: harness.Server, s3: Any, bucket: str) -> None:
    data = os.urandom(50_000)
    r = _put_trailer(server, bucket, "trailer", data, _crc32(data))
    assert r.status == 200, r.body
    assert r.headers["x-amz-checksum-crc32"] == _crc32(data)
    head = s3.head_object(Bucket=bucket, Key="trailer", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == _crc32(data)
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == data


def test_wrong_trailer_checksum_stores_nothing(
    server: harness.Server, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="trailer", Body=b"old")
    r = _put_trailer(server, bucket, "trailer", os.urandom(50_000), _crc32(b"other"))
    assert r.status == 400 and b"<Code>BadDigest</Code>" in r.body
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == b"old"


def test_promised_trailer_left_out_stores_nothing(
    server: harness.Server, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="trailer", Body=b"old")
    blocks = harness.block_count(server)
    r = _put_trailer(server, bucket, "trailer", os.urandom(150_000), None)
    assert r.status == 400 and b"<Code>MalformedTrailerError</Code>" in r.body
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == b"old"
    assert harness.block_count(server) == blocks


def test_expect_100_continue(server: harness.Server, s3: Any, bucket: str) -> None:
    data = b"continued" * 1000
    target = f"/{bucket}/expect"
    signed = harness.signed_head(
        server, "PUT", target, payload_hash=hashlib.sha256(data).hexdigest()
    )
    signed.update({"Expect": "100-continue", "Content-Length": str(len(data))})
    with harness.raw_connect(server) as sock:
        sock.sendall(harness.request_head("PUT", target, signed))
        interim = harness.read_response(sock, head_only=True)
        assert interim.status == 100
        sock.sendall(data)
        final = harness.read_response(sock)
    assert final.status == 200, final.body
    assert s3.get_object(Bucket=bucket, Key="expect")["Body"].read() == data


def test_expect_100_continue_refused_before_the_body(server: harness.Server, bucket: str) -> None:
    """A request that will fail answers at once, without asking for the body."""
    target = f"/{bucket}/denied"
    headers = {"Expect": "100-continue", "Content-Length": "1000000", "Host": "x"}
    with harness.raw_connect(server) as sock:
        sock.sendall(harness.request_head("PUT", target, headers))
        r = harness.read_response(sock)
    assert r.status == 403 and b"<Code>AccessDenied</Code>" in r.body


def test_dropped_connection_leaks_no_blocks(server: harness.Server, s3: Any, bucket: str) -> None:
    blocks = harness.block_count(server)
    size = 8 << 20
    target = f"/{bucket}/dropped"
    signed = harness.signed_head(server, "PUT", target)
    signed["Content-Length"] = str(size)
    with harness.raw_connect(server) as sock:
        sock.sendall(harness.request_head("PUT", target, signed) + os.urandom(size // 2))
    deadline = time.monotonic() + 10
    while harness.block_count(server) != blocks and time.monotonic() < deadline:
        time.sleep(0.05)
    assert harness.block_count(server) == blocks
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="dropped")


def test_key_that_is_not_utf8_is_refused(server: harness.Server, s3: Any, bucket: str) -> None:
    target = f"/{bucket}/bad%FFkey"
    headers = harness.signed_head(server, "PUT", target)
    headers["Content-Length"] = "1"
    r = _exchange(server, harness.request_head("PUT", target, headers), b"x")
    assert r.status == 400 and b"<Code>InvalidURI</Code>" in r.body
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
