"""``tessera dev-cluster``: a whole cluster on 127.0.0.1 in one command.

Starts ``--servers`` chunk servers (one disk each, spread over ``--zones``
zones) and one gateway, all sharing one SQLite metadata file and one generated
cluster secret under ``--data``, and prints the gateway's ready line. SIGTERM or
SIGINT stops them all. A chunk server that dies is reported, not restarted (so
failures can be watched and healed); the command exits when the gateway exits.

Layout of ``--data``::

    meta.db               the cluster map and all metadata (SQLite, WAL)
    cluster-secret        the chunk servers' shared key (mode 0600)
    gateway/              the gateway's LOCK and root credentials
    cs<i>/disk0/          chunk server i's disk; logs in cs<i>/log
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

READY = re.compile(r"listening on (\S+)")
START_TIMEOUT = 30.0


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, what: str) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        m = READY.search(text)
        if m:
            return m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not start:\n{tail}")


def _secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def dev_cluster_command(
    servers: Annotated[int, typer.Option("--servers", min=1, max=64, help="Chunk servers.")] = 6,
    data: Annotated[Path, typer.Option("--data", help="Directory for everything.")] = Path(
        "tessera-cluster"
    ),
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="The gateway's address.")
    ] = "127.0.0.1:9000",
    zones: Annotated[int, typer.Option("--zones", min=1, help="Zones to spread servers over.")] = 1,
) -> None:
    """Run a local cluster: N chunk servers and a gateway on 127.0.0.1."""
    data = data.absolute()
    data.mkdir(parents=True, exist_ok=True)
    meta_url = f"sqlite:///{data / 'meta.db'}"
    from tessera.meta.sql.store import SqlMetadataStore

    async def migrate() -> None:
        store = await SqlMetadataStore.connect(meta_url, migrate=True)
        await store.close()

    asyncio.run(migrate())
    env = dict(os.environ, TESSERA_CLUSTER_SECRET=_secret(data / "cluster-secret"))
    cmd = [sys.executable, "-m", "tessera.cli.main"]
    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(name: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*cmd, *args], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        children.append((name, proc))
        return proc

    def stop_all() -> None:
        for _, proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in children:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for i in range(servers):
            log = data / f"cs{i}" / "log"
            proc = spawn(
                f"cs{i}",
                [
                    "chunkserver",
                    "--data",
                    str(data / f"cs{i}" / "disk0"),
                    "--listen",
                    "127.0.0.1:0",
                    "--zone",
                    f"zone{i % zones}",
                    "--id",
                    f"cs{i}",
                    "--meta",
                    meta_url,
                ],
                log,
            )
            url = _wait_ready(proc, log, f"chunk server cs{i}")
            typer.echo(f"chunk server cs{i} (zone{i % zones}) at {url}, log {log}")
        log = data / "gateway" / "log"
        gateway = spawn(
            "gateway",
            ["gateway", "--meta", meta_url, "--listen", listen, "--data", str(data / "gateway")],
            log,
        )
        _wait_ready(gateway, log, "gateway")
        typer.echo(log.read_text(errors="replace").strip())
        typer.echo(f"(gateway log {log}; stop with Ctrl-C)")
        dead: set[str] = set()
        while not stopping and gateway.poll() is None:
            for name, proc in children:
                if proc.poll() is not None and name not in dead:
                    dead.add(name)
                    typer.echo(f"{name} exited with status {proc.returncode}", err=True)
            time.sleep(0.2)
    except RuntimeError as e:
        typer.echo(f"tessera dev-cluster: {e}", err=True)
        stop_all()
        raise typer.Exit(1) from None
    finally:
        stop_all()
