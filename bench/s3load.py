"""S3 load generator: large PUT/GET, random range GETs, small-object ops, over HTTP.

By default it starts ``tessera serve`` on a free 127.0.0.1 port with a temporary
data directory (removed afterwards) and random root credentials. With
``--endpoint`` it targets any S3 server already running on 127.0.0.1 (Tessera,
SeaweedFS, moto...), creating and removing its own bucket there.

    python bench/s3load.py                           # all workloads, full sizes
    python bench/s3load.py --quick                   # smoke run: 4 x 16 MiB, 200 ranges, 500 small
    python bench/s3load.py --workloads small --small-count 20000 --json out.json
    python bench/s3load.py --endpoint http://127.0.0.1:8333 --access-key A --secret-key S \\
        --server-pid 1234                            # server CPU/RSS only when its pid is given

Workloads (default sizes):

- large: 4 x 256 MiB PUT, then GET them back, 4 in flight; MB/s (10^6 bytes/s).
- range: one 256 MiB object (uploaded untimed), then 1,000 random unaligned 1 MiB
  range GETs at concurrency 32.
- small: 5,000 x 4 KiB PUT, GET, HEAD, a full ListObjectsV2 (1,000 keys a page,
  pages are sequential by nature; reported as keys/s; the pages are parsed and
  every key checked after the timed walk, which only finds each next token),
  DELETE, at concurrency 32.

Every byte read back is compared with the slice of the one random buffer it was
uploaded from (``bytes.startswith`` at an offset: a memcmp, ~5 GB/s); small ETags
are checked against the MD5 of the body. Requests are signed with SigV4
(``UNSIGNED-PAYLOAD`` for PUT bodies, the empty-body SHA-256 otherwise) and sent
through httpclient.Pool, a lean keep-alive pool on asyncio protocols and httptools
(aiohttp's client cost ~150 us of CPU per small request, taken from the server on
a 2-core machine); large bodies go out in 1 MiB memoryview slices and bodies read
back are checked chunk by chunk as they arrive.

Per operation it prints count, errors, p50/p99 latency, throughput, the client's
own CPU seconds (getrusage) and the server's CPU seconds and peak RSS (psutil and
/proc VmHWM, reset per phase through clear_refs when permitted). If client CPU is
near 100% of wall time, the client is the bottleneck, not the server. Every loop
is bounded by a count and every request by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import html
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import httptools
import psutil
from httpclient import Pool, Response

from tessera.protocol.s3.sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD, sign_headers

REPO = Path(__file__).resolve().parents[1]
MiB = 1 << 20
CHUNK = MiB
READY_PREFIX = "Tessera listening on"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
NEXT_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def client_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class BadResponse(Exception):
    """Unexpected status or header."""


class WrongBytes(Exception):
    """Data read back differs from what was written."""


@dataclass
class OpStats:
    name: str
    unit: str = "ops/s"
    lat: list[float] = field(default_factory=list)
    errors: int = 0
    messages: list[str] = field(default_factory=list)
    nbytes: int = 0
    items: int = 0  # keys listed (LIST)
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None
    server_peak_mib: float | None = None

    def fail(self, err: BaseException) -> None:
        self.errors += 1
        if len(self.messages) < 5:
            self.messages.append(f"{type(err).__name__}: {err}"[:400])

    def pct(self, q: float) -> float:
        s = sorted(self.lat)
        return s[min(len(s) - 1, int(q * len(s)))] * 1e3 if s else float("nan")

    def rate(self) -> float:
        if not self.wall:
            return 0.0
        if self.unit == "MB/s":
            return self.nbytes / self.wall / 1e6
        return (self.items if self.unit == "keys/s" else len(self.lat)) / self.wall


class Server:
    """The server's pid, for CPU time and peak RSS (optional). A server with worker
    processes (``tessera serve --workers N``) is measured as a tree: CPU seconds
    and peak RSS are summed over the pid and its live children."""

    def __init__(self, pid: int | None) -> None:
        self.proc = psutil.Process(pid) if pid else None
        self.hwm_reset = False

    def tree(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        with contextlib.suppress(psutil.Error):
            return [self.proc, *self.proc.children(recursive=True)]
        return [self.proc]

    def cpu(self) -> float | None:
        if self.proc is None:
            return None
        total = 0.0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def reset_peak(self) -> None:
        if self.proc is None:
            return
        self.hwm_reset = True
        for p in self.tree():
            try:  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
                Path(f"/proc/{p.pid}/clear_refs").write_text("5")
            except OSError:
                self.hwm_reset = False

    def peak_mib(self) -> float | None:
        if self.proc is None:
            return None
        total = 0.0
        for p in self.tree():
            with contextlib.suppress(OSError, psutil.Error):
                for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) / 1024
        return total


class S3:
    """Path-style SigV4 requests over one lean keep-alive connection pool."""

    def __init__(self, http: Pool, access: str, secret: str, region: str) -> None:
        self.http, self.origin = http, f"http://{http.netloc}"
        self.access, self.secret, self.region = access, secret, region

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | memoryview | None = None,
        expect: int = 200,
        on_body: Callable[[bytes], None] | None = None,
    ) -> Response:
        """One request; BadResponse unless the status is ``expect``. ``on_body``
        receives the body of an expected answer as it arrives."""
        target = quote(path, safe="/-_.~")
        if query:
            target += "?" + "&".join(
                f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query.items()
            )
        signed = sign_headers(
            method,
            self.origin + target,
            headers or {},
            access_key=self.access,
            secret=self.secret,
            region=self.region,
            payload_hash=UNSIGNED_PAYLOAD if data is not None else EMPTY_SHA256,
        )
        resp = await self.http.request(
            method, target, signed, data, on_body=on_body, body_status=expect
        )
        if resp.status != expect:
            body = resp.body[:300].decode(errors="replace")
            raise BadResponse(f"{method} {path}: HTTP {resp.status} (want {expect}) {body}")
        return resp


class Verifier:
    """Checks a streamed body equals buf[base:base+length]; ``on_body`` per chunk,
    then ``check()`` for the length. Returns the byte count."""

    __slots__ = ("base", "buf", "length", "pos", "what")

    def __init__(self, buf: bytes, base: int, length: int, what: str) -> None:
        self.buf, self.base, self.length, self.what, self.pos = buf, base, length, what, 0

    def on_body(self, chunk: bytes) -> None:
        n, pos = len(chunk), self.pos
        if pos + n > self.length or not self.buf.startswith(chunk, self.base + pos):
            buf, base = self.buf, self.base
            at = next(
                (i for i in range(min(n, self.length - pos)) if chunk[i] != buf[base + pos + i]),
                self.length - pos,
            )
            raise WrongBytes(f"{self.what}: first wrong byte at offset {pos + at} of {self.length}")
        self.pos = pos + n

    def check(self) -> int:
        if self.pos != self.length:
            raise WrongBytes(f"{self.what}: got {self.pos} bytes, want {self.length}")
        return self.pos


async def pool(n: int, concurrency: int, fn: Callable[[int], Awaitable[None]]) -> None:
    """Run fn(0..n-1) with at most ``concurrency`` in flight."""
    it: Iterator[int] = iter(range(n))

    async def worker() -> None:
        for i in it:
            await fn(i)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))


class Bench:
    def __init__(self, s3: S3, server: Server, args: argparse.Namespace, buf: bytes) -> None:
        self.s3, self.server, self.args, self.buf = s3, server, args, buf
        self.bucket = f"s3load-{secrets.token_hex(4)}"
        self.rows: list[OpStats] = []

    async def phase(
        self, name: str, unit: str, n: int, concurrency: int, fn: Callable[[int], Awaitable[int]]
    ) -> OpStats:
        op = OpStats(name, unit)

        async def one(i: int) -> None:
            t = time.perf_counter()
            try:
                got = await fn(i)
            except (OSError, TimeoutError, BadResponse, WrongBytes, ET.ParseError) as e:
                op.fail(e)
                return
            op.lat.append(time.perf_counter() - t)
            op.nbytes += got

        print(f"# {name}: start ({n} x, concurrency {concurrency})", file=sys.stderr, flush=True)
        self.server.reset_peak()
        c0, s0, t0 = client_cpu(), self.server.cpu(), time.perf_counter()
        await pool(n, concurrency, one)
        op.wall = time.perf_counter() - t0
        op.client_cpu = client_cpu() - c0
        s1 = self.server.cpu()
        op.server_cpu = None if s0 is None or s1 is None else s1 - s0
        op.server_peak_mib = self.server.peak_mib()
        print(f"# {name}: done in {op.wall:.2f} s, {op.errors} errors", file=sys.stderr, flush=True)
        self.rows.append(op)
        return op

    def key_path(self, key: str) -> str:
        return f"/{self.bucket}/{key}"

    async def put(self, key: str, view: memoryview) -> str:
        hdrs = {"content-length": str(len(view)), "content-type": "application/octet-stream"}
        resp = await self.s3.call("PUT", self.key_path(key), headers=hdrs, data=view)
        return resp.headers.get("etag", "")

    # ------------------------------------------------------------- workloads

    async def large(self) -> None:
        a = self.args
        offsets = [i * 4099 for i in range(a.large_count)]  # unaligned: no shared segments

        async def put(i: int) -> int:
            view = memoryview(self.buf)[offsets[i] : offsets[i] + a.large_size]
            await self.put(f"large/{i}", view)
            return len(view)

        async def get(i: int) -> int:
            v = Verifier(self.buf, offsets[i], a.large_size, f"GET large/{i}")
            await self.s3.call("GET", self.key_path(f"large/{i}"), on_body=v.on_body)
            return v.check()

        await self.phase("large PUT", "MB/s", a.large_count, a.large_concurrency, put)
        await self.phase("large GET", "MB/s", a.large_count, a.large_concurrency, get)
        if a.degrade:
            # e.g. kill two chunk servers, then read everything again
            await asyncio.to_thread(subprocess.run, a.degrade, shell=True, check=True)
            await asyncio.sleep(a.degrade_wait)
            await self.phase("large GET degraded", "MB/s", a.large_count, a.large_concurrency, get)
        await pool(a.large_count, 4, lambda i: self.delete(f"large/{i}"))

    async def range(self) -> None:
        a = self.args
        base, size, rsize = 7, a.range_object, a.range_size
        await self.put("range/obj", memoryview(self.buf)[base : base + size])
        rng = random.Random(a.seed)
        starts = [rng.randrange(0, size - rsize + 1) for _ in range(a.ranges)]

        async def get(i: int) -> int:
            lo = starts[i]
            hi = lo + rsize - 1
            v = Verifier(self.buf, base + lo, rsize, f"GET range/obj bytes={lo}-{hi}")
            hdrs = {"range": f"bytes={lo}-{hi}"}
            resp = await self.s3.call(
                "GET", self.key_path("range/obj"), headers=hdrs, expect=206, on_body=v.on_body
            )
            want = f"bytes {lo}-{hi}/{size}"
            if resp.headers.get("content-range") != want:
                raise BadResponse(
                    f"Content-Range {resp.headers.get('content-range')!r}, want {want!r}"
                )
            return v.check()

        await self.phase("range GET", "ops/s", a.ranges, a.range_concurrency, get)
        await self.delete("range/obj")

    async def small(self) -> None:
        a = self.args
        n, size, conc = a.small_count, a.small_size, a.concurrency
        span = len(self.buf) - size
        offsets = [(i * 4097 + 3) % span for i in range(n)]
        keys = [f"small/{i:08d}" for i in range(n)]
        etags: dict[int, str] = {}

        async def put(i: int) -> int:
            view = memoryview(self.buf)[offsets[i] : offsets[i] + size]
            etag = await self.put(keys[i], view)
            want = '"' + hashlib.md5(view).hexdigest() + '"'
            if etag != want:
                raise BadResponse(f"PUT {keys[i]}: ETag {etag}, want {want}")
            etags[i] = etag
            return len(view)

        async def get(i: int) -> int:
            v = Verifier(self.buf, offsets[i], size, f"GET {keys[i]}")
            await self.s3.call("GET", self.key_path(keys[i]), on_body=v.on_body)
            return v.check()

        async def head(i: int) -> int:
            resp = await self.s3.call("HEAD", self.key_path(keys[i]))
            got = (resp.headers.get("content-length"), resp.headers.get("etag"))
            if got != (str(size), etags.get(i)):
                raise BadResponse(f"HEAD {keys[i]}: (Content-Length, ETag) = {got}")
            return 0

        async def delete(i: int) -> int:
            await self.s3.call("DELETE", self.key_path(keys[i]), expect=204)
            return 0

        await self.phase("small PUT", "ops/s", n, conc, put)
        await self.phase("small GET", "ops/s", n, conc, get)
        await self.phase("small HEAD", "ops/s", n, conc, head)
        pages: list[bytes] = []

        async def list_all(_: int) -> int:
            # Timed: the requests, and finding the next token. The XML is parsed and
            # checked after the phase, as a client that just streams a listing
            # would not parse it either, and ElementTree cost ~2.8 ms a page here.
            pages.clear()
            token = ""
            for _page in range(n // a.list_page + 2):  # bounded: one page more than needed
                q = {"list-type": "2", "prefix": "small/", "max-keys": str(a.list_page)}
                if token:
                    q["continuation-token"] = token
                root = (await self.s3.call("GET", f"/{self.bucket}", query=q)).body
                pages.append(root)
                if b"<IsTruncated>true</IsTruncated>" not in root:
                    break
                m = NEXT_TOKEN.search(root)
                token = html.unescape(m.group(1).decode()) if m else ""
                if not token:
                    raise BadResponse("IsTruncated without NextContinuationToken")
            else:
                raise BadResponse("listing did not end")
            return 0

        op = await self.phase("small LIST", "keys/s", 1, 1, list_all)
        listed: list[str] = []
        try:
            for page in pages:
                doc = ET.fromstring(page)
                listed.extend(e.text or "" for e in doc.iter(f"{NS}Key"))
        except ET.ParseError as e:
            op.fail(e)
        if not op.errors and listed != keys:
            missing = sorted(set(keys) - set(listed))[:3]
            extra = sorted(set(listed) - set(keys))[:3]
            op.fail(
                BadResponse(
                    f"LIST: {len(listed)} keys, want {n}; missing {missing}, unexpected {extra}"
                )
            )
        op.items = len(listed)
        await self.phase("small DELETE", "ops/s", n, conc, delete)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(OSError, TimeoutError, BadResponse):
            await self.s3.call("DELETE", self.key_path(key), expect=204)

    async def run(self) -> None:
        await self.s3.call("PUT", f"/{self.bucket}")
        try:
            for w in self.args.workloads.split(","):
                await getattr(self, w)()
        finally:
            with contextlib.suppress(OSError, TimeoutError, BadResponse):
                await self.s3.call("DELETE", f"/{self.bucket}", expect=204)


# ------------------------------------------------------------------ server


@contextlib.contextmanager
def tessera_server(args: argparse.Namespace) -> Iterator[tuple[str, str, str, int]]:
    """Start ``tessera serve`` on 127.0.0.1:0; yield (endpoint, access, secret, pid)."""
    root = Path(tempfile.mkdtemp(prefix="tessera-s3load-", dir=args.data_parent))
    access, secret = "S3LOAD" + secrets.token_hex(7).upper(), secrets.token_urlsafe(30)
    env = {**os.environ, "TESSERA_ROOT_ACCESS_KEY": access, "TESSERA_ROOT_SECRET_KEY": secret}
    exe = Path(sys.executable).with_name("tessera")
    cmd = [str(exe), "serve", "--data", str(root / "data"), "--listen", "127.0.0.1:0"]
    cmd += ["--workers", str(args.workers)]
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        url = ""
        while not url:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tessera serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith(READY_PREFIX):
                    url = line.split()[-1]
        print(f"# server pid {proc.pid} at {url}, log {log}", file=sys.stderr, flush=True)
        yield url, access, secret, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        elif not args.keep:
            print(f"# server exited early with {proc.returncode}", file=sys.stderr)
        text = log.read_text(errors="replace")
        bad = [ln for ln in text.splitlines() if " ERROR " in ln or "Traceback" in ln]
        if bad:
            print(f"# server log: {len(bad)} ERROR/Traceback lines, first:", file=sys.stderr)
            print("\n".join(bad[:5]), file=sys.stderr)
        if args.keep:
            print(f"# kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------ output


def table(rows: list[OpStats]) -> str:
    head = ["op", "n", "err", "p50 ms", "p99 ms", "rate", "unit", "MB/s", "wall s",
            "cli CPU s", "cli %", "srv CPU s", "srv %", "srv peak MiB"]  # fmt: skip
    lines = [head]
    for r in rows:
        srv = r.server_cpu
        lines.append([
            r.name, str(len(r.lat) + r.errors), str(r.errors), f"{r.pct(0.5):.2f}",
            f"{r.pct(0.99):.2f}", f"{r.rate():,.0f}" if r.unit != "MB/s" else f"{r.rate():.0f}",
            r.unit, f"{r.nbytes / r.wall / 1e6:.0f}" if r.wall and r.nbytes else "-",
            f"{r.wall:.2f}", f"{r.client_cpu:.2f}", f"{100 * r.client_cpu / r.wall:.0f}",
            "-" if srv is None else f"{srv:.2f}", "-" if srv is None else f"{100 * srv / r.wall:.0f}",
            "-" if r.server_peak_mib is None else f"{r.server_peak_mib:.0f}",
        ])  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


async def main_async(
    args: argparse.Namespace, endpoint: str, access: str, secret: str, pid: int | None
) -> Bench:
    need = max(
        args.large_size + 4099 * args.large_count, args.range_object + 7, args.small_size * 2
    )
    t = time.perf_counter()
    rng = random.Random(args.seed)
    buf = b"".join(rng.randbytes(min(MiB, need - o)) for o in range(0, need, MiB))
    print(
        f"# {need / MiB:.0f} MiB payload buffer in {time.perf_counter() - t:.2f} s", file=sys.stderr
    )
    u = urlsplit(endpoint)
    limit = max(args.concurrency, args.range_concurrency, args.large_concurrency)
    http = Pool(u.hostname or "127.0.0.1", u.port or 80, limit, args.timeout)
    try:
        bench = Bench(S3(http, access, secret, args.region), Server(pid), args, buf)
        await bench.run()
    finally:
        http.close()
    return bench


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--workloads",
        default="large,range,small",
        help="comma-separated subset of large,range,small",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="4 x 16 MiB, 16 MiB range object, 200 ranges, 500 small",
    )
    p.add_argument(
        "--degrade",
        metavar="CMD",
        help="after the large GET: run CMD (shell; e.g. kill two servers), then GET again",
    )
    p.add_argument("--degrade-wait", type=float, default=0.0, help="seconds after --degrade")
    p.add_argument("--large-size", type=parse_size, default=256 * MiB)
    p.add_argument("--large-count", type=int, default=4)
    p.add_argument("--large-concurrency", type=int, default=4)
    p.add_argument("--range-object", type=parse_size, default=256 * MiB)
    p.add_argument("--range-size", type=parse_size, default=MiB)
    p.add_argument("--ranges", type=int, default=1000)
    p.add_argument("--range-concurrency", type=int, default=32)
    p.add_argument("--small-count", type=int, default=5000)
    p.add_argument("--small-size", type=parse_size, default=4096)
    p.add_argument("--concurrency", type=int, default=32, help="small-object concurrency")
    p.add_argument("--list-page", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=1, help="tessera serve --workers [1]")
    p.add_argument("--endpoint", help="http://127.0.0.1:PORT of a running S3 server")
    p.add_argument("--access-key")
    p.add_argument("--secret-key")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--server-pid", type=int, help="pid of the --endpoint server (CPU, RSS)")
    p.add_argument(
        "--data-parent", default=None, help="where the temporary data dir goes [default: $TMPDIR]"
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary data dir and log")
    p.add_argument("--json", metavar="FILE", help="write results as JSON")
    args = p.parse_args()  # fmt: skip
    if args.quick:
        args.large_size = args.range_object = min(args.large_size, 16 * MiB)
        args.ranges, args.small_count = min(args.ranges, 200), min(args.small_count, 500)
    bad = set(args.workloads.split(",")) - {"large", "range", "small"}
    if bad:
        p.error(f"unknown workloads {sorted(bad)}")
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.endpoint:
        if urlsplit(args.endpoint).hostname != "127.0.0.1":
            p.error("--endpoint must be on 127.0.0.1")
        if not (args.access_key and args.secret_key):
            p.error("--endpoint needs --access-key and --secret-key")
        ctx: contextlib.AbstractContextManager[tuple[str, str, str, int | None]] = (
            contextlib.nullcontext(
                (args.endpoint, args.access_key, args.secret_key, args.server_pid)
            )
        )
    else:
        ctx = tessera_server(args)
    with ctx as (endpoint, access, secret, pid):
        bench = asyncio.run(main_async(args, endpoint, access, secret, pid))
        server = Server(pid)
        alive = server.proc is None or server.proc.is_running()
    print(f"# {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
          f"httptools {httptools.__version__}, endpoint {endpoint}, server alive after run: {alive}")  # fmt: skip
    print(table(bench.rows))
    for r in bench.rows:
        for m in r.messages:
            print(f"! {r.name}: {m}")
    if args.json:
        out = {
            "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "args": vars(args),
            "rows": [{**{k: v for k, v in asdict(r).items() if k != "lat"}, "n": len(r.lat) + r.errors,
                      "p50_ms": r.pct(0.5), "p99_ms": r.pct(0.99), "rate": r.rate()} for r in bench.rows],
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    if any(r.errors for r in bench.rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
