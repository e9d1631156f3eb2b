"""The ``tessera`` command: ``serve``, ``gateway``, ``chunkserver``, ``dev-cluster``,
``admin``, ``version``, and the user commands on buckets and objects (``mb rb ls cp
mv rm sync cat stat presign``, see :mod:`tessera.cli.objects`; ``par``, see
:mod:`tessera.cli.pars`; ``block``, see :mod:`tessera.cli.blocks`).

Exit codes: 0 success, 1 runtime failure (for example the data directory is in use),
2 usage or configuration error.
"""

from __future__ import annotations

import typer

from tessera._version import __version__
from tessera.cli.admin import admin_app
from tessera.cli.blocks import block_app
from tessera.cli.cluster import chunkserver_command, gateway_command
from tessera.cli.devcluster import dev_cluster_command
from tessera.cli.objects import COMMANDS as OBJECT_COMMANDS
from tessera.cli.pars import par_app
from tessera.cli.serve import serve_command

app = typer.Typer(
    name="tessera",
    help="Tessera: an S3-compatible object store.",
    no_args_is_help=True,
    add_completion=False,
    # Rich tracebacks print local variables, which may hold secrets.
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("serve")(serve_command)
app.command("gateway")(gateway_command)
app.command("chunkserver")(chunkserver_command)
app.command("dev-cluster")(dev_cluster_command)
app.add_typer(admin_app, name="admin")
for _name, _command in OBJECT_COMMANDS.items():
    app.command(_name)(_command)
app.add_typer(par_app, name="par")
app.add_typer(block_app, name="block")


@app.command("version")
def version_command() -> None:
    """Print the Tessera version."""
    typer.echo(f"tessera {__version__}")


def main() -> None:
    """Console-script entry point (``tessera = "tessera.cli.main:main"``)."""
    app()


if __name__ == "__main__":
    main()
