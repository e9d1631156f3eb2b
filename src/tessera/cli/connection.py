"""How the user commands (``tessera ls``, ``cp``, ``par``, ``block``...) reach a store.

A remote server: ``--endpoint`` (``TESSERA_ENDPOINT``, default
``http://127.0.0.1:9000``) with ``--access-key/--secret-key``
(``TESSERA_ACCESS_KEY``/``TESSERA_SECRET_KEY``, else ``AWS_ACCESS_KEY_ID``/
``AWS_SECRET_ACCESS_KEY``, else the root credentials in
``<--data>/root-credentials.toml`` written by ``tessera serve``). Or an
embedded store: ``--local DIR`` opens the data directory in-process (no server
may be running on it).

Addresses: ``t://bucket/key`` (``s3://`` is accepted too) names remote objects;
anything else is a local path. Errors print one line on stderr and exit 1.
"""

from __future__ import annotations

import functools
import inspect
import os
import tomllib
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tessera.sdk.errors import TesseraClientError

if TYPE_CHECKING:
    from tessera.sdk.api import ObjectStorageApi

DEFAULT_ENDPOINT = "http://127.0.0.1:9000"
SCHEMES = ("t://", "s3://")

EndpointOpt = Annotated[
    str, typer.Option("--endpoint", envvar="TESSERA_ENDPOINT", help="Server URL.")
]
AccessOpt = Annotated[
    str | None,
    typer.Option("--access-key", envvar="TESSERA_ACCESS_KEY", help="Access key id."),
]
SecretOpt = Annotated[
    str | None,
    typer.Option("--secret-key", envvar="TESSERA_SECRET_KEY", help="Secret key."),
]
DataOpt = Annotated[
    Path,
    typer.Option("--data", help="Server data directory holding root-credentials.toml."),
]
LocalOpt = Annotated[
    Path | None,
    typer.Option("--local", help="Open this data directory in-process instead of a server."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@dataclass(frozen=True)
class Target:
    """Where a command points: a remote server (credentials resolved on first
    use, so a command that ends up needing none never asks) or, with ``local``,
    an embedded data directory."""

    endpoint: str
    access_key: str | None = None
    secret_key: str | None = None
    data: Path = Path("tessera-data")
    local: Path | None = None

    @property
    def url(self) -> str:
        return self.endpoint.rstrip("/")

    def credentials(self) -> tuple[str, str]:
        """``(access key, secret)`` as the module docstring says. Exits 2 when
        none can be found."""
        access = self.access_key or os.environ.get("AWS_ACCESS_KEY_ID")
        secret = self.secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY")
        if access and secret:
            return access, secret
        path = self.data / "root-credentials.toml"
        try:
            doc = tomllib.loads(path.read_text())
            return str(doc["access_key"]), str(doc["secret_key"])
        except (OSError, tomllib.TOMLDecodeError, KeyError):
            typer.echo(
                "tessera: no credentials (give --access-key/--secret-key, set "
                "TESSERA_ACCESS_KEY/TESSERA_SECRET_KEY, or point --data at the server's "
                f"data directory; {path} is unreadable)",
                err=True,
            )
            raise typer.Exit(2) from None


@contextmanager
def connected(t: Target) -> Iterator[ObjectStorageApi]:
    """An open API for ``t``; SDK errors inside become one stderr line and exit 1."""
    import tessera

    try:
        if t.local is not None:
            api = tessera.open(t.local)
        else:
            api = tessera.connect(t.url, *t.credentials())
    except TesseraClientError as e:
        fail(e)
    try:
        yield api
    except TesseraClientError as e:
        fail(e)
    finally:
        api.close()


def fail(e: TesseraClientError | str) -> None:
    """Print ``e`` on stderr and exit 1."""
    if isinstance(e, TesseraClientError):
        typer.echo(f"tessera: {e.code}: {e.message or e}", err=True)
    else:
        typer.echo(f"tessera: {e}", err=True)
    raise typer.Exit(1)


def is_remote(address: str) -> bool:
    return address.startswith(SCHEMES)


def split_remote(address: str) -> tuple[str, str]:
    """``t://bucket/key`` -> ``("bucket", "key")`` (key may be empty). Exits 2
    when the bucket is missing."""
    for scheme in SCHEMES:
        if address.startswith(scheme):
            rest = address[len(scheme) :]
            bucket, _, key = rest.partition("/")
            if not bucket:
                typer.echo(f"tessera: no bucket in {address!r}", err=True)
                raise typer.Exit(2)
            return bucket, key
    typer.echo(f"tessera: {address!r} is not a remote address (t://bucket/key)", err=True)
    raise typer.Exit(2)


def _option(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def store_command(*, local: bool = True) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the connection options (``--endpoint``, ``--access-key``,
    ``--secret-key``, ``--data`` and, unless ``local=False``, ``--local``) and
    call it with the resolved :class:`Target` as ``store=``, so each command
    declares only its own arguments."""
    options = [
        _option("endpoint", DEFAULT_ENDPOINT, EndpointOpt),
        _option("access_key", None, AccessOpt),
        _option("secret_key", None, SecretOpt),
        _option("data", Path("tessera-data"), DataOpt),
    ]
    if local:
        options.append(_option("local", None, LocalOpt))

    def wrap(func: Callable[..., None]) -> Callable[..., None]:
        hints = typing.get_type_hints(func, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(func).parameters.values()
            if p.name != "store"
        ]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> None:
            store = Target(
                kwargs.pop("endpoint"),
                kwargs.pop("access_key"),
                kwargs.pop("secret_key"),
                kwargs.pop("data"),
                kwargs.pop("local", None),
            )
            func(*args, store=store, **kwargs)

        params = own + options
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return wrap
