"""User commands on buckets and objects, built on the SDK:
``mb rb ls cp mv rm sync cat stat presign``.

Remote addresses are ``t://bucket/key`` (``s3://`` works too); other
arguments are local paths, ``-`` is stdin/stdout. Transfers show a progress bar
on a terminal (``--no-progress`` turns it off); ``--json`` prints machine-readable
records. See :mod:`tessera.cli.connection` for how the store is reached.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from tessera.cli.connection import (
    JsonOpt,
    Target,
    connected,
    fail,
    is_remote,
    split_remote,
    store_command,
)
from tessera.cli.progress import Progress, ProgressReader

NoProgress = Annotated[bool, typer.Option("--no-progress", help="No progress bar.")]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Every key under a prefix.")]


def _echo_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=1, default=str))


def _all_objects(api: Any, bucket: str, prefix: str, delimiter: str = "") -> Iterator[Any]:
    marker = ""
    while True:
        page = api.object_list(bucket, prefix=prefix, delimiter=delimiter, marker=marker)
        yield from page.objects
        if not page.truncated:
            return
        marker = page.next_marker


@store_command()
def mb_command(
    address: str,
    versioning: Annotated[bool, typer.Option("--versioning", help="Keep every version.")] = False,
    policy: Annotated[str | None, typer.Option("--policy", help="e.g. ec/k=4,m=2")] = None,
    *,
    store: Target,
) -> None:
    """Make a bucket."""
    bucket, _ = split_remote(address)
    with connected(store) as api:
        created = api.container_create(bucket, policy=policy, versioning=versioning)
        typer.echo(f"{'made' if created else 'exists'}: t://{bucket}")


@store_command()
def rb_command(
    address: str,
    force: Annotated[bool, typer.Option("--force", help="Delete its objects first.")] = False,
    *,
    store: Target,
) -> None:
    """Remove a bucket (empty, unless --force)."""
    bucket, _ = split_remote(address)
    with connected(store) as api:
        api.container_delete(bucket, force=force)
        typer.echo(f"removed: t://{bucket}")


@store_command()
def ls_command(
    address: Annotated[str, typer.Argument(help="t://bucket[/prefix], or nothing")] = "",
    recursive: Recursive = False,
    versions: Annotated[bool, typer.Option("--versions", help="Every version.")] = False,
    as_json: JsonOpt = False,
    *,
    store: Target,
) -> None:
    """List buckets, or the keys under a prefix (one level unless --recursive)."""
    with connected(store) as api:
        if not address:
            containers = api.container_list()
            if as_json:
                _echo_json([c.to_dict() for c in containers])
            for c in [] if as_json else containers:
                typer.echo(f"{_when(c.created)}  t://{c.name}")
            return
        bucket, prefix = split_remote(address)
        records: list[dict[str, Any]] = []
        marker, version_marker = "", ""
        while True:
            page = api.object_list(
                bucket,
                prefix=prefix,
                delimiter="" if recursive else "/",
                marker=marker,
                versions=versions,
                version_marker=version_marker,
                deleted=versions,
            )
            for p in page.prefixes:
                records.append({"prefix": p})
                if not as_json:
                    typer.echo(f"{'PRE':>30}  {p}")
            for o in page.objects:
                records.append(o.to_dict())
                if not as_json:
                    extra = f"  {o.version}{' (deleted)' if o.deleted else ''}" if versions else ""
                    typer.echo(f"{_when(o.mtime)}  {o.size:>10}  {o.name}{extra}")
            if not page.truncated:
                break
            marker, version_marker = page.next_marker, page.next_version_marker
        if as_json:
            _echo_json(records)


def _when(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _upload(api: Any, src: str, bucket: str, key: str, show: bool) -> Any:
    if src == "-":
        return api.object_create(bucket, obj_name=key, data=sys.stdin.buffer)
    path = Path(src)
    if not path.is_file():
        fail(f"{src}: not a file")
    size = path.stat().st_size
    with path.open("rb") as f, Progress(show, size, key) as bar:
        return api.object_create(bucket, obj_name=key, data=ProgressReader(f, bar))


def _download(api: Any, bucket: str, key: str, dst: str, show: bool) -> Any:
    info, stream = api.object_fetch(bucket, key)
    out: IO[bytes]
    if dst == "-":
        out = sys.stdout.buffer
        try:
            for piece in stream:
                out.write(piece)
        finally:
            stream.close()
        out.flush()
        return info
    path = Path(dst)
    if dst.endswith("/") or path.is_dir():
        path = path / key.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".tessera-part")
    try:
        with part.open("wb") as out, Progress(show, info.size, key) as bar:
            for piece in stream:
                out.write(piece)
                bar.advance(len(piece))
        part.replace(path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        stream.close()
    return info


def _copy(api: Any, src: str, dst: str, show: bool) -> Any:
    """One object copy in whichever direction; returns the resulting ObjectInfo."""
    if is_remote(src) and is_remote(dst):
        sb, sk = split_remote(src)
        db, dk = split_remote(dst)
        return api.object_copy(sb, sk, db, dk or sk.rsplit("/", 1)[-1])
    if is_remote(dst):
        db, dk = split_remote(dst)
        if not dk or dk.endswith("/"):
            dk += Path(src).name
        return _upload(api, src, db, dk, show)
    if is_remote(src):
        sb, sk = split_remote(src)
        return _download(api, sb, sk, dst, show)
    fail("one of SRC and DST must be a t://bucket/key address")


@store_command()
def cp_command(
    src: str,
    dst: str,
    no_progress: NoProgress = False,
    as_json: JsonOpt = False,
    *,
    store: Target,
) -> None:
    """Copy a file to an object, an object to a file, or an object to an object
    (server-side, no data moved through this machine)."""
    with connected(store) as api:
        info = _copy(api, src, dst, show=not no_progress and not as_json and dst != "-")
        if as_json:
            _echo_json(info.to_dict())
        elif dst != "-":
            typer.echo(f"copied: {src} -> {dst}")


@store_command()
def mv_command(
    src: str,
    dst: str,
    no_progress: NoProgress = False,
    *,
    store: Target,
) -> None:
    """Move: copy, then delete the source once the copy is stored."""
    with connected(store) as api:
        _copy(api, src, dst, show=not no_progress)
        if is_remote(src):
            api.object_delete(*split_remote(src))
        else:
            Path(src).unlink()
        typer.echo(f"moved: {src} -> {dst}")


@store_command()
def rm_command(
    address: str,
    recursive: Recursive = False,
    version: Annotated[str | None, typer.Option("--version", help="One version.")] = None,
    *,
    store: Target,
) -> None:
    """Delete an object (or a version of it), or with --recursive every key under a prefix."""
    bucket, key = split_remote(address)
    with connected(store) as api:
        if not recursive:
            api.object_delete(bucket, key, version=version)
            typer.echo(f"deleted: t://{bucket}/{key}")
            return
        names = [o.name for o in _all_objects(api, bucket, key)]
        for i in range(0, len(names), 1000):
            api.object_delete_many(bucket, names[i : i + 1000])
        typer.echo(f"deleted {len(names)} object(s) under t://{bucket}/{key}")


@store_command()
def sync_command(
    src: str,
    dst: str,
    no_progress: NoProgress = False,
    *,
    store: Target,
) -> None:
    """Make DST like SRC. Local dir -> t://bucket/prefix uploads new and changed
    files (by ETag), copies renamed content server-side and deletes remote
    extras. t://bucket/prefix -> local dir downloads every object."""
    from tessera.sdk.bucket import Bucket

    with connected(store) as api:
        if is_remote(dst) and not is_remote(src):
            bucket, prefix = split_remote(dst)
            if not Path(src).is_dir():
                fail(f"{src}: not a directory")
            Bucket(api, bucket, create=False).sync_directory(src, remote=prefix or None)
        elif is_remote(src) and not is_remote(dst):
            bucket, prefix = split_remote(src)
            view = Bucket(api, bucket, create=False)
            if prefix:
                prefix = prefix.rstrip("/") + "/"
                view = view.with_filtering(prefix).with_resource_transformation(prefix)
            view.get_all_files(dst, progress=not no_progress)
        else:
            fail("sync goes between a local directory and a t://bucket/prefix")
        typer.echo(f"synced: {src} -> {dst}")


@store_command()
def cat_command(
    address: str,
    start: Annotated[int | None, typer.Option("--start", help="First byte.")] = None,
    end: Annotated[int | None, typer.Option("--end", help="Last byte (inclusive).")] = None,
    *,
    store: Target,
) -> None:
    """Write an object (or a byte range of it) to stdout."""
    bucket, key = split_remote(address)
    with connected(store) as api:
        ranges = None if start is None and end is None else [(start, end)]
        _, stream = api.object_fetch(bucket, key, ranges=ranges)
        try:
            for piece in stream:
                sys.stdout.buffer.write(piece)
        finally:
            stream.close()
        sys.stdout.buffer.flush()


@store_command()
def stat_command(
    address: str,
    as_json: JsonOpt = False,
    *,
    store: Target,
) -> None:
    """An object's (or with t://bucket, a bucket's) metadata."""
    bucket, key = split_remote(address)
    with connected(store) as api:
        doc = (api.object_head(bucket, key) if key else api.container_show(bucket)).to_dict()
        if as_json:
            _echo_json(doc)
            return
        for name, value in doc.items():
            typer.echo(f"{name:>14}: {value}")


@store_command(local=False)
def presign_command(
    address: str,
    expires: Annotated[int, typer.Option("--expires", help="Seconds the URL works.")] = 3600,
    put: Annotated[bool, typer.Option("--put", help="A URL to upload instead.")] = False,
    *,
    store: Target,
) -> None:
    """Print a presigned S3 URL (SigV4, query-string) for GET, or PUT with --put."""
    import boto3
    from botocore.config import Config

    bucket, key = split_remote(address)
    if not key:
        fail("presign needs t://bucket/key")
    access, secret = store.credentials()
    client = boto3.client(
        "s3",
        endpoint_url=store.url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    op = "put_object" if put else "get_object"
    typer.echo(
        client.generate_presigned_url(op, Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)
    )


COMMANDS: dict[str, Callable[..., None]] = {
    "mb": mb_command,
    "rb": rb_command,
    "ls": ls_command,
    "cp": cp_command,
    "mv": mv_command,
    "rm": rm_command,
    "sync": sync_command,
    "cat": cat_command,
    "stat": stat_command,
    "presign": presign_command,
}
