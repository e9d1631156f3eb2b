"""SigV4: the AWS published test suite, the S3 documented examples, parsing and
time checks, and a cross-check against botocore's signers."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

from tessera.protocol.s3 import sigv4
from tessera.protocol.s3.errors import S3Error

# ------------------------------------------------------------ AWS SigV4 test suite

SUITE_AKID = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_DATE = "20150830T123600Z"
SUITE_SCOPE = "20150830/us-east-1/service/aws4_request"
SUITE_HOST = "example.amazonaws.com"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
STS_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAe"
    "MicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZ"
    "ampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xV"
    "qr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2I"
    "CCR/oLxBA=="
)
UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# name, method, decoded path, decoded query pairs (in request order), extra
# headers (as the gateway sees them: repeated headers joined with ","), body,
# signed headers, SHA-256 of the canonical request (None where only the
# signature is published), signature.
SUITE: list[tuple[str, str, str, list[tuple[str, str]], dict[str, str], bytes, str, str | None, str]] = [
    (
        "get-vanilla",
        "GET", "/", [], {}, b"", "host;x-amz-date",
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    (
        "get-vanilla-empty-query-key",
        "GET", "/", [("Param1", "value1")], {}, b"", "host;x-amz-date",
        "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
        "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    ),
    (
        "get-vanilla-query-order-key",
        "GET", "/", [("Param1", "value2"), ("Param1", "Value1")], {}, b"", "host;x-amz-date",
        "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
        "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
    ),
    (
        "get-vanilla-query-order-key-case",
        "GET", "/", [("Param2", "value2"), ("Param1", "value1")], {}, b"", "host;x-amz-date",
        "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    (
        "get-vanilla-query-order-value",
        "GET", "/", [("Param1", "value2"), ("Param1", "value1")], {}, b"", "host;x-amz-date",
        "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
        "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    ),
    (
        "get-vanilla-query-unreserved",
        "GET", "/", [(UNRESERVED, UNRESERVED)], {}, b"", "host;x-amz-date",
        "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ),
    (
        "get-vanilla-utf8-query",
        "GET", "/", [("\u1234", "bar")], {}, b"", "host;x-amz-date",
        None,
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ),
    (
        "get-unreserved",
        "GET", "/" + UNRESERVED, [], {}, b"", "host;x-amz-date",
        "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ),
    (
        "get-utf8",
        "GET", "/\u1234", [], {}, b"", "host;x-amz-date",
        "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    ),
    (
        "get-space",
        "GET", "/example space/", [], {}, b"", "host;x-amz-date",
        "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    ),
    (
        "get-header-key-duplicate",
        "GET", "/", [], {"my-header1": "value2,value2,value1"}, b"",
        "host;my-header1;x-amz-date",
        "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    ),
    (
        "get-header-value-order",
        "GET", "/", [], {"my-header1": "value4,value1,value3,value2"}, b"",
        "host;my-header1;x-amz-date",
        "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    ),
    (
        "get-header-value-trim",
        "GET", "/", [], {"my-header1": " value1", "my-header2": '"a   b   c"'}, b"",
        "host;my-header1;my-header2;x-amz-date",
        "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    (
        "post-vanilla",
        "POST", "/", [], {}, b"", "host;x-amz-date",
        "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ),
    (
        "post-vanilla-query",
        "POST", "/", [("Param1", "value1")], {}, b"", "host;x-amz-date",
        "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
        "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    ),
    (
        "post-vanilla-query-nonunreserved",
        "POST", "/", [("@#$%^", ""), ("+", '/,?><`";:\\|][{}')], {}, b"", "host;x-amz-date",
        None,
        "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e",
    ),
    (
        "post-header-key-sort",
        "POST", "/", [], {"my-header1": "value1"}, b"", "host;my-header1;x-amz-date",
        "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    ),
    (
        "post-header-value-case",
        "POST", "/", [], {"my-header1": "VALUE1"}, b"", "host;my-header1;x-amz-date",
        "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    ),
    (
        # The token is sent but not signed: it must not take part.
        "post-sts-header-after",
        "POST", "/", [], {"x-amz-security-token": STS_TOKEN}, b"", "host;x-amz-date",
        "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ),
    (
        "post-sts-header-before",
        "POST", "/", [], {"x-amz-security-token": STS_TOKEN}, b"",
        "host;x-amz-date;x-amz-security-token",
        "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    ),
    (
        "post-x-www-form-urlencoded",
        "POST", "/", [], {"content-type": "application/x-www-form-urlencoded"},
        b"Param1=value1", "content-type;host;x-amz-date",
        "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    ),
    (
        "post-x-www-form-urlencoded-parameters",
        "POST", "/", [], {"content-type": "application/x-www-form-urlencoded; charset=utf8"},
        b"Param1=value1", "content-type;host;x-amz-date",
        "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
        "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
    ),
]  # fmt: skip

# Canonical requests published with the suite, for a few of the cases.
SUITE_CANONICAL = {
    "get-vanilla": (
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        f"host;x-amz-date\n{EMPTY}"
    ),
    "get-vanilla-query-order-key-case": (
        "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
        f"x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY}"
    ),
    "get-utf8": (
        "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        f"host;x-amz-date\n{EMPTY}"
    ),
    "get-space": (
        "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        f"host;x-amz-date\n{EMPTY}"
    ),
    "get-vanilla-utf8-query": (
        "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        f"host;x-amz-date\n{EMPTY}"
    ),
    "get-header-value-trim": (
        'GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:"a b c"\n'
        f"x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n{EMPTY}"
    ),
    "post-vanilla-query-nonunreserved": (
        "POST\n/\n%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D&%40%23%24%25%5E=\n"
        "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        f"host;x-amz-date\n{EMPTY}"
    ),
    "post-x-www-form-urlencoded": (
        "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
        "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        "content-type;host;x-amz-date\n"
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
    ),
}


def _suite_headers(extra: Mapping[str, str]) -> dict[str, str]:
    return {"host": SUITE_HOST, "x-amz-date": SUITE_DATE, **extra}


@pytest.mark.parametrize(
    ("method", "path", "query", "extra", "body", "signed", "sts_digest", "signature"),
    [pytest.param(*case[1:], id=case[0]) for case in SUITE],
)
def test_aws_suite_signature(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    extra: dict[str, str],
    body: bytes,
    signed: str,
    sts_digest: str | None,
    signature: str,
) -> None:
    headers = _suite_headers(extra)
    payload = hashlib.sha256(body).hexdigest()
    canonical = sigv4.canonical_request(method, path, query, headers, signed.split(";"), payload)
    to_sign = sigv4.string_to_sign(SUITE_DATE, SUITE_SCOPE, canonical)
    if sts_digest is not None:
        assert to_sign == f"AWS4-HMAC-SHA256\n{SUITE_DATE}\n{SUITE_SCOPE}\n{sts_digest}"
    key = sigv4.signing_key(SUITE_SECRET, "20150830", "us-east-1", "service")
    assert sigv4.sign(key, to_sign) == signature

    # The same through the server path: parse the published header, verify.
    authz = (
        f"AWS4-HMAC-SHA256 Credential={SUITE_AKID}/{SUITE_SCOPE}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    auth = sigv4.parse_authorization_header(authz, SUITE_DATE)
    assert auth.credential == sigv4.Credential(SUITE_AKID, "20150830", "us-east-1", "service")
    assert auth.signed_headers == tuple(signed.split(";"))
    assert sigv4.verify(auth, SUITE_SECRET, method, path, query, headers, payload) == key


@pytest.mark.parametrize(("name", "expected"), sorted(SUITE_CANONICAL.items()))
def test_aws_suite_canonical_request(name: str, expected: str) -> None:
    case = next(c for c in SUITE if c[0] == name)
    _, method, path, query, extra, body, signed, _, _ = case
    canonical = sigv4.canonical_request(
        method,
        path,
        query,
        _suite_headers(extra),
        signed.split(";"),
        hashlib.sha256(body).hexdigest(),
    )
    assert canonical == expected


def test_aws_suite_signature_fails_when_anything_signed_changes() -> None:
    headers = _suite_headers({"my-header1": "value1"})
    signed = "host;my-header1;x-amz-date"
    authz = (
        f"AWS4-HMAC-SHA256 Credential={SUITE_AKID}/{SUITE_SCOPE}, SignedHeaders={signed}, "
        "Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"
    )
    auth = sigv4.parse_authorization_header(authz, SUITE_DATE)
    good: dict[str, Any] = {
        "method": "POST",
        "path": "/",
        "query": [],
        "headers": headers,
        "payload_hash": EMPTY,
    }
    sigv4.verify(auth, SUITE_SECRET, **good)
    # An unsigned header may change freely.
    sigv4.verify(auth, SUITE_SECRET, **{**good, "headers": {**headers, "user-agent": "x"}})
    changes: list[dict[str, Any]] = [
        {"method": "PUT"},
        {"path": "/a"},
        {"query": [("a", "")]},
        {"headers": {**headers, "my-header1": "value2"}},
        {"headers": {**headers, "host": "example.amazonaws.com:443"}},
        {"payload_hash": hashlib.sha256(b"x").hexdigest()},
    ]
    for change in changes:
        with pytest.raises(S3Error) as err:
            sigv4.verify(auth, SUITE_SECRET, **{**good, **change})
        assert err.value.code == "SignatureDoesNotMatch"
        assert err.value.status == 403
        assert err.value.extra["AWSAccessKeyId"] == SUITE_AKID
        assert err.value.extra["SignatureProvided"] == auth.signature
        assert err.value.extra["StringToSign"].startswith(f"AWS4-HMAC-SHA256\n{SUITE_DATE}\n")
        assert err.value.extra["CanonicalRequest"].startswith(
            str({**good, **change}["method"]) + "\n"
        )
    with pytest.raises(S3Error) as err:
        sigv4.verify(auth, SUITE_SECRET[:-1] + "X", **good)
    assert err.value.code == "SignatureDoesNotMatch"


def test_signing_key_and_credential_scope() -> None:
    # kSigning for the suite's credentials, from the SigV4 documentation example.
    key = sigv4.signing_key(SUITE_SECRET, "20150830", "us-east-1", "iam")
    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    cred = sigv4.Credential.parse(
        "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request", error="AuthorizationHeaderMalformed"
    )
    assert cred.scope == SUITE_SCOPE
    assert cred.access_key == SUITE_AKID


# ------------------------------------------------------------ S3 documented examples

S3_AKID = "AKIAIOSFODNN7EXAMPLE"
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
S3_DATE = "20130524T000000Z"
S3_NOW = 1369353600.0  # 2013-05-24T00:00:00Z
S3_SCOPE = "20130524/us-east-1/s3/aws4_request"
S3_HOST = "examplebucket.s3.amazonaws.com"


def _s3_verify(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    signed: str,
    signature: str,
) -> tuple[sigv4.Authorization, bytes]:
    authz = (
        f"AWS4-HMAC-SHA256 Credential={S3_AKID}/{S3_SCOPE},"
        f"SignedHeaders={signed},Signature={signature}"
    )
    auth = sigv4.parse_authorization_header(authz, headers["x-amz-date"])
    key = sigv4.verify(
        auth, S3_SECRET, method, path, query, headers, headers["x-amz-content-sha256"]
    )
    return auth, key


def test_s3_example_get_object_with_range() -> None:
    headers = {
        "host": S3_HOST,
        "range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY,
        "x-amz-date": S3_DATE,
    }
    signed = "host;range;x-amz-content-sha256;x-amz-date"
    canonical = sigv4.canonical_request("GET", "/test.txt", [], headers, signed.split(";"), EMPTY)
    assert canonical == (
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        f"x-amz-content-sha256:{EMPTY}\nx-amz-date:20130524T000000Z\n\n"
        f"host;range;x-amz-content-sha256;x-amz-date\n{EMPTY}"
    )
    assert sigv4.string_to_sign(S3_DATE, S3_SCOPE, canonical) == (
        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    )
    signature = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    _, key = _s3_verify("GET", "/test.txt", [], headers, signed, signature)
    assert key == sigv4.signing_key(S3_SECRET, "20130524", "us-east-1", "s3")

    # The client side produces the very same header.
    out = sigv4.sign_headers(
        "GET",
        f"https://{S3_HOST}/test.txt",
        {"Range": "bytes=0-9"},
        access_key=S3_AKID,
        secret=S3_SECRET,
        payload_hash=EMPTY,
        now=S3_NOW,
    )
    assert out["authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={S3_AKID}/{S3_SCOPE}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    assert out["x-amz-date"] == S3_DATE
    assert out["host"] == S3_HOST


def test_s3_example_put_object() -> None:
    body = b"Welcome to Amazon S3."
    payload = hashlib.sha256(body).hexdigest()
    assert payload == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    headers = {
        "date": "Fri, 24 May 2013 00:00:00 GMT",
        "host": S3_HOST,
        "x-amz-content-sha256": payload,
        "x-amz-date": S3_DATE,
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
    }
    signed = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"
    canonical = sigv4.canonical_request(
        "PUT", "/test$file.text", [], headers, signed.split(";"), payload
    )
    assert canonical.split("\n")[1] == "/test%24file.text"
    assert sigv4.string_to_sign(S3_DATE, S3_SCOPE, canonical).endswith(
        "\n9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"
    )
    _s3_verify(
        "PUT",
        "/test$file.text",
        [],
        headers,
        signed,
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    )


def test_s3_example_get_bucket_lifecycle_and_list_objects() -> None:
    headers = {"host": S3_HOST, "x-amz-content-sha256": EMPTY, "x-amz-date": S3_DATE}
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = sigv4.canonical_request(
        "GET", "/", [("lifecycle", "")], headers, signed.split(";"), EMPTY
    )
    assert canonical.split("\n")[:3] == ["GET", "/", "lifecycle="]
    _s3_verify(
        "GET",
        "/",
        [("lifecycle", "")],
        headers,
        signed,
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    )
    query = [("max-keys", "2"), ("prefix", "J")]
    assert sigv4.canonical_query(list(reversed(query))) == "max-keys=2&prefix=J"
    _s3_verify(
        "GET",
        "/",
        query,
        headers,
        signed,
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    )


def test_s3_example_streaming_seed_signatures() -> None:
    common = {
        "content-encoding": "aws-chunked",
        "host": "s3.amazonaws.com",
        "x-amz-date": S3_DATE,
        "x-amz-decoded-content-length": "66560",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
    }
    plain = {
        **common,
        "content-length": "66824",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    }
    auth, key = _s3_verify(
        "PUT",
        "/examplebucket/chunkObject.txt",
        [],
        plain,
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    )
    assert auth.credential.scope == S3_SCOPE
    assert key == sigv4.signing_key(S3_SECRET, "20130524", "us-east-1", "s3")
    # First chunk: 65536 bytes of "a", chained from the seed.
    chunk_hash = hashlib.sha256(b"a" * 65536).hexdigest()
    to_sign = sigv4.chunk_string_to_sign(S3_DATE, S3_SCOPE, auth.signature, chunk_hash)
    assert to_sign == (
        "AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9\n"
        f"{EMPTY}\nbf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a"
    )
    assert (
        sigv4.sign(key, to_sign)
        == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    )

    trailer = {
        **common,
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32c",
    }
    signed = (
        "content-encoding;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer"
    )
    canonical = sigv4.canonical_request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        [],
        trailer,
        signed.split(";"),
        trailer["x-amz-content-sha256"],
    )
    assert sigv4.string_to_sign(S3_DATE, S3_SCOPE, canonical).endswith(
        "\n44d48b8c2f70eae815a0198cc73d7a546a73a93359c070abbaa5e6c7de112559"
    )
    _s3_verify(
        "PUT",
        "/examplebucket/chunkObject.txt",
        [],
        trailer,
        signed,
        "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
    )


PRESIGNED_EXAMPLE = (
    "https://examplebucket.s3.amazonaws.com/test.txt"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


def _verify_presigned(url: str, secret: str, method: str = "GET") -> sigv4.Authorization:
    """What the gateway does with a presigned URL (decoded path and query)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    auth = sigv4.parse_presigned_query(query)
    sign_query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    sigv4.verify(
        auth,
        secret,
        method,
        unquote(parts.path),
        sign_query,
        {"host": parts.netloc},
        sigv4.UNSIGNED_PAYLOAD,
    )
    return auth


def test_s3_example_presigned_url() -> None:
    auth = _verify_presigned(PRESIGNED_EXAMPLE, S3_SECRET)
    assert auth.presigned
    assert auth.expires == 86400
    assert auth.amz_date == S3_DATE
    assert auth.signed_headers == ("host",)
    query = [(k, v) for k, v in parse_qsl(urlsplit(PRESIGNED_EXAMPLE).query)]
    canonical = sigv4.canonical_request(
        "GET",
        "/test.txt",
        [(k, v) for k, v in query if k != "X-Amz-Signature"],
        {"host": S3_HOST},
        ["host"],
        sigv4.UNSIGNED_PAYLOAD,
    )
    assert canonical == (
        "GET\n/test.txt\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
        "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date="
        "20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
        "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD"
    )
    assert sigv4.string_to_sign(S3_DATE, S3_SCOPE, canonical).endswith(
        "\n3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
    )
    # Time: valid for a day from its date, not before (beyond the skew), not after.
    sigv4.check_time(auth, S3_NOW + 86400, skew=900)
    sigv4.check_time(auth, S3_NOW - 900, skew=900)
    with pytest.raises(S3Error) as err:
        sigv4.check_time(auth, S3_NOW + 86401, skew=900)
    assert (err.value.code, err.value.status) == ("AccessDenied", 403)
    assert err.value.extra["X-Amz-Expires"] == "86400"
    assert err.value.extra["Expires"] == "2013-05-25T00:00:00Z"
    assert err.value.extra["ServerTime"] == "2013-05-25T00:00:01Z"
    with pytest.raises(S3Error) as err:
        sigv4.check_time(auth, S3_NOW - 901, skew=900)
    assert err.value.code == "AccessDenied"

    # The client side builds the same URL (its parameters in canonical order).
    url = sigv4.presign_url(
        "GET",
        f"https://{S3_HOST}/test.txt",
        access_key=S3_AKID,
        secret=S3_SECRET,
        expires=86400,
        now=S3_NOW,
    )
    assert sorted(parse_qsl(urlsplit(url).query)) == sorted(
        parse_qsl(urlsplit(PRESIGNED_EXAMPLE).query)
    )
    assert url.startswith(f"https://{S3_HOST}/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&")


def test_presigned_url_tampering_is_refused() -> None:
    for old, new in [
        ("/test.txt", "/test.txT"),
        ("X-Amz-Expires=86400", "X-Amz-Expires=86401"),
        ("examplebucket.s3", "otherbucket.s3"),
        ("aeeed9bb", "aeeed9bc"),
    ]:
        with pytest.raises(S3Error) as err:
            _verify_presigned(PRESIGNED_EXAMPLE.replace(old, new), S3_SECRET)
        assert err.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as err:
        _verify_presigned(PRESIGNED_EXAMPLE, S3_SECRET, method="PUT")
    assert err.value.code == "SignatureDoesNotMatch"


# ------------------------------------------------------------ parsing errors


def _code(fn: Any, *args: Any) -> str:
    with pytest.raises(S3Error) as err:
        fn(*args)
    return err.value.code


def test_parse_authorization_header_forms_and_errors() -> None:
    sig = "A" * 64
    auth = sigv4.parse_authorization_header(
        f"AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request,"
        f"SignedHeaders=Host;X-Amz-Date,Signature={sig}",
        SUITE_DATE,
    )
    assert auth.signature == "a" * 64
    assert auth.signed_headers == ("host", "x-amz-date")
    assert auth.expires is None and not auth.presigned

    parse = sigv4.parse_authorization_header
    good_cred = "Credential=AK/20150830/us-east-1/s3/aws4_request"
    assert _code(parse, "AWS AK:c2ln", SUITE_DATE) == "InvalidRequest"
    assert _code(parse, "Bearer abc", SUITE_DATE) == "AuthorizationHeaderMalformed"
    assert (
        _code(parse, f"AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host", SUITE_DATE)
        == "AuthorizationHeaderMalformed"
    )
    assert (
        _code(
            parse,
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3, SignedHeaders=host, Signature=ab",
            SUITE_DATE,
        )
        == "AuthorizationHeaderMalformed"
    )
    assert (
        _code(
            parse,
            "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=ab",
            SUITE_DATE,
        )
        == "AuthorizationHeaderMalformed"
    )
    full = f"AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host, Signature=ab"
    # The credential's date must be x-amz-date's day; the date must parse.
    assert _code(parse, full, "20150831T000000Z") == "AuthorizationHeaderMalformed"
    assert _code(parse, full, "2015-08-30T12:36:00Z") == "AccessDenied"
    assert _code(parse, full, "20151330T123600Z") == "AccessDenied"
    assert _code(parse, full, "") == "AccessDenied"


def _presigned_query(**overrides: str | None) -> list[tuple[str, str]]:
    q: dict[str, str | None] = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{S3_AKID}/{S3_SCOPE}",
        "X-Amz-Date": S3_DATE,
        "X-Amz-Expires": "3600",
        "X-Amz-SignedHeaders": "host",
        "X-Amz-Signature": "AB" * 32,
    }
    q.update(overrides)
    return [(k, v) for k, v in q.items() if v is not None]


def test_parse_presigned_query() -> None:
    auth = sigv4.parse_presigned_query(_presigned_query())
    assert auth.expires == 3600
    assert auth.signature == "ab" * 32
    assert auth.credential.access_key == S3_AKID
    assert sigv4.parse_presigned_query(_presigned_query(**{"X-Amz-Expires": "604800"})).expires == (
        604800
    )
    assert sigv4.parse_presigned_query(_presigned_query(**{"X-Amz-Expires": "0"})).expires == 0

    def code(**overrides: str | None) -> str:
        return _code(sigv4.parse_presigned_query, _presigned_query(**overrides))

    assert code(**{"X-Amz-Algorithm": "AWS4-HMAC-SHA1"}) == "AuthorizationQueryParametersError"
    assert code(**{"X-Amz-Algorithm": None}) == "AuthorizationQueryParametersError"
    for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"):
        assert code(**{name: None}) == "AuthorizationQueryParametersError", name
    assert code(**{"X-Amz-Signature": None}) == "AuthorizationQueryParametersError"
    assert code(**{"X-Amz-Credential": "AK/20130524/us-east-1"}) == (
        "AuthorizationQueryParametersError"
    )
    assert code(**{"X-Amz-Date": "20130524"}) == "AuthorizationQueryParametersError"
    # Expires: a number of seconds, at most a week; "²" passes str.isdigit()
    # but not int(), "٣" is a digit but not ASCII.
    for bad in ("abc", "", "1.5", "²", "٣", "--5", "+5", " 5"):
        assert code(**{"X-Amz-Expires": bad}) == "AuthorizationQueryParametersError", bad
    assert code(**{"X-Amz-Expires": "-1"}) == "AccessDenied"
    assert code(**{"X-Amz-Expires": "604801"}) == "AccessDenied"


def test_check_time_header_auth() -> None:
    auth = sigv4.parse_authorization_header(
        f"AWS4-HMAC-SHA256 Credential=AK/{S3_SCOPE}, SignedHeaders=host, Signature=ab", S3_DATE
    )
    sigv4.check_time(auth, S3_NOW, skew=900)
    sigv4.check_time(auth, S3_NOW + 900, skew=900)
    sigv4.check_time(auth, S3_NOW - 900, skew=900)
    for now in (S3_NOW + 901, S3_NOW - 901):
        with pytest.raises(S3Error) as err:
            sigv4.check_time(auth, now, skew=900)
        assert (err.value.code, err.value.status) == ("RequestTimeTooSkewed", 403)
        assert err.value.extra["RequestTime"] == S3_DATE
        assert err.value.extra["MaxAllowedSkewMilliseconds"] == "900000"


# ------------------------------------------------------------ client side round trips


def test_sign_headers_round_trip_with_awkward_key_and_query() -> None:
    path = "/bucket/dir/ሴ a+b%c~d!*'()"
    url = "http://127.0.0.1:9000" + quote(path, safe="/~") + "?prefix=a%20b&uploads="
    body = b"payload"
    out = sigv4.sign_headers(
        "PUT",
        url,
        {"Content-Type": "text/plain", "X-Amz-Meta-A": "x  y"},
        access_key="AK",
        secret="SK",
        payload_hash=hashlib.sha256(body).hexdigest(),
        now=S3_NOW,
    )
    assert out["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    auth = sigv4.parse_authorization_header(out["authorization"], out["x-amz-date"])
    assert auth.signed_headers == (
        "content-type",
        "host",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-meta-a",
    )
    query = [("prefix", "a b"), ("uploads", "")]
    sigv4.verify(auth, "SK", "PUT", path, query, out, out["x-amz-content-sha256"])
    with pytest.raises(S3Error):
        sigv4.verify(auth, "SK", "PUT", path, [("prefix", "a+b")], out, out["x-amz-content-sha256"])


def test_presign_url_round_trip() -> None:
    url = sigv4.presign_url(
        "PUT",
        "http://localhost:9000/bucket/" + quote("a b/ሴ+%", safe="/~") + "?versionId=v%2B1",
        access_key="AK",
        secret="SK",
        expires=60,
        now=S3_NOW,
    )
    auth = _verify_presigned(url, "SK", method="PUT")
    assert auth.expires == 60
    assert dict(parse_qsl(urlsplit(url).query))["versionId"] == "v+1"


# ------------------------------------------------------------ botocore cross-check

KEY_ALPHABET = (
    "abcXYZ019-_.~ /%+!*'()&=?#:;,@$[]{}<>|\\^`\"\t\u00e9\u00df\u4e2d\u6587\u1234\U0001f600\u00a0"
)


def _random_text(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(KEY_ALPHABET) for _ in range(rng.randint(low, high)))


def _random_key(rng: random.Random) -> str:
    key = _random_text(rng, 1, 30)
    if rng.random() < 0.2:
        key = "a/../" + key + "/./b//c"
    return key


def _random_query(rng: random.Random) -> list[tuple[str, str]]:
    pairs = [(_random_text(rng, 1, 8), _random_text(rng, 0, 12)) for _ in range(rng.randint(0, 4))]
    if pairs and rng.random() < 0.3:
        pairs.append((pairs[0][0], _random_text(rng, 0, 5)))  # a repeated name
    return pairs


def _server_verify(
    method: str, url: str, headers: Mapping[str, Any], secret: str, *, presigned: bool = False
) -> bytes:
    """Verify a botocore-signed request the way the gateway sees it: decoded
    path and query, lower-case headers with the Host the client would send."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    seen = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in headers.items()}
    seen.setdefault("host", parts.netloc)
    if presigned:
        auth = sigv4.parse_presigned_query(query)
        query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
        payload_hash = seen.get("x-amz-content-sha256", sigv4.UNSIGNED_PAYLOAD)
    else:
        auth = sigv4.parse_authorization_header(seen["authorization"], seen["x-amz-date"])
        payload_hash = seen.get("x-amz-content-sha256") or hashlib.sha256(b"").hexdigest()
    return sigv4.verify(auth, secret, method, unquote(parts.path), query, seen, payload_hash)


def _random_secret(rng: random.Random) -> str:
    return "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+")
        for _ in range(40)
    )


@pytest.mark.parametrize("seed", range(40))
def test_botocore_s3_sigv4_auth_verifies(seed: int) -> None:
    rng = random.Random(seed)
    secret = _random_secret(rng)
    creds = Credentials("AKIA" + str(seed), secret)
    region = rng.choice(["us-east-1", "eu-west-3", "ap-southeast-2"])
    method = rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
    key = _random_key(rng)
    query = _random_query(rng)
    headers: dict[str, str] = {}
    if rng.random() < 0.5:
        headers["Content-Type"] = rng.choice(["text/plain", "application/octet-stream"])
    if rng.random() < 0.5:
        headers["x-amz-meta-note"] = rng.choice(["a  b", " lead", "x,y", "caf\u00e9"])
    body = rng.randbytes(rng.randint(0, 64)) if method in ("PUT", "POST") else b""
    scheme = rng.choice(["http", "https"])
    base = f"{scheme}://127.0.0.1:9000/bucket/{quote(key, safe='/~')}"
    if rng.random() < 0.5:
        request = AWSRequest(method=method, url=base, headers=headers, data=body, params=query)
    else:
        url = base + ("?" + percent_encode_sequence(query) if query else "")
        request = AWSRequest(method=method, url=url, headers=headers, data=body)
    S3SigV4Auth(creds, "s3", region).add_auth(request)
    prepared = request.prepare()
    signing_key = _server_verify(prepared.method, prepared.url, prepared.headers, secret)
    today = dict(prepared.headers)["X-Amz-Date"][:8]
    assert signing_key == sigv4.signing_key(secret, today, region, "s3")
    # And the verification is not vacuous: another secret fails.
    with pytest.raises(S3Error) as err:
        _server_verify(prepared.method, prepared.url, prepared.headers, secret + "x")
    assert err.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("seed", range(20))
def test_botocore_generic_sigv4_auth_verifies(seed: int) -> None:
    """Non-S3 SigV4 (service "service"): paths of unreserved characters only,
    since other services encode the path twice and S3 does not."""
    rng = random.Random(1000 + seed)
    secret = _random_secret(rng)
    creds = Credentials("AKID", secret)
    path = "/" + "/".join(
        "".join(rng.choice(UNRESERVED) for _ in range(rng.randint(1, 8))).strip(".") or "x"
        for _ in range(rng.randint(1, 3))
    )
    query = _random_query(rng)
    headers = {"My-Header": "  spaced   out  value ", "Content-Type": "application/json"}
    request = AWSRequest(
        method="POST",
        url="https://example.amazonaws.com" + path,
        headers=headers,
        data=b"{}",
        params=query,
    )
    SigV4Auth(creds, "service", "us-east-1").add_auth(request)
    prepared = request.prepare()
    seen = {
        k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in prepared.headers.items()
    }
    seen["host"] = "example.amazonaws.com"
    auth = sigv4.parse_authorization_header(seen["authorization"], seen["x-amz-date"])
    assert auth.credential.service == "service"
    parts = urlsplit(prepared.url)
    sigv4.verify(
        auth,
        secret,
        "POST",
        unquote(parts.path),
        parse_qsl(parts.query, keep_blank_values=True),
        seen,
        hashlib.sha256(b"{}").hexdigest(),
    )


@pytest.mark.parametrize("seed", range(30))
def test_botocore_presigned_urls_verify(seed: int) -> None:
    rng = random.Random(2000 + seed)
    secret = _random_secret(rng)
    creds = Credentials("AKIA" + str(seed), secret)
    key = _random_key(rng)
    query = _random_query(rng)
    # Query auth keeps one value per name.
    query = list(dict(query).items())
    url = f"http://127.0.0.1:9000/bucket/{quote(key, safe='/~')}"
    if query:
        url += "?" + percent_encode_sequence(query)
    expires = rng.choice([1, 60, 3600, 604800])
    request = AWSRequest(method="GET", url=url)
    S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=expires).add_auth(request)
    prepared = request.prepare()
    _server_verify("GET", prepared.url, {}, secret, presigned=True)
    auth = sigv4.parse_presigned_query(parse_qsl(urlsplit(prepared.url).query))
    assert auth.expires == expires
    with pytest.raises(S3Error):
        _server_verify("PUT", prepared.url, {}, secret, presigned=True)


class _Captured(Exception):
    pass


def _capture(client: Any, call: Any) -> Any:
    captured: list[Any] = []

    def handler(request: Any, **_: Any) -> None:
        captured.append(request)
        raise _Captured

    client.meta.events.register("before-send.s3.*", handler)
    with pytest.raises(_Captured):
        call()
    return captured[0]


@pytest.mark.parametrize("seed", range(10))
def test_boto3_client_requests_verify(seed: int) -> None:
    """Requests exactly as a boto3 client sends them (serialised keys, checksum
    headers, aws-chunked bodies over https), captured before they leave."""
    rng = random.Random(3000 + seed)
    secret = _random_secret(rng)
    endpoint = rng.choice(["http://127.0.0.1:9000", "https://127.0.0.1:9443"])
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="AKIDBOTO",
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
        ),
    )
    key = _random_key(rng)
    body = rng.randbytes(rng.randint(0, 300))
    metadata = {"note": rng.choice(["a, b", "x  y", "plain"])}
    sent = _capture(
        client,
        lambda: client.put_object(Bucket="bucket", Key=key, Body=body, Metadata=metadata),
    )
    _server_verify(sent.method, sent.url, sent.headers, secret)
    assert unquote(urlsplit(sent.url).path) == "/bucket/" + key

    presigned = client.generate_presigned_url(
        "get_object",
        Params={"Bucket": "bucket", "Key": key, "ResponseContentType": "text/plain; a=b"},
        ExpiresIn=900,
    )
    _server_verify("GET", presigned, {}, secret, presigned=True)


def test_parsed_scope_is_shared_but_each_signature_is_its_own() -> None:
    head = f"AWS4-HMAC-SHA256 Credential={S3_AKID}/{S3_SCOPE}, SignedHeaders=host;x-amz-date"
    first = sigv4.parse_authorization_header(f"{head}, Signature=AB01", S3_DATE)
    second = sigv4.parse_authorization_header(f"{head}, Signature=cd02", S3_DATE)
    assert (first.signature, second.signature) == ("ab01", "cd02")
    assert first.credential == second.credential
    assert first.signed_headers == second.signed_headers == ("host", "x-amz-date")
    # Signature first: the same result through the full parse.
    reordered = sigv4.parse_authorization_header(
        f"AWS4-HMAC-SHA256 Signature=ab01, Credential={S3_AKID}/{S3_SCOPE}, "
        "SignedHeaders=host;x-amz-date",
        S3_DATE,
    )
    assert reordered == first


def test_a_cached_scope_still_checks_the_date() -> None:
    head = f"AWS4-HMAC-SHA256 Credential={S3_AKID}/{S3_SCOPE}, SignedHeaders=host"
    sigv4.parse_authorization_header(f"{head}, Signature=00", S3_DATE)
    with pytest.raises(S3Error) as e:
        sigv4.parse_authorization_header(f"{head}, Signature=00", "20200101T000000Z")
    assert e.value.code == "AuthorizationHeaderMalformed"
    with pytest.raises(S3Error) as e:
        sigv4.parse_authorization_header(f"{head}, Signature=00", "garbage")
    assert e.value.code == "AccessDenied"
