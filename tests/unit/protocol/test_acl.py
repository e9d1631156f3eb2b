"""Canned ACLs as AccessControlPolicy documents and back: what GetBucketAcl
renders must read back in botocore and be accepted again by PutBucketAcl."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from tessera.protocol.s3.acl import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    canned_from_headers,
    canned_from_request,
    policy_document,
)
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.xml import render

S3_MODEL = botocore.session.get_session().get_service_model("s3")
OWNER = "0123456789abcdef"
CANNED = ["private", "public-read", "public-read-write", "authenticated-read"]


def _code(fn: Any, *args: Any) -> str:
    with pytest.raises(S3Error) as info:
        fn(*args)
    return info.value.code


def _put_body(grants: list[dict[str, Any]]) -> bytes:
    request = create_serializer("rest-xml").serialize_to_request(
        {
            "Bucket": "b",
            "AccessControlPolicy": {"Owner": {"ID": OWNER, "DisplayName": "o"}, "Grants": grants},
        },
        S3_MODEL.operation_model("PutBucketAcl"),
    )
    return request["body"]


@pytest.mark.parametrize("canned", CANNED)
def test_policy_document_reads_back_in_botocore(canned: str) -> None:
    doc = render("AccessControlPolicy", policy_document(OWNER, "Owner & Co <x>", canned))
    parsed = create_parser("rest-xml").parse(
        {"body": doc, "headers": {}, "status_code": 200},
        S3_MODEL.operation_model("GetBucketAcl").output_shape,
    )
    assert parsed["Owner"] == {"ID": OWNER, "DisplayName": "Owner & Co <x>"}
    grants = [
        (g["Grantee"]["Type"], g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"])
        for g in parsed["Grants"]
    ]
    expected = [("CanonicalUser", OWNER, "FULL_CONTROL")]
    expected += {
        "private": [],
        "public-read": [("Group", ALL_USERS, "READ")],
        "public-read-write": [("Group", ALL_USERS, "READ"), ("Group", ALL_USERS, "WRITE")],
        "authenticated-read": [("Group", AUTHENTICATED_USERS, "READ")],
    }[canned]
    assert grants == expected
    # The get-modify-put round trip: the document itself is accepted back.
    assert canned_from_request({}, doc, OWNER) == canned


@pytest.mark.parametrize("canned", ["bucket-owner-full-control", "aws-exec-read", "unknown"])
def test_policy_document_of_owner_only_acls(canned: str) -> None:
    doc = policy_document(OWNER, "o", canned)
    assert len(doc["AccessControlList"]["Grant"]) == 1
    assert doc["AccessControlList"]["Grant"][0]["Permission"] == "FULL_CONTROL"


def test_canned_from_botocore_documents() -> None:
    owner = {"Grantee": {"Type": "CanonicalUser", "ID": OWNER}, "Permission": "FULL_CONTROL"}
    read = {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}
    write = {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "WRITE"}
    auth = {"Grantee": {"Type": "Group", "URI": AUTHENTICATED_USERS}, "Permission": "READ"}
    assert canned_from_request({}, _put_body([owner]), OWNER) == "private"
    assert canned_from_request({}, _put_body([]), OWNER) == "private"
    assert canned_from_request({}, _put_body([owner, read]), OWNER) == "public-read"
    assert canned_from_request({}, _put_body([read, write, owner]), OWNER) == "public-read-write"
    assert canned_from_request({}, _put_body([owner, auth]), OWNER) == "authenticated-read"
    # Grants no canned ACL expresses.
    other = {"Grantee": {"Type": "CanonicalUser", "ID": "someone"}, "Permission": "READ"}
    assert _code(canned_from_request, {}, _put_body([owner, other]), OWNER) == "NotImplemented"
    assert _code(canned_from_request, {}, _put_body([owner, write]), OWNER) == "NotImplemented"
    email = {
        "Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "a@b.c"},
        "Permission": "READ",
    }
    assert _code(canned_from_request, {}, _put_body([owner, email]), OWNER) == (
        "UnresolvableGrantByEmailAddress"
    )


def test_canned_from_request_sources() -> None:
    body = _put_body([])
    assert canned_from_request({"x-amz-acl": "public-read"}, b"", OWNER) == "public-read"
    assert canned_from_request({"x-amz-acl": "public-read"}, b"  \n", OWNER) == "public-read"
    grant = {"x-amz-grant-read": f'uri="{ALL_USERS}"'}
    assert canned_from_request(grant, b"", OWNER) == "public-read"
    assert _code(canned_from_request, {}, b"", OWNER) == "MissingSecurityHeader"
    assert _code(canned_from_request, {"x-amz-acl": "private"}, body, OWNER) == "InvalidRequest"
    assert _code(canned_from_request, grant, body, OWNER) == "InvalidRequest"
    assert _code(canned_from_request, {"x-amz-acl": "private", **grant}, b"", OWNER) == (
        "InvalidRequest"
    )


@pytest.mark.parametrize(
    "doc",
    [
        b"<Tagging/>",
        b"<AccessControlPolicy><AccessControlList><Grant><Permission>READ</Permission>"
        b"</Grant></AccessControlList></AccessControlPolicy>",
        b"<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>x</ID></Grantee>"
        b"</Grant></AccessControlList></AccessControlPolicy>",
        # Not even well-formed: still the ACL error S3 answers.
        b"<AccessControlPolicy>",
        b"garbage",
    ],
)
def test_bad_acl_documents(doc: bytes) -> None:
    with pytest.raises(S3Error) as info:
        canned_from_request({}, doc, OWNER)
    assert info.value.code == "MalformedACLError"
    assert info.value.status == 400


def test_hostile_acl_documents_are_refused() -> None:
    doc = (
        b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<AccessControlPolicy><Owner><ID>&x;</ID></Owner></AccessControlPolicy>"
    )
    assert _code(canned_from_request, {}, doc, OWNER) == "MalformedACLError"


def test_canned_from_headers() -> None:
    assert canned_from_headers({}, OWNER) == "private"
    assert canned_from_headers({"x-amz-acl": "public-read"}, OWNER) == "public-read"
    assert canned_from_headers({"x-amz-grant-read": f'uri="{ALL_USERS}"'}, OWNER) == "public-read"
    assert (
        canned_from_headers(
            {
                "x-amz-grant-read": f'uri="{ALL_USERS}"',
                "x-amz-grant-write": f"uri={ALL_USERS}",
                "x-amz-grant-full-control": f'id="{OWNER}"',
            },
            OWNER,
        )
        == "public-read-write"
    )
    assert (
        canned_from_headers({"x-amz-grant-read": f' uri="{AUTHENTICATED_USERS}" , '}, OWNER)
        == "authenticated-read"
    )
    assert canned_from_headers({"x-amz-grant-full-control": f'id="{OWNER}"'}, OWNER) == "private"
    assert _code(canned_from_headers, {"x-amz-grant-read": 'id="other"'}, OWNER) == (
        "NotImplemented"
    )
    assert _code(canned_from_headers, {"x-amz-grant-read": 'emailAddress="a@b.c"'}, OWNER) == (
        "NotImplemented"
    )
    assert (
        _code(canned_from_headers, {"x-amz-grant-read-acp": f'uri="{ALL_USERS}"'}, OWNER)
        == "NotImplemented"
    )
    assert (
        _code(
            canned_from_headers,
            {"x-amz-acl": "private", "x-amz-grant-read": f'uri="{ALL_USERS}"'},
            OWNER,
        )
        == "InvalidRequest"
    )
