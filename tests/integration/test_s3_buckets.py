"""Bucket operations, listings and versioning through boto3 against a real server."""

from __future__ import annotations

import uuid

import harness
import pytest
from botocore.exceptions import ClientError


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_bucket_lifecycle(s3):
    name = "b-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] in (None, "")
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    s3.create_bucket(Bucket=name)  # us-east-1: re-creating your own bucket succeeds...
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["k"]  # ...as is
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert code(e) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize(
    "name", ["ab", "UPPER", "-start", "end-", "a..b", "192.168.1.1", "x" * 64, "under_score"]
)
def test_invalid_bucket_names(s3, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert code(e) == "InvalidBucketName"


def test_list_v2_prefix_delimiter_pagination(s3, bucket):
    keys = [f"dir{i}/file{j}" for i in range(3) for j in range(3)] + ["top1", "top2", "dir1x"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir0/", "dir1/", "dir2/"]
    assert [o["Key"] for o in r["Contents"]] == ["dir1x", "top1", "top2"]
    assert r["KeyCount"] == 6
    r = s3.list_objects_v2(Bucket=bucket, Prefix="dir1/")
    assert [o["Key"] for o in r["Contents"]] == ["dir1/file0", "dir1/file1", "dir1/file2"]
    # paginate 2 at a time with a delimiter: every entry exactly once
    seen, token = [], None
    while True:
        kw = {"Bucket": bucket, "Delimiter": "/", "MaxKeys": 2}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        seen += [p["Prefix"] for p in r.get("CommonPrefixes", [])] + [
            o["Key"] for o in r.get("Contents", [])
        ]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert sorted(seen) == ["dir0/", "dir1/", "dir1x", "dir2/", "top1", "top2"]
    r = s3.list_objects_v2(Bucket=bucket, StartAfter="dir2/file1")
    assert [o["Key"] for o in r["Contents"]] == ["dir2/file2", "top1", "top2"]


def test_list_v1_marker(s3, bucket):
    for k in ["a", "b", "c", "d"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    r = s3.list_objects(Bucket=bucket, Marker="b", MaxKeys=1)
    assert [o["Key"] for o in r["Contents"]] == ["c"]
    assert r["IsTruncated"] is True
    paginator = s3.get_paginator("list_objects")
    assert [
        o["Key"]
        for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 1})
        for o in page["Contents"]
    ] == ["a", "b", "c", "d"]


def test_list_binary_order(s3, bucket):
    keys = ["a", "a/b", "a!", "B", "é", "\u00ff", "z", "\U0001f600"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda s: s.encode())


def test_versioning(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    d = s3.delete_object(Bucket=bucket, Key="k")
    assert d["DeleteMarker"] is True
    marker = d["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(e) == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-delete-marker") == "true"
    vs = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in vs["Versions"]] == [v2, v1]
    assert [m["VersionId"] for m in vs["DeleteMarkers"]] == [marker]
    assert vs["DeleteMarkers"][0]["IsLatest"] is True
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId=v2)
    assert code(e) == "NoSuchVersion"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"null1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"null2")
    ids = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]]
    assert ids == ["null", v1]
    for v in s3.list_object_versions(Bucket=bucket)["Versions"]:
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])


def test_bucket_tagging(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(e) == "NoSuchTagSet"
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "data"}]
    s3.delete_bucket_tagging(Bucket=bucket)


def test_other_account_is_denied(s3, other_s3, bucket):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"x")
    with pytest.raises(ClientError) as e:
        other_s3.get_object(Bucket=bucket, Key="secret")
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        other_s3.create_bucket(Bucket=bucket)
    assert code(e) == "BucketAlreadyExists"


def test_list_buckets_pages(other_s3):
    """The second account owns only what this test creates: pages are exact."""
    names = sorted(f"page-{uuid.uuid4().hex[:10]}-{i}" for i in range(3))
    for n in names:
        other_s3.create_bucket(Bucket=n)
    try:
        seen, token = [], None
        while True:
            kw = {"MaxBuckets": 2, "Prefix": "page-"}
            if token:
                kw["ContinuationToken"] = token
            r = other_s3.list_buckets(**kw)
            assert len(r["Buckets"]) <= 2
            seen += [b["Name"] for b in r["Buckets"]]
            token = r.get("ContinuationToken")
            if not token:
                break
        assert seen == names
    finally:
        for n in names:
            other_s3.delete_bucket(Bucket=n)


def test_listing_edge_arguments(s3, bucket):
    for k in ("a\nb", "plain"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    r = s3.list_objects(Bucket=bucket, Prefix="a\n")  # botocore asks for url encoding
    assert r["Prefix"] == "a\n" and [o["Key"] for o in r["Contents"]] == ["a\nb"]
    r = s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert r["ContinuationToken"] == "" and len(r["Contents"]) == 2
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="!!not a token!!")
    assert code(e) == "InvalidArgument"


def test_unsupported_configuration_is_refused_not_ignored(s3, bucket):
    """A setting Tessera would not enforce (encryption, lock, lifecycle...) is refused."""
    calls = [
        lambda: s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        ),
        lambda: s3.put_object_lock_configuration(
            Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
        ),
        lambda: s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [{"ID": "x", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}]
            },
        ),
        lambda: s3.create_bucket(
            Bucket=f"lock-{uuid.uuid4().hex[:10]}", ObjectLockEnabledForBucket=True
        ),
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "NotImplemented"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_encryption(Bucket=bucket)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_listings_show_owner_display_names(other_s3):
    name = f"own-{uuid.uuid4().hex[:12]}"
    other_s3.create_bucket(Bucket=name)
    try:
        other_s3.put_object(Bucket=name, Key="k", Body=b"x")
        shown = harness.ALT_ACCOUNT["display_name"]
        v2 = other_s3.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"][0]["Owner"]
        v1 = other_s3.list_objects(Bucket=name)["Contents"][0]["Owner"]
        ver = other_s3.list_object_versions(Bucket=name)["Versions"][0]["Owner"]
        assert v2 == v1 == ver == {"ID": harness.ALT_ACCOUNT["id"], "DisplayName": shown}
        assert "Owner" not in other_s3.list_objects_v2(Bucket=name)["Contents"][0]
        other_s3.delete_object(Bucket=name, Key="k")
    finally:
        other_s3.delete_bucket(Bucket=name)
