"""GetObjectAttributes through boto3 against a real server."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

MiB = 1 << 20
PART = 5 * MiB
ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def headers(exc: pytest.ExceptionInfo[ClientError]) -> dict[str, str]:
    return exc.value.response["ResponseMetadata"]["HTTPHeaders"]


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_simple_object(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"foo", ChecksumAlgorithm="SHA256")
    head = s3.head_object(Bucket=bucket, Key="k")
    r = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=ALL)
    assert r["ETag"] == put["ETag"].strip('"')  # unquoted here, unlike GetObject
    assert r["ObjectSize"] == 3 and r["StorageClass"] == "STANDARD"
    assert r["Checksum"] == {"ChecksumSHA256": sha256(b"foo"), "ChecksumType": "FULL_OBJECT"}
    assert "ObjectParts" not in r and "VersionId" not in r and "DeleteMarker" not in r
    assert r["LastModified"] == head["LastModified"]


def test_only_requested_attributes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"12345", StorageClass="STANDARD_IA")
    r = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert r["ObjectSize"] == 5
    assert not {"ETag", "Checksum", "StorageClass", "ObjectParts"} & set(r)
    r = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["StorageClass"])
    assert r["StorageClass"] == "STANDARD_IA" and "ObjectSize" not in r
    # boto3 sends a CRC32 with every PUT by default: that is the object's checksum.
    r = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["Checksum"])
    assert r["Checksum"]["ChecksumType"] == "FULL_OBJECT" and set(r["Checksum"]) == {
        "ChecksumCRC32",
        "ChecksumType",
    }
    assert "ObjectSize" not in r


def test_bad_requests(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["Bogus"])
    assert (status(e), code(e)) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert (status(e), code(e)) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket + "-none", Key="k", ObjectAttributes=["ETag"])
    assert code(e) == "NoSuchBucket"


def test_private_object_of_another_account(s3, other_s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    with pytest.raises(ClientError) as e:
        other_s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert (status(e), code(e)) == (403, "AccessDenied")


def test_multipart_parts_and_pages(s3, bucket):
    parts = [os.urandom(PART), os.urandom(PART), os.urandom(PART), os.urandom(1234)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="SHA256")[
        "UploadId"
    ]
    listed = []
    # Part numbers with gaps: attributes number parts by position, as partNumber reads do.
    for n, data in zip((2, 5, 6, 9), parts, strict=True):
        r = s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=uid,
            PartNumber=n,
            Body=data,
            ChecksumAlgorithm="SHA256",
        )
        listed.append({"PartNumber": n, "ETag": r["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": listed}
    )
    r = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL)
    assert r["ETag"] == done["ETag"].strip('"')
    assert r["ObjectSize"] == sum(map(len, parts))
    assert r["Checksum"] == {"ChecksumSHA256": done["ChecksumSHA256"], "ChecksumType": "COMPOSITE"}
    op = r["ObjectParts"]
    assert op["TotalPartsCount"] == 4 and op["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"], p["ChecksumSHA256"]) for p in op["Parts"]] == [
        (i, len(d), sha256(d)) for i, d in enumerate(parts, 1)
    ]
    page = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=2, PartNumberMarker=1
    )["ObjectParts"]
    assert [p["PartNumber"] for p in page["Parts"]] == [2, 3]
    assert (page["IsTruncated"], page["NextPartNumberMarker"], page["MaxParts"]) == (True, 3, 2)
    assert page["PartNumberMarker"] == 1 and page["TotalPartsCount"] == 4
    last = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=2, PartNumberMarker=3
    )["ObjectParts"]
    assert [p["PartNumber"] for p in last["Parts"]] == [4] and last["IsTruncated"] is False
    # Parts listed here are the ones partNumber reads serve.
    assert s3.get_object(Bucket=bucket, Key="mp", PartNumber=3)["Body"].read() == parts[2]


def test_multipart_without_checksum_lists_sizes(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    data = [os.urandom(PART), b"tail"]
    listed = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=n, Body=d)[
                "ETag"
            ],
        }
        for n, d in enumerate(data, 1)
    ]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": listed}
    )
    r = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL)
    assert "Checksum" not in r
    assert [(p["PartNumber"], p["Size"]) for p in r["ObjectParts"]["Parts"]] == [(1, PART), (2, 4)]
    assert all(not any(k.startswith("Checksum") for k in p) for p in r["ObjectParts"]["Parts"])


def test_versions_and_delete_markers(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"second")["VersionId"]
    r = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert (r["VersionId"], r["ObjectSize"]) == (v2, 6)
    r = s3.get_object_attributes(
        Bucket=bucket, Key="k", VersionId=v1, ObjectAttributes=["ObjectSize"]
    )
    assert (r["VersionId"], r["ObjectSize"]) == (v1, 3)
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert (status(e), code(e)) == (404, "NoSuchKey")
    assert headers(e)["x-amz-delete-marker"] == "true"
    assert headers(e)["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(
            Bucket=bucket, Key="k", VersionId=marker, ObjectAttributes=["ObjectSize"]
        )
    assert (status(e), code(e)) == (405, "MethodNotAllowed")
    assert headers(e)["x-amz-delete-marker"] == "true"
    assert "last-modified" in headers(e)
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(
            Bucket=bucket, Key="k", VersionId="nonexistent", ObjectAttributes=["ObjectSize"]
        )
    assert (status(e), code(e)) == (404, "NoSuchVersion")
