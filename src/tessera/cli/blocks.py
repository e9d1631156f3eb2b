"""``tessera block put|get|head``: content-addressed blocks from the shell.

``put FILE`` stores the file (at most 64 MiB) as one block on ``--copies``
block services and prints its signed locator; ``get LOCATOR`` (or
``loc1,loc2,...``) writes the bytes to ``-o FILE`` or stdout, verified
against the MD5; ``head LOCATOR`` prints a freshly signed locator. Connection
options as the other user commands (:mod:`tessera.cli.connection`);
``--local-store DIR`` works on plain files with no server. Errors print one
line on stderr and exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tessera.cli.connection import Target, fail, store_command
from tessera.protocol.blocks import MAX_BLOCK_SIZE
from tessera.sdk.blocks import BlockClient
from tessera.sdk.errors import TesseraClientError
from tessera.sdk.http import Endpoint

block_app = typer.Typer(help="Content-addressed blocks: put a file, get it back by locator.")

LocalStoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--local-store",
        envvar="TESSERA_BLOCK_LOCAL_STORE",
        help="Keep blocks as files in this directory (no server).",
    ),
]


def _client(store: Target, local: Path | None) -> BlockClient:
    if local is not None:
        return BlockClient(local_store=str(local))
    return BlockClient(Endpoint(store.url, *store.credentials()))


@block_app.command("put")
@store_command(local=False)
def block_put(
    file: Annotated[Path, typer.Argument(help="The file to store ('-' for stdin).")],
    copies: Annotated[int, typer.Option("--copies", help="Distinct services to store on.")] = 2,
    local_store: LocalStoreOpt = None,
    *,
    store: Target,
) -> None:
    """Store FILE as one block and print its locator."""
    try:
        content = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as e:
        fail(f"cannot read {file}: {e.strerror}")
    if len(content) > MAX_BLOCK_SIZE:
        fail(f"{file} has {len(content)} bytes; a block holds at most {MAX_BLOCK_SIZE}")
    with _client(store, local_store) as client:
        try:
            locator = client.put(content, copies=copies)
        except TesseraClientError as e:
            fail(e)
    typer.echo(locator)


@block_app.command("get")
@store_command(local=False)
def block_get(
    locator: Annotated[str, typer.Argument(help="A locator, or several joined by commas.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
    local_store: LocalStoreOpt = None,
    *,
    store: Target,
) -> None:
    """Write the block's bytes (verified against its MD5) to stdout or -o FILE."""
    with _client(store, local_store) as client:
        try:
            content = client.get(locator)
        except TesseraClientError as e:
            fail(e)
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    tmp = output.with_name(output.name + ".part")
    try:
        tmp.write_bytes(content)
        tmp.replace(output)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        fail(f"cannot write {output}: {e.strerror}")


@block_app.command("head")
@store_command(local=False)
def block_head(
    locator: Annotated[str, typer.Argument(help="A signed locator.")],
    local_store: LocalStoreOpt = None,
    *,
    store: Target,
) -> None:
    """Check that the block exists and print its locator freshly signed."""
    with _client(store, local_store) as client:
        try:
            fresh = client.refresh_signature(locator)
        except TesseraClientError as e:
            fail(e)
    typer.echo(fresh)
