"""Additional checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) through boto3
against a real server: single PUTs, multipart uploads of both checksum types,
copies, and repeated completions.

Expected values are computed here independently of the server: CRCs with zlib,
the ``crc32c`` package and awscrt (CRC64NVME), and the multipart FULL_OBJECT
values as the CRC of the concatenated data, never through Tessera's code.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import crc32c
import pytest
from awscrt import checksums as crt
from botocore.exceptions import ClientError

MiB = 1 << 20
PART = 5 * MiB


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def reference(algorithm: str, data: bytes) -> str:
    """The S3 checksum of ``data`` from libraries Tessera's checksum code does not wrap."""
    if algorithm == "CRC32":
        return b64(zlib.crc32(data).to_bytes(4, "big"))
    if algorithm == "CRC32C":
        return b64(crc32c.crc32c(data).to_bytes(4, "big"))
    if algorithm == "CRC64NVME":
        return b64(crt.crc64nvme(data).to_bytes(8, "big"))
    return b64(hashlib.new(algorithm.lower(), data).digest())


def composite(algorithm: str, parts: list[bytes]) -> str:
    raw = b"".join(base64.b64decode(reference(algorithm, p)) for p in parts)
    return f"{reference(algorithm, raw)}-{len(parts)}"


def upload_parts(s3, bucket, key, parts, algorithm, **create):
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, **create)[
        "UploadId"
    ]
    listed = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=uid,
            PartNumber=n,
            Body=data,
            ChecksumAlgorithm=algorithm,
        )
        assert r["Checksum" + algorithm] == reference(algorithm, data)
        listed.append(
            {"PartNumber": n, "ETag": r["ETag"], "Checksum" + algorithm: r["Checksum" + algorithm]}
        )
    return uid, listed


# -- single PUT ---------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_put_with_each_algorithm(s3, bucket, algorithm):
    data = os.urandom(300_001)
    want = reference(algorithm, data)
    r = s3.put_object(Bucket=bucket, Key="k", Body=data, ChecksumAlgorithm=algorithm)
    assert r["Checksum" + algorithm] == want
    assert r["ChecksumType"] == "FULL_OBJECT"
    assert "Checksum" + algorithm not in s3.head_object(Bucket=bucket, Key="k")
    h = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert (h["Checksum" + algorithm], h["ChecksumType"]) == (want, "FULL_OBJECT")
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["Checksum" + algorithm] == want
    # A range is not the object: no checksum describes it.
    part = s3.get_object(Bucket=bucket, Key="k", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert "Checksum" + algorithm not in part and part["Body"].read() == data[:10]


@pytest.mark.parametrize("algorithm", ["CRC64NVME", "SHA256"])
def test_wrong_checksum_stores_nothing(s3, bucket, algorithm):
    data = os.urandom(1000)
    wrong = reference(algorithm, data + b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=data, **{"Checksum" + algorithm: wrong})
    assert (status(e), code(e)) == (400, "BadDigest")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="bad")
    assert status(e) == 404


def test_two_checksum_values_refused(s3, bucket):
    data = b"two checksums"
    with pytest.raises(ClientError) as e:
        s3.put_object(
            Bucket=bucket,
            Key="two",
            Body=data,
            ChecksumCRC32=reference("CRC32", data),
            ChecksumSHA256=reference("SHA256", data),
        )
    assert (status(e), code(e)) == (400, "InvalidRequest")


# -- multipart: FULL_OBJECT -------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_multipart_full_object_crc(s3, bucket, algorithm):
    parts = [os.urandom(PART), os.urandom(PART + 3), os.urandom(777)]
    whole = b"".join(parts)
    want = reference(algorithm, whole)
    uid, listed = upload_parts(s3, bucket, "full", parts, algorithm, ChecksumType="FULL_OBJECT")
    # A wrong whole-object value is refused and the upload stays completable.
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="full",
            UploadId=uid,
            MultipartUpload={"Parts": listed},
            **{"Checksum" + algorithm: reference(algorithm, whole[:-1])},
        )
    assert (status(e), code(e)) == (400, "BadDigest")
    r = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="full",
        UploadId=uid,
        MultipartUpload={"Parts": listed},
        ChecksumType="FULL_OBJECT",
        **{"Checksum" + algorithm: want},
    )
    assert (r["Checksum" + algorithm], r["ChecksumType"]) == (want, "FULL_OBJECT")
    h = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert (h["Checksum" + algorithm], h["ChecksumType"]) == (want, "FULL_OBJECT")
    # botocore checks the body against the full-object CRC as it reads it.
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert got["Body"].read() == whole
    p2 = s3.get_object(Bucket=bucket, Key="full", PartNumber=2, ChecksumMode="ENABLED")
    assert p2["Checksum" + algorithm] == reference(algorithm, parts[1])
    assert p2["ChecksumType"] == "FULL_OBJECT" and p2["Body"].read() == parts[1]


def test_crc64nvme_defaults_to_full_object(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="d", ChecksumAlgorithm="CRC64NVME")
    assert up["ChecksumType"] == "FULL_OBJECT"
    up = s3.create_multipart_upload(Bucket=bucket, Key="d", ChecksumAlgorithm="CRC32")
    assert up["ChecksumType"] == "COMPOSITE"


@pytest.mark.parametrize(
    ("algorithm", "ctype"),
    [("SHA256", "FULL_OBJECT"), ("SHA1", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE")],
)
def test_unsupported_checksum_type_refused(s3, bucket, algorithm, ctype):
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(
            Bucket=bucket, Key="x", ChecksumAlgorithm=algorithm, ChecksumType=ctype
        )
    assert (status(e), code(e)) == (400, "InvalidRequest")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


# -- multipart: COMPOSITE ---------------------------------------------------------------------------
def test_multipart_composite_sha256(s3, bucket):
    parts = [os.urandom(PART), os.urandom(1000)]
    want = composite("SHA256", parts)
    uid, listed = upload_parts(s3, bucket, "comp", parts, "SHA256")
    bad = [dict(listed[0]), listed[1]]
    bad[0]["ChecksumSHA256"] = reference("SHA256", b"not the part")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="comp", UploadId=uid, MultipartUpload={"Parts": bad}
        )
    assert (status(e), code(e)) == (400, "InvalidPart")
    with pytest.raises(ClientError) as e:  # the type must be the upload's
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="comp",
            UploadId=uid,
            MultipartUpload={"Parts": listed},
            ChecksumType="FULL_OBJECT",
        )
    assert (status(e), code(e)) == (400, "InvalidRequest")
    r = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="comp",
        UploadId=uid,
        MultipartUpload={"Parts": listed},
        ChecksumSHA256=want,
    )
    assert (r["ChecksumSHA256"], r["ChecksumType"]) == (want, "COMPOSITE")
    h = s3.head_object(Bucket=bucket, Key="comp", ChecksumMode="ENABLED")
    assert (h["ChecksumSHA256"], h["ChecksumType"]) == (want, "COMPOSITE")
    p1 = s3.get_object(Bucket=bucket, Key="comp", PartNumber=1, ChecksumMode="ENABLED")
    assert p1["ChecksumSHA256"] == reference("SHA256", parts[0])
    assert p1["ChecksumType"] == "COMPOSITE" and p1["Body"].read() == parts[0]


def test_part_checksums_may_be_left_out_of_completion(s3, bucket):
    parts = [os.urandom(PART), os.urandom(10)]
    uid, listed = upload_parts(s3, bucket, "plain", parts, "CRC32C")
    bare = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed]
    r = s3.complete_multipart_upload(
        Bucket=bucket, Key="plain", UploadId=uid, MultipartUpload={"Parts": bare}
    )
    assert r["ChecksumCRC32C"] == composite("CRC32C", parts)


def test_part_with_another_algorithm_refused(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="m", ChecksumAlgorithm="SHA256")["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part(
            Bucket=bucket, Key="m", UploadId=uid, PartNumber=1, Body=b"x", ChecksumAlgorithm="CRC32"
        )
    assert (status(e), code(e)) == (400, "InvalidRequest")
    assert s3.list_parts(Bucket=bucket, Key="m", UploadId=uid).get("Parts", []) == []


def test_upload_part_copy_computes_the_upload_algorithm(s3, bucket):
    src = os.urandom(PART + 5)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(
        Bucket=bucket, Key="dst", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    r = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=uid,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
    )
    assert r["CopyPartResult"]["ChecksumCRC32"] == reference("CRC32", src)
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="dst",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]},
    )
    assert done["ChecksumCRC32"] == reference("CRC32", src)


# -- copies ----------------------------------------------------------------------------------------
def test_copy_with_a_new_algorithm(s3, bucket):
    parts = [os.urandom(PART), os.urandom(4321)]
    uid, listed = upload_parts(s3, bucket, "mp", parts, "SHA256")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": listed}
    )
    whole = b"".join(parts)
    r = s3.copy_object(
        Bucket=bucket,
        Key="copy",
        CopySource={"Bucket": bucket, "Key": "mp"},
        ChecksumAlgorithm="CRC64NVME",
    )
    assert r["CopyObjectResult"]["ChecksumCRC64NVME"] == reference("CRC64NVME", whole)
    assert r["CopyObjectResult"]["ChecksumType"] == "FULL_OBJECT"
    h = s3.head_object(Bucket=bucket, Key="copy", ChecksumMode="ENABLED")
    assert h["ChecksumCRC64NVME"] == reference("CRC64NVME", whole)
    assert "ChecksumSHA256" not in h
    plain = s3.copy_object(Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "mp"})
    assert plain["CopyObjectResult"]["ChecksumSHA256"] == composite("SHA256", parts)
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=bucket,
            Key="copy3",
            CopySource={"Bucket": bucket, "Key": "mp"},
            ChecksumAlgorithm="MD4",
        )
    assert code(e) == "InvalidRequest"


# -- completion retries and part lists ---------------------------------------------------------------
def test_repeated_completion_answers_the_same(s3, bucket):
    parts = [os.urandom(PART), os.urandom(99)]
    uid, listed = upload_parts(s3, bucket, "again", parts, "SHA256")
    kwargs = {"Bucket": bucket, "Key": "again", "UploadId": uid}
    first = s3.complete_multipart_upload(MultipartUpload={"Parts": listed}, **kwargs)
    s3.put_object(Bucket=bucket, Key="other", Body=b"unrelated")
    second = s3.complete_multipart_upload(MultipartUpload={"Parts": listed}, **kwargs)
    assert (second["ETag"], second["ChecksumSHA256"]) == (first["ETag"], first["ChecksumSHA256"])
    assert s3.get_object(Bucket=bucket, Key="again")["Body"].read() == b"".join(parts)
    with pytest.raises(ClientError) as e:  # not the parts it was completed with
        s3.complete_multipart_upload(MultipartUpload={"Parts": listed[:1]}, **kwargs)
    assert code(e) == "NoSuchUpload"
    with pytest.raises(ClientError) as e:  # under another key
        s3.complete_multipart_upload(
            Bucket=bucket, Key="elsewhere", UploadId=uid, MultipartUpload={"Parts": listed}
        )
    assert code(e) == "NoSuchUpload"
    s3.delete_object(Bucket=bucket, Key="again")
    with pytest.raises(ClientError) as e:  # the object it created is gone
        s3.complete_multipart_upload(MultipartUpload={"Parts": listed}, **kwargs)
    assert code(e) == "NoSuchUpload"


def test_repeated_completion_after_overwrite_is_unknown(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="o")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="o", UploadId=uid, PartNumber=1, Body=b"1")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    s3.complete_multipart_upload(Bucket=bucket, Key="o", UploadId=uid, MultipartUpload=parts)
    s3.put_object(Bucket=bucket, Key="o", Body=b"replaced")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="o", UploadId=uid, MultipartUpload=parts)
    assert (status(e), code(e)) == (404, "NoSuchUpload")


def test_part_listed_twice_uses_the_last_entry(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dup")["UploadId"]
    old = s3.upload_part(Bucket=bucket, Key="dup", UploadId=uid, PartNumber=1, Body=b"old")
    new = s3.upload_part(Bucket=bucket, Key="dup", UploadId=uid, PartNumber=1, Body=b"new")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="dup",
        UploadId=uid,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": old["ETag"]},
                {"PartNumber": 1, "ETag": new["ETag"]},
            ]
        },
    )
    assert s3.get_object(Bucket=bucket, Key="dup")["Body"].read() == b"new"


def test_decreasing_part_numbers_refused(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ord")["UploadId"]
    tags = [
        s3.upload_part(Bucket=bucket, Key="ord", UploadId=uid, PartNumber=n, Body=os.urandom(PART))[
            "ETag"
        ]
        for n in (1, 2)
    ]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="ord",
            UploadId=uid,
            MultipartUpload={
                "Parts": [{"PartNumber": 2, "ETag": tags[1]}, {"PartNumber": 1, "ETag": tags[0]}]
            },
        )
    assert (status(e), code(e)) == (400, "InvalidPartOrder")


def test_part_number_beyond_the_parts(s3, bucket):
    s3.put_object(Bucket=bucket, Key="single", Body=b"body")
    assert s3.get_object(Bucket=bucket, Key="single", PartNumber=1)["Body"].read() == b"body"
    for op in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as e:
            op(Bucket=bucket, Key="single", PartNumber=2)
        assert status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="single", PartNumber=2)
    assert code(e) == "InvalidPart"
