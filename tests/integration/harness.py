"""Start and stop real ``tessera serve`` processes, and point S3 clients at them.

Used by ``conftest.py`` (session servers and client fixtures) and by tests that need
a server of their own (start-up, shutdown, configuration). Everything listens on
127.0.0.1 only. Each process's stdout and stderr go to files, never to pipes: a pipe
nobody reads would block the server once its buffer is full. Every process is
killed at interpreter exit if a test forgot it.

The server prints ``Root access key: ...``, ``Root secret key: ...`` (unless the
secret came from the configuration) and, once it accepts requests,
``Tessera listening on http(s)://HOST:PORT``. :func:`start_server` waits for that
ready line. By default it listens on port 0, so the kernel picks a free port with
no race, and reads the real port from the ready line.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_RE = re.compile(r"^Tessera listening on (https?)://(\[[^\]]+\]|[^:\s]+):(\d+)\s*$", re.M)
ACCESS_KEY_RE = re.compile(r"^Root access key: (\S+)\s*$", re.M)
SECRET_KEY_RE = re.compile(r"^Root secret key: (\S+)\s*$", re.M)

START_TIMEOUT = 20.0
"""Seconds a server may take to print its ready line (the goal is under 2 s; this
bound only keeps a broken start from hanging the suite)."""
STOP_TIMEOUT = 20.0
"""Seconds a server may take to exit after SIGTERM/SIGINT (its graceful shutdown
waits up to 10 s for in-flight requests) before it is killed."""

ROOT_KEYS = ("TESSERAROOTKEY000001", "tessera-root-secret-for-tests-0123456789")
"""Fixed root credentials the harness passes through the environment by default."""
ALT_ACCOUNT = {
    "id": "alt",
    "display_name": "Alternate Tester",
    "email": "alt@example.com",
    "access_key": "TESSERAALTKEY0000001",
    "secret_key": "tessera-alt-secret-for-tests-0123456789",
}
"""A second account the session servers declare (``[[auth.accounts]]``)."""
REGION = "us-east-1"

_live: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_live):
        with suppress(OSError):
            proc.kill()


class ServerStartError(Exception):
    """The server exited or stayed silent instead of becoming ready; the message
    carries its stdout and stderr."""


@dataclass(frozen=True)
class TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1, ::1 and localhost."""

    ca_cert: Path
    cert: Path
    key: Path


def make_tls(directory: Path) -> TlsFiles:
    """Create a trustme CA and a server certificate in ``directory``."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "::1", "localhost")
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca.cert_pem.write_to_path(str(files.ca_cert))
    files.cert.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(files.key))
    return files


@dataclass
class Server:
    """A running ``tessera serve`` process."""

    proc: subprocess.Popen[bytes]
    data_dir: Path | None
    scheme: str
    host: str
    port: int
    access_key: str
    secret_key: str
    ca_bundle: str | None
    """CA certificate clients must trust (https only), else None."""
    stdout_path: Path
    stderr_path: Path
    startup_seconds: float
    """Seconds from spawning the process to its ready line."""

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def verify(self) -> str | bool:
        """``verify`` argument for boto3 / requests."""
        return self.ca_bundle or True

    @property
    def ca_path(self) -> str | None:
        """Same as :attr:`ca_bundle`."""
        return self.ca_bundle

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting the server's CA (https), else None."""
        return ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else None

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` and wait for exit; kill after ``timeout``. Returns the exit
        code (negative: killed by that signal). Idempotent."""
        return stop_process(self.proc, sig, timeout)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_command() -> list[str]:
    """The command that runs the CLI of the Tessera under test."""
    return [sys.executable, "-m", "tessera.cli.main", "serve"]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without ``TESSERA_*`` and ``AWS_*`` settings, plus
    ``extra``, so a developer's shell cannot change what a test runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "AWS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def launch(
    data_dir: Path | None,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    root_keys: tuple[str, str] | None = ROOT_KEYS,
    tls: TlsFiles | None = None,
    listen: str | None = "127.0.0.1:0",
    log_dir: Path | None = None,
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Spawn ``tessera serve`` without waiting for it.

    ``data_dir``/``listen`` become ``--data``/``--listen`` unless None (then the
    configuration decides); ``root_keys`` go in ``TESSERA_ROOT_*`` unless None (then
    the server uses its stored or generated ones). Output goes to files in
    ``log_dir`` (default: beside ``data_dir``). ``TESSERA_TEST_WORKERS=N`` in the
    test run's environment adds ``--workers N`` (unless ``args`` choose). Returns
    the process and the paths of its stdout and stderr.
    """
    cmd = server_command()
    if data_dir is not None:
        cmd += ["--data", str(data_dir)]
    if listen is not None:
        cmd += ["--listen", listen]
    if tls is not None:
        cmd += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    cmd += list(args)
    workers = os.environ.get("TESSERA_TEST_WORKERS")  # run a suite against N processes
    if workers and "--workers" not in args:
        cmd += ["--workers", workers]
    extra = dict(env or {})
    if root_keys is not None:
        extra.setdefault("TESSERA_ROOT_ACCESS_KEY", root_keys[0])
        extra.setdefault("TESSERA_ROOT_SECRET_KEY", root_keys[1])
    if log_dir is None:
        if data_dir is None:
            raise ValueError("log_dir is required when data_dir is None")
        log_dir = data_dir.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = f"server-{time.monotonic_ns()}"
    out_path, err_path = log_dir / f"{stem}.stdout", log_dir / f"{stem}.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=child_env(extra)
        )
    _live.add(proc)
    return proc, out_path, err_path


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT
) -> int:
    """Signal ``proc``, wait up to ``timeout`` s, then kill it. Returns its exit code."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _live.discard(proc)
    return proc.returncode


def wait_for_output(
    proc: subprocess.Popen[bytes],
    out_path: Path,
    err_path: Path,
    pattern: re.Pattern[str],
    timeout: float = START_TIMEOUT,
) -> re.Match[str]:
    """Poll the server's stdout until ``pattern`` matches. Raises ServerStartError
    (with both outputs) if the process exits first or ``timeout`` passes; in the
    latter case the process is killed."""
    deadline = time.monotonic() + timeout
    while True:
        text = out_path.read_text(errors="replace")
        m = pattern.search(text)
        if m is not None:
            return m
        if proc.poll() is not None:
            reason = f"tessera serve exited with code {proc.returncode} before it was ready"
            break
        if time.monotonic() > deadline:
            stop_process(proc, signal.SIGKILL)
            reason = f"tessera serve was not ready within {timeout:g} s (killed)"
            break
        time.sleep(0.02)
    raise ServerStartError(
        f"{reason}\n--- stdout ---\n{out_path.read_text(errors='replace')}"
        f"--- stderr ---\n{err_path.read_text(errors='replace')}"
    )


def start_server(
    data_dir: Path | None,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    root_keys: tuple[str, str] | None = ROOT_KEYS,
    tls: TlsFiles | None = None,
    listen: str | None = "127.0.0.1:0",
    log_dir: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> Server:
    """Spawn ``tessera serve`` (see :func:`launch`) and wait for its ready line.

    Root credentials are the ones passed, or else the ones the server printed.
    Raises ServerStartError.
    """
    started = time.monotonic()
    proc, out_path, err_path = launch(
        data_dir, args=args, env=env, root_keys=root_keys, tls=tls, listen=listen, log_dir=log_dir
    )
    ready = wait_for_output(proc, out_path, err_path, READY_RE, timeout)
    seconds = time.monotonic() - started
    text = out_path.read_text(errors="replace")
    access_key = secret_key = ""
    if root_keys is not None:
        access_key, secret_key = root_keys
    else:
        a, s = ACCESS_KEY_RE.search(text), SECRET_KEY_RE.search(text)
        access_key, secret_key = (a.group(1) if a else ""), (s.group(1) if s else "")
    return Server(
        proc=proc,
        data_dir=data_dir,
        scheme=ready.group(1),
        host=ready.group(2),
        port=int(ready.group(3)),
        access_key=access_key,
        secret_key=secret_key,
        ca_bundle=str(tls.ca_cert) if tls else None,
        stdout_path=out_path,
        stderr_path=err_path,
        startup_seconds=seconds,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (prefer ``--listen
    127.0.0.1:0`` where the test does not need to know the port in advance)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ clients


def boto3_client(
    server: Server,
    *,
    addressing_style: str = "path",
    access_key: str | None = None,
    secret_key: str | None = None,
    **config: Any,
) -> Any:
    """A boto3 S3 client for ``server`` with default settings apart from the
    addressing style (and any ``botocore.config.Config`` arguments in ``config``)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=access_key or server.access_key,
        aws_secret_access_key=secret_key or server.secret_key,
        verify=server.verify,
        config=Config(s3={"addressing_style": addressing_style}, **config),
    )


def vhost_client(server: Server, domain: str = "localhost") -> Any:
    """A boto3 client that addresses buckets virtual-host style (``BUCKET.localhost``).

    Names under ``localhost`` do not resolve without systemd-resolved, so the
    client connects to the server's own address and sends the virtual ``Host``
    header (the one it signed).
    """
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=f"{server.scheme}://{domain}:{server.port}",
        region_name=REGION,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        verify=server.verify,
        config=Config(s3={"addressing_style": "virtual"}),
    )
    target = f"{server.scheme}://{server.host}:{server.port}"

    def redirect(request: Any, **_: Any) -> None:
        scheme_end = request.url.index("://") + 3
        path_start = request.url.find("/", scheme_end)
        netloc = request.url[scheme_end : path_start if path_start >= 0 else None]
        request.headers["Host"] = netloc
        request.url = target + (request.url[path_start:] if path_start >= 0 else "/")

    client.meta.events.register("before-send.s3", redirect)
    return client


def aws_cli_env(server: Server, config_dir: Path) -> dict[str, str]:
    """Environment for the ``aws`` command against ``server``: credentials, region,
    path-style addressing and, for https, the CA bundle; nothing from ``~/.aws``."""
    config_dir.mkdir(parents=True, exist_ok=True)
    config_file = config_dir / "aws-config"
    config_file.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    env = child_env(
        {
            "AWS_ACCESS_KEY_ID": server.access_key,
            "AWS_SECRET_ACCESS_KEY": server.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(config_dir / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    if server.ca_bundle:
        env["AWS_CA_BUNDLE"] = server.ca_bundle
    return env


def aws_executable() -> str | None:
    """The ``aws`` command of this virtualenv, else the one on PATH, else None."""
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.exists() else shutil.which("aws")


RCLONE_REMOTE = "t"
"""Name of the rclone remote that :func:`rclone_env` configures (``t:bucket/key``)."""


def rclone_env(server: Server, config_dir: Path) -> dict[str, str]:
    """Environment that defines the rclone remote ``t:`` for ``server`` (no config file)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    conf = config_dir / "rclone.conf"
    conf.touch()
    prefix = f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_"
    env = child_env(
        {
            "RCLONE_CONFIG": str(conf),
            prefix + "TYPE": "s3",
            prefix + "PROVIDER": "Other",
            prefix + "ENDPOINT": server.endpoint,
            prefix + "ACCESS_KEY_ID": server.access_key,
            prefix + "SECRET_ACCESS_KEY": server.secret_key,
            prefix + "REGION": REGION,
            prefix + "FORCE_PATH_STYLE": "true",
        }
    )
    if server.ca_bundle:
        env["RCLONE_CA_CERT"] = server.ca_bundle
    return env


def empty_and_delete_bucket(client: Any, name: str) -> None:
    """Best effort: delete every version, delete marker and multipart upload in
    ``name``, then the bucket. Errors are ignored (the test may have done it)."""
    with suppress(Exception):
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                with suppress(Exception):
                    client.abort_multipart_upload(
                        Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
    with suppress(Exception):
        for batch in _version_batches(client, name):
            client.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
    with suppress(Exception):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    with suppress(Exception):
        client.delete_bucket(Bucket=name)


def _version_batches(client: Any, name: str) -> Iterator[list[dict[str, str]]]:
    for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
        items = page.get("Versions", []) + page.get("DeleteMarkers", [])
        batch = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in items]
        if batch:
            yield batch


# -- raw HTTP: for what S3 clients never send (truncated bodies, aws-chunked...) ----
@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes


def raw_connect(server: Server, timeout: float = 30.0) -> socket.socket:
    """A socket to ``server`` (TLS-wrapped over https)."""
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    ctx = server.ssl_context
    if ctx is not None:
        return ctx.wrap_socket(sock, server_hostname=server.host)
    return sock


def read_response(sock: socket.socket, *, head_only: bool = False) -> RawResponse:
    """Read one response (status line, headers, Content-Length body) from ``sock``.
    A closed connection before the status line gives status 0."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return RawResponse(0, {}, buf)
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return RawResponse(status, headers, rest[:length] if length else rest if head_only else b"")


def request_head(method: str, target: str, headers: Mapping[str, str]) -> bytes:
    """The request line and headers (ending with the blank line)."""
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def signed_head(
    server: Server,
    method: str,
    target: str,
    headers: Mapping[str, str] | None = None,
    *,
    payload_hash: str = "UNSIGNED-PAYLOAD",
) -> dict[str, str]:
    """Headers of a SigV4-signed request (botocore signs) for the raw ``target``
    (path and query, percent-encoded). The caller adds Content-Length."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class FixedPayload(S3SigV4Auth):
        def payload(self, request: Any) -> str:
            return payload_hash

    req = AWSRequest(method=method, url=server.endpoint + target, headers=dict(headers or {}))
    FixedPayload(Credentials(server.access_key, server.secret_key), "s3", REGION).add_auth(req)
    return {"Host": f"{server.host}:{server.port}", **dict(req.headers.items())}


def block_count(server: Server) -> int:
    """How many block files the server's data directory holds."""
    assert server.data_dir is not None
    return sum(1 for p in server.data_dir.glob("disk*/blocks/**/*") if p.is_file())
