"""``SqlMetadataStore``: the :class:`~tessera.meta.store.MetadataStore` over SQL.

The class is assembled from method groups, each in the module that owns it:
accounts and buckets here, :mod:`.versions`, :mod:`.multipart`, :mod:`.blocks`,
:mod:`.cluster` (the cluster map), :mod:`.manifests` (manifest scan and repair),
:mod:`.pars` (pre-authenticated requests).
Every public method builds a small synchronous function that runs inside one
transaction and hands it to the runner (:mod:`.transactions`), which owns
threads, connections, group commit (SQLite) and retries (PostgreSQL).

Conflicts are detected without a query beforehand where the database can tell:
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` for accounts and buckets (an
``INSERT``'s rowcount is not reliable across drivers), foreign keys for
rows whose parent is missing.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tessera.common.clock import Clock
from tessera.meta.sql import migrate as migrations
from tessera.meta.sql.blocks import BlocksMixin, RefDelta, apply_refs
from tessera.meta.sql.cluster import ClusterMixin, LeasesMixin, StatusesMixin
from tessera.meta.sql.dialects import dialect_for
from tessera.meta.sql.manifests import ManifestsMixin
from tessera.meta.sql.multipart import MultipartMixin
from tessera.meta.sql.pars import ParsMixin
from tessera.meta.sql.rows import (
    ACCESS_KEY_COLUMNS,
    ACCOUNT_COLUMNS,
    BUCKET_COLUMNS,
    BUCKET_MUTABLE,
    access_key_from_row,
    access_key_params,
    account_from_row,
    account_params,
    bucket_from_row,
    bucket_params,
)
from tessera.meta.sql.schema import access_keys, accounts, buckets, uploads, versions
from tessera.meta.sql.transactions import Runner, open_runner
from tessera.meta.sql.versions import VersionsMixin
from tessera.model.errors import (
    AccessKeyNotFound,
    AccountAlreadyExists,
    AccountNotFound,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    BucketNotFound,
)
from tessera.model.records import AccessKey, Account, Bucket

_a = accounts.c
_k = access_keys.c
_bk = buckets.c
_GET_ACCOUNT = sa.select(*ACCOUNT_COLUMNS).where(_a.id == sa.bindparam("id"))
_GET_KEY = sa.select(*ACCESS_KEY_COLUMNS).where(_k.access_key_id == sa.bindparam("id"))
_GET_BUCKET = sa.select(*BUCKET_COLUMNS).where(_bk.name == sa.bindparam("name"))
_BUCKET_OWNER = sa.select(_bk.owner).where(_bk.name == sa.bindparam("name"))
_KEY_FIELDS = ("access_key_id", "secret", "account_id", "created", "enabled")


@functools.cache
def _inserts(dialect_name: str) -> tuple[Any, Any, Any]:
    """(create account, create bucket, upsert access key) for one dialect."""
    dialect = dialect_for(dialect_name)
    account = dialect.insert(accounts).values({c.name: sa.bindparam(c.name) for c in accounts.c})
    bucket = dialect.insert(buckets).values({c.name: sa.bindparam(c.name) for c in buckets.c})
    key = dialect.insert(access_keys).values({n: sa.bindparam(n) for n in _KEY_FIELDS})
    key = key.on_conflict_do_update(
        index_elements=[_k.access_key_id],
        set_={n: key.excluded[n] for n in _KEY_FIELDS if n != "access_key_id"},
    )
    return (
        account.on_conflict_do_nothing(index_elements=[_a.id]).returning(_a.id),
        bucket.on_conflict_do_nothing(index_elements=[_bk.name]).returning(_bk.name),
        key,
    )


def _account_missing(account_id: str) -> AccountNotFound:
    return AccountNotFound("The specified account does not exist.", account_id=account_id)


def _bucket_missing(name: str) -> BucketNotFound:
    return BucketNotFound("The specified bucket does not exist", bucket=name)


class SqlMetadataStore(
    VersionsMixin,
    MultipartMixin,
    BlocksMixin,
    ClusterMixin,
    ManifestsMixin,
    LeasesMixin,
    StatusesMixin,
    ParsMixin,
):
    """Metadata on SQLite (embedded, one node) or PostgreSQL (cluster)."""

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        migrate: bool = True,
        clock: Clock | None = None,
        readers: int = 3,
        pool_size: int = 16,
    ) -> SqlMetadataStore:
        """Open the database at ``url`` (``sqlite:///path/meta.db``,
        ``postgresql+psycopg://user@host/db``; ``postgresql://`` means psycopg).

        With ``migrate`` the schema is created or upgraded to the newest
        revision; without, it is only checked (SchemaOutOfDate when behind).
        ``clock`` stamps ``zero_since`` of released blocks (default: system time).
        ``readers`` is the SQLite reader pool size, ``pool_size`` the PostgreSQL
        connection (and thread) pool size.
        """
        runner: Runner = open_runner(url, readers=readers, pool_size=pool_size)
        try:
            await runner.ddl(migrations.upgrade if migrate else migrations.check)
        except BaseException:
            await runner.close()
            raise
        return cls(runner, clock)

    async def close(self) -> None:
        """Wait for queued writes, then release every connection and thread. Idempotent."""
        await self._db.close()

    # -- accounts and keys -------------------------------------------------------------------
    async def create_account(self, account: Account) -> None:
        """Raises AccountAlreadyExists."""
        d = self._dialect
        stmt, params = _inserts(d.name)[0], account_params(account)

        def tx(conn: Connection) -> bool:
            return d.first(conn, stmt, params) is not None

        if not await self._db.write(tx):
            raise AccountAlreadyExists(
                "An account of that id already exists.", account_id=account.id
            )

    async def get_account(self, account_id: str) -> Account:
        """Raises AccountNotFound."""

        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _GET_ACCOUNT, {"id": account_id})

        row = await self._db.lookup(tx)
        if row is None:
            raise _account_missing(account_id)
        return account_from_row(row)

    async def list_accounts(self) -> list[Account]:
        """All accounts ordered by id."""

        def tx(conn: Connection) -> list[Account]:
            rows = conn.execute(sa.select(*ACCOUNT_COLUMNS).order_by(_a.id))
            return [account_from_row(r) for r in rows]

        return await self._db.read(tx)

    async def delete_account(self, account_id: str) -> None:
        """Delete the account and its keys. Raises AccountNotFound, or
        BucketNotEmpty while it owns buckets."""

        def tx(conn: Connection) -> None:
            found = conn.execute(
                sa.select(_a.id).where(_a.id == account_id).with_for_update()
            ).first()
            if found is None:
                raise _account_missing(account_id)
            owned = conn.execute(sa.select(_bk.name).where(_bk.owner == account_id).limit(1))
            if owned.first() is not None:
                raise BucketNotEmpty("The account still owns buckets.", account_id=account_id)
            conn.execute(sa.delete(access_keys).where(_k.account_id == account_id))
            conn.execute(sa.delete(accounts).where(_a.id == account_id))

        await self._db.write(tx)

    async def update_account(self, account: Account) -> None:
        """Replace display name, email and properties. Raises AccountNotFound."""
        params = account_params(account)
        stmt = (
            sa.update(accounts)
            .where(_a.id == account.id)
            .values({n: params[n] for n in ("display_name", "email", "properties")})
        )

        def tx(conn: Connection) -> int:
            return conn.execute(stmt).rowcount

        if await self._db.write(tx) == 0:
            raise _account_missing(account.id)

    async def put_access_key(self, key: AccessKey) -> None:
        """Insert or replace by access key id. Raises AccountNotFound."""
        params = dict(zip(_KEY_FIELDS, access_key_params(key), strict=True))
        d = self._dialect
        stmt = _inserts(d.name)[2]

        def tx(conn: Connection) -> None:
            try:
                d.execute(conn, stmt, params)
            except IntegrityError as e:
                if d.is_foreign_key_violation(e):
                    raise _account_missing(key.account_id) from None
                raise

        await self._db.write(tx)

    async def get_access_key(self, access_key_id: str) -> AccessKey:
        """Raises AccessKeyNotFound."""

        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _GET_KEY, {"id": access_key_id})

        row = await self._db.lookup(tx)
        if row is None:
            raise AccessKeyNotFound(
                "The AWS Access Key Id you provided does not exist in our records.",
                access_key_id=access_key_id,
            )
        return access_key_from_row(row)

    async def list_access_keys(self, account_id: str) -> list[AccessKey]:
        """Keys of one account by creation time (then id); empty when none."""

        def tx(conn: Connection) -> list[AccessKey]:
            stmt = (
                sa.select(*ACCESS_KEY_COLUMNS)
                .where(_k.account_id == account_id)
                .order_by(_k.created, _k.access_key_id)
            )
            return [access_key_from_row(r) for r in conn.execute(stmt)]

        return await self._db.read(tx)

    async def delete_access_key(self, access_key_id: str) -> None:
        """Raises AccessKeyNotFound."""

        def tx(conn: Connection) -> int:
            stmt = sa.delete(access_keys).where(_k.access_key_id == access_key_id)
            return conn.execute(stmt).rowcount

        if await self._db.write(tx) == 0:
            raise AccessKeyNotFound(
                "The AWS Access Key Id you provided does not exist in our records.",
                access_key_id=access_key_id,
            )

    # -- buckets -----------------------------------------------------------------------------
    async def create_bucket(self, bucket: Bucket) -> None:
        """Raises BucketAlreadyOwnedByYou (same owner) or BucketAlreadyExists."""
        d = self._dialect
        stmt, params = _inserts(d.name)[1], bucket_params(bucket)

        def tx(conn: Connection) -> str | None:
            if d.first(conn, stmt, params) is not None:
                return None
            owner: str | None = d.scalar(conn, _BUCKET_OWNER, {"name": bucket.name})
            return owner

        owner = await self._db.write(tx)
        if owner is None:
            return
        if owner == bucket.owner:
            raise BucketAlreadyOwnedByYou(
                "Your previous request to create the named bucket succeeded and you already own it.",
                bucket=bucket.name,
            )
        raise BucketAlreadyExists("The requested bucket name is not available.", bucket=bucket.name)

    async def get_bucket(self, name: str) -> Bucket:
        """Raises BucketNotFound."""

        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _GET_BUCKET, {"name": name})

        row = await self._db.lookup(tx)
        if row is None:
            raise _bucket_missing(name)
        return bucket_from_row(row)

    async def list_buckets(self, owner: str | None = None) -> list[Bucket]:
        """Buckets by name; all of them when ``owner`` is None."""
        stmt = sa.select(*BUCKET_COLUMNS).order_by(_bk.name)
        if owner is not None:
            stmt = stmt.where(_bk.owner == owner)

        def tx(conn: Connection) -> list[Bucket]:
            return [bucket_from_row(r) for r in conn.execute(stmt)]

        return await self._db.read(tx)

    async def update_bucket(self, bucket: Bucket) -> None:
        """Replace versioning, policy, object_lock, tags and config. Raises BucketNotFound."""
        params = bucket_params(bucket)
        stmt = (
            sa.update(buckets)
            .where(_bk.name == bucket.name)
            .values({name: params[name] for name in BUCKET_MUTABLE})
        )

        def tx(conn: Connection) -> int:
            return conn.execute(stmt).rowcount

        if await self._db.write(tx) == 0:
            raise _bucket_missing(bucket.name)

    async def delete_bucket(self, name: str) -> None:
        """Raises BucketNotFound, or BucketNotEmpty while any version or delete
        marker remains (the foreign keys guard the race). Unfinished multipart
        uploads are aborted with the bucket, as S3 does, releasing their parts'
        references in the same transaction."""

        def tx(conn: Connection) -> None:
            found = conn.execute(
                sa.select(_bk.name).where(_bk.name == name).with_for_update()
            ).first()
            if found is None:
                raise _bucket_missing(name)
            child = sa.select(versions.c.bucket).where(versions.c.bucket == name).limit(1)
            if conn.execute(child).first() is not None:
                raise BucketNotEmpty("The bucket you tried to delete is not empty", bucket=name)
            delta = RefDelta()
            pending = sa.select(uploads.c.upload_id).where(uploads.c.bucket == name)
            for (upload_id,) in conn.execute(pending).all():
                self._remove_upload(conn, name, upload_id, delta)
            apply_refs(conn, self._dialect, delta, self._clock.now())
            try:
                conn.execute(sa.delete(buckets).where(_bk.name == name))
            except IntegrityError as e:
                if self._dialect.is_foreign_key_violation(e):
                    raise BucketNotEmpty(
                        "The bucket you tried to delete is not empty", bucket=name
                    ) from None
                raise

        await self._db.write(tx)
