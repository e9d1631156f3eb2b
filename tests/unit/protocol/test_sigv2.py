"""SigV2: AWS's documented examples (S3 Developer Guide, "Signing and
authenticating REST requests"), parsing, and a cross-check against botocore's
HmacV1Auth / HmacV1QueryAuth signers and boto3's SigV2 presigned URLs."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tessera.protocol.s3 import sigv2
from tessera.protocol.s3.errors import S3Error

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _verify(
    method: str,
    headers: dict[str, str],
    path: str,
    query: list[tuple[str, str]],
    signature: str,
    *,
    expires: int | None = None,
    secret: str = SECRET,
) -> str:
    """What the gateway does: returns the string to sign after checking it."""
    to_sign = sigv2.string_to_sign(
        method, headers, sigv2.canonical_resource(path, query), expires=expires
    )
    sigv2.verify_v2(sigv2.V2Signature(AKID, signature, expires), secret, to_sign)
    return to_sign


def _refused(
    method: str,
    headers: dict[str, str],
    path: str,
    query: list[tuple[str, str]],
    signature: str,
    **kw: Any,
) -> S3Error:
    with pytest.raises(S3Error) as info:
        _verify(method, headers, path, query, signature, **kw)
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.status == 403
    return info.value


# ------------------------------------------------------ documented examples
#
# Each: method, headers (lower-case names, repeated headers joined with ","),
# the canonical resource's path (bucket included, as sent), the decoded query,
# the documented string to sign and signature.

DOC_EXAMPLES: list[tuple[str, str, dict[str, str], str, list[tuple[str, str]], str, str]] = [
    (
        "object-get",
        "GET",
        {"host": "johnsmith.s3.amazonaws.com", "date": "Tue, 27 Mar 2007 19:36:42 +0000"},
        "/johnsmith/photos/puppy.jpg",
        [],
        "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
        "bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
    ),
    (
        "object-put",
        "PUT",
        {
            "host": "johnsmith.s3.amazonaws.com",
            "date": "Tue, 27 Mar 2007 21:15:45 +0000",
            "content-type": "image/jpeg",
            "content-length": "94328",
        },
        "/johnsmith/photos/puppy.jpg",
        [],
        "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg",
        "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
    ),
    (
        "list",
        "GET",
        {
            "user-agent": "Mozilla/5.0",
            "host": "johnsmith.s3.amazonaws.com",
            "date": "Tue, 27 Mar 2007 19:42:41 +0000",
        },
        "/johnsmith/",
        [("prefix", "photos"), ("max-keys", "50"), ("marker", "puppy")],
        "GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/johnsmith/",
        "htDYFYduRNen8P9ZfE/s9SuKy0U=",
    ),
    (
        "fetch-acl",
        "GET",
        {"host": "johnsmith.s3.amazonaws.com", "date": "Tue, 27 Mar 2007 19:44:46 +0000"},
        "/johnsmith/",
        [("acl", "")],
        "GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/johnsmith/?acl",
        "c2WLPFtWHVgbEmeEG93a4cG37dM=",
    ),
    (
        "upload",
        "PUT",
        {
            "user-agent": "curl/7.15.5",
            "host": "static.johnsmith.net:8080",
            "date": "Tue, 27 Mar 2007 21:06:08 +0000",
            "x-amz-acl": "public-read",
            "content-type": "application/x-download",
            "content-md5": "4gJE4saaMU4BqNR0kLY+lw==",
            "x-amz-meta-reviewedby": "joe@johnsmith.net,jane@johnsmith.net",
            "x-amz-meta-filechecksum": "0x02661779",
            "x-amz-meta-checksumalgorithm": "crc32",
            "content-disposition": "attachment; filename=database.dat",
            "content-encoding": "gzip",
            "content-length": "5913339",
        },
        "/static.johnsmith.net/db-backup.dat.gz",
        [],
        "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\n"
        "Tue, 27 Mar 2007 21:06:08 +0000\n"
        "x-amz-acl:public-read\n"
        "x-amz-meta-checksumalgorithm:crc32\n"
        "x-amz-meta-filechecksum:0x02661779\n"
        "x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n"
        "/static.johnsmith.net/db-backup.dat.gz",
        "ilyl83RwaSoYIEdixDQcA4OnAnc=",
    ),
    (
        "list-all-buckets",
        "GET",
        {"host": "s3.amazonaws.com", "date": "Wed, 28 Mar 2007 01:29:59 +0000"},
        "/",
        [],
        "GET\n\n\nWed, 28 Mar 2007 01:29:59 +0000\n/",
        "qGdzdERIC03wnaRNKh6OqZehG9s=",
    ),
    (
        "unicode-keys",
        "GET",
        {"host": "s3.amazonaws.com", "date": "Wed, 28 Mar 2007 01:49:49 +0000"},
        "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",  # as sent, case of hex kept
        [],
        "GET\n\n\nWed, 28 Mar 2007 01:49:49 +0000\n/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
        "DNEZGsoieTZ92F3bUfSPQcbGmlM=",
    ),
]


@pytest.mark.parametrize(
    ("method", "headers", "path", "query", "to_sign", "signature"),
    [e[1:] for e in DOC_EXAMPLES],
    ids=[e[0] for e in DOC_EXAMPLES],
)
def test_documented_examples(
    method: str,
    headers: dict[str, str],
    path: str,
    query: list[tuple[str, str]],
    to_sign: str,
    signature: str,
) -> None:
    assert _verify(method, headers, path, query, signature) == to_sign
    header = sigv2.parse_v2_header(f"AWS {AKID}:{signature}")
    assert header == sigv2.V2Signature(AKID, signature)
    # A different secret, method, date or resource does not verify.
    _refused(method, headers, path, query, signature, secret=SECRET[:-1] + "X")
    _refused("HEAD", headers, path, query, signature)
    _refused(method, {**headers, "date": "Tue, 27 Mar 2007 19:36:43 +0000"}, path, query, signature)
    _refused(method, headers, path + "x", query, signature)
    _refused(method, headers, path, [*query, ("versionId", "1")], signature)


def test_documented_delete_with_x_amz_date() -> None:
    # When x-amz-date is sent the Date line of the string to sign is empty and
    # x-amz-date is signed with the other x-amz-* headers. (The guide's example
    # prints this string to sign; its published signature, lx3byBSc...=, is the
    # one of a string with the x-amz-date value on the Date line instead.)
    headers = {
        "user-agent": "dotnet",
        "host": "s3.amazonaws.com",
        "date": "Tue, 27 Mar 2007 21:20:27 +0000",
        "x-amz-date": "Tue, 27 Mar 2007 21:20:26 +0000",
    }
    resource = sigv2.canonical_resource("/johnsmith/photos/puppy.jpg", [])
    assert sigv2.string_to_sign("DELETE", headers, resource) == (
        "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg"
    )
    _verify("DELETE", headers, "/johnsmith/photos/puppy.jpg", [], "R4dJ53KECjStyBO5iTBJZ4XVOaI=")


def test_documented_query_string_example() -> None:
    url = (
        "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE"
        "&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620"
    )
    query = parse_qsl(urlsplit(url).query)
    sig = sigv2.parse_v2_query(query)
    assert sig == sigv2.V2Signature(AKID, "NpgCjnDzrM+WFzoENXmpNDUsSn8=", 1175139620)
    resource = sigv2.canonical_resource("/johnsmith/photos/puppy.jpg", query)
    assert resource == "/johnsmith/photos/puppy.jpg"
    # A Date header sent along is not signed: Expires takes its place.
    headers = {"host": "johnsmith.s3.amazonaws.com", "date": "Tue, 27 Mar 2007 19:36:42 +0000"}
    to_sign = sigv2.string_to_sign("GET", headers, resource, expires=sig.expires)
    assert to_sign == "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg"
    sigv2.verify_v2(sig, SECRET, to_sign)
    with pytest.raises(S3Error) as info:
        sigv2.verify_v2(sig, SECRET, to_sign.replace("1175139620", "1175139621"))
    assert info.value.code == "SignatureDoesNotMatch"


def test_mismatch_error_carries_the_string_to_sign() -> None:
    err = _refused("GET", {"date": "d"}, "/b/k", [], "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert err.extra == {
        "AWSAccessKeyId": AKID,
        "StringToSign": "GET\n\n\nd\n/b/k",
        "SignatureProvided": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    }


# ---------------------------------------------------------------- parsing


def test_parse_v2_header() -> None:
    assert sigv2.parse_v2_header("AWS AKID:c2ln") == sigv2.V2Signature("AKID", "c2ln")
    assert sigv2.parse_v2_header("  AWS AKID:c2ln  ") == sigv2.V2Signature("AKID", "c2ln")
    # The signature is base64 and has no ":"; the last one separates.
    assert sigv2.parse_v2_header("AWS a:b:c2ln") == sigv2.V2Signature("a:b", "c2ln")
    for bad in ("AWS", "AWS ", "AWS AKID", "AWS AKID:", "AWS :c2ln", "AWS :", "AWSAKID:c2ln"):
        with pytest.raises(S3Error) as info:
            sigv2.parse_v2_header(bad)
        assert info.value.code == "InvalidArgument", bad


def test_parse_v2_query() -> None:
    full = [("AWSAccessKeyId", "AKID"), ("Signature", "c2ln"), ("Expires", "1700000000")]
    assert sigv2.parse_v2_query(full) == sigv2.V2Signature("AKID", "c2ln", 1700000000)
    assert sigv2.parse_v2_query([*full, ("versionId", "v")]).expires == 1700000000
    for drop in range(3):
        with pytest.raises(S3Error) as info:
            sigv2.parse_v2_query(full[:drop] + full[drop + 1 :])
        assert info.value.code == "AccessDenied"
    for expires in ("", "-1", "+1", "1.5", "1e9", " 1", "0x10", "\u0661\u0662", "\u00b2"):
        query = [*full[:2], ("Expires", expires)]
        with pytest.raises(S3Error) as info:
            sigv2.parse_v2_query(query)
        assert info.value.code == "AccessDenied", expires
    for empty in ("AWSAccessKeyId", "Signature"):
        query = [(k, "" if k == empty else v) for k, v in full]
        with pytest.raises(S3Error) as info:
            sigv2.parse_v2_query(query)
        assert info.value.code == "AccessDenied"


def test_canonical_resource() -> None:
    cr = sigv2.canonical_resource
    assert cr("/b/k", []) == "/b/k"
    assert cr("/b/k", [("prefix", "p"), ("max-keys", "1")]) == "/b/k"
    assert cr("/b/", [("acl", "")]) == "/b/?acl"
    # Sub-resources are sorted by name; values are signed decoded.
    assert (
        cr("/b/k", [("versionId", "v/1 2"), ("uploadId", "u"), ("partNumber", "3"), ("x", "y")])
        == "/b/k?partNumber=3&uploadId=u&versionId=v/1 2"
    )
    assert (
        cr("/b/k", [("response-content-type", "text/plain"), ("response-expires", "now")])
        == "/b/k?response-content-type=text/plain&response-expires=now"
    )
    assert (
        cr("/b", [("tagging", ""), ("delete", ""), ("uploads", "")]) == "/b?delete&tagging&uploads"
    )
    # Only the names S3 documents; case matters.
    assert cr("/b", [("ACL", ""), ("versionid", "1"), ("list-type", "2")]) == "/b"
    # The authentication parameters themselves are never part of it.
    assert cr("/b/k", [("AWSAccessKeyId", "a"), ("Signature", "s"), ("Expires", "1")]) == "/b/k"


def test_string_to_sign_header_rules() -> None:
    headers = {
        "content-md5": "md5",
        "content-type": "text/plain",
        "date": "D",
        "x-amz-meta-b": " b value ",
        "x-amz-meta-a": "a,  b",
        "x-amz-acl": "private",
        "x-amzfoo": "not amz",
        "content-length": "5",
        "host": "h",
    }
    assert sigv2.string_to_sign("put", headers, "/r") == (
        "PUT\nmd5\ntext/plain\nD\nx-amz-acl:private\nx-amz-meta-a:a,  b\nx-amz-meta-b:b value\n/r"
    )
    assert sigv2.string_to_sign("GET", {}, "/r") == "GET\n\n\n\n/r"
    assert sigv2.string_to_sign("GET", {"date": "D"}, "/r", expires=5) == "GET\n\n\n5\n/r"
    assert sigv2.string_to_sign("GET", {"x-amz-date": "X", "date": "D"}, "/r") == (
        "GET\n\n\n\nx-amz-date:X\n/r"
    )


# ------------------------------------------------------- botocore cross-check


class _FixedDate(HmacV1Auth):
    def __init__(self, credentials: Credentials, date: str) -> None:
        super().__init__(credentials)
        self._date = date

    def _get_date(self) -> str:
        return self._date


class _FixedExpires(HmacV1QueryAuth):
    def __init__(self, credentials: Credentials, expires_at: int) -> None:
        super().__init__(credentials)
        self._at = expires_at

    def _get_date(self) -> str:
        return str(self._at)


SUBS = [
    "acl",
    "tagging",
    "versionId",
    "uploadId",
    "partNumber",
    "uploads",
    "versions",
    "response-content-type",
    "response-content-disposition",
    "delete",
    "restore",
]
OTHERS = ["prefix", "max-keys", "list-type", "x-id", "marker", "delimiter"]


def _random_text(rng: random.Random, low: int = 0, high: int = 12) -> str:
    alphabet = "abcXYZ019 -_.~/+=&?%:,;*'!()\u00e9\u4e2d\U0001f600"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def _random_request(rng: random.Random) -> tuple[str, str, list[tuple[str, str]], dict[str, str]]:
    method = rng.choice(["GET", "PUT", "HEAD", "DELETE", "POST"])
    key = _random_text(rng, 1, 20)
    path = "/bucket/" + quote(key, safe="/~")
    query: list[tuple[str, str]] = []
    for name in rng.sample(SUBS + OTHERS, rng.randint(0, 4)):
        bare = name in ("acl", "tagging", "uploads", "versions", "delete", "restore")
        query.append((name, "" if bare and rng.random() < 0.7 else _random_text(rng, 1, 8)))
    headers: dict[str, str] = {}
    if rng.random() < 0.5:
        headers["Content-Type"] = rng.choice(["text/plain", "application/octet-stream"])
    if rng.random() < 0.3:
        headers["Content-MD5"] = "1B2M2Y8AsgTpgAmY7PhCfg=="
    for i in range(rng.randint(0, 3)):
        headers[f"X-Amz-Meta-{rng.choice(['Foo', 'bar', 'BAZ'])}{i}"] = _random_text(rng, 1, 10)
    if rng.random() < 0.3:
        headers["x-amz-storage-class"] = "STANDARD"
    headers["User-Agent"] = "unsigned"
    return method, path, query, headers


def _url(path: str, query: list[tuple[str, str]]) -> str:
    qs = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" if v else k for k, v in query)
    return "http://s3.example.com" + path + ("?" + qs if qs else "")


def _server_side(request: AWSRequest) -> tuple[str, dict[str, str], str, list[tuple[str, str]]]:
    """The request as the gateway sees it: lower-case headers, the raw path and
    the decoded query."""
    parts = urlsplit(request.url)
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = parse_qsl(parts.query, keep_blank_values=True)
    return request.method, headers, parts.path, query


@pytest.mark.parametrize("seed", range(30))
def test_botocore_hmacv1_auth_verifies(seed: int) -> None:
    rng = random.Random(seed)
    method, path, query, headers = _random_request(rng)
    secret = "".join(rng.choice("abcdefXYZ0123456789+/") for _ in range(40))
    creds = Credentials("AKIDBOTO", secret)
    request = AWSRequest(method=method, url=_url(path, query), headers=dict(headers))
    _FixedDate(creds, "Wed, 01 Mar 2023 12:00:00 GMT").add_auth(request)

    sig = sigv2.parse_v2_header(request.headers["Authorization"])
    assert sig.access_key == "AKIDBOTO"
    method, server_headers, raw_path, decoded_query = _server_side(request)
    server_headers.pop("authorization")
    to_sign = sigv2.string_to_sign(
        method, server_headers, sigv2.canonical_resource(raw_path, decoded_query)
    )
    signer = _FixedDate(creds, "Wed, 01 Mar 2023 12:00:00 GMT")
    assert to_sign == signer.canonical_string(method, urlsplit(request.url), request.headers)
    sigv2.verify_v2(sig, secret, to_sign)
    with pytest.raises(S3Error):
        sigv2.verify_v2(sig, secret + "x", to_sign)


@pytest.mark.parametrize("seed", range(20))
def test_botocore_hmacv1_query_auth_verifies(seed: int) -> None:
    rng = random.Random(1000 + seed)
    method, path, query, _ = _random_request(rng)
    secret = "".join(rng.choice("abcdefXYZ0123456789+/") for _ in range(40))
    creds = Credentials("AKIDBOTO", secret)
    expires_at = 1700000000 + rng.randint(0, 10**6)
    request = AWSRequest(method=method, url=_url(path, query), headers={})
    _FixedExpires(creds, expires_at).add_auth(request)

    method, server_headers, raw_path, decoded_query = _server_side(request)
    sig = sigv2.parse_v2_query(decoded_query)
    assert sig.access_key == "AKIDBOTO"
    assert sig.expires == expires_at
    to_sign = sigv2.string_to_sign(
        method,
        server_headers,
        sigv2.canonical_resource(raw_path, decoded_query),
        expires=sig.expires,
    )
    sigv2.verify_v2(sig, secret, to_sign)


def test_boto3_sigv2_presigned_urls_verify() -> None:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://s3.example.com",
        aws_access_key_id="AKIDBOTO3",
        aws_secret_access_key="boto3/secret+key",
        config=Config(signature_version="s3", s3={"addressing_style": "path"}),
    )
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("get_object", {"Bucket": "bucket", "Key": "plain.txt"}, "GET"),
        ("get_object", {"Bucket": "bucket", "Key": "dir/a b+c&d=\u00e9?#%.txt"}, "GET"),
        ("get_object", {"Bucket": "bucket", "Key": "k", "VersionId": "v1/2+3"}, "GET"),
        (
            "get_object",
            {
                "Bucket": "bucket",
                "Key": "k",
                "ResponseContentDisposition": 'attachment; filename="x y"',
            },
            "GET",
        ),
        ("put_object", {"Bucket": "bucket", "Key": "up/load"}, "PUT"),
        (
            "upload_part",
            {"Bucket": "bucket", "Key": "k", "UploadId": "u/+=", "PartNumber": 3},
            "PUT",
        ),
        ("delete_object", {"Bucket": "bucket", "Key": "~tilde"}, "DELETE"),
    ]
    for operation, params, method in cases:
        url = client.generate_presigned_url(operation, Params=params, ExpiresIn=600)
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        sig = sigv2.parse_v2_query(query)
        assert sig.access_key == "AKIDBOTO3"
        to_sign = sigv2.string_to_sign(
            method, {}, sigv2.canonical_resource(parts.path, query), expires=sig.expires
        )
        sigv2.verify_v2(sig, "boto3/secret+key", to_sign)
        with pytest.raises(S3Error):
            sigv2.verify_v2(sig, "boto3/secret+key", to_sign.replace(method, "POST", 1))
