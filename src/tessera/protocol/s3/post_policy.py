"""Browser-based uploads (S3 POST Object): the form's policy document, its
signature and the evaluation of its conditions. Sans-IO.

An HTML form posts ``multipart/form-data`` to the bucket URL. Authenticated
forms carry a base64 JSON *policy* and a signature of that base64 text:

* SigV4: ``x-amz-algorithm`` (``AWS4-HMAC-SHA256``), ``x-amz-credential``,
  ``x-amz-date`` and ``x-amz-signature`` = hex HMAC-SHA256 of the policy with the
  scope's signing key;
* SigV2: ``AWSAccessKeyId`` and ``signature`` = base64 HMAC-SHA1 of the policy
  with the secret key.

A form without any of these is anonymous (it may only write where a public ACL
allows it) and carries no policy.

Contract of the policy (AWS "POST Policy"):

* the top-level keys are exactly ``expiration`` (ISO 8601, UTC, ``Z``) and
  ``conditions`` (a list), case-sensitively; anything else, or bad base64/JSON,
  is ``400 InvalidPolicyDocument``;
* a condition is ``{"field": "value"}`` (exact match), ``["eq", "$field",
  "value"]``, ``["starts-with", "$field", "prefix"]`` or
  ``["content-length-range", min, max]``; operator and field names are
  case-insensitive, values are compared case-sensitively and literally;
* a field the form does not send is compared as the empty string (so
  ``["starts-with", "$f", ""]`` allows any value, or none);
* ``bucket`` conditions are checked against the bucket the form was posted to;
  ``starts-with`` on ``Content-Type`` checks each value of a comma-separated list;
* every form field must be named by some condition, except the signature
  fields, ``policy``, ``file``, ``x-ignore-*`` and ``x-amz-checksum-*`` (a
  checksum only adds a check; the ceph s3-tests send one without a condition);
* failures of an accepted policy are ``403 AccessDenied`` ("Invalid according
  to Policy: ..."), an expired policy too.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

from tessera.protocol.s3 import sigv4
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import parse_amz_date

FIELDS_LIMIT = 20 * 1024
"""Bytes of form fields (names and values) allowed before the file, as in S3."""

SIGNATURE_FIELDS = frozenset(
    {
        "policy",
        "signature",
        "awsaccesskeyid",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-algorithm",
        "x-amz-date",
        "x-amz-security-token",
    }
)
"""Fields that authenticate the form (lower case); ``${filename}`` is not expanded in them."""

_UNCONDITIONED = frozenset({"policy", "signature", "awsaccesskeyid", "x-amz-signature", "file"})
_UNCONDITIONED_PREFIXES = ("x-ignore-", "x-amz-checksum-")
_EXPIRATION = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d{1,9})?Z", re.ASCII)
_SUCCESS_STATUSES = (200, 201, 204)


def invalid_policy(message: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {message}", status=400)


def policy_denied(message: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {message}")


def missing_field(name: str) -> S3Error:
    """S3's answer to a form without a required field (``key``, ``file``, ``policy``...)."""
    return S3Error(
        "InvalidArgument",
        f"Bucket POST must contain a field named '{name}'. "
        "If it is specified, please check the order of the fields.",
        extra={"ArgumentName": name, "ArgumentValue": ""},
    )


# --------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class Condition:
    """``eq`` or ``starts-with`` on one form field (lower-case name, no ``$``)."""

    op: str
    field: str
    value: str

    def matches(self, actual: str) -> bool:
        if self.op == "eq":
            return actual == self.value
        if self.field == "content-type" and "," in actual:
            return all(v.strip().startswith(self.value) for v in actual.split(","))
        return actual.startswith(self.value)

    def __str__(self) -> str:
        return json.dumps([self.op, "$" + self.field, self.value])


@dataclass(frozen=True, slots=True)
class SizeRange:
    """Allowed file sizes in bytes, bounds included (``content-length-range``)."""

    low: int = 0
    high: int | None = None

    def check_partial(self, size: int) -> None:
        """Raise EntityTooLarge once ``size`` bytes exceed the range (while streaming)."""
        if self.high is not None and size > self.high:
            raise S3Error(
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                extra={"ProposedSize": str(size), "MaxSizeAllowed": str(self.high)},
            )

    def check_final(self, size: int) -> None:
        """Raise EntityTooLarge / EntityTooSmall unless the whole file fits."""
        self.check_partial(size)
        if size < self.low:
            raise S3Error(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                extra={"ProposedSize": str(size), "MinSizeAllowed": str(self.low)},
            )


@dataclass(frozen=True, slots=True)
class PostPolicy:
    expiration: float
    """Seconds since the epoch after which the policy is refused."""
    conditions: tuple[Condition, ...] = ()
    size: SizeRange = field(default_factory=SizeRange)

    def check(self, fields: Mapping[str, str], bucket: str, now: float) -> None:
        """Raise AccessDenied unless the form (lower-case field names, ``${filename}``
        already expanded) posted to ``bucket`` satisfies the policy at ``now``.
        The file size is checked separately, while it streams (:attr:`size`)."""
        if now > self.expiration:
            raise policy_denied("Policy expired.")
        for cond in self.conditions:
            actual = bucket if cond.field == "bucket" else fields.get(cond.field, "")
            if not cond.matches(actual):
                raise policy_denied(f"Policy Condition failed: {cond}")
        named = {c.field for c in self.conditions}
        extra = [
            name
            for name in fields
            if name not in named
            and name not in _UNCONDITIONED
            and not name.startswith(_UNCONDITIONED_PREFIXES)
        ]
        if extra:
            raise policy_denied(f"Extra input fields: {', '.join(sorted(extra))}")


def parse_expiration(text: str) -> float:
    """``2007-12-01T12:00:00.000Z`` -> seconds since the epoch. InvalidPolicyDocument."""
    m = _EXPIRATION.fullmatch(text)
    if m is None:
        raise invalid_policy(f"Invalid 'expiration' value: '{text}'")
    try:
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        when = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC)
    except ValueError as e:
        raise invalid_policy(f"Invalid 'expiration' value: '{text}'") from e
    fraction = float(m.group(7)) if m.group(7) else 0.0
    return when.timestamp() + fraction


def _value(raw: Any, what: str) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    raise invalid_policy(f"Invalid value for {what}: {json.dumps(raw)}")


def _bound(raw: Any) -> int:
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        return int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    raise invalid_policy(f"Invalid content-length-range value: {json.dumps(raw)}")


def _list_condition(item: list[Any]) -> Condition | SizeRange:
    if not item or not isinstance(item[0], str):
        raise invalid_policy(f"Invalid condition: {json.dumps(item)}")
    op = item[0].lower()
    if op == "content-length-range":
        if len(item) != 3:
            raise invalid_policy("content-length-range needs a minimum and a maximum")
        low, high = _bound(item[1]), _bound(item[2])
        if low > high:
            raise invalid_policy("content-length-range minimum exceeds its maximum")
        return SizeRange(low, high)
    if op not in ("eq", "starts-with"):
        raise invalid_policy(f"Invalid condition type: {item[0]}")
    if len(item) != 3 or not isinstance(item[1], str) or not item[1].startswith("$"):
        raise invalid_policy(f"Invalid condition: {json.dumps(item)}")
    name = item[1][1:].lower()
    if not name:
        raise invalid_policy(f"Invalid condition: {json.dumps(item)}")
    return Condition(op, name, _value(item[2], item[1]))


def parse_policy(encoded: str) -> PostPolicy:
    """The policy of a form from its base64 text. Raises InvalidPolicyDocument."""
    try:
        raw = base64.b64decode("".join(encoded.split()), validate=True)
        doc = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError too
        raise invalid_policy("Invalid JSON or Base64 encoding.") from e
    if not isinstance(doc, dict):
        raise invalid_policy("The policy must be a JSON object.")
    unknown = sorted(k for k in doc if k not in ("expiration", "conditions"))
    if unknown:
        raise invalid_policy(f"Unexpected field: {unknown[0]}")
    if "expiration" not in doc:
        raise invalid_policy("Policy missing expiration.")
    if not isinstance(doc["expiration"], str):
        raise invalid_policy("Invalid 'expiration' value.")
    expiration = parse_expiration(doc["expiration"])
    if "conditions" not in doc:
        raise invalid_policy("Policy missing conditions.")
    if not isinstance(doc["conditions"], list):
        raise invalid_policy("The 'conditions' value must be a list.")
    conditions: list[Condition] = []
    low = 0
    highs: list[int] = []
    for item in doc["conditions"]:
        if isinstance(item, dict):
            if not item:
                raise invalid_policy("Empty condition.")
            for name, value in item.items():
                conditions.append(Condition("eq", name.lower(), _value(value, name)))
        elif isinstance(item, list):
            cond = _list_condition(item)
            if isinstance(cond, SizeRange):
                low = max(low, cond.low)
                highs += [cond.high] if cond.high is not None else []
            else:
                conditions.append(cond)
        else:
            raise invalid_policy(f"Invalid condition: {json.dumps(item)}")
    return PostPolicy(expiration, tuple(conditions), SizeRange(low, min(highs, default=None)))


# ------------------------------------------------------------------ signature


@dataclass(frozen=True, slots=True)
class FormCredentials:
    """Who signed a form's policy, and how (``credential`` is None for SigV2)."""

    access_key: str
    signature: str
    credential: sigv4.Credential | None = None

    def verify(self, secret: str, policy: str) -> None:
        """Raise SignatureDoesNotMatch unless the signature signs the base64
        ``policy`` text (as sent) with ``secret``."""
        if self.credential is not None:
            c = self.credential
            key = sigv4.signing_key(secret, c.date, c.region, c.service)
            expected = sigv4.sign(key, policy)
            given = self.signature.lower()
        else:
            mac = hmac.new(secret.encode(), policy.encode(), hashlib.sha1)
            expected = base64.b64encode(mac.digest()).decode()
            given = self.signature
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise S3Error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                extra={"AWSAccessKeyId": self.access_key, "StringToSign": policy},
            )


def form_credentials(fields: Mapping[str, str]) -> FormCredentials | None:
    """The signature fields of a form (lower-case names), or None for an anonymous
    form (no policy, no signature fields). InvalidArgument when some are missing."""
    if "x-amz-credential" in fields or "x-amz-signature" in fields or "x-amz-algorithm" in fields:
        return _sigv4_credentials(fields)
    if "awsaccesskeyid" in fields or "signature" in fields:
        for name in ("AWSAccessKeyId", "policy", "signature"):
            if not fields.get(name.lower()):
                raise missing_field(name)
        return FormCredentials(fields["awsaccesskeyid"], fields["signature"])
    if "policy" in fields:
        raise missing_field("AWSAccessKeyId")
    return None


def _sigv4_credentials(fields: Mapping[str, str]) -> FormCredentials:
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "policy", "x-amz-signature"):
        if not fields.get(name):
            raise missing_field(name)
    if fields["x-amz-algorithm"] != sigv4.ALGORITHM:
        raise S3Error(
            "InvalidArgument",
            f"Unsupported x-amz-algorithm {fields['x-amz-algorithm']!r}; use AWS4-HMAC-SHA256.",
            extra={"ArgumentName": "x-amz-algorithm"},
        )
    credential = sigv4.Credential.parse(fields["x-amz-credential"], error="InvalidArgument")
    amz_date = fields["x-amz-date"]
    if parse_amz_date(amz_date) is None or credential.date != amz_date[:8]:
        raise S3Error(
            "InvalidArgument",
            "x-amz-date must be an ISO 8601 basic time (YYYYMMDDTHHMMSSZ) on the credential's date.",
            extra={"ArgumentName": "x-amz-date", "ArgumentValue": amz_date},
        )
    if credential.service != "s3":
        raise S3Error(
            "InvalidArgument",
            f"Invalid credential service {credential.service!r}; this endpoint belongs to s3.",
            extra={"ArgumentName": "x-amz-credential"},
        )
    return FormCredentials(credential.access_key, fields["x-amz-signature"], credential)


# ------------------------------------------------------------------- the form


def expand_filename(fields: Mapping[str, str], filename: str | None) -> dict[str, str]:
    """``fields`` with ``${filename}`` replaced by the file's base name (what
    follows the last ``/`` or ``\\``; empty when the file part has no name).
    Signature fields are left alone."""
    base = re.split(r"[/\\]", filename or "")[-1]
    return {
        name: value if name in SIGNATURE_FIELDS else value.replace("${filename}", base)
        for name, value in fields.items()
    }


def success_status(fields: Mapping[str, str]) -> int:
    """The status of a successful upload: ``success_action_status`` when it is
    200, 201 or 204, else 204 (as S3: an unusable value is ignored)."""
    value = fields.get("success_action_status", "").strip()
    if value.isascii() and value.isdigit() and int(value) in _SUCCESS_STATUSES:
        return int(value)
    return 204


def redirect_location(fields: Mapping[str, str], bucket: str, key: str, etag: str) -> str | None:
    """Where a successful upload redirects the browser (303): the
    ``success_action_redirect`` (or legacy ``redirect``) URL with ``bucket``,
    ``key`` and ``etag`` (quoted) added to its query. None when no usable http(s)
    URL was given."""
    url = fields.get("success_action_redirect") or fields.get("redirect") or ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    added = urlencode([("bucket", bucket), ("key", key), ("etag", f'"{etag}"')], quote_via=quote)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def post_response(location: str, bucket: str, key: str, etag: str) -> bytes:
    """The ``PostResponse`` document of ``success_action_status=201``. S3 sends it
    without a namespace (unlike its other documents), and clients look its
    elements up without one."""
    items = (("Location", location), ("Bucket", bucket), ("Key", key), ("ETag", f'"{etag}"'))
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in items)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>{inner}</PostResponse>'.encode()
