"""``tessera admin``: operator commands against a running gateway or server.

They call the admin endpoints (``/_tessera/v1/admin/``, see
:mod:`tessera.gateway.admin`) signed with the root account's key: from
``--access-key/--secret-key``, else ``TESSERA_ROOT_ACCESS_KEY`` /
``TESSERA_ROOT_SECRET_KEY``, else ``<--data>/root-credentials.toml``.

Exit codes: 0 success; 1 the request failed, or ``verify`` found segments that
are not fully redundant; 2 usage error.
"""

from __future__ import annotations

import json
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tessera.protocol.s3.sigv4 import sign_headers

admin_app = typer.Typer(help="Operate a running Tessera: healing, verification, chunk servers.")
heal_app = typer.Typer(help="The healer: status and full passes.")
server_app = typer.Typer(help="Chunk servers in the cluster map.")
admin_app.add_typer(heal_app, name="heal")
admin_app.add_typer(server_app, name="server")

Endpoint = Annotated[
    str,
    typer.Option("--endpoint", envvar="TESSERA_ENDPOINT", help="Gateway or server URL."),
]
AccessKey = Annotated[
    str | None,
    typer.Option("--access-key", envvar="TESSERA_ROOT_ACCESS_KEY", help="Root access key."),
]
SecretKey = Annotated[
    str | None,
    typer.Option("--secret-key", envvar="TESSERA_ROOT_SECRET_KEY", help="Root secret key."),
]
DataDir = Annotated[
    Path,
    typer.Option(
        "--data", help="Data directory holding root-credentials.toml (if no key is given)."
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]
DEFAULT_ENDPOINT = "http://127.0.0.1:9000"


def _credentials(access: str | None, secret: str | None, data: Path) -> tuple[str, str]:
    if access and secret:
        return access, secret
    path = data / "root-credentials.toml"
    try:
        doc = tomllib.loads(path.read_text())
        return str(doc["access_key"]), str(doc["secret_key"])
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        typer.echo(
            f"tessera admin: no root credentials (give --access-key/--secret-key, set "
            f"TESSERA_ROOT_ACCESS_KEY/TESSERA_ROOT_SECRET_KEY, or point --data at the "
            f"server's data directory; {path} is unreadable)",
            err=True,
        )
        raise typer.Exit(2) from None


def call(
    method: str, endpoint: str, path: str, creds: tuple[str, str], timeout: float = 3600.0
) -> Any:
    """One signed admin request; returns the decoded JSON or exits 1 with the error."""
    url = endpoint.rstrip("/") + "/_tessera/v1/admin/" + path
    headers = sign_headers(method, url, {}, access_key=creds[0], secret=creds[1])
    headers.pop("host", None)
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        typer.echo(f"tessera admin: {method} {url}: HTTP {e.code}: {body.strip()}", err=True)
    except (urllib.error.URLError, OSError) as e:
        typer.echo(f"tessera admin: cannot reach {endpoint}: {e}", err=True)
    raise typer.Exit(1)


def _print(doc: Any, as_json: bool, lines: list[str]) -> None:
    typer.echo(json.dumps(doc, indent=1) if as_json else "\n".join(lines))


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _heal_lines(st: dict[str, Any]) -> list[str]:
    state = "running" if st.get("running") else "idle"
    if st.get("interrupted"):
        state = "interrupted (the process running the pass stopped publishing)"
    where = f" in {st['holder']}" if st.get("holder") else ""
    return [
        f"healer: {state}, {st.get('passes', 0)} pass(es){where}; last: {st.get('mode') or '-'}",
        f"  segments {st['segments']}: healthy {st['healthy']}, degraded {st['degraded']}, "
        f"unavailable {st['unavailable']}, lost {st['lost']}",
        f"  rebuilt {st['fragments_rebuilt']} fragment(s), {_mib(st['bytes_rebuilt'])} "
        f"at {_mib(st.get('rate_bytes_per_s', 0))}/s; {st['manifests_updated']} manifest(s) "
        f"updated; read repairs {st['read_repairs']}; errors {st['errors']}"
        + (f" (last: {st['last_error']})" if st.get("last_error") else ""),
        f"  elapsed {st.get('elapsed', 0):.1f} s",
    ]


@heal_app.command("status")
def heal_status(
    endpoint: Endpoint = DEFAULT_ENDPOINT,
    access_key: AccessKey = None,
    secret_key: SecretKey = None,
    data: DataDir = Path("tessera-data"),
    as_json: JsonOut = False,
) -> None:
    """Progress and rate of the current (or last) healing pass."""
    st = call("GET", endpoint, "heal", _credentials(access_key, secret_key, data))
    _print(st, as_json, _heal_lines(st))


@heal_app.command("run")
def heal_run(
    endpoint: Endpoint = DEFAULT_ENDPOINT,
    access_key: AccessKey = None,
    secret_key: SecretKey = None,
    data: DataDir = Path("tessera-data"),
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the pass to end.")
    ] = True,
    as_json: JsonOut = False,
) -> None:
    """Run a full healing pass now (rebuild every missing or misplaced fragment)."""
    st = call(
        "POST",
        endpoint,
        f"heal?mode=heal&wait={int(wait)}",
        _credentials(access_key, secret_key, data),
    )
    _print(st, as_json, _heal_lines(st) if wait else ["healing pass started"])


@admin_app.command("verify")
def verify(
    endpoint: Endpoint = DEFAULT_ENDPOINT,
    access_key: AccessKey = None,
    secret_key: SecretKey = None,
    data: DataDir = Path("tessera-data"),
    deep: Annotated[
        bool, typer.Option("--deep", help="Re-read every fragment and check its CRC32Cs.")
    ] = False,
    as_json: JsonOut = False,
) -> None:
    """Check that every stored segment has all its fragments (exit 1 if not)."""
    st = call(
        "POST",
        endpoint,
        f"heal?mode=verify&wait=1&deep={int(deep)}",
        _credentials(access_key, secret_key, data),
    )
    ok = st["healthy"] == st["segments"]
    lines = [
        *_heal_lines(st)[1:2],
        "full redundancy: yes" if ok else "full redundancy: NO (run `tessera admin heal run`)",
    ]
    _print(st, as_json, lines)
    if not ok:
        raise typer.Exit(1)


@server_app.command("list")
def server_list(
    endpoint: Endpoint = DEFAULT_ENDPOINT,
    access_key: AccessKey = None,
    secret_key: SecretKey = None,
    data: DataDir = Path("tessera-data"),
    as_json: JsonOut = False,
) -> None:
    """The chunk servers of the cluster map, with their disks."""
    servers = call("GET", endpoint, "servers", _credentials(access_key, secret_key, data))
    lines = []
    for s in servers:
        free = sum(d["free"] for d in s["disks"])
        total = sum(d["total"] for d in s["disks"])
        lines.append(
            f"{s['id']:<16} {s['state']:<9} zone {s['zone']:<10} {s['url']:<28} "
            f"{len(s['disks'])} disk(s), {free / 1e9:.1f}/{total / 1e9:.1f} GB free"
        )
    _print(servers, as_json, lines or ["no chunk servers registered"])


def _set_state(state: str, server_id: str, endpoint: str, creds: tuple[str, str]) -> None:
    info = call("POST", endpoint, f"servers/{server_id}?state={state}", creds)
    typer.echo(f"{info['id']}: {info['state']}")


def _state_command(state: str, doc: str) -> Callable[..., None]:
    """Register ``tessera admin server <verb> ID`` setting ``state``."""

    def command(
        server_id: str,
        endpoint: Endpoint = DEFAULT_ENDPOINT,
        access_key: AccessKey = None,
        secret_key: SecretKey = None,
        data: DataDir = Path("tessera-data"),
    ) -> None:
        _set_state(state, server_id, endpoint, _credentials(access_key, secret_key, data))

    command.__doc__ = doc
    return command


for _verb, _state, _doc in (
    (
        "drain",
        "draining",
        "Stop placing fragments on a server; healing passes move its fragments away.",
    ),
    (
        "remove",
        "removed",
        "Forget a server: its fragments count as lost and are rebuilt elsewhere.",
    ),
    (
        "add",
        "active",
        "(Re)activate a registered server: it takes new fragments again, and healing\n"
        "passes rebalance fragments whose placement now ranks it first.",
    ),
):
    server_app.command(_verb)(_state_command(_state, _doc))
