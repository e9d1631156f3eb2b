"""``tessera gateway`` and ``tessera chunkserver``: the two halves of a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tessera.server.config import Config, ConfigError, load_config

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", metavar="FILE", help="TOML configuration file [env: TESSERA_CONFIG]."),
]
MetaOpt = Annotated[
    str | None,
    typer.Option(
        "--meta",
        metavar="URL",
        help="The cluster's metadata database (postgresql://... or sqlite:////abs/path) "
        "(config: meta.url).",
    ),
]
ListenOpt = Annotated[
    str | None,
    typer.Option(
        "--listen", metavar="HOST:PORT", help="Address to listen on (config: server.listen)."
    ),
]


def _load(command: str, config: Path | None, flags: dict[str, object]) -> Config:
    try:
        return load_config(config, flags=flags)
    except ConfigError as e:
        typer.echo(f"tessera {command}: {e}", err=True)
        raise typer.Exit(2) from None


def gateway_command(
    meta: MetaOpt = None,
    listen: ListenOpt = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="DIR",
            help="Directory for the LOCK file and generated root credentials "
            "[default: ./tessera-data] (config: server.data).",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve S3 over the chunk servers of the cluster map, until SIGTERM or SIGINT.

    A gateway keeps no object data: it reads the chunk servers from the metadata
    database, places fragments on them and heals what they lose. Run as many as
    you like behind a load balancer; they share nothing but the database.
    """
    cfg = _load("gateway", config, {"meta.url": meta, "server.listen": listen, "server.data": data})
    if not cfg.meta.url:
        typer.echo("tessera gateway: --meta URL (the cluster's database) is required", err=True)
        raise typer.Exit(2)
    from tessera.server.node import NodeError, serve

    try:
        serve(cfg, mode="gateway")
    except NodeError as e:
        typer.echo(f"tessera gateway: error: {e}", err=True)
        raise typer.Exit(1) from None


def chunkserver_command(
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", metavar="DISK", help="A disk directory; repeat for each disk."),
    ] = None,
    meta: MetaOpt = None,
    listen: ListenOpt = None,
    zone: Annotated[
        str | None,
        typer.Option("--zone", metavar="ZONE", help="Failure domain (config: cluster.zone)."),
    ] = None,
    server_id: Annotated[
        str | None,
        typer.Option(
            "--id", metavar="ID", help="Server id [default: generated once, kept on disk]."
        ),
    ] = None,
    advertise: Annotated[
        str | None,
        typer.Option(
            "--advertise", metavar="URL", help="URL gateways use [default: http://LISTEN]."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve blocks from local disks to the cluster's gateways, until SIGTERM or SIGINT.

    The server registers in the cluster map (the metadata database named by
    --meta), heartbeats, scrubs its disks and empties their trash. Set the same
    TESSERA_CLUSTER_SECRET on gateways and chunk servers.
    """
    cfg = _load(
        "chunkserver",
        config,
        {
            "storage.disks": [str(p) for p in data] if data else None,
            "meta.url": meta,
            "server.listen": listen,
            "cluster.zone": zone,
            "cluster.server_id": server_id,
            "cluster.advertise": advertise,
        },
    )
    if not cfg.storage.disks:
        typer.echo("tessera chunkserver: at least one --data DISK is required", err=True)
        raise typer.Exit(2)
    from tessera.server.chunknode import serve_chunkserver
    from tessera.server.node import NodeError

    try:
        serve_chunkserver(cfg)
    except NodeError as e:
        typer.echo(f"tessera chunkserver: error: {e}", err=True)
        raise typer.Exit(1) from None
