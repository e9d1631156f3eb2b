"""The embedded SDK backend (``tessera.server.embedded``): one process, a real
data directory, sync calls onto the service's event loop thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.sdk.errors import (
    BadRequest,
    Conflict,
    EtagMismatch,
    Forbidden,
    NoSuchAccount,
    NoSuchContainer,
    NoSuchObject,
    TesseraClientError,
)
from tessera.server.embedded import EmbeddedBackend, open_embedded
from tessera.server.node import CREDENTIALS_FILE

MiB = 1 << 20


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[EmbeddedBackend]:
    b = open_embedded(tmp_path / "data")
    yield b
    b.close()


def test_layout_lock_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with open_embedded(path) as b:
        assert b.account == "root"
        assert (path / CREDENTIALS_FILE).exists() and (path / "meta.db").exists()
        with pytest.raises(Conflict) as e:
            open_embedded(path)  # the directory is held, as a server would hold it
        assert e.value.code == "DataDirectoryInUse"
        b.container_create("kept")
        b.object_put("kept", "k", [b"persisted"])
    with open_embedded(str(path)) as again:  # released on close; str paths work
        _, stream = again.object_get("kept", "k")
        assert b"".join(stream) == b"persisted"
    with pytest.raises(NoSuchAccount):
        open_embedded(path, account="nobody")
    open_embedded(path).close()  # a failed open released the directory too


def test_other_account(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with open_embedded(path) as root:
        assert root.account_create("bob", "Bob")
        root.container_create("roots")
    with open_embedded(path, account="bob") as bob:
        assert bob.account == "bob"
        with pytest.raises(Forbidden):
            bob.container_show("roots")
        with pytest.raises(Forbidden):
            bob.account_list()
        assert bob.container_create("bobs")
        assert [c.name for c in bob.container_list()] == ["bobs"]
        assert bob.account_show("bob").containers == 1


def test_put_pulls_pieces_in_another_thread(backend: EmbeddedBackend) -> None:
    backend.container_create("box")
    caller = threading.get_ident()
    threads: set[int] = set()

    def pieces() -> Iterator[bytes]:
        for i in range(40):
            threads.add(threading.get_ident())
            yield bytes([i]) * (MiB // 2)

    info = backend.object_put("box", "big", pieces(), size=20 * MiB)
    assert info.size == 20 * MiB and info.etag.endswith("-3")  # 8 MiB parts, as remote
    assert caller not in threads  # pulled by a worker, never on the caller's thread
    _, stream = backend.object_get("box", "big", start=10 * MiB, end=10 * MiB + 3)
    assert b"".join(stream) == bytes([20]) * 4
    with pytest.raises(BadRequest):  # announced size differs: nothing stored
        backend.object_put("box", "short", [b"abc"], size=4)
    with pytest.raises(NoSuchObject):
        backend.object_head("box", "short")
    with pytest.raises(EtagMismatch):
        backend.object_put("box", "big", pieces(), etag="0" * 32)
    assert backend.object_head("box", "big").etag == info.etag  # previous version intact


def test_get_stream_closes_early(backend: EmbeddedBackend) -> None:
    backend.container_create("box")
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB: several pieces
    backend.object_put("box", "k", [body])
    info, stream = backend.object_get("box", "k")
    assert info.size == len(body)
    first = next(stream)
    assert 0 < len(first) < len(body) and body.startswith(first)
    stream.close()  # early: the read is closed on the loop
    with pytest.raises(StopIteration):
        next(stream)
    _, again = backend.object_get("box", "k")
    assert b"".join(again) == body
    # a stream left open does not keep close() from finishing
    _, dangling = backend.object_get("box", "k")
    next(dangling)


def test_errors_map_to_sdk_errors(backend: EmbeddedBackend) -> None:
    with pytest.raises(NoSuchContainer) as e:
        backend.container_show("missing")
    assert (e.value.code, e.value.status) == ("NoSuchBucket", 404)
    backend.container_create("box")
    with pytest.raises(NoSuchObject) as e2:
        backend.object_get("box", "missing")
    assert e2.value.code == "NoSuchKey"
    backend.object_put("box", "d", [b"x" * 1000])
    backend.object_drain("box", "d")
    with pytest.raises(NoSuchObject) as e3:
        backend.object_get("box", "d")
    assert (e3.value.code, e3.value.status) == ("ObjectDrained", 404)
    with pytest.raises(NoSuchObject):
        backend.object_truncate("box", "d", 10)
    backend.object_put("box", "t", [b"0123456789"])
    with pytest.raises(BadRequest) as e4:
        backend.object_truncate("box", "t", 11)
    assert (e4.value.code, e4.value.status) == ("InvalidArgument", 400)
    with pytest.raises(Conflict) as e5:
        backend.container_delete("box")
    assert e5.value.code == "BucketNotEmpty"
    backend.close()
    with pytest.raises(TesseraClientError):
        backend.container_list()
    backend.close()  # idempotent
