"""Pre-authenticated requests against a real ``tessera serve``: links used with
plain curl and urllib (no signature), expiry, revocation by the owner and by
proof of possession, every scope escape we could think of, and the SDK's
encrypted :class:`~tessera.sdk.par.PAR` end to end."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tessera.sdk.errors import BadRequest, Forbidden
from tessera.sdk.http import Endpoint, SignedClient
from tessera.sdk.par import (
    PAR,
    BucketReader,
    BucketWriter,
    ObjectReader,
    ObjectWriter,
    PARError,
    PARPermissionsError,
    PARReadError,
    PARTimeoutError,
    PARWriteError,
    create_par,
)

CURL_TIMEOUT = 60.0
EXPIRY_WAIT = 15.0
"""Seconds a 1-second PAR may take to be refused (bounded loop, not a timing assertion)."""


@pytest.fixture(scope="module")
def srv(http_server: harness.Server) -> harness.Server:
    return http_server


def _client(server: harness.Server, account: dict[str, str] | None = None) -> SignedClient:
    if account is None:
        return SignedClient(
            Endpoint(server.endpoint, server.access_key, server.secret_key, verify=server.verify)
        )
    return SignedClient(
        Endpoint(server.endpoint, account["access_key"], account["secret_key"], verify=False)
    )


@pytest.fixture(scope="module")
def root(srv: harness.Server) -> Iterator[SignedClient]:
    client = _client(srv)
    yield client
    client.close()


@pytest.fixture(scope="module")
def alt(srv: harness.Server) -> Iterator[SignedClient]:
    client = _client(srv, harness.ALT_ACCOUNT)
    yield client
    client.close()


@pytest.fixture(scope="module")
def s3(srv: harness.Server) -> Any:
    return harness.boto3_client(srv)


@pytest.fixture
def bkt(s3: Any) -> Iterator[str]:
    name = f"par-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name
    harness.empty_and_delete_bucket(s3, name)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def curl(
    method: str, url: str, *args: str, data: bytes | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, lower-case headers) of one unsigned curl request; the URL
    is sent exactly as written (``--path-as-is``: no ``..`` folding)."""
    cmd = ["curl", "-s", "--path-as-is", "-X", method, "-D", "/dev/stderr", *args]
    if method == "HEAD":
        cmd[cmd.index("-X") : cmd.index("-X") + 2] = ["-I"]
    if data is not None:
        cmd += ["--data-binary", "@-"]
    cmd += ["-w", "\n%{http_code}", url]
    proc = subprocess.run(cmd, input=data, capture_output=True, timeout=CURL_TIMEOUT, check=True)
    body, _, status = proc.stdout.rpartition(b"\n")
    headers = {}
    for line in proc.stderr.decode("latin-1").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(status), body, headers


def error_of(body: bytes) -> tuple[str, str]:
    doc = json.loads(body)["error"]
    return doc["code"], doc["message"]


def make(client: SignedClient, bucket: str, key: str | None = None, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = client.ext("POST", "pars", json_body={"bucket": bucket, "key": key, **kw})
    return doc


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# -- using links -------------------------------------------------------------------------------
def test_object_par_read_write_with_curl(
    srv: harness.Server, root: SignedClient, s3: Any, bkt: str
) -> None:
    s3.put_object(Bucket=bkt, Key="dir/obj", Body=b"0123456789")
    doc = make(root, bkt, "dir/obj", readable=True, writeable=True, ttl=600)
    url = doc["url"]
    assert url == f"{srv.endpoint}/_tessera/p/{doc['id']}/{url.rsplit('/', 1)[1]}"
    assert (doc["bucket"], doc["key"], doc["listable"]) == (bkt, "dir/obj", False)
    assert curl("GET", url)[:2] == (200, b"0123456789")
    status, body, headers = curl("GET", url, "-H", "Range: bytes=2-4")
    assert (status, body, headers["content-range"]) == (206, b"234", "bytes 2-4/10")
    status, _, headers = curl("HEAD", url)
    assert (status, headers["content-length"]) == (200, "10")
    new = b"new content " * 1000
    status, _, headers = curl("PUT", url, "-H", f"Content-MD5: {md5_b64(new)}", data=new)
    assert status == 200 and headers["etag"] == f'"{hashlib.md5(new).hexdigest()}"'
    assert s3.get_object(Bucket=bkt, Key="dir/obj")["Body"].read() == new
    status, body, _ = curl("PUT", url, "-H", f"Content-MD5: {md5_b64(b'other')}", data=b"bad")
    assert status == 400 and error_of(body)[0] == "BadDigest"
    assert s3.get_object(Bucket=bkt, Key="dir/obj")["Body"].read() == new  # unchanged
    with urllib.request.urlopen(url, timeout=30) as resp:  # plain urllib, no signature
        assert resp.read() == new


def test_bucket_par_keys_and_listing(root: SignedClient, s3: Any, bkt: str) -> None:
    doc = make(root, bkt, readable=True, writeable=True, listable=True, ttl=600)
    base = doc["url"]
    for i in range(5):
        req = urllib.request.Request(f"{base}/logs/{i}.txt", data=b"line %d" % i, method="PUT")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
    s3.put_object(Bucket=bkt, Key="other", Body=b"x")
    s3.put_object(Bucket=bkt, Key="sp ace/é", Body=b"unicode")
    assert curl("GET", f"{base}/logs/3.txt")[:2] == (200, b"line 3")
    assert curl("GET", f"{base}/sp%20ace/%C3%A9")[:2] == (200, b"unicode")
    status, body, _ = curl("GET", f"{base}/")
    assert status == 200
    listing = json.loads(body)
    assert [o["key"] for o in listing["objects"]] == [
        *(f"logs/{i}.txt" for i in range(5)),
        "other",
        "sp ace/é",
    ]
    assert listing["objects"][0]["size"] == 6 and not listing["truncated"]
    status, body, _ = curl("GET", f"{base}?prefix=logs/&limit=2&marker=logs/0.txt")
    page = json.loads(body)
    assert [o["key"] for o in page["objects"]] == ["logs/1.txt", "logs/2.txt"]
    assert page["truncated"] and page["next_marker"] == "logs/2.txt"
    assert curl("GET", f"{base}/missing")[0] == 404
    big = os.urandom(3 << 20)  # curl sends Expect: 100-continue; stored in blocks, not inline
    status, _, _ = curl("PUT", f"{base}/big", "-H", f"Content-MD5: {md5_b64(big)}", data=big)
    assert status == 200
    assert curl("GET", f"{base}/big")[1] == big


# -- scope escapes --------------------------------------------------------------------------------
def test_scope_escapes_are_refused(root: SignedClient, s3: Any, bkt: str) -> None:
    other = f"par-other-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=other)
    try:
        s3.put_object(Bucket=other, Key="secret", Body=b"not yours")
        s3.put_object(Bucket=bkt, Key="a/b", Body=b"ab")
        s3.put_object(Bucket=bkt, Key="mine", Body=b"mine")
        bucket_par = make(root, bkt, readable=True, writeable=True, ttl=600)["url"]
        object_par = make(root, bkt, "mine", readable=True, writeable=True, ttl=600)["url"]
        par_id, secret = bucket_par.rsplit("/", 2)[1:]
        host = bucket_par.split("/_tessera/")[0]
        dots, slash, unknown = "'..' segments", "Encoded slashes", "does not exist"
        denied = [
            ("GET", f"{bucket_par}/../../{other}/secret", dots),
            ("GET", f"{bucket_par}/a/../../{other}/secret", dots),
            ("GET", f"{bucket_par}/a/./b", dots),
            ("GET", f"{bucket_par}/%2e%2e/{other}/secret", dots),
            ("GET", f"{bucket_par}/a%2Fb", slash),
            ("GET", f"{bucket_par}/a%2fb", slash),
            ("PUT", f"{bucket_par}/../{other}/secret", dots),
            ("GET", f"{host}/_tessera/p/{par_id}%2F{secret}/a/b", unknown),
            ("GET", f"{host}/_tessera/p/{par_id}/{secret}%2F..%2F{other}/secret", unknown),
            ("GET", f"{host}/_tessera/p/{par_id}/..%2F{secret}/a/b", unknown),
            ("GET", f"{host}/_tessera/p/../p/{par_id}/{secret}/a/b", unknown),
            ("GET", f"{object_par}/a/b", "only its own object"),  # another key
            ("PUT", f"{object_par}/a/b", "only its own object"),
            ("GET", f"{object_par}/", "cannot list"),  # listing through an object PAR
            ("GET", f"{object_par}/?prefix=", "cannot list"),
            ("GET", f"{bucket_par}/", "not allow listing"),  # a non-listable PAR
            ("GET", bucket_par, "not allow listing"),
        ]
        for method, url, why in denied:
            status, body, _ = curl(method, url, data=b"evil" if method == "PUT" else None)
            assert status == 403, (method, url, status, body)
            code, message = error_of(body)
            assert code == "AccessDenied" and why in message, (method, url, body)
        assert s3.get_object(Bucket=other, Key="secret")["Body"].read() == b"not yours"
        assert s3.get_object(Bucket=bkt, Key="a/b")["Body"].read() == b"ab"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=bkt)["Contents"]] == ["a/b", "mine"]
        # the legitimate uses still work
        assert curl("GET", f"{bucket_par}/a/b")[:2] == (200, b"ab")
        assert curl("GET", object_par)[:2] == (200, b"mine")
    finally:
        harness.empty_and_delete_bucket(s3, other)


def test_permissions_of_the_link(
    root: SignedClient, s3: Any, bkt: str, srv: harness.Server
) -> None:
    s3.put_object(Bucket=bkt, Key="k", Body=b"v")
    read_only = make(root, bkt, "k", readable=True, ttl=600)["url"]
    write_only = make(root, bkt, readable=False, writeable=True, ttl=600)["url"]
    status, body, _ = curl("PUT", read_only, data=b"overwrite")
    assert status == 403 and "writ" in error_of(body)[1]
    assert curl("GET", f"{write_only}/k")[0] == 403
    assert curl("POST", read_only, data=b"x")[0] == 405
    chunked = ("-H", "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    assert curl("PUT", f"{write_only}/c", *chunked, data=b"3\r\nabc\r\n0\r\n\r\n")[0] == 400
    # a write through a link cannot grant access: x-amz-acl is ignored
    status, _, _ = curl("PUT", f"{write_only}/pub", "-H", "x-amz-acl: public-read", data=b"p")
    assert status == 200
    assert curl("GET", f"{srv.endpoint}/{bkt}/pub")[0] == 403  # anonymous S3 read
    assert s3.get_object_acl(Bucket=bkt, Key="pub")["Grants"][0]["Permission"] == "FULL_CONTROL"


# -- management, expiry, revocation ------------------------------------------------------------
def test_create_rules_and_listing(root: SignedClient, alt: SignedClient, bkt: str) -> None:
    with pytest.raises(Forbidden):  # not the bucket owner
        make(alt, bkt, ttl=60)
    bodies: list[dict[str, Any]] = [
        {"readable": False},
        {"key": "k", "listable": True},
        {"ttl": 8 * 86400},
        {"ttl": -5},
        {"ttl": 10, "expires": time.time() + 10},
        {"readable": "yes"},
    ]
    for body in bodies:
        with pytest.raises(BadRequest):
            root.ext("POST", "pars", json_body={"bucket": bkt, "key": None, **body})
    a = make(root, bkt, ttl=600)
    b = make(root, bkt, "x", expires=time.time() + 300)
    listed = root.ext("GET", "pars", query={"bucket": bkt})["pars"]
    assert [p["id"] for p in listed] == [a["id"], b["id"]]
    secret_a = a["url"].rsplit("/", 1)[1]
    assert secret_a not in json.dumps(listed) and all("url" not in p for p in listed)
    assert a["id"] in [p["id"] for p in root.ext("GET", "pars")["pars"]]
    assert all(p["bucket"] != bkt for p in alt.ext("GET", "pars")["pars"])
    with pytest.raises(Forbidden):
        alt.ext("GET", "pars", query={"bucket": bkt})


def test_expiry(root: SignedClient, s3: Any, bkt: str) -> None:
    s3.put_object(Bucket=bkt, Key="k", Body=b"soon gone")
    url = make(root, bkt, "k", ttl=1)["url"]
    deadline = time.monotonic() + EXPIRY_WAIT
    status, body, _ = curl("GET", url)
    while status == 200 and time.monotonic() < deadline:
        assert body == b"soon gone"
        time.sleep(0.2)
        status, body, _ = curl("GET", url)
    assert status == 403
    assert error_of(body) == ("AccessDenied", "The pre-authenticated request has expired.")
    assert curl("HEAD", url)[0] == 403


def test_revocation(root: SignedClient, alt: SignedClient, s3: Any, bkt: str) -> None:
    s3.put_object(Bucket=bkt, Key="k", Body=b"v")
    by_owner = make(root, bkt, "k", ttl=600)
    with pytest.raises(Forbidden):  # another account cannot revoke it
        alt.ext("DELETE", f"pars/{by_owner['id']}")
    assert curl("GET", by_owner["url"])[0] == 200
    assert root.ext("DELETE", f"pars/{by_owner['id']}") == {"id": by_owner["id"], "revoked": True}
    status, body, _ = curl("GET", by_owner["url"])
    assert status == 403
    assert error_of(body)[1] == "The pre-authenticated request does not exist or was revoked."
    listed = root.ext("GET", "pars", query={"bucket": bkt})["pars"]
    assert [p["revoked"] for p in listed if p["id"] == by_owner["id"]] == [True]

    held = make(root, bkt, readable=True, ttl=600)["url"]
    par_id = held.rsplit("/", 2)[1]
    wrong = held[:-4] + ("AAAA" if not held.endswith("AAAA") else "BBBB")
    assert curl("DELETE", wrong)[0] == 403  # no proof, no revocation
    assert curl("GET", f"{held}/k")[0] == 200
    assert curl("DELETE", f"{held}/k")[0] == 405
    status, body, _ = curl("DELETE", held)
    assert (status, json.loads(body)) == (200, {"id": par_id, "revoked": True})
    assert curl("GET", f"{held}/k")[0] == 403


# -- the SDK's encrypted PAR ------------------------------------------------------------------
def test_sdk_object_par(
    root: SignedClient, s3: Any, bkt: str, rsa_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    par = create_par(
        root,
        bkt,
        "doc.json",
        readable=True,
        writeable=True,
        ttl=600,
        encrypt_key=rsa_key.public_key(),
    )
    assert par.is_object() and par.is_writeable() and par.seconds_remaining() > 500
    writer = par.write(rsa_key)
    assert isinstance(writer, ObjectWriter)
    writer.set_object_from_json({"a": [1, 2]})
    assert writer.get_object_from_json() == {"a": [1, 2]}
    writer.set_string_object("héllo")
    assert s3.get_object(Bucket=bkt, Key="doc.json")["Body"].read() == "héllo".encode()
    src = tmp_path / "src.bin"
    src.write_bytes(b"\x00\x01" * 300_000)
    writer.set_object_from_file(src)
    writer.close()
    # through untrusted hands: serialised without the link, rebuilt, read
    moved = PAR.from_data(json.loads(json.dumps(par.to_data())))
    reader = moved.read(rsa_key)
    assert isinstance(reader, ObjectReader)
    out = reader.get_object_as_file(tmp_path / "out.bin")
    assert out.read_bytes() == src.read_bytes()
    moved.close(rsa_key)  # revokes on the server: proof of possession
    assert moved.is_closed()
    with pytest.raises(PARReadError) as e:
        reader.get_object()
    assert e.value.status == 403
    assert curl("GET", par.url(rsa_key))[0] == 403  # the other copy is dead too
    par.close(rsa_key)  # already revoked: still fine


def test_sdk_bucket_par(root: SignedClient, bkt: str, rsa_key: rsa.RSAPrivateKey) -> None:
    par = create_par(root, bkt, writeable=True, listable=True, ttl=600, encrypt_key=rsa_key)
    writer = par.write(rsa_key)
    assert isinstance(writer, BucketWriter) and par.is_bucket()
    for i in range(7):
        writer.set_string_object(f"p/{i}", str(i))
    writer.set_object_from_json("q/x.json", [1])
    assert writer.get_string_object("p/3") == "3"
    assert writer.get_object_from_json("q/x.json") == [1]
    assert writer.list_objects("p/", page_size=3) == [f"p/{i}" for i in range(7)]
    assert len(writer.list_objects()) == 8
    with pytest.raises(PARWriteError) as e:
        writer.set_object("../escape", b"x")
    assert e.value.status == 403
    listing_only = create_par(
        root, bkt, readable=False, listable=True, ttl=600, encrypt_key=rsa_key
    )
    reader = listing_only.read(rsa_key)
    assert isinstance(reader, BucketReader)
    assert len(reader.list_objects()) == 8
    with pytest.raises(PARReadError):
        reader.get_object("p/1")
    not_listable = create_par(root, bkt, readable=True, ttl=600, encrypt_key=rsa_key)
    with pytest.raises(PARReadError):
        not_listable.read(rsa_key).list_objects()  # type: ignore[union-attr]


def test_sdk_timeout(root: SignedClient, bkt: str, rsa_key: rsa.RSAPrivateKey) -> None:
    par = create_par(root, bkt, ttl=20, encrypt_key=rsa_key)
    assert par.seconds_remaining() == 0  # inside the 30 s buffer
    with pytest.raises(PARTimeoutError):
        par.url(rsa_key)
    with pytest.raises(PARTimeoutError):
        par.read(rsa_key)
    assert par.url(rsa_key, buffer=0).startswith(root.endpoint.url)


def test_link_follows_the_request_scheme(
    server: harness.Server, rsa_key: rsa.RSAPrivateKey
) -> None:
    """Over http and https: the link names the scheme and host the owner used,
    and the SDK reads through it with the same TLS settings."""
    s3 = harness.boto3_client(server)
    name = f"par-tls-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    client = _client(server)
    try:
        s3.put_object(Bucket=name, Key="k", Body=b"over " + server.scheme.encode())
        par = create_par(client, name, "k", ttl=600, encrypt_key=rsa_key)
        assert par.url(rsa_key).startswith(f"{server.endpoint}/_tessera/p/")
        reader = par.read(rsa_key)
        assert isinstance(reader, ObjectReader)
        assert reader.get_string_object() == f"over {server.scheme}"
        par.close(rsa_key)
    finally:
        client.close()
        harness.empty_and_delete_bucket(s3, name)


# -- calculation PARs ---------------------------------------------------------------------------
def test_calculation_par_with_curl(root: SignedClient, s3: Any, bkt: str) -> None:
    for i in range(3):
        s3.put_object(Bucket=bkt, Key=f"src/{i}", Body=b"%d" % i)
    doc = make(root, bkt, job="copy-prefix", readable=True, ttl=600)
    assert (doc["job"], doc["readable"], doc["key"]) == ("copy-prefix", False, None)
    url = doc["url"]
    status, body, _ = curl("GET", url)
    assert (status, json.loads(body)["state"]) == (200, "idle")
    for method, target in (("GET", f"{url}/src/0"), ("PUT", f"{url}/x"), ("GET", f"{url}/")):
        assert curl(method, target, data=b"x" if method == "PUT" else None)[0] in (403, 405)
    status, body, _ = curl("POST", f"{url}/start", data=b'{"source": "src/", "destination": ""}')
    assert status == 400 and error_of(body)[0] == "InvalidArgument"
    args = json.dumps({"source": "src/", "destination": "copy/"}).encode()
    status, body, _ = curl(
        "POST", f"{url}/start", "-H", "Content-Type: application/json", data=args
    )
    assert status == 200 and json.loads(body)["job"] == "copy-prefix"
    deadline = time.monotonic() + 30
    state = json.loads(body)
    while state["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        state = json.loads(curl("GET", url)[1])
    assert (state["state"], state["progress"], state["result"]) == (
        "done",
        {"copied": 3},
        {"failed": {}},
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bkt, Prefix="copy/")["Contents"]]
    assert keys == ["copy/0", "copy/1", "copy/2"]
    assert curl("DELETE", url)[0] == 200
    assert curl("GET", url)[0] == 403


def test_sdk_compute_runner(
    root: SignedClient, s3: Any, bkt: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    s3.put_object(Bucket=bkt, Key="data/a", Body=b"a" * 100_000)
    s3.put_object(Bucket=bkt, Key="data/b", Body=b"b")
    par = create_par(root, bkt, job="verify", ttl=600, encrypt_key=rsa_key)
    assert par.is_calculation() and not par.is_bucket()
    with pytest.raises(PARPermissionsError):
        par.read(rsa_key)
    runner = par.execute(rsa_key)
    assert runner.status()["state"] == "idle"
    runner.start(prefix="data/")
    final = runner.wait(timeout=30, poll=0.05)
    assert final["state"] == "done"
    assert final["progress"] == {"objects": 2, "bytes": 100_001}
    assert final["result"] == {"bad": [], "unreadable": {}}
    with pytest.raises(PARError) as e:
        runner.start(bogus="1")
    assert e.value.status == 400
    runner.close()
    par.close(rsa_key)
    with pytest.raises(PARPermissionsError):
        create_par(root, bkt, "k", job="verify", ttl=60, encrypt_key=rsa_key)
