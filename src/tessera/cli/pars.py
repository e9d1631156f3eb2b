"""``tessera par create|list|revoke``: pre-authenticated requests from the shell.

``create`` prints the link itself (the caller owns the bucket, so there is no
one to encrypt it for; the SDK's :func:`tessera.sdk.par.create_par` encrypts it
to a public key instead). Anyone holding the link can use it with plain HTTP
until it expires or is revoked.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from tessera.cli.connection import JsonOpt, Target, fail, split_remote, store_command
from tessera.sdk.errors import TesseraClientError
from tessera.sdk.http import Endpoint, SignedClient

par_app = typer.Typer(help="Pre-authenticated requests: links that need no credentials.")


def _client(t: Target) -> SignedClient:
    return SignedClient(Endpoint(t.url, *t.credentials()))


@par_app.command("create")
@store_command(local=False)
def par_create(
    address: Annotated[str, typer.Argument(help="t://bucket (bucket PAR) or t://bucket/key")],
    read: Annotated[bool, typer.Option("--read", help="Allow reading.")] = False,
    write: Annotated[bool, typer.Option("--write", help="Allow writing.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="Allow listing (bucket PARs).")] = False,
    ttl: Annotated[int, typer.Option("--ttl", help="Seconds until it expires.")] = 3600,
    as_json: JsonOpt = False,
    *,
    store: Target,
) -> None:
    """Create a link and print it."""
    bucket, key = split_remote(address)
    if not (read or write or list_):
        read = True
    body = {
        "bucket": bucket,
        "key": key or None,
        "readable": read,
        "writeable": write,
        "listable": list_,
        "ttl": ttl,
    }
    client = _client(store)
    try:
        doc = client.ext("POST", "pars", json_body=body)
    except TesseraClientError as e:
        fail(e)
    finally:
        client.close()
    typer.echo(json.dumps(doc, indent=1) if as_json else doc["url"])


@par_app.command("list")
@store_command(local=False)
def par_list(
    address: Annotated[str, typer.Argument(help="t://bucket, or nothing for all")] = "",
    as_json: JsonOpt = False,
    *,
    store: Target,
) -> None:
    """Your links (never their secrets)."""
    bucket = split_remote(address)[0] if address else None
    client = _client(store)
    try:
        doc = client.ext("GET", "pars", query={"bucket": bucket})
    except TesseraClientError as e:
        fail(e)
    finally:
        client.close()
    pars = doc["pars"] if isinstance(doc, dict) else doc
    if as_json:
        typer.echo(json.dumps(pars, indent=1))
        return
    now = time.time()
    for p in pars:
        perms = "".join(
            c for c, flag in (("r", "readable"), ("w", "writeable"), ("l", "listable")) if p[flag]
        )
        state = "revoked" if p.get("revoked") else f"{max(0, int(p['expires'] - now))}s left"
        where = f"t://{p['bucket']}/{p['key']}" if p.get("key") else f"t://{p['bucket']}"
        typer.echo(f"{p['id']}  {perms:<3}  {state:>12}  {where}")


@par_app.command("revoke")
@store_command(local=False)
def par_revoke(
    par_id: Annotated[str, typer.Argument(help="The link's id (from par list).")],
    *,
    store: Target,
) -> None:
    """Revoke a link now."""
    client = _client(store)
    try:
        client.ext("DELETE", f"pars/{par_id}")
    except TesseraClientError as e:
        fail(e)
    finally:
        client.close()
    typer.echo(f"revoked: {par_id}")
