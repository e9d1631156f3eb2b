"""Streaming, measured: a 4 GiB object goes in (one PUT, then multipart through
boto3's transfer manager) and out while the server's resident memory is sampled;
its peak must stay under 300 MB. Slow (minutes, 8 GiB of disk): run on demand with
``scripts/test -m slow``."""

from __future__ import annotations

import hashlib
import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import psutil
import pytest

pytestmark = pytest.mark.slow

SIZE = 4 << 30
PIECE = 1 << 20
RSS_LIMIT = 300 << 20


def _pieces(seed: bytes) -> Iterator[bytes]:
    """SIZE deterministic bytes in 1 MiB pieces, each distinct (no dedup)."""
    base = hashlib.shake_256(seed).digest(PIECE)
    for i in range(SIZE // PIECE):
        yield i.to_bytes(8, "big") + base[8:]


class _Reader:
    """A file-like view of :func:`_pieces` for boto3's upload_fileobj."""

    def __init__(self, seed: bytes) -> None:
        self._it = _pieces(seed)
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buf) < n) and (piece := next(self._it, None)) is not None:
            self._buf += piece
        out, self._buf = (self._buf, b"") if n < 0 else (self._buf[:n], self._buf[n:])
        return out


class _PeakRss:
    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _expected_md5(seed: bytes) -> str:
    h = hashlib.md5()
    for piece in _pieces(seed):
        h.update(piece)
    return h.hexdigest()


def _streamed_get_md5(s3: Any, bucket: str, key: str) -> str:
    h = hashlib.md5()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in body.iter_chunks(PIECE):
        h.update(chunk)
    return h.hexdigest()


def test_4gib_object_in_and_out_with_flat_memory(tmp_path: Path) -> None:
    with harness.start_server(tmp_path / "data") as server:
        s3 = harness.boto3_client(server)
        s3.create_bucket(Bucket="big")
        with _PeakRss(server.proc.pid) as rss:
            target = "/big/single"
            headers = harness.signed_head(server, "PUT", target)
            headers["Content-Length"] = str(SIZE)
            conn = http.client.HTTPConnection(server.host, server.port, timeout=600)
            conn.putrequest("PUT", target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            for piece in _pieces(b"single"):
                conn.send(piece)
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            conn.close()
            assert _streamed_get_md5(s3, "big", "single") == _expected_md5(b"single")

            s3.upload_fileobj(_Reader(b"multi"), "big", "multi")
            assert _streamed_get_md5(s3, "big", "multi") == _expected_md5(b"multi")
        print(f"server peak RSS: {rss.peak / 2**20:.0f} MiB")
        assert rss.peak < RSS_LIMIT
