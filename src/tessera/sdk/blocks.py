"""``BlockClient``: content-addressed blocks, the way Arvados' ``KeepClient`` does it.

Theory of operation
-------------------
The server lists its *block services* (one per volume: a local disk, a chunk
server's disk) at ``GET /_tessera/v1/blocks/services``. For a block with MD5
``h`` the client ranks them in rendezvous order
(:func:`tessera.protocol.blocks.probe_order`: ``md5(h + service id)``
descending, interleaved by server) and

* **put(data, copies)** stores the block on the first writable services of the
  order, ``copies`` at a time in parallel; a service that fails is replaced by
  the next one. Success once ``copies`` distinct services confirmed; the answer
  is a locator ``<md5>+<size>+A<signature>@<expiry>`` signed for the caller.
  Otherwise :class:`BlockWriteError` says which services stored it and why each
  other one failed.
* **get(locator)** tries the services in the same order (so the first probe
  normally hits) and checks the bytes against the MD5 and size; a mismatch
  counts as that service's failure and the next one is tried. Every service
  answering 403/404/410 -> :class:`BlockNotFound`; else :class:`BlockReadError`.
  ``get("loc1,loc2")`` returns the concatenation.
* **Retries.** Connection errors, timeouts and HTTP 408/409/423/500/502/503/504
  are retried: after a round over the services, the client sleeps
  (:func:`backoff_delays`: ``start`` doubling up to ``cap``), refreshes the
  service list and tries again the services that did not fail permanently,
  ``retries`` more rounds at most. Other answers are permanent for that service.
* **Timeouts** ``(connect, low_speed_time, min_bandwidth)`` as Keep/curl: the
  connection must open within ``connect`` s; a read is abandoned (and retried)
  when no byte arrives for ``low_speed_time`` s or when, over any window of
  ``low_speed_time`` s, fewer than ``min_bandwidth`` bytes/s arrived.
* **Cache.** Blocks read are kept in an LRU bounded by bytes
  (:class:`BlockCache`); threads reading one block at the same time share a
  single fetch (the first fetches, the others wait for its result).
* **local_store=DIR** (or ``TESSERA_BLOCK_LOCAL_STORE``): no server; blocks are
  files ``DIR/<md5>`` written atomically (temporary file + rename), locators
  are unsigned (Keep's ``KEEP_LOCAL_STORE``, for tests and offline work).

Thread-safe: one client may be shared by many threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import urllib3

from tessera.protocol.blocks import EMPTY_MD5, MAX_BLOCK_SIZE, Locator, probe_order
from tessera.sdk.blockcache import BlockCache
from tessera.sdk.errors import BadRequest, NotFound, TesseraClientError
from tessera.sdk.http import EXT_PREFIX, Endpoint, SignedClient, quote_path

__all__ = [
    "DEFAULT_TIMEOUTS",
    "BlockCache",
    "BlockClient",
    "BlockNotFound",
    "BlockReadError",
    "BlockWriteError",
    "ServiceInfo",
    "backoff_delays",
]

DEFAULT_TIMEOUTS = (2.0, 256.0, 32768.0)
"""Keep's defaults: 2 s to connect; abandon a read slower than 32 KiB/s over 256 s."""
RETRYABLE = frozenset({0, 408, 409, 423, 500, 502, 503, 504})
"""Statuses retried (0: no HTTP answer: connection error or timeout)."""
MISSING = frozenset({403, 404, 410})
LOCAL_STORE_ENV = "TESSERA_BLOCK_LOCAL_STORE"
LOCATOR_HEADER = "X-Tessera-Locator"
READ_CHUNK = 64 << 10


class BlockWriteError(TesseraClientError):
    """Fewer than ``copies`` services confirmed a put.

    ``stored``: the services that did; ``causes``: per service that failed, why."""

    code, status = "BlockWriteError", 503

    def __init__(self, message: str, stored: list[str], causes: dict[str, str]) -> None:
        super().__init__(message)
        self.stored = stored
        self.causes = causes


class BlockReadError(TesseraClientError):
    """No service returned good bytes. ``causes``: per service tried, why; ``status``
    is the status every service answered when they agree (401 expired signature,
    400 bad signature...), else 503."""

    code, status = "BlockReadError", 503

    def __init__(self, message: str, causes: dict[str, str], status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.causes = causes


class BlockNotFound(NotFound):
    """Every service answered that it does not have the block."""

    code = "NoSuchBlock"

    def __init__(self, message: str, causes: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.causes = causes or {}


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """One block service as the server lists it."""

    id: str
    server: str
    zone: str
    read_only: bool


def backoff_delays(retries: int, start: float = 2.0, cap: float = 60.0) -> list[float]:
    """Seconds slept before each retry round: ``start``, doubling, at most ``cap``."""
    return [min(cap, start * 2**i) for i in range(max(retries, 0))]


class _Failure(Exception):
    """One service's failed call: HTTP ``status`` (0 when none) and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def __str__(self) -> str:
        return f"{self.status or 'no answer'}: {self.args[0]}"


class BlockClient:
    """Content-addressed blocks on a Tessera server (see the module docstring).

    ``client``: an :class:`Endpoint` (the client opens a pool with the connect and
    low-speed timeouts) or a ready :class:`SignedClient` (its own timeouts apply
    to connecting); None with ``local_store`` (or ``TESSERA_BLOCK_LOCAL_STORE``).
    ``backoff`` is ``(start, cap)`` seconds between retry rounds.
    """

    def __init__(
        self,
        client: Endpoint | SignedClient | None = None,
        *,
        local_store: str | None = None,
        timeouts: tuple[float, float, float] = DEFAULT_TIMEOUTS,
        retries: int = 3,
        cache_bytes: int = 256 << 20,
        backoff: tuple[float, float] = (2.0, 60.0),
        workers: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0 or cache_bytes < 0 or workers < 1:
            raise ValueError("retries and cache_bytes must be >= 0, workers >= 1")
        self.timeouts = timeouts
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.cache = BlockCache(cache_bytes)
        self.local_store: Path | None = None
        self._client: SignedClient | None = None
        self._own_client = False
        local = (
            local_store if client is not None else local_store or os.environ.get(LOCAL_STORE_ENV)
        )
        if local:
            self.local_store = Path(local)
            self.local_store.mkdir(parents=True, exist_ok=True)
        elif isinstance(client, SignedClient):
            self._client = client
        elif isinstance(client, Endpoint):
            self._client = SignedClient(client, timeout=(timeouts[0], timeouts[1]), pool=workers)
            self._own_client = True
        else:
            raise ValueError("give an Endpoint, a SignedClient or local_store")
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="blocks")
        self._services: list[ServiceInfo] | None = None
        self._services_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._own_client and self._client is not None:
            self._client.close()

    def __enter__(self) -> BlockClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- services -----------------------------------------------------------------
    def services(self, refresh: bool = False) -> list[ServiceInfo]:
        """The server's block services (cached; ``refresh`` asks again)."""
        with self._services_lock:
            if self._services is None or refresh:
                doc = self._http().ext("GET", "blocks/services")
                self._services = [
                    ServiceInfo(
                        str(s["id"]), str(s["server"]), str(s["zone"]), bool(s["read_only"])
                    )
                    for s in doc["services"]
                ]
            return list(self._services)

    def probe_order(self, md5: str, *, writable: bool = False, refresh: bool = False) -> list[str]:
        """Service ids in the order they are tried for block ``md5``."""
        svcs = [s for s in self.services(refresh) if not (writable and s.read_only)]
        return probe_order(md5, [(s.id, s.server) for s in svcs])

    def _http(self) -> SignedClient:
        assert self._client is not None
        return self._client

    def _sleep_before(self, attempt: int) -> None:
        delays = backoff_delays(self.retries, *self.backoff)
        self._sleep(delays[attempt - 1])

    def _round_order(
        self, md5: str, attempt: int, causes: dict[str, str], *, writable: bool = False
    ) -> list[str] | None:
        """The probe order for one round; None when the service list could not be
        fetched for a retryable reason (recorded under ``causes["services"]``)."""
        try:
            order = self.probe_order(md5, writable=writable, refresh=attempt > 0)
        except TesseraClientError as e:
            if e.status not in RETRYABLE:
                raise
            causes["services"] = f"{e.status or 'no answer'}: {e.code}: {e.message}"
            return None
        causes.pop("services", None)
        return order

    # -- put -----------------------------------------------------------------------
    def put(self, data: bytes, copies: int = 2) -> str:
        """Store ``data`` (at most 64 MiB) on ``copies`` distinct services; return
        its signed locator. ``copies < 1`` returns ``<md5>+<size>`` without writing.
        Raises BlockWriteError, ValueError (too big)."""
        data = bytes(data)
        if len(data) > MAX_BLOCK_SIZE:
            raise ValueError(f"blocks are at most {MAX_BLOCK_SIZE} bytes")
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if self.local_store is not None:
            return self._local_put(md5, data)
        if copies < 1:
            return f"{md5}+{len(data)}"
        stored: dict[str, str] = {}
        causes: dict[str, str] = {}
        permanent: set[str] = set()
        order: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep_before(attempt)
            listed = self._round_order(md5, attempt, causes, writable=True)
            if listed is None:
                continue
            order = listed
            todo = iter(s for s in order if s not in stored and s not in permanent)
            self._put_round(md5, data, copies, todo, stored, causes, permanent)
            if len(stored) >= copies:
                return next(iter(stored.values()))
            if all(s in stored or s in permanent for s in order):
                break  # nothing left worth retrying
        raise BlockWriteError(
            f"block {md5}: wanted {copies} copies, {len(stored)} confirmed "
            f"({len(order)} writable services)"
            + "".join(f"; {sid}: {cause}" for sid, cause in causes.items()),
            list(stored),
            causes,
        )

    def _put_round(
        self,
        md5: str,
        data: bytes,
        copies: int,
        todo: Iterator[str],
        stored: dict[str, str],
        causes: dict[str, str],
        permanent: set[str],
    ) -> None:
        running: dict[Future[str], str] = {}
        while len(stored) < copies:
            while len(stored) + len(running) < copies:
                sid = next(todo, None)
                if sid is None:
                    break
                running[self._pool.submit(self._put_one, sid, md5, data)] = sid
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                sid = running.pop(fut)
                try:
                    stored[sid] = fut.result()
                    causes.pop(sid, None)
                except _Failure as e:
                    causes[sid] = str(e)
                    if e.status not in RETRYABLE:
                        permanent.add(sid)

    def _put_one(self, sid: str, md5: str, data: bytes) -> str:
        path = f"{EXT_PREFIX}blocks/{quote_path(sid)}/{md5}"
        try:
            resp = self._http().request("PUT", path, data=data)
            doc = json.loads(resp.data)
        except TesseraClientError as e:
            raise _Failure(e.status, f"{e.code}: {e.message}") from e
        except ValueError as e:
            raise _Failure(502, f"bad answer: {e}") from e
        return str(doc["locator"])

    # -- get / head ----------------------------------------------------------------
    def get(self, locator: str) -> bytes:
        """The bytes of the block (or, for ``"loc1,loc2,..."``, of the blocks
        concatenated), each verified against its MD5 and size. Raises
        BlockNotFound, BlockReadError, BadRequest (not a locator)."""
        parts = [self._parse(p) for p in locator.split(",")]
        return b"".join(self._get_block(loc) for loc in parts)

    @staticmethod
    def _parse(text: str) -> Locator:
        try:
            return Locator.parse(text)
        except ValueError as e:
            raise BadRequest(str(e)) from None

    def _get_block(self, loc: Locator) -> bytes:
        if loc.md5 == EMPTY_MD5 and loc.size == 0:
            return b""
        if self.local_store is not None:
            return self._local_get(loc)
        return self.cache.get(loc.md5, lambda: self._fetch(loc))

    def _fetch(self, loc: Locator) -> bytes:
        causes: dict[str, str] = {}
        statuses: dict[str, int] = {}
        permanent: set[str] = set()
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep_before(attempt)
            listed = self._round_order(loc.md5, attempt, causes)
            if listed is None:
                statuses["services"] = 0
                continue
            order = listed
            statuses.pop("services", None)
            for sid in order:
                if sid in permanent:
                    continue
                try:
                    data = self._get_one(sid, loc)
                except _Failure as e:
                    causes[sid], statuses[sid] = str(e), e.status
                    if e.status not in RETRYABLE:
                        permanent.add(sid)
                    continue
                if len(data) != loc.size or _md5(data) != loc.md5:
                    causes[sid], statuses[sid] = "content does not match the locator", 502
                    permanent.add(sid)
                    continue
                return data
            if all(s in permanent for s in order):
                break
        detail = "".join(f"; {sid}: {c}" for sid, c in causes.items())
        if statuses and set(statuses.values()) <= MISSING:
            raise BlockNotFound(f"block {loc.md5} not found" + detail, causes)
        common = set(statuses.values())
        raise BlockReadError(
            f"block {loc.md5} could not be read" + detail,
            causes,
            common.pop() if len(common) == 1 else None,
        )

    def _block_path(self, sid: str, loc: Locator) -> str:
        return f"{EXT_PREFIX}blocks/{quote_path(sid)}/{quote_path(str(loc))}"

    def _get_one(self, sid: str, loc: Locator) -> bytes:
        try:
            resp = self._http().request("GET", self._block_path(sid, loc), stream=True)
        except TesseraClientError as e:
            raise _Failure(e.status, f"{e.code}: {e.message}") from e
        try:
            return self._read_body(resp, loc.size)
        finally:
            resp.release_conn()

    def _read_body(self, resp: urllib3.BaseHTTPResponse, limit: int) -> bytes:
        """The body, abandoned when slower than the minimum bandwidth (see the
        module docstring) or longer than ``limit`` (the locator's size)."""
        _, window, min_bandwidth = self.timeouts
        out = bytearray()
        started = time.monotonic()
        window_bytes = 0
        try:
            for chunk in resp.stream(READ_CHUNK):
                out += chunk
                window_bytes += len(chunk)
                if len(out) > limit:
                    raise _Failure(502, "more bytes than the locator's size")
                elapsed = time.monotonic() - started
                if elapsed >= window:
                    if window_bytes / elapsed < min_bandwidth:
                        raise _Failure(0, f"slower than {min_bandwidth:g} B/s for {window:g} s")
                    started, window_bytes = time.monotonic(), 0
        except urllib3.exceptions.HTTPError as e:
            raise _Failure(0, f"read failed: {e}") from e
        return bytes(out)

    def head(self, locator: str) -> bool:
        """True when some service holds the block (its signature is checked);
        raises BlockNotFound, BlockReadError."""
        loc = self._parse(locator)
        if self.local_store is not None:
            if not (self.local_store / loc.md5).exists() and loc.md5 != EMPTY_MD5:
                raise BlockNotFound(f"block {loc.md5} not found")
            return True
        self._head(loc)
        return True

    def refresh_signature(self, locator: str) -> str:
        """The locator signed anew (a fresh expiry), from the first service that
        holds the block. Needs a still valid signature. Local store: unsigned."""
        loc = self._parse(locator)
        if self.local_store is not None:
            self.head(locator)
            return loc.stripped()
        return self._head(loc)

    def _head(self, loc: Locator) -> str:
        causes: dict[str, str] = {}
        statuses: set[int] = set()
        for sid in self.probe_order(loc.md5):
            try:
                resp = self._http().request("HEAD", self._block_path(sid, loc))
            except TesseraClientError as e:
                causes[sid] = f"{e.status or 'no answer'}: {e.code}"
                statuses.add(e.status)
                continue
            return str(resp.headers.get(LOCATOR_HEADER, str(loc)))
        if statuses <= MISSING:
            raise BlockNotFound(f"block {loc.md5} not found", causes)
        raise BlockReadError(
            f"block {loc.md5}: no service answered"
            + "".join(f"; {s}: {c}" for s, c in causes.items()),
            causes,
            statuses.pop() if len(statuses) == 1 else None,
        )

    # -- local store ---------------------------------------------------------------
    def _local_put(self, md5: str, data: bytes) -> str:
        assert self.local_store is not None
        fd, tmp = tempfile.mkstemp(prefix=f"{md5}.", suffix=".tmp", dir=self.local_store)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.local_store / md5)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f"{md5}+{len(data)}"

    def _local_get(self, loc: Locator) -> bytes:
        assert self.local_store is not None
        try:
            data = (self.local_store / loc.md5).read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(f"block {loc.md5} not found in {self.local_store}") from None
        if len(data) != loc.size or _md5(data) != loc.md5:
            raise BlockReadError(f"block {loc.md5} in {self.local_store} is damaged", {})
        return data


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
