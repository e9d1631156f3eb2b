"""S3 ACL documents for canned ACLs.

Tessera keeps one canned ACL per bucket and object (see ``core.access``). This
module turns a canned ACL into the ``AccessControlPolicy`` S3 clients read, and
a ``PutBucketAcl``/``PutObjectAcl`` request (``x-amz-acl``, ``x-amz-grant-*``
headers or an XML document) back into a canned ACL. Grants that no canned ACL
expresses raise NotImplemented: Tessera does not keep grantee lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.xml import parse_xml

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

_PUBLIC_GRANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "private": (),
    "public-read": ((ALL_USERS, "READ"),),
    "public-read-write": ((ALL_USERS, "READ"), (ALL_USERS, "WRITE")),
    "authenticated-read": ((AUTHENTICATED_USERS, "READ"),),
}
"""Group grants each canned ACL adds to the owner's FULL_CONTROL."""
_BY_GRANTS = {frozenset(g): name for name, g in _PUBLIC_GRANTS.items()}


def policy_document(owner_id: str, owner_name: str, canned: str) -> dict[str, Any]:
    """Content of the ``AccessControlPolicy`` for ``canned`` (for ``render``)."""
    owner = {"ID": owner_id, "DisplayName": owner_name}
    grants: list[dict[str, Any]] = [
        {
            "Grantee": {"@xmlns:xsi": XSI, "@xsi:type": "CanonicalUser", **owner},
            "Permission": "FULL_CONTROL",
        }
    ]
    for uri, permission in _PUBLIC_GRANTS.get(canned, ()):
        grants.append(
            {
                "Grantee": {"@xmlns:xsi": XSI, "@xsi:type": "Group", "URI": uri},
                "Permission": permission,
            }
        )
    return {"Owner": owner, "AccessControlList": {"Grant": grants}}


def _canned(grants: set[tuple[str, str]], owner_id: str) -> str:
    public = {(g, p) for g, p in grants if g != owner_id}
    name = _BY_GRANTS.get(frozenset(public))
    if name is None:
        raise S3Error(
            "NotImplemented",
            "Only grants equal to a canned ACL (private, public-read, public-read-write, "
            "authenticated-read) are supported; use pre-authenticated requests to share.",
        )
    return name


def _header_grants(headers: Mapping[str, str]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for header, permission in (
        ("x-amz-grant-read", "READ"),
        ("x-amz-grant-write", "WRITE"),
        ("x-amz-grant-full-control", "FULL_CONTROL"),
        ("x-amz-grant-read-acp", "READ_ACP"),
        ("x-amz-grant-write-acp", "WRITE_ACP"),
    ):
        for item in filter(None, (i.strip() for i in headers.get(header, "").split(","))):
            kind, _, value = item.partition("=")
            out.add((value.strip().strip('"'), permission) if kind.strip() else (item, permission))
    return out


def canned_from_headers(headers: Mapping[str, str], owner_id: str) -> str:
    """The canned ACL a write (PutObject, CreateBucket...) asks for with
    ``x-amz-acl`` or ``x-amz-grant-*`` headers; ``private`` when neither is sent.
    InvalidRequest when both are, NotImplemented for grants no canned ACL equals."""
    grants = any(h.startswith("x-amz-grant-") for h in headers)
    if "x-amz-acl" in headers and grants:
        raise S3Error("InvalidRequest", "Specify either a canned ACL or grant headers")
    if grants:
        return _canned(_header_grants(headers), owner_id)
    return headers.get("x-amz-acl", "private")


def canned_from_request(headers: Mapping[str, str], document: bytes, owner_id: str) -> str:
    """The canned ACL a Put*Acl request asks for: ``x-amz-acl``, else grant
    headers, else the XML body. InvalidRequest when several are given,
    MalformedACLError for a bad document, NotImplemented for other grants."""
    given = [
        "x-amz-acl" in headers,
        any(h.startswith("x-amz-grant-") for h in headers),
        bool(document.strip()),
    ]
    if sum(given) > 1:
        raise S3Error("InvalidRequest", "Specify either a canned ACL, grant headers or a body")
    if given[0]:
        return headers["x-amz-acl"]
    if given[1]:
        return _canned(_header_grants(headers), owner_id)
    if not given[2]:
        raise S3Error("MissingSecurityHeader", "Your request was missing a required header")
    try:
        root = parse_xml(document)
    except S3Error as e:  # MalformedXML: S3 names it MalformedACLError here
        raise S3Error("MalformedACLError", "The XML you provided was not well-formed") from e
    if root.tag != "AccessControlPolicy":
        raise S3Error("MalformedACLError", "The XML you provided was not well-formed")
    grants: set[tuple[str, str]] = set()
    for grant in root.iter("Grant"):
        grantee, permission = grant.find("Grantee"), grant.findtext("Permission", "")
        if grantee is None or not permission:
            raise S3Error("MalformedACLError", "The XML you provided was not well-formed")
        who = grantee.findtext("ID") or grantee.findtext("URI") or ""
        if not who:
            raise S3Error("UnresolvableGrantByEmailAddress", "Grantees by e-mail are not supported")
        grants.add((who, permission))
    return _canned(grants, owner_id)
