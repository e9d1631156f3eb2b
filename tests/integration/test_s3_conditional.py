"""Conditional writes (If-Match / If-None-Match on PutObject and
CompleteMultipartUpload) and conditional deletes (If-Match,
x-amz-if-match-last-modified-time, x-amz-if-match-size on DeleteObject; ETag,
LastModifiedTime and Size in DeleteObjects) through boto3.

Every refusal is checked to leave the existing object (or upload) as it was.
"""

from __future__ import annotations

import datetime
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def body(s3: Any, bucket: str, key: str, **kw: Any) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()
    return data


def versions(s3: Any, bucket: str) -> list[tuple[str, str, bool]]:
    """(key, version id, is delete marker), newest first per key."""
    r = s3.list_object_versions(Bucket=bucket)
    out = [(v["Key"], v["VersionId"], False) for v in r.get("Versions", [])]
    out += [(m["Key"], m["VersionId"], True) for m in r.get("DeleteMarkers", [])]
    return out


@pytest.fixture
def versioned(s3: Any, bucket: str) -> str:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


PRECONDITION_FAILED = (412, "PreconditionFailed")
NO_SUCH_KEY = (404, "NoSuchKey")


# -- PutObject ------------------------------------------------------------------------------
def test_put_if_none_match_star_creates_only(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert error(e) == PRECONDITION_FAILED
    with pytest.raises(ClientError) as e:  # an ETag list: refused when it names the object
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch=etag)
    assert error(e) == PRECONDITION_FAILED
    assert body(s3, bucket, "k") == b"first"
    s3.put_object(Bucket=bucket, Key="k", Body=b"third", IfNoneMatch='"other"')
    assert body(s3, bucket, "k") == b"third"


def test_put_if_match(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"lost", IfMatch='"0123"')
    assert error(e) == PRECONDITION_FAILED
    head = s3.head_object(Bucket=bucket, Key="k")
    assert (head["ETag"], body(s3, bucket, "k")) == (etag, b"v1")
    etag2 = s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=etag)["ETag"]
    with pytest.raises(ClientError) as e:  # the old ETag no longer matches
        s3.put_object(Bucket=bucket, Key="k", Body=b"lost", IfMatch=etag)
    assert error(e) == PRECONDITION_FAILED
    s3.put_object(Bucket=bucket, Key="k", Body=b"v3", IfMatch="*")
    assert body(s3, bucket, "k") == b"v3"
    assert etag2 != etag


def test_put_if_match_without_object_is_no_such_key(s3, bucket):
    for cond in ("*", '"0123"'):
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="k", Body=b"x", IfMatch=cond)
        assert error(e) == NO_SUCH_KEY
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_put_conditions_treat_a_delete_marker_as_no_object(s3, versioned):
    etag = s3.put_object(Bucket=versioned, Key="k", Body=b"v1")["ETag"]
    s3.delete_object(Bucket=versioned, Key="k")
    before = versions(s3, versioned)
    for cond in ("*", etag):
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=versioned, Key="k", Body=b"x", IfMatch=cond)
        assert error(e) == NO_SUCH_KEY
    assert versions(s3, versioned) == before
    s3.put_object(Bucket=versioned, Key="k", Body=b"v2", IfNoneMatch="*")
    assert body(s3, versioned, "k") == b"v2"


def test_put_if_match_compares_the_current_version_only(s3, versioned):
    old = s3.put_object(Bucket=versioned, Key="k", Body=b"v1")
    s3.put_object(Bucket=versioned, Key="k", Body=b"v2")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=versioned, Key="k", Body=b"x", IfMatch=old["ETag"])
    assert error(e) == PRECONDITION_FAILED
    assert len(versions(s3, versioned)) == 2
    assert body(s3, versioned, "k", VersionId=old["VersionId"]) == b"v1"


def test_racing_create_only_puts_let_exactly_one_win(s3, bucket):
    def put(i: int) -> str | None:
        try:
            s3.put_object(Bucket=bucket, Key="race", Body=f"writer {i}".encode(), IfNoneMatch="*")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "PreconditionFailed"
            return None
        return f"writer {i}"

    with ThreadPoolExecutor(8) as pool:
        winners = [w for w in pool.map(put, range(16)) if w is not None]
    assert len(winners) == 1
    assert body(s3, bucket, "race") == winners[0].encode()


# -- CompleteMultipartUpload -------------------------------------------------------------------
def start_upload(s3: Any, bucket: str, key: str, data: bytes) -> tuple[str, list[dict[str, Any]]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=data)
    return upload_id, [{"ETag": part["ETag"], "PartNumber": 1}]


def complete(s3: Any, bucket: str, key: str, upload_id: str, parts: Any, **kw: Any) -> Any:
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **kw
    )


def test_complete_multipart_if_none_match(s3, bucket):
    upload_id, parts = start_upload(s3, bucket, "k", b"multi")
    etag = complete(s3, bucket, "k", upload_id, parts, IfNoneMatch="*")["ETag"]
    upload_id, parts = start_upload(s3, bucket, "k", b"other")
    with pytest.raises(ClientError) as e:
        complete(s3, bucket, "k", upload_id, parts, IfNoneMatch="*")
    assert error(e) == PRECONDITION_FAILED
    assert body(s3, bucket, "k") == b"multi"
    # The refused upload is still there, parts and all, and can be completed.
    listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1]
    assert complete(s3, bucket, "k", upload_id, parts, IfMatch=etag)["ETag"] != etag
    assert body(s3, bucket, "k") == b"other"


def test_complete_multipart_if_match(s3, bucket):
    upload_id, parts = start_upload(s3, bucket, "k", b"x")
    with pytest.raises(ClientError) as e:
        complete(s3, bucket, "k", upload_id, parts, IfMatch="*")
    assert error(e) == NO_SUCH_KEY
    s3.put_object(Bucket=bucket, Key="k", Body=b"single")
    with pytest.raises(ClientError) as e:
        complete(s3, bucket, "k", upload_id, parts, IfMatch='"0123"')
    assert error(e) == PRECONDITION_FAILED
    assert body(s3, bucket, "k") == b"single"
    complete(s3, bucket, "k", upload_id, parts, IfMatch="*")
    assert body(s3, bucket, "k") == b"x"


# -- DeleteObject ------------------------------------------------------------------------------
def test_delete_if_match(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"data")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="k", IfMatch='"0123"')
    assert error(e) == PRECONDITION_FAILED
    assert body(s3, bucket, "k") == b"data"
    s3.delete_object(Bucket=bucket, Key="k", IfMatch=etag)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # Nothing to delete: success, whatever the condition.
    for cond in ("*", '"0123"'):
        r = s3.delete_object(Bucket=bucket, Key="k", IfMatch=cond)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    s3.put_object(Bucket=bucket, Key="k", Body=b"again")
    s3.delete_object(Bucket=bucket, Key="k", IfMatch="*")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_if_match_size_and_last_modified_time(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"12345")
    mtime = s3.head_object(Bucket=bucket, Key="k")["LastModified"]
    bad_time = datetime.datetime(2015, 1, 1, tzinfo=datetime.UTC)
    refused: list[dict[str, Any]] = [
        {"IfMatchSize": 4},
        {"IfMatchLastModifiedTime": bad_time},
        {"IfMatchSize": 5, "IfMatchLastModifiedTime": bad_time},  # all must hold
        {"IfMatchSize": 4, "IfMatchLastModifiedTime": mtime},
    ]
    for kw in refused:
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=bucket, Key="k", **kw)
        assert error(e) == PRECONDITION_FAILED, kw
    assert body(s3, bucket, "k") == b"12345"
    s3.delete_object(Bucket=bucket, Key="k", IfMatchSize=5, IfMatchLastModifiedTime=mtime)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    r = s3.delete_object(Bucket=bucket, Key="k", IfMatchSize=4)  # absent: success
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_current_if_match_on_versioned_bucket(s3, versioned):
    # No version at all: success, and no delete marker is added.
    for cond in ("*", '"0123"'):
        s3.delete_object(Bucket=versioned, Key="k", IfMatch=cond)
    assert versions(s3, versioned) == []
    put = s3.put_object(Bucket=versioned, Key="k", Body=b"data")
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=versioned, Key="k", IfMatch='"0123"')
    assert error(e) == PRECONDITION_FAILED
    assert versions(s3, versioned) == [("k", put["VersionId"], False)]
    r = s3.delete_object(Bucket=versioned, Key="k", IfMatch=put["ETag"])
    assert r["DeleteMarker"] is True
    marker = r["VersionId"]
    # A delete marker has no ETag and no size: only "*" (or its time) matches.
    for kw in ({"IfMatch": put["ETag"]}, {"IfMatchSize": 0}):
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=versioned, Key="k", **kw)
        assert error(e) == PRECONDITION_FAILED
    assert {v for _, v, _ in versions(s3, versioned)} == {put["VersionId"], marker}
    r = s3.delete_object(Bucket=versioned, Key="k", IfMatch="*")
    assert r["DeleteMarker"] is True and r["VersionId"] != marker


def test_delete_version_if_match(s3, versioned):
    old = s3.put_object(Bucket=versioned, Key="k", Body=b"old")
    s3.put_object(Bucket=versioned, Key="k", Body=b"new")
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=versioned, Key="k", VersionId=old["VersionId"], IfMatch='"0123"')
    assert error(e) == PRECONDITION_FAILED
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=versioned, Key="k", VersionId=old["VersionId"], IfMatchSize=4)
    assert error(e) == PRECONDITION_FAILED
    assert body(s3, versioned, "k", VersionId=old["VersionId"]) == b"old"
    r = s3.delete_object(
        Bucket=versioned, Key="k", VersionId=old["VersionId"], IfMatch=old["ETag"], IfMatchSize=3
    )
    assert "DeleteMarker" not in r
    assert len(versions(s3, versioned)) == 1
    assert body(s3, versioned, "k") == b"new"
    # The version is gone: deleting it again succeeds whatever the condition.
    s3.delete_object(Bucket=versioned, Key="k", VersionId=old["VersionId"], IfMatch='"0123"')


# -- DeleteObjects -----------------------------------------------------------------------------
def test_delete_objects_conditions_per_key(s3, bucket):
    etags = {k: s3.put_object(Bucket=bucket, Key=k, Body=b"abc")["ETag"] for k in "abcdef"}
    mtime = s3.head_object(Bucket=bucket, Key="d")["LastModified"]
    bad_time = datetime.datetime(2015, 1, 1, tzinfo=datetime.UTC)
    r = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": "a", "ETag": etags["a"]},
                {"Key": "b", "ETag": '"0123"'},
                {"Key": "c", "Size": 3},
                {"Key": "d", "LastModifiedTime": mtime},
                {"Key": "e", "LastModifiedTime": bad_time},
                {"Key": "f", "Size": 4, "ETag": etags["f"]},
                {"Key": "absent", "ETag": '"0123"'},
            ]
        },
    )
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "absent", "c", "d"]
    assert sorted((x["Key"], x["Code"]) for x in r["Errors"]) == [
        ("b", "PreconditionFailed"),
        ("e", "PreconditionFailed"),
        ("f", "PreconditionFailed"),
    ]
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert left == ["b", "e", "f"]
    assert all(body(s3, bucket, k) == b"abc" for k in left)


def test_delete_objects_conditions_on_versioned_bucket(s3, versioned):
    put = s3.put_object(Bucket=versioned, Key="k", Body=b"data")
    r = s3.delete_objects(Bucket=versioned, Delete={"Objects": [{"Key": "k", "ETag": '"0123"'}]})
    assert [(x["Key"], x["Code"]) for x in r["Errors"]] == [("k", "PreconditionFailed")]
    assert "Deleted" not in r
    r = s3.delete_objects(Bucket=versioned, Delete={"Objects": [{"Key": "k", "ETag": put["ETag"]}]})
    assert r["Deleted"][0]["Key"] == "k" and r["Deleted"][0]["DeleteMarker"] is True
    # Named version: compared with that version, not with the delete marker.
    item = {"Key": "k", "VersionId": put["VersionId"]}
    r = s3.delete_objects(Bucket=versioned, Delete={"Objects": [{**item, "Size": 5}]})
    assert [x["Code"] for x in r["Errors"]] == ["PreconditionFailed"]
    assert body(s3, versioned, "k", VersionId=put["VersionId"]) == b"data"
    r = s3.delete_objects(Bucket=versioned, Delete={"Objects": [{**item, "Size": 4}]})
    assert r["Deleted"] == [{"Key": "k", "VersionId": put["VersionId"]}]
    assert [m for _, _, m in versions(s3, versioned)] == [True]


# -- malformed conditions ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    ["x-amz-if-match-size", "x-amz-if-match-last-modified-time"],
)
def test_unparsable_delete_conditions_are_invalid_argument(s3, bucket, header):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")

    def add_header(params: dict[str, Any], **_: Any) -> None:
        params["headers"][header] = "not-a-value"

    s3.meta.events.register("before-call.s3.DeleteObject", add_header, unique_id="bad-cond")
    try:
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=bucket, Key="k")
    finally:
        s3.meta.events.unregister("before-call.s3.DeleteObject", unique_id="bad-cond")
    assert error(e) == (400, "InvalidArgument")
    assert body(s3, bucket, "k") == b"data"
