"""Object operations through boto3 against a real `tessera serve` process."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from urllib.parse import unquote

import crc32c
import pytest
from botocore.exceptions import ClientError


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("size", [0, 1, 4096, 64 * 1024, 64 * 1024 + 1, 3 * (1 << 20) + 17])
def test_put_get_roundtrip(s3, bucket, size):
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key="obj", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["ETag"] == put["ETag"]


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "a//b",
        "with space",
        "ünïcödé/ключ",
        "100%",
        "new\nline",
        "q?x=1&y",
        "+plus",
        "~tilde",
        "/leading",
        "a/./b/../c",
        "#hash",
    ],
)
def test_keys_are_opaque(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, EncodingType="url")["Contents"]]
    assert [unquote(k) for k in listed] == [key]


@pytest.mark.parametrize("key", ["nul\x00byte", "x" * 1025])
def test_unstorable_keys_are_refused(s3, bucket, key):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert code(e) == ("KeyTooLongError" if len(key) > 1024 else "InvalidArgument")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_metadata_and_headers_roundtrip(s3, bucket):
    s3.put_object(
        Bucket=bucket,
        Key="m",
        Body=b"x",
        ContentType="text/plain",
        ContentEncoding="gzip",
        ContentDisposition="attachment; filename=a.txt",
        ContentLanguage="fr",
        CacheControl="no-cache",
        Metadata={"color": "blue", "Size": "L"},
    )
    h = s3.head_object(Bucket=bucket, Key="m")
    assert h["ContentType"] == "text/plain"
    assert h["ContentEncoding"] == "gzip"
    assert h["ContentDisposition"] == "attachment; filename=a.txt"
    assert h["ContentLanguage"] == "fr"
    assert h["CacheControl"] == "no-cache"
    assert h["Metadata"] == {"color": "blue", "size": "L"}


def test_missing_key_and_bucket(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="no-such-bucket-xyz", Key="nope")
    assert code(e) == "NoSuchBucket"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert status(e) == 404


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("bytes=0-9", (0, 10)),
        ("bytes=10-", (10, 100)),
        ("bytes=-7", (93, 100)),
        ("bytes=95-200", (95, 100)),
        ("bytes=0-0", (0, 1)),
    ],
)
def test_ranges(s3, bucket, spec, expected):
    data = bytes(range(100))
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    got = s3.get_object(Bucket=bucket, Key="r", Range=spec)
    assert got["Body"].read() == data[expected[0] : expected[1]]
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {expected[0]}-{expected[1] - 1}/100"


def test_range_across_segments(s3, bucket):
    data = os.urandom(9 * (1 << 20) + 5)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    a, b = (8 << 20) - 3, (8 << 20) + 1000
    got = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={a}-{b}")
    assert got["Body"].read() == data[a : b + 1]


def test_unsatisfiable_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=b"abc")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=5-9")
    assert code(e) == "InvalidRange"
    assert status(e) == 416


def test_conditional_get(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"abc")
    etag = put["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"abc"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"nope"')
    assert status(e) == 412
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status(e) == 304
    import datetime

    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert status(e) == 412
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)["Body"].read() == b"abc"


def test_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"abc")
    got = s3.get_object(
        Bucket=bucket,
        Key="o",
        ResponseContentType="text/x-test",
        ResponseContentDisposition="inline",
    )
    assert got["ContentType"] == "text/x-test"
    assert got["ContentDisposition"] == "inline"


def test_content_md5_mismatch_stores_nothing(s3, bucket):
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"data", ContentMD5=bad)
    assert code(e) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="md5")


def test_checksums_validated_and_returned(s3, bucket):
    data = os.urandom(200_000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    s3.put_object(Bucket=bucket, Key="ck", Body=data, ChecksumCRC32=crc)
    h = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == crc
    expected = {
        "CRC32C": base64.b64encode(crc32c.crc32c(data).to_bytes(4, "big")).decode(),
        "SHA1": base64.b64encode(hashlib.sha1(data).digest()).decode(),
        "SHA256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }
    # botocore computes CRC32C only with awscrt installed: send that one precomputed.
    s3.put_object(Bucket=bucket, Key="ck-CRC32C", Body=data, ChecksumCRC32C=expected["CRC32C"])
    for algo in ("SHA1", "SHA256"):
        s3.put_object(Bucket=bucket, Key="ck-" + algo, Body=data, ChecksumAlgorithm=algo)
    for algo, value in expected.items():
        h = s3.head_object(Bucket=bucket, Key="ck-" + algo, ChecksumMode="ENABLED")
        assert h["Checksum" + algo] == value
        got = s3.get_object(Bucket=bucket, Key="ck-" + algo, ChecksumMode="ENABLED")
        assert got["Checksum" + algo] == value and got["Body"].read() == data
    sha = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad-ck", Body=data, ChecksumSHA256=sha)
    assert code(e) == "BadDigest"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="bad-ck")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_delete_and_delete_objects(s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d{i}", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="d0")
    s3.delete_object(Bucket=bucket, Key="never-existed")
    r = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "d1"}, {"Key": "d2"}, {"Key": "zz"}]}
    )
    assert sorted(d["Key"] for d in r["Deleted"]) == ["d1", "d2", "zz"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d3"}], "Quiet": True})
    assert not r.get("Deleted")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["d4"]


def test_copy_object(s3, bucket):
    s3.put_object(
        Bucket=bucket, Key="src", Body=b"hello", Metadata={"a": "1"}, ContentType="text/plain"
    )
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
    h = s3.head_object(Bucket=bucket, Key="dst")
    assert h["Metadata"] == {"a": "1"} and h["ContentType"] == "text/plain"
    s3.copy_object(
        Bucket=bucket,
        Key="dst2",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="application/x-new",
    )
    h = s3.head_object(Bucket=bucket, Key="dst2")
    assert h["Metadata"] == {"b": "2"} and h["ContentType"] == "application/x-new"
    assert s3.get_object(Bucket=bucket, Key="dst2")["Body"].read() == b"hello"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert code(e) == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=bucket,
            Key="x",
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceIfMatch='"bad"',
        )
    assert status(e) == 412


def test_copy_large_object_shares_data(s3, bucket):
    data = os.urandom(10 << 20)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    s3.copy_object(Bucket=bucket, Key="big-copy", CopySource={"Bucket": bucket, "Key": "big"})
    s3.delete_object(Bucket=bucket, Key="big")
    assert s3.get_object(Bucket=bucket, Key="big-copy")["Body"].read() == data


def test_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=two")
    assert s3.head_object(Bucket=bucket, Key="t")
    tags = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"a": "1", "b": "two"}
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "k", "Value": "v"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(
            Bucket=bucket,
            Key="t",
            Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]},
        )
    assert code(e) == "InvalidTag"


def test_key_too_long(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert code(e) == "KeyTooLongError"
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")


def test_tagging_header_and_content_encoding_lists(s3, bucket):
    s3.put_object(
        Bucket=bucket, Key="t", Body=b"x", Tagging="foo=bar&empty", ContentEncoding="deflate, gzip"
    )
    tags = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("empty", ""), ("foo", "bar")]
    assert s3.head_object(Bucket=bucket, Key="t")["ContentEncoding"] == "deflate, gzip"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="missing")
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "false"
