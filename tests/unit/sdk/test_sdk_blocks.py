"""BlockClient pieces that need no server: the cache, the backoff, local_store,
retries against a closed port."""

from __future__ import annotations

import hashlib
import socket
import threading
from pathlib import Path

import pytest

from tessera.sdk.blocks import (
    BlockCache,
    BlockClient,
    BlockNotFound,
    BlockReadError,
    BlockWriteError,
    backoff_delays,
)
from tessera.sdk.errors import BadRequest
from tessera.sdk.http import Endpoint

WAIT = 10.0  # seconds a test waits for threads before failing


def test_cache_threads_share_one_fetch() -> None:
    cache = BlockCache(1 << 20)
    calls: list[int] = []
    release = threading.Event()

    def fetch() -> bytes:
        calls.append(1)
        assert release.wait(WAIT)
        return b"block"

    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", fetch)))]
    threads[0].start()
    for _ in range(200):  # bounded: the first thread is inside fetch()
        if calls:
            break
        threading.Event().wait(0.01)
    threads += [
        threading.Thread(target=lambda: results.append(cache.get("k", fetch))) for _ in range(7)
    ]
    for t in threads[1:]:
        t.start()
    for _ in range(1000):  # bounded: the seven others wait for the same fetch
        if cache.waiting("k") == 7:
            break
        threading.Event().wait(0.01)
    assert cache.waiting("k") == 7
    release.set()
    for t in threads:
        t.join(WAIT)
    assert calls == [1]
    assert results == [b"block"] * 8
    assert "k" in cache and cache.get("k", fetch) == b"block" and calls == [1]


def test_cache_failed_fetch_is_shared_and_not_kept() -> None:
    cache = BlockCache(100)

    def boom() -> bytes:
        raise OSError("down")

    with pytest.raises(OSError):
        cache.get("k", boom)
    assert "k" not in cache
    assert cache.get("k", lambda: b"ok") == b"ok"


def test_cache_is_an_lru_bounded_by_bytes() -> None:
    cache = BlockCache(10)
    cache.get("a", lambda: b"aaaa")
    cache.get("b", lambda: b"bbbb")
    cache.get("a", lambda: b"never")  # a is now the most recent
    cache.get("c", lambda: b"cccc")  # 12 bytes > 10: b goes
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.size == 8
    assert cache.get("big", lambda: b"x" * 11) == b"x" * 11  # too big to keep
    assert "big" not in cache and cache.size == 8


def test_backoff_schedule() -> None:
    assert backoff_delays(0) == []
    assert backoff_delays(3) == [2.0, 4.0, 8.0]
    assert backoff_delays(8, 2.0, 60.0) == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_errors_are_retried_with_backoff() -> None:
    slept: list[float] = []
    endpoint = Endpoint(f"http://127.0.0.1:{_closed_port()}", "AK", "SK")
    with BlockClient(endpoint, retries=3, backoff=(0.5, 1.0), sleep=slept.append) as client:
        with pytest.raises(BlockWriteError) as info:
            client.put(b"data")
        assert slept == [0.5, 1.0, 1.0]
        assert "services" in info.value.causes and info.value.stored == []
        slept.clear()
        locator = hashlib.md5(b"data").hexdigest() + "+4"
        with pytest.raises(BlockReadError):
            client.get(locator)
        assert slept == [0.5, 1.0, 1.0]


def test_local_store(tmp_path: Path) -> None:
    with BlockClient(local_store=str(tmp_path / "store")) as client:
        loc = client.put(b"hello", copies=5)
        md5 = hashlib.md5(b"hello").hexdigest()
        assert loc == f"{md5}+5"
        assert (tmp_path / "store" / md5).read_bytes() == b"hello"
        assert client.get(loc) == b"hello"
        assert client.get(f"{loc},{loc}") == b"hellohello"
        assert client.head(loc) and client.refresh_signature(loc) == loc
        assert client.get("d41d8cd98f00b204e9800998ecf8427e+0") == b""
        missing = hashlib.md5(b"nope").hexdigest() + "+4"
        with pytest.raises(BlockNotFound):
            client.get(missing)
        with pytest.raises(BlockNotFound):
            client.head(missing)
        with pytest.raises(BadRequest):
            client.get("not a locator")
        (tmp_path / "store" / md5).write_bytes(b"HELLO")
        with pytest.raises(BlockReadError):
            client.get(loc)
        assert [p.name for p in (tmp_path / "store").iterdir()] == [md5]  # no temp left


def test_local_store_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_BLOCK_LOCAL_STORE", str(tmp_path))
    with BlockClient() as client:
        assert client.get(client.put(b"x")) == b"x"
    monkeypatch.delenv("TESSERA_BLOCK_LOCAL_STORE")
    with pytest.raises(ValueError):
        BlockClient()
