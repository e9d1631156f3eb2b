"""``tessera serve``: run a one-node store (gateway, local disks, SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tessera.server.config import ConfigError, load_config


def serve_command(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="DIR",
            help="Data directory [default: ./tessera-data] (config: server.data).",
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Address to listen on [default: 127.0.0.1:9000] (config: server.listen).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="TOML configuration file (see config.example.toml) [env: TESSERA_CONFIG].",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert", metavar="PEM", help="TLS certificate chain; serve https (with --tls-key)."
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", metavar="PEM", help="TLS private key (with --tls-cert)."),
    ] = None,
    disks: Annotated[
        str | None,
        typer.Option(
            "--disks",
            metavar="D1,D2",
            help="Comma-separated block-volume directories [default: DATA/disk0] (config: storage.disks).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            max=64,
            help="Processes serving requests [default: 1] (config: server.workers).",
        ),
    ] = None,
) -> None:
    """Serve S3 on HOST:PORT until SIGTERM or SIGINT.

    Settings come from defaults, then --config FILE, then TESSERA_<SECTION>_<KEY>
    environment variables, then these flags. Root credentials come from
    TESSERA_ROOT_ACCESS_KEY / TESSERA_ROOT_SECRET_KEY, or are generated once and kept
    in DATA/root-credentials.toml; they are printed at start-up.
    """
    try:
        cfg = load_config(
            config,
            flags={
                "server.data": data,
                "server.listen": listen,
                "server.tls_cert": tls_cert,
                "server.tls_key": tls_key,
                "storage.disks": disks,
                "server.workers": workers,
            },
        )
    except ConfigError as e:
        typer.echo(f"tessera serve: {e}", err=True)
        raise typer.Exit(2) from None

    from tessera.server.node import NodeError, serve  # heavy: the whole stack

    try:
        serve(cfg)
    except NodeError as e:
        typer.echo(f"tessera serve: error: {e}", err=True)
        raise typer.Exit(1) from None
