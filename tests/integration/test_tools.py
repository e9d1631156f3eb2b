"""The S3 tools people already use, unchanged: aws cli and rclone."""

from __future__ import annotations

import json
import os


def test_aws_cli_cp_ls_sync_rm(aws_cli, bucket, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha")
    (src / "sub" / "b.bin").write_bytes(os.urandom(10 << 20))
    r = aws_cli("s3", "cp", str(src / "a.txt"), f"s3://{bucket}/a.txt")
    assert r.returncode == 0, r.stderr
    r = aws_cli("s3", "sync", str(src), f"s3://{bucket}/tree")
    assert r.returncode == 0, r.stderr
    r = aws_cli("s3", "ls", f"s3://{bucket}/tree/", "--recursive")
    assert r.returncode == 0, r.stderr
    assert "tree/a.txt" in r.stdout and "tree/sub/b.bin" in r.stdout
    dst = tmp_path / "dst"
    r = aws_cli("s3", "sync", f"s3://{bucket}/tree", str(dst))
    assert r.returncode == 0, r.stderr
    assert (dst / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    r = aws_cli("s3", "sync", str(src), f"s3://{bucket}/tree")
    assert r.returncode == 0 and "upload:" not in r.stdout
    r = aws_cli("s3", "rm", f"s3://{bucket}/tree", "--recursive")
    assert r.returncode == 0, r.stderr
    r = aws_cli("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "tree/")
    assert r.returncode == 0, r.stderr
    assert "Contents" not in json.loads(r.stdout)


def test_aws_cli_s3api(aws_cli, bucket):
    r = aws_cli("s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", __file__)
    assert r.returncode == 0, r.stderr
    r = aws_cli("s3api", "head-object", "--bucket", bucket, "--key", "k")
    assert r.returncode == 0 and '"ContentLength"' in r.stdout
    r = aws_cli("s3api", "get-object", "--bucket", bucket, "--key", "missing", "/dev/null")
    assert r.returncode != 0 and "NoSuchKey" in r.stderr


def test_rclone_copy_and_check(rclone, bucket, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(5):
        (src / "d" / f"f{i}").write_bytes(os.urandom(1000 * (i + 1)))
    (src / "big").write_bytes(os.urandom(12 << 20))
    r = rclone("copy", str(src), f"t:{bucket}/r")
    assert r.returncode == 0, r.stderr
    r = rclone("check", str(src), f"t:{bucket}/r")
    assert r.returncode == 0, r.stderr
    r = rclone("lsf", "-R", f"t:{bucket}/r")
    assert sorted(r.stdout.split()) == sorted(["big", "d/", "d/f0", "d/f1", "d/f2", "d/f3", "d/f4"])
    r = rclone("delete", f"t:{bucket}/r/d")
    assert r.returncode == 0, r.stderr
