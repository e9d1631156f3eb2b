"""Real clusters on 127.0.0.1: chunk server and gateway processes sharing one
metadata database (a SQLite file unless ``Cluster.meta`` names another URL),
for fault tests (kill, restart, corrupt, fill).

Heartbeats are fast here (every 0.2 s, down after 1.5 s) so a killed server is
noticed within seconds; everything else is the production code path.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness

from tessera.protocol.s3.sigv4 import sign_headers

CHUNK_READY = re.compile(r"^Tessera chunk server (\S+) .* listening on (\S+)\s*$", re.M)
SECRET = "cluster-secret-for-tests"
ROOT = harness.ROOT_KEYS
FAST = {
    "TESSERA_CLUSTER_SECRET": SECRET,
    "TESSERA_CLUSTER_HEARTBEAT_INTERVAL": "0.2",
    "TESSERA_CLUSTER_HEARTBEAT_TIMEOUT": "1.5",
}


def _spawn(
    args: list[str], log_dir: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = f"proc-{time.monotonic_ns()}"
    out_path, err_path = log_dir / f"{stem}.stdout", log_dir / f"{stem}.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tessera.cli.main", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=harness.child_env(env),
        )
    harness._live.add(proc)
    return proc, out_path, err_path


@dataclass
class ChunkServer:
    index: int
    disk: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    @property
    def id(self) -> str:
        return f"cs{self.index}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def blocks(self) -> list[Path]:
        return [p for p in (self.disk / "blocks").glob("*/*") if p.is_file()]


@dataclass
class Cluster:
    root: Path
    servers: list[ChunkServer] = field(default_factory=list)
    gateway: harness.Server | None = None
    gateways: list[harness.Server] = field(default_factory=list)
    """Every gateway started (``gateway`` is the latest); all stopped by ``stop``."""
    env: dict[str, str] = field(default_factory=dict)
    meta: str = ""
    """The metadata URL; empty means a SQLite file under ``root``."""

    @property
    def meta_url(self) -> str:
        return self.meta or f"sqlite:///{self.root / 'meta.db'}"

    def _env(self) -> dict[str, str]:
        return {**FAST, **self.env}

    def start_chunkserver(self, i: int, env: dict[str, str] | None = None) -> ChunkServer:
        return self.start_chunkservers([i], env)[0]

    def start_chunkservers(
        self, indexes: list[int], env: dict[str, str] | None = None
    ) -> list[ChunkServer]:
        """Spawn the chunk servers ``indexes`` at once, then wait for each."""
        started = [(i, *self._spawn_chunkserver(i, env)) for i in indexes]
        out_list = []
        for i, proc, out, err in started:
            m = harness.wait_for_output(proc, out, err, CHUNK_READY)
            cs = self.servers[i]
            cs.proc, cs.url = proc, m.group(2)
            out_list.append(cs)
        return out_list

    def _spawn_chunkserver(
        self, i: int, env: dict[str, str] | None
    ) -> tuple[subprocess.Popen[bytes], Path, Path]:
        while len(self.servers) <= i:
            n = len(self.servers)
            self.servers.append(ChunkServer(n, self.root / f"cs{n}" / "disk0"))
        cs = self.servers[i]
        return _spawn(
            [
                "chunkserver",
                "--data",
                str(cs.disk),
                "--listen",
                "127.0.0.1:0",
                "--id",
                cs.id,
                "--meta",
                self.meta_url,
            ],
            self.root / "logs",
            {**self._env(), **(env or {})},
        )

    def start_gateway(self, name: str = "gateway") -> harness.Server:
        """Spawn a gateway whose data directory (its LOCK file) is ``root/name``;
        it becomes ``self.gateway``."""
        env = {
            **self._env(),
            "TESSERA_ROOT_ACCESS_KEY": harness.ROOT_KEYS[0],
            "TESSERA_ROOT_SECRET_KEY": harness.ROOT_KEYS[1],
        }
        proc, out, err = _spawn(
            [
                "gateway",
                "--meta",
                self.meta_url,
                "--listen",
                "127.0.0.1:0",
                "--data",
                str(self.root / name),
            ],
            self.root / "logs",
            env,
        )
        started = time.monotonic()
        m = harness.wait_for_output(proc, out, err, harness.READY_RE)
        self.gateway = harness.Server(
            proc=proc,
            data_dir=self.root / name,
            scheme=m.group(1),
            host=m.group(2),
            port=int(m.group(3)),
            access_key=harness.ROOT_KEYS[0],
            secret_key=harness.ROOT_KEYS[1],
            ca_bundle=None,
            stdout_path=out,
            stderr_path=err,
            startup_seconds=time.monotonic() - started,
        )
        self.gateways.append(self.gateway)
        return self.gateway

    def start(self, n: int = 6) -> harness.Server:
        """The gateway first (it creates the schema), then ``n`` chunk servers at
        once; returns once the gateway sees them all up."""
        gateway = self.start_gateway()
        self.start_chunkservers(list(range(n)))
        self.wait_for_servers(n)
        return gateway

    def admin(self, method: str, path: str, gateway: harness.Server | None = None) -> Any:
        """A signed admin request to ``gateway`` (default: ``self.gateway``); the
        decoded JSON answer."""
        gateway = gateway or self.gateway
        assert gateway is not None
        url = f"{gateway.endpoint}/_tessera/v1/admin/{path}"
        headers = sign_headers(method, url, {}, access_key=ROOT[0], secret=ROOT[1])
        headers.pop("host")
        req = urllib.request.Request(url, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=300) as resp:
            return json.loads(resp.read())

    def wait_for_servers(
        self, n: int, up: bool = True, gateway: harness.Server | None = None
    ) -> None:
        """Until the gateway's (default: ``self.gateway``) cluster map has ``n``
        servers whose heartbeat is fresh (``up``) or ``n`` silent ones (not ``up``)."""
        import time as _t

        def ok() -> bool:
            now = _t.time()
            servers = self.admin("GET", "servers", gateway)
            fresh = [s for s in servers if now - s["heartbeat"] <= 1.5]
            return len(fresh if up else [s for s in servers if s not in fresh]) >= n

        wait_until(f"{n} chunk servers {'up' if up else 'down'}", ok)
        time.sleep(0.5)  # one more map refresh by the gateway

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc = self.servers[i].proc
        if proc is not None:
            harness.stop_process(proc, sig)

    def stop(self) -> None:
        for gateway in {id(g): g for g in [*self.gateways, self.gateway] if g}.values():
            gateway.stop()
        for cs in self.servers:
            if cs.proc is not None:
                harness.stop_process(cs.proc)


def wait_until(what: str, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``predicate`` every 0.1 s; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def put_many(
    s3: Any,
    bucket: str,
    *,
    n: int = 4,
    seed: int = 1,
    sizes: tuple[int, int] = (1 << 19, 3 << 20),
    storage_class: str = "STANDARD",
) -> dict[str, bytes]:
    """PUT ``n`` random objects of random sizes in ``sizes`` (keys ``obj<seed>-<i>``)."""
    rng = random.Random(seed)
    objects = {f"obj{seed}-{i}": rng.randbytes(rng.randint(*sizes)) for i in range(n)}
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data, StorageClass=storage_class)
    return objects


def check_reads(s3: Any, bucket: str, objects: dict[str, bytes], seed: int = 2) -> None:
    """Every object reads byte-exact, whole and in four random ranges each."""
    rng = random.Random(seed)
    for key, data in objects.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key
        for _ in range(4):
            a = rng.randrange(len(data))
            b = rng.randrange(a, len(data))
            got = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={a}-{b}")["Body"].read()
            assert got == data[a : b + 1], (key, a, b)


def admin_cli(gateway: harness.Server, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``tessera admin ARGS`` against ``gateway`` with the root keys."""
    env = harness.child_env(
        {
            "TESSERA_ENDPOINT": gateway.endpoint,
            "TESSERA_ROOT_ACCESS_KEY": harness.ROOT_KEYS[0],
            "TESSERA_ROOT_SECRET_KEY": harness.ROOT_KEYS[1],
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "tessera.cli.main", "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
