"""Using a decrypted PAR link: readers, writers and the job runner (plain
unsigned HTTP with urllib3), and the PAR errors.

Objects here are handed out by :class:`tessera.sdk.par.PAR` (``read``,
``write``, ``execute``); a non-2xx answer is raised as the matching
:class:`PARError` subclass with the server's error code and status.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from tessera.sdk.errors import TesseraClientError

READ_SIZE = 1 << 20


class PARError(TesseraClientError):
    """A PAR could not be used."""

    code, status = "PARError", 400


class PARTimeoutError(PARError):
    """The PAR has expired, or expires within the requested buffer."""

    code, status = "PARTimeout", 403


class PARPermissionsError(PARError):
    """The PAR does not allow this (or asks for no permission at all)."""

    code, status = "PARPermissions", 403


class PARReadError(PARError):
    """Reading or listing through the PAR failed."""


class PARWriteError(PARError):
    """Writing through the PAR failed."""


# -- HTTP ----------------------------------------------------------------------------------------
class Link:
    """One decrypted link and a connection pool to its server."""

    def __init__(self, url: str, verify: bool | str = True) -> None:
        self.url = url.rstrip("/")
        kwargs: dict[str, Any] = {}
        if url.startswith("https:"):
            if verify is False:
                kwargs["cert_reqs"] = "CERT_NONE"
            elif isinstance(verify, str):
                kwargs["ca_certs"] = verify
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10.0, read=300.0), retries=False, **kwargs
        )

    def target(self, key: str | None) -> str:
        return self.url if key is None else f"{self.url}/{quote(key.lstrip('/'), safe='/~')}"

    def send(
        self,
        method: str,
        url: str,
        error: type[PARError],
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """One unsigned request; a non-2xx answer is raised as ``error``."""
        try:
            resp = self._pool.request(
                method, url, body=body, headers=headers, preload_content=not stream
            )
        except urllib3.exceptions.HTTPError as e:
            raise error(f"{method} through the PAR failed: {e}", code="ConnectionError") from e
        if resp.status >= 300:
            raw = resp.data if method != "HEAD" else b""
            code, message = f"HTTP{resp.status}", raw.decode("utf-8", "replace")
            try:
                doc = json.loads(raw)
                code, message = doc["error"]["code"], doc["error"].get("message", "")
            except (ValueError, KeyError, TypeError):
                pass
            raise error(message or code, code=code, status=resp.status)
        return resp

    def close(self) -> None:
        self._pool.clear()


def _md5_header(data: bytes) -> dict[str, str]:
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return {"Content-MD5": base64.b64encode(digest).decode()}


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(READ_SIZE):
            yield chunk


class _Reader:
    def __init__(self, link: Link) -> None:
        self._link = link

    def _get(self, key: str | None) -> bytes:
        return self._link.send("GET", self._link.target(key), PARReadError).data

    def _get_to_file(self, key: str | None, filename: str | Path) -> Path:
        path = Path(filename)
        resp = self._link.send("GET", self._link.target(key), PARReadError, stream=True)
        try:
            with path.open("wb") as f:
                for chunk in resp.stream(READ_SIZE):
                    f.write(chunk)
        finally:
            resp.release_conn()
        return path

    def close(self) -> None:
        """Release the connections."""
        self._link.close()


class _Writer:
    def __init__(self, link: Link) -> None:
        self._link = link

    def _put(self, key: str | None, data: bytes) -> None:
        self._link.send(
            "PUT", self._link.target(key), PARWriteError, body=data, headers=_md5_header(data)
        )

    def _put_file(self, key: str | None, filename: str | Path) -> None:
        path = Path(filename)
        md5 = hashlib.md5(usedforsecurity=False)
        for chunk in _file_chunks(path):
            md5.update(chunk)
        headers = {
            "Content-MD5": base64.b64encode(md5.digest()).decode(),
            "Content-Length": str(path.stat().st_size),
        }
        with path.open("rb") as f:
            self._link.send("PUT", self._link.target(key), PARWriteError, body=f, headers=headers)


class ObjectReader(_Reader):
    """Reads the one object of an object PAR."""

    def get_object(self) -> bytes:
        return self._get(None)

    def get_object_as_file(self, filename: str | Path) -> Path:
        """Stream the object into ``filename`` (replaced) and return its path."""
        return self._get_to_file(None, filename)

    def get_string_object(self) -> str:
        return self.get_object().decode("utf-8")

    def get_object_from_json(self) -> Any:
        """The object parsed as JSON. Raises PARReadError when it is empty."""
        data = self.get_object()
        if not data:
            raise PARReadError("the object is empty: no JSON to read")
        return json.loads(data)


class ObjectWriter(ObjectReader, _Writer):
    """Writes (and, when the PAR is readable, reads) the one object of an object PAR."""

    def set_object(self, data: bytes) -> None:
        """Replace the object with ``data`` (checked by the server with Content-MD5)."""
        self._put(None, data)

    def set_object_from_file(self, filename: str | Path) -> None:
        self._put_file(None, filename)

    def set_string_object(self, text: str) -> None:
        self.set_object(text.encode("utf-8"))

    def set_object_from_json(self, value: Any) -> None:
        self.set_object(json.dumps(value).encode("utf-8"))


class BucketReader(_Reader):
    """Reads keys of a bucket PAR's bucket and lists them (when listable)."""

    def get_object(self, key: str) -> bytes:
        return self._get(key)

    def get_object_as_file(self, key: str, filename: str | Path) -> Path:
        return self._get_to_file(key, filename)

    def get_string_object(self, key: str) -> str:
        return self.get_object(key).decode("utf-8")

    def get_object_from_json(self, key: str) -> Any:
        data = self.get_object(key)
        if not data:
            raise PARReadError(f"{key!r} is empty: no JSON to read")
        return json.loads(data)

    def list_objects(self, prefix: str = "", *, page_size: int = 1000) -> list[str]:
        """Every key starting with ``prefix``, ascending (all pages). Raises
        PARReadError (AccessDenied) when the PAR is not listable."""
        keys: list[str] = []
        marker = ""
        while True:
            query = urlencode({"prefix": prefix, "marker": marker, "limit": page_size})
            resp = self._link.send("GET", f"{self._link.url}/?{query}", PARReadError)
            doc = json.loads(resp.data)
            keys.extend(o["key"] for o in doc["objects"])
            if not doc["truncated"]:
                return keys
            marker = doc["next_marker"]


class BucketWriter(BucketReader, _Writer):
    """Writes (and, when allowed, reads and lists) keys of a bucket PAR's bucket."""

    def set_object(self, key: str, data: bytes) -> None:
        self._put(key, data)

    def set_object_from_file(self, key: str, filename: str | Path) -> None:
        self._put_file(key, filename)

    def set_string_object(self, key: str, text: str) -> None:
        self.set_object(key, text.encode("utf-8"))

    def set_object_from_json(self, key: str, value: Any) -> None:
        self.set_object(key, json.dumps(value).encode("utf-8"))


class ComputeRunner:
    """Starts, stops and watches the server-side job of a calculation PAR.

    Every call answers the job's state: ``{"job", "args", "state"
    (idle|running|done|failed|stopped), "progress", "result", "error"}``."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def _call(self, method: str, url: str, body: bytes | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else None
        doc: dict[str, Any] = json.loads(
            self._link.send(method, url, PARError, body=body, headers=headers).data
        )
        return doc

    def start(self, **args: str) -> dict[str, Any]:
        """Start the job with ``args`` (``prefix`` for ``verify``; ``source`` and
        ``destination`` for ``copy-prefix``). Raises PARError (409 Conflict while
        it runs, 400 for bad arguments)."""
        return self._call("POST", f"{self._link.url}/start", json.dumps(args).encode())

    def stop(self) -> dict[str, Any]:
        return self._call("POST", f"{self._link.url}/stop", b"")

    def status(self) -> dict[str, Any]:
        return self._call("GET", self._link.url)

    def wait(self, timeout: float = 300.0, poll: float = 0.2) -> dict[str, Any]:
        """Poll until the job is no longer running; its final state. Raises
        PARError (code ``Timeout``) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.status()
            if doc["state"] != "running":
                return doc
            if time.monotonic() >= deadline:
                raise PARError(f"the job still runs after {timeout} s", code="Timeout")
            time.sleep(poll)

    def close(self) -> None:
        self._link.close()
