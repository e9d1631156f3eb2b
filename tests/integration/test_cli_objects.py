"""``tessera mb/rb/ls/cp/mv/rm/sync/cat/stat/presign`` as a user runs them: the
real command in a subprocess against a real ``tessera serve`` (http), checked
through boto3 and plain HTTP, and once against an embedded data directory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import harness
import pytest

TIMEOUT = 120.0


def tessera(
    server: harness.Server | None, *args: str, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    if server is not None:
        env.update(
            TESSERA_ENDPOINT=server.endpoint,
            TESSERA_ACCESS_KEY=server.access_key,
            TESSERA_SECRET_KEY=server.secret_key,
        )
    proc = subprocess.run(
        [sys.executable, "-m", "tessera.cli.main", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=TIMEOUT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"tessera {' '.join(args)}: {proc.returncode}\n{proc.stderr!r}")
    return proc


@pytest.fixture
def s3(http_server: harness.Server) -> Any:
    """A boto3 client of the same (http) server the commands talk to."""
    return harness.boto3_client(http_server)


@pytest.fixture
def name() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def test_bucket_and_object_round_trip(
    http_server: harness.Server, s3: Any, tmp_path: Path, name: str
) -> None:
    srv = http_server
    tessera(srv, "mb", f"t://{name}")
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    listed = tessera(srv, "ls", "--json").stdout
    assert name in [c["name"] for c in json.loads(listed)]

    src = tmp_path / "in.bin"
    payload = os.urandom(3 * (1 << 20) + 17)
    src.write_bytes(payload)
    tessera(srv, "cp", "--no-progress", str(src), f"t://{name}/dir/a.bin")
    assert s3.get_object(Bucket=name, Key="dir/a.bin")["Body"].read() == payload

    stat = json.loads(tessera(srv, "stat", "--json", f"t://{name}/dir/a.bin").stdout)
    assert stat["size"] == len(payload)
    assert stat["etag"] == hashlib.md5(payload).hexdigest()

    assert tessera(srv, "cat", f"t://{name}/dir/a.bin").stdout == payload
    part = tessera(srv, "cat", "--start", "10", "--end", "19", f"t://{name}/dir/a.bin").stdout
    assert part == payload[10:20]

    out = tmp_path / "out" / "a.bin"
    tessera(srv, "cp", "--no-progress", f"t://{name}/dir/a.bin", str(out))
    assert out.read_bytes() == payload
    assert not list(out.parent.glob("*.tessera-part"))

    tessera(srv, "cp", f"t://{name}/dir/a.bin", f"t://{name}/copy.bin")
    assert s3.get_object(Bucket=name, Key="copy.bin")["Body"].read() == payload
    tessera(srv, "mv", f"t://{name}/copy.bin", f"t://{name}/moved.bin")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]}
    assert keys == {"dir/a.bin", "moved.bin"}

    tessera(srv, "cp", "-", f"t://{name}/stdin.txt", stdin=b"from stdin")
    assert s3.get_object(Bucket=name, Key="stdin.txt")["Body"].read() == b"from stdin"

    top = tessera(srv, "ls", f"t://{name}/").stdout.decode()
    assert "PRE" in top and "dir/" in top and "moved.bin" in top
    assert "dir/a.bin" not in top
    deep = json.loads(tessera(srv, "ls", "--recursive", "--json", f"t://{name}").stdout)
    assert {d["name"] for d in deep} == {"dir/a.bin", "moved.bin", "stdin.txt"}

    tessera(srv, "rm", f"t://{name}/moved.bin")
    tessera(srv, "rm", "--recursive", f"t://{name}/dir/")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["stdin.txt"]

    refused = tessera(srv, "rb", f"t://{name}", check=False)
    assert refused.returncode == 1 and b"BucketNotEmpty" in refused.stderr
    tessera(srv, "rb", "--force", f"t://{name}")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_errors_are_one_line_and_exit_1(http_server: harness.Server, name: str) -> None:
    missing = tessera(http_server, "stat", f"t://{name}/nothing", check=False)
    assert missing.returncode == 1
    assert missing.stderr.decode().strip().startswith("tessera: NoSuchBucket")
    bad = tessera(http_server, "cp", "a", "b", check=False)
    assert bad.returncode == 1 and b"t://bucket/key" in bad.stderr
    wrong = subprocess.run(
        [sys.executable, "-m", "tessera.cli.main", "ls", "--endpoint", http_server.endpoint],
        capture_output=True,
        env={**os.environ, "TESSERA_ACCESS_KEY": "nobody", "TESSERA_SECRET_KEY": "x"},
        timeout=TIMEOUT,
    )
    assert wrong.returncode == 1 and b"InvalidAccessKeyId" in wrong.stderr


def test_sync_both_ways(http_server: harness.Server, s3: Any, tmp_path: Path, name: str) -> None:
    srv = http_server
    tessera(srv, "mb", f"t://{name}")
    local = tmp_path / "tree"
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_bytes(b"alpha")
    (local / "sub" / "b.txt").write_bytes(b"beta")
    tessera(srv, "sync", "--no-progress", str(local), f"t://{name}/backup")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]}
    assert keys == {"backup/a.txt", "backup/sub/b.txt"}

    (local / "a.txt").unlink()
    (local / "c.txt").write_bytes(b"gamma")
    tessera(srv, "sync", "--no-progress", str(local), f"t://{name}/backup")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]}
    assert keys == {"backup/c.txt", "backup/sub/b.txt"}

    back = tmp_path / "restore"
    tessera(srv, "sync", "--no-progress", f"t://{name}/backup", str(back))
    assert (back / "c.txt").read_bytes() == b"gamma"
    assert (back / "sub" / "b.txt").read_bytes() == b"beta"
    tessera(srv, "rb", "--force", f"t://{name}")


def test_presign_works_with_plain_http(http_server: harness.Server, s3: Any, name: str) -> None:
    srv = http_server
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"shared")
    url = tessera(srv, "presign", "--expires", "300", f"t://{name}/k").stdout.decode().strip()
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.read() == b"shared"
    put_url = tessera(srv, "presign", "--put", f"t://{name}/up").stdout.decode().strip()
    req = urllib.request.Request(put_url, data=b"uploaded", method="PUT")
    with urllib.request.urlopen(req, timeout=30):
        pass
    assert s3.get_object(Bucket=name, Key="up")["Body"].read() == b"uploaded"
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_object(Bucket=name, Key="up")
    s3.delete_bucket(Bucket=name)


def test_local_mode_needs_no_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    src = tmp_path / "f.txt"
    src.write_bytes(b"embedded bytes")
    tessera(None, "mb", "--local", str(data), "t://emb")
    tessera(None, "cp", "--local", str(data), "--no-progress", str(src), "t://emb/f.txt")
    out = tessera(None, "cat", "--local", str(data), "t://emb/f.txt").stdout
    assert out == b"embedded bytes"
    listed = json.loads(tessera(None, "ls", "--local", str(data), "--json", "t://emb").stdout)
    assert [d["name"] for d in listed] == ["f.txt"]


def test_par_create_list_revoke(http_server: harness.Server, s3: Any, name: str) -> None:
    srv = http_server
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="doc.txt", Body=b"for whoever holds the link")
    made = json.loads(
        tessera(
            srv, "par", "create", "--read", "--ttl", "600", "--json", f"t://{name}/doc.txt"
        ).stdout
    )
    with urllib.request.urlopen(made["url"], timeout=30) as resp:
        assert resp.read() == b"for whoever holds the link"
    listed = json.loads(tessera(srv, "par", "list", "--json", f"t://{name}").stdout)
    assert [p["id"] for p in listed] == [made["id"]]
    assert all("secret" not in p and "url" not in p for p in listed)
    tessera(srv, "par", "revoke", made["id"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(made["url"], timeout=30)
    assert refused.value.code in (403, 404)
    s3.delete_object(Bucket=name, Key="doc.txt")
    s3.delete_bucket(Bucket=name)
