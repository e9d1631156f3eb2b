"""Fixtures for integration tests: real ``tessera serve`` processes on 127.0.0.1.

* ``http_server`` / ``https_server``: one server per session and scheme (https uses
  a trustme CA; clients get its bundle). ``server`` is parametrised over both, so
  a test that uses it (or ``s3``, ``aws_cli``, ``rclone``, ``bucket``) runs once
  over http and once over https.
* ``s3``: boto3 client, default settings, path-style, root account; ``s3_virtual``:
  the same with virtual-host style through ``BUCKET.localhost``; ``other_s3``: a
  path-style client of a second account (``harness.ALT_ACCOUNT``).
* ``aws_cli(*args)`` / ``rclone(*args)``: run the tool against ``server`` and
  return the CompletedProcess (text). The rclone remote is ``t:``; rclone tests
  are skipped when rclone is not installed (``scripts/test`` installs it).
* ``bucket``: a fresh, uniquely named bucket, emptied and deleted afterwards.

Servers are stopped at teardown (SIGTERM, then SIGKILL after a bound); tests that
need a server of their own use ``harness.start_server`` directly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import harness
import pytest

CLI_TIMEOUT = 120.0
"""Seconds one aws/rclone invocation may take before the test fails."""

RunTool = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> harness.TlsFiles:
    return harness.make_tls(tmp_path_factory.mktemp("tls"))


def _session_server(
    tmp_path_factory: pytest.TempPathFactory, tls: harness.TlsFiles | None
) -> Iterator[harness.Server]:
    base = tmp_path_factory.mktemp("https-server" if tls else "http-server")
    try:
        accounts = json.dumps([harness.ALT_ACCOUNT])
        server = harness.start_server(
            base / "data", tls=tls, env={"TESSERA_AUTH_ACCOUNTS": accounts}
        )
    except harness.ServerStartError as e:
        pytest.fail(str(e), pytrace=False)
    yield server
    code = server.stop()
    if code != 0:
        print(f"tessera serve exited with {code}\n{server.stderr()}")


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Server]:
    yield from _session_server(tmp_path_factory, None)


@pytest.fixture(scope="session")
def https_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: harness.TlsFiles
) -> Iterator[harness.Server]:
    yield from _session_server(tmp_path_factory, tls_files)


@pytest.fixture(scope="session", params=["http", "https"])
def server(request: pytest.FixtureRequest) -> harness.Server:
    """The session server for this test's scheme (each test runs for both)."""
    result: harness.Server = request.getfixturevalue(f"{request.param}_server")
    return result


@pytest.fixture(scope="session")
def s3(server: harness.Server) -> Any:
    """boto3 S3 client for ``server``: default settings, path-style addressing."""
    return harness.boto3_client(server)


@pytest.fixture(scope="session")
def s3_virtual(server: harness.Server) -> Any:
    """boto3 S3 client for ``server`` addressing buckets as ``BUCKET.localhost``."""
    return harness.vhost_client(server)


@pytest.fixture(scope="session")
def other_s3(server: harness.Server) -> Any:
    """boto3 S3 client (path-style) of the second account, ``harness.ALT_ACCOUNT``."""
    alt = harness.ALT_ACCOUNT
    return harness.boto3_client(server, access_key=alt["access_key"], secret_key=alt["secret_key"])


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    """A new empty bucket, removed with its contents after the test."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    yield name
    harness.empty_and_delete_bucket(s3, name)


def _runner(command: list[str], env: dict[str, str], cwd: Path) -> RunTool:
    def run(
        *args: str | Path,
        input: str | None = None,
        check: bool = False,
        timeout: float = CLI_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *map(str, args)],
            env=env,
            cwd=cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    return run


@pytest.fixture
def aws_cli(server: harness.Server, tmp_path: Path) -> RunTool:
    """``aws_cli("s3", "ls")`` runs ``aws --endpoint-url <server> s3 ls`` with the root
    credentials (and the CA bundle over https) in ``tmp_path``; returns the
    CompletedProcess (``check=True`` raises on failure)."""
    exe = harness.aws_executable()
    if exe is None:
        pytest.skip("aws cli is not installed (pip install -e '.[test]' provides it)")
    env = harness.aws_cli_env(server, tmp_path / ".aws")
    return _runner([exe, "--endpoint-url", server.endpoint], env, tmp_path)


@pytest.fixture
def rclone(server: harness.Server, tmp_path: Path) -> RunTool:
    """``rclone("lsf", "t:bucket")`` runs rclone with the remote ``t:`` pointing at
    ``server`` in ``tmp_path``; returns the CompletedProcess."""
    exe = shutil.which("rclone")
    if exe is None:
        pytest.skip("rclone is not installed (scripts/test installs the Debian package)")
    env = harness.rclone_env(server, tmp_path / ".rclone")
    return _runner([exe], env, tmp_path)
