"""The block client's cache: an LRU of blocks bounded by bytes, in which threads
reading one block at the same time share a single fetch (Keep's
``KeepBlockCache`` single-flight slots, with a :class:`~concurrent.futures.Future`
per key in flight)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

__all__ = ["BlockCache"]


class BlockCache:
    """An LRU of blocks bounded by ``max_bytes`` in which concurrent readers of
    one key share a single fetch. Thread-safe. A failed fetch is not cached: its
    waiters get the same exception, the next reader fetches again. A value
    larger than ``max_bytes`` is returned but not kept."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._inflight: dict[str, tuple[Future[bytes], list[int]]] = {}

    @property
    def size(self) -> int:
        """Bytes held."""
        return self._size

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def waiting(self, key: str) -> int:
        """How many callers wait for the fetch of ``key`` in progress (0: none)."""
        with self._lock:
            entry = self._inflight.get(key)
            return entry[1][0] if entry else 0

    def get(self, key: str, fetch: Callable[[], bytes]) -> bytes:
        """The cached value of ``key``, else ``fetch()``'s (run once for all the
        callers that arrive while it runs)."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                return value
            entry = self._inflight.get(key)
            if entry is not None:
                entry[1][0] += 1
            else:
                self._inflight[key] = (Future(), [0])
        if entry is not None:
            return entry[0].result()
        fut = self._inflight[key][0]
        try:
            value = fetch()
        except BaseException as e:
            with self._lock:
                del self._inflight[key]
            fut.set_exception(e)
            raise
        with self._lock:
            del self._inflight[key]
            self._put(key, value)
        fut.set_result(value)
        return value

    def _put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes or key in self._items:
            return
        self._items[key] = value
        self._size += len(value)
        while self._size > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._size -= len(old)
