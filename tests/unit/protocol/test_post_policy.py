"""POST Object policies: parsing, condition evaluation, form signatures (checked
against botocore's ``generate_presigned_post``), and the form helpers."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
from botocore.config import Config

from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.post_policy import (
    Condition,
    FormCredentials,
    PostPolicy,
    SizeRange,
    expand_filename,
    form_credentials,
    parse_expiration,
    parse_policy,
    post_response,
    redirect_location,
    success_status,
)

FUTURE = "2099-01-01T00:00:00.000Z"
NOW = 1_800_000_000.0
SECRET = "tessera-unit-secret"


def encode(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def policy(*conditions: Any, expiration: str = FUTURE) -> PostPolicy:
    return parse_policy(encode({"expiration": expiration, "conditions": list(conditions)}))


def code(exc: pytest.ExceptionInfo[S3Error]) -> tuple[str, int]:
    return exc.value.code, exc.value.status


# ------------------------------------------------------------------ parsing


def test_parse_all_condition_forms() -> None:
    p = policy(
        {"bucket": "b"},
        ["StArTs-WiTh", "$KeY", "user/"],
        ["eq", "$Content-Type", "text/plain"],
        {"x-amz-meta-n": 5},
        ["content-length-range", 10, "100"],
    )
    assert p.expiration == parse_expiration(FUTURE)
    assert p.conditions == (
        Condition("eq", "bucket", "b"),
        Condition("starts-with", "key", "user/"),
        Condition("eq", "content-type", "text/plain"),
        Condition("eq", "x-amz-meta-n", "5"),
    )
    assert p.size == SizeRange(10, 100)


def test_several_ranges_intersect() -> None:
    p = policy(["content-length-range", 0, 50], ["content-length-range", 5, 80])
    assert p.size == SizeRange(5, 50)
    assert policy({"key": "k"}).size == SizeRange(0, None)


@pytest.mark.parametrize(
    "doc",
    [
        {"conditions": []},  # no expiration
        {"expiration": FUTURE},  # no conditions
        {"EXPIRATION": FUTURE, "conditions": []},  # keys are case-sensitive
        {"expiration": FUTURE, "CONDITIONS": []},
        {"expiration": FUTURE, "conditions": [], "extra": 1},
        {"expiration": "2099-01-01 00:00:00+00:00", "conditions": []},  # str(datetime)
        {"expiration": "2099-13-01T00:00:00Z", "conditions": []},
        {"expiration": 4102444800, "conditions": []},
        {"expiration": FUTURE, "conditions": {}},
        {"expiration": FUTURE, "conditions": [{}]},
        {"expiration": FUTURE, "conditions": [7]},
        {"expiration": FUTURE, "conditions": [["content-length-range", 0]]},
        {"expiration": FUTURE, "conditions": [["content-length-range", -1, 0]]},
        {"expiration": FUTURE, "conditions": [["content-length-range", 9, 2]]},
        {"expiration": FUTURE, "conditions": [["content-length-range", True, 2]]},
        {"expiration": FUTURE, "conditions": [["in", "$key", ["a"]]]},
        {"expiration": FUTURE, "conditions": [["eq", "key", "a"]]},  # no "$"
        {"expiration": FUTURE, "conditions": [["eq", "$key"]]},
        {"expiration": FUTURE, "conditions": [["eq", "$key", ["a"]]]},
        {"expiration": FUTURE, "conditions": [{"key": None}]},
        [FUTURE],
    ],
)
def test_malformed_policies_are_invalid_policy_document(doc: Any) -> None:
    with pytest.raises(S3Error) as e:
        parse_policy(encode(doc))
    assert code(e) == ("InvalidPolicyDocument", 400)


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"{nope").decode(), ""])
def test_bad_encoding_is_invalid_policy_document(text: str) -> None:
    with pytest.raises(S3Error) as e:
        parse_policy(text)
    assert code(e) == ("InvalidPolicyDocument", 400)


def test_expiration_formats() -> None:
    assert parse_expiration("2015-12-30T12:00:00.000Z") == 1451476800.0
    assert parse_expiration("2015-12-30T12:00:00Z") == 1451476800.0
    assert parse_expiration("2015-12-30T12:00:00.5Z") == 1451476800.5


# ---------------------------------------------------------------- evaluation


def test_conditions_hold() -> None:
    p = policy(
        {"bucket": "b"},
        ["starts-with", "$key", "user/"],
        {"acl": "private"},
        ["starts-with", "$x-amz-meta-tag", ""],
    )
    fields = {"key": "user/a", "acl": "private", "x-amz-meta-tag": "anything"}
    p.check(fields, "b", NOW)
    p.check({"key": "user/a", "acl": "private"}, "b", NOW)  # starts-with "" allows absence


@pytest.mark.parametrize(
    ("fields", "bucket", "reason"),
    [
        ({"key": "other/a", "acl": "private"}, "b", "Condition failed"),
        ({"key": "user/a", "acl": "PRIVATE"}, "b", "Condition failed"),  # values: case-sensitive
        ({"key": "user/a"}, "b", "Condition failed"),  # a missing field is ""
        ({"key": "user/a", "acl": "private"}, "other", "Condition failed"),  # the real bucket
        ({"key": "user/a", "acl": "private", "x-amz-meta-x": "1"}, "b", "Extra input fields"),
        ({"key": "user/a", "acl": "private", "x-amz-date": "1"}, "b", "Extra input fields"),
    ],
)
def test_conditions_fail_with_access_denied(
    fields: dict[str, str], bucket: str, reason: str
) -> None:
    p = policy({"bucket": "b"}, ["starts-with", "$key", "user/"], {"acl": "private"})
    with pytest.raises(S3Error) as e:
        p.check(fields, bucket, NOW)
    assert code(e) == ("AccessDenied", 403)
    assert reason in e.value.message


def test_bucket_field_needs_a_bucket_condition() -> None:
    policy({"bucket": "b"}, {"key": "k"}).check({"key": "k", "bucket": "b"}, "b", NOW)
    with pytest.raises(S3Error) as e:
        policy({"key": "k"}).check({"key": "k", "bucket": "b"}, "b", NOW)
    assert "Extra input fields: bucket" in e.value.message


def test_expired_policy_is_access_denied() -> None:
    p = policy({"key": "k"}, expiration="2020-01-01T00:00:00Z")
    with pytest.raises(S3Error) as e:
        p.check({"key": "k"}, "b", NOW)
    assert code(e) == ("AccessDenied", 403)
    assert "expired" in e.value.message


def test_unconditioned_fields() -> None:
    p = policy({"key": "k"})
    p.check(
        {
            "key": "k",
            "policy": "x",
            "signature": "x",
            "awsaccesskeyid": "x",
            "x-amz-signature": "x",
            "x-ignore-me": "x",
            "x-amz-checksum-sha256": "x",
        },
        "b",
        NOW,
    )
    with pytest.raises(S3Error):  # the SigV4 scope fields must be in the policy
        p.check({"key": "k", "x-amz-credential": "x"}, "b", NOW)


def test_dollar_is_literal() -> None:
    p = policy(["starts-with", "$key", "\\$foo"])
    p.check({"key": "\\$foo.txt"}, "b", NOW)
    with pytest.raises(S3Error):
        p.check({"key": "$foo.txt"}, "b", NOW)


def test_content_type_list_checks_every_value() -> None:
    p = policy(["starts-with", "$Content-Type", "image/"])
    p.check({"content-type": "image/png, image/jpeg"}, "b", NOW)
    with pytest.raises(S3Error):
        p.check({"content-type": "image/png, text/html"}, "b", NOW)
    q = policy(["starts-with", "$x-amz-meta-a", "image/"])
    q.check({"x-amz-meta-a": "image/png, text/html"}, "b", NOW)  # only Content-Type is a list


def test_size_range() -> None:
    r = SizeRange(2, 5)
    r.check_partial(5)
    r.check_final(2)
    with pytest.raises(S3Error) as e:
        r.check_partial(6)
    assert code(e) == ("EntityTooLarge", 400)
    assert e.value.extra["MaxSizeAllowed"] == "5"
    with pytest.raises(S3Error) as e:
        r.check_final(1)
    assert code(e) == ("EntityTooSmall", 400)
    SizeRange().check_final(10**12)


# ---------------------------------------------------------------- signatures


def _presigned_post(signature_version: str, **kwargs: Any) -> dict[str, str]:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="AKUNIT",
        aws_secret_access_key=SECRET,
        config=Config(signature_version=signature_version),
    )
    post = client.generate_presigned_post("bkt", "up/${filename}", ExpiresIn=600, **kwargs)
    return {k.lower(): v for k, v in post["fields"].items()}


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_botocore_presigned_post_verifies(version: str) -> None:
    fields = _presigned_post(
        version, Fields={"acl": "public-read"}, Conditions=[{"acl": "public-read"}]
    )
    creds = form_credentials(fields)
    assert creds is not None and creds.access_key == "AKUNIT"
    assert (creds.credential is not None) == (version == "s3v4")
    creds.verify(SECRET, fields["policy"])
    p = parse_policy(fields["policy"])
    form = expand_filename(fields, "C:\\Users\\me\\photo.jpg")
    assert form["key"] == "up/photo.jpg"
    p.check(form, "bkt", time.time())
    with pytest.raises(S3Error) as e:
        p.check(form, "other-bucket", time.time())
    assert code(e) == ("AccessDenied", 403)


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_tampered_policy_or_wrong_secret_fails(version: str) -> None:
    fields = _presigned_post(version)
    creds = form_credentials(fields)
    assert creds is not None
    doc = json.loads(base64.b64decode(fields["policy"]))
    doc["conditions"].append(["content-length-range", 0, 10**12])
    for secret, text in ((SECRET, encode(doc)), ("wrong", fields["policy"])):
        with pytest.raises(S3Error) as e:
            creds.verify(secret, text)
        assert code(e) == ("SignatureDoesNotMatch", 403)


def test_sigv4_signature_is_case_insensitive_hex() -> None:
    fields = _presigned_post("s3v4")
    fields["x-amz-signature"] = fields["x-amz-signature"].upper()
    creds = form_credentials(fields)
    assert creds is not None
    creds.verify(SECRET, fields["policy"])


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"awsaccesskeyid": "A", "policy": "p"}, "signature"),
        ({"awsaccesskeyid": "A", "signature": "s"}, "policy"),
        ({"signature": "s", "policy": "p"}, "AWSAccessKeyId"),
        ({"policy": "p"}, "AWSAccessKeyId"),
        ({"x-amz-credential": "A/20260101/us-east-1/s3/aws4_request"}, "x-amz-algorithm"),
    ],
)
def test_incomplete_signature_fields(fields: dict[str, str], missing: str) -> None:
    with pytest.raises(S3Error) as e:
        form_credentials(fields)
    assert code(e) == ("InvalidArgument", 400)
    assert e.value.extra["ArgumentName"] == missing


@pytest.mark.parametrize(
    "change",
    [
        {"x-amz-algorithm": "AWS4-HMAC-SHA1"},
        {"x-amz-credential": "AKUNIT/20260101/us-east-1"},
        {"x-amz-date": "yesterday"},
        {"x-amz-date": "20000101T000000Z"},  # not the credential's date
        {"x-amz-credential": "AKUNIT/20260101/us-east-1/ec2/aws4_request"},
    ],
)
def test_bad_sigv4_fields(change: dict[str, str]) -> None:
    fields = _presigned_post("s3v4")
    fields.update(change)
    if "x-amz-credential" in change and "ec2" in change["x-amz-credential"]:
        fields["x-amz-date"] = "20260101T000000Z"
    with pytest.raises(S3Error) as e:
        form_credentials(fields)
    assert code(e) == ("InvalidArgument", 400)


def test_anonymous_form_has_no_credentials() -> None:
    assert form_credentials({"key": "k", "acl": "public-read"}) is None


def test_v2_credentials() -> None:
    creds = form_credentials({"awsaccesskeyid": "A", "signature": "s", "policy": "p"})
    assert creds == FormCredentials("A", "s")


# -------------------------------------------------------------------- helpers


def test_expand_filename_leaves_signature_fields() -> None:
    fields = {"key": "a/${filename}", "policy": "${filename}", "x-amz-meta-n": "${filename}"}
    assert expand_filename(fields, "dir/x.txt") == {
        "key": "a/x.txt",
        "policy": "${filename}",
        "x-amz-meta-n": "x.txt",
    }
    assert expand_filename({"key": "${filename}"}, None) == {"key": ""}


@pytest.mark.parametrize(
    ("value", "status"), [("200", 200), ("201", 201), ("204", 204), ("404", 204), ("x", 204)]
)
def test_success_status(value: str, status: int) -> None:
    assert success_status({"success_action_status": value}) == status
    assert success_status({}) == 204


def test_redirect_location() -> None:
    fields = {"success_action_redirect": "https://example.com/done"}
    assert (
        redirect_location(fields, "b", "a b/c", "abc")
        == "https://example.com/done?bucket=b&key=a%20b%2Fc&etag=%22abc%22"
    )
    legacy = {"redirect": "http://example.com/done?x=1#top"}
    assert (
        redirect_location(legacy, "b", "k", "e")
        == "http://example.com/done?x=1&bucket=b&key=k&etag=%22e%22#top"
    )
    for bad in ("", "javascript:alert(1)", "/relative", "http://"):
        assert redirect_location({"success_action_redirect": bad}, "b", "k", "e") is None


def test_post_response_has_no_namespace() -> None:
    root = ElementTree.fromstring(post_response("http://h/b/k%26", "b", "k&", "e"))
    assert root.tag == "PostResponse"
    assert root.findtext("Key") == "k&"
    assert root.findtext("ETag") == '"e"'
    assert root.findtext("Location") == "http://h/b/k%26"
