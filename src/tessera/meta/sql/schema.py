"""Table definitions of the SQL metadata store (SQLAlchemy Core).

This module is the *current* shape of the schema; the migrations in
``tessera/meta/migrations/versions`` build it (a contract test checks that both
agree). Design choices:

* **Key order.** Keys, bucket names and block names are ``TEXT``; on PostgreSQL
  with ``COLLATE "C"`` (byte order of the UTF-8 encoding), on SQLite with the
  default ``BINARY`` collation (byte order of UTF-8 text). Both equal Python's
  code-point order, so bounds computed in Python (prefix successors, markers)
  match what the database compares.

* **Versions: one row per version or delete marker.** ``seq`` is an integer
  surrogate key whose order is insertion order, which is version order (never
  clock order). Invariant: the latest version of a key is the one with the
  highest ``seq``, and exactly that row has ``is_latest`` set. Indexes:

  - ``ux_versions_key_version`` (bucket, key, version_id), unique: lookups and
    replacement of a named version (the ``null`` version).
  - ``ix_versions_order`` (bucket, key, seq DESC): the versions listing in its
    final order (key ascending, newest first) with no sort step, and the
    latest/next-newest version of one key by a single seek (``max(seq)``).
  - ``ux_versions_live`` (bucket, key) WHERE is_latest AND NOT delete_marker,
    unique: the object listing is a range seek over exactly the live objects,
    so keys hidden by a delete marker or older versions are never visited, and
    the database itself rejects two live latest versions of one key.

  A flag plus a partial index was preferred to a separate ``latest`` table: the
  listing reads its columns from the version row found through the index (one
  table, no join), and a put touches one table. The flag costs one extra
  ``UPDATE`` of the previous latest row per put (an index seek by ``max(seq)``).
  Small columns come first in the row and the manifest/inline blob last, so a
  listing that selects only listing columns never reads overflow pages.

* **Blocks.** ``blocks(volume, block, refs, zero_since)``: one row per block
  that is or was referenced; ``zero_since`` is set when ``refs`` drops to zero
  and cleared when it rises again. ``ix_blocks_garbage`` (zero_since) WHERE
  refs = 0 finds collectable blocks oldest first without scanning live ones.
  On SQLite the table is ``WITHOUT ROWID`` (clustered on its primary key), so a
  reference update is a single B-tree operation.

* **Foreign keys** (``versions.bucket``, ``uploads.bucket``, ``parts.upload_id``,
  ``access_keys.account_id``) make the database, not a racy pre-check, refuse a
  row whose parent is gone or a delete of a parent that still has children.
  Bucket owners are not a foreign key: the contract does not make bucket
  creation depend on the account row.

* Dict fields are compact JSON text, ``NULL`` when empty; manifests are
  :meth:`Manifest.to_json` text, ``NULL`` when there are no segments.
  ``versions.parts`` (multipart objects) is a JSON list of ``[number, size]``
  or ``[number, size, {algorithm: checksum}]``, ``NULL`` for other objects.

* **Cluster map.** ``servers``: one row per chunk server (its id, URL, zone,
  operator state, last heartbeat, first registration) with its disks as JSON
  text (``[{"id", "weight", "total", "free"}, ...]``). The map is small (one
  row per machine) and read whole, so disks are not a table of their own;
  disk ids are kept unique across servers by the store (registrations are
  serialised), not by an index.

* **PARs.** ``pars``: one row per pre-authenticated request (scope, permissions,
  lifetime, revoked flag, SHA-256 of the secret; never the secret itself).
  ``ix_pars_owner`` (owner, bucket, created) serves an owner's listing in its
  final order; ``ix_pars_expires`` lets the sweep find expired rows oldest
  first. No foreign key to ``buckets``: a PAR outlives nothing it matters to
  (its uses go through the bucket checks) and must not block deleting a bucket.

* **PAR jobs.** ``par_jobs``: the last run of each calculation PAR's job (kind,
  arguments, state, progress and result as JSON text, error, the ``holder``
  running it, a ``stop_requested`` flag, start and last-update times), so that
  every process sharing the store can watch and stop it. The holder rewrites
  its row while the job runs; a ``running`` row not updated for a while
  belongs to a process that stopped. ``par_id`` is a foreign key to ``pars``:
  the expiry sweep deletes a PAR's job row with the PAR, and the database
  refuses a job row for a PAR that is gone.

* **Shared statuses.** ``statuses``: one row per named status document of
  background work (``heal``, ``scrub``): the JSON counters as the process doing
  the work (``holder``) last published them, and when. Worker processes and
  gateways answer status requests from here, whichever of them runs the work.

* ``versions.upload_id`` names the multipart upload a version was completed
  from (``NULL`` otherwise). It is not indexed: the one query using it (a
  repeated completion) first seeks the key's few versions by
  ``ix_versions_order``.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
"""Text compared as UTF-8 bytes on every backend (keys, names, ids)."""

SeqInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""64-bit autoincrement surrogate; ``INTEGER PRIMARY KEY`` (the rowid) on SQLite."""

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", KeyText, primary_key=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("properties", sa.Text),
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key_id", KeyText, primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("account_id", KeyText, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Index("ix_access_keys_account", "account_id", "created"),
)

buckets = sa.Table(
    "buckets",
    metadata,
    sa.Column("name", KeyText, primary_key=True),
    sa.Column("owner", KeyText, nullable=False),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("region", sa.Text, nullable=False),
    sa.Column("versioning", sa.Text, nullable=False),
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("object_lock", sa.Boolean, nullable=False),
    sa.Column("tags", sa.Text),
    sa.Column("config", sa.Text),
    sa.Index("ix_buckets_owner", "owner", "name"),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("seq", SeqInt, primary_key=True, autoincrement=True),
    sa.Column("bucket", KeyText, sa.ForeignKey("buckets.name"), nullable=False),
    sa.Column("key", KeyText, nullable=False),
    sa.Column("version_id", KeyText, nullable=False),
    sa.Column("is_latest", sa.Boolean, nullable=False),
    sa.Column("delete_marker", sa.Boolean, nullable=False),
    sa.Column("last_modified", sa.Double, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("storage_class", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("checksums", sa.Text),
    sa.Column("parts", sa.Text),
    sa.Column("headers", sa.Text),
    sa.Column("user_metadata", sa.Text),
    sa.Column("tags", sa.Text),
    sa.Column("manifest", sa.Text),
    sa.Column("inline", sa.LargeBinary),
    sa.Column("acl", sa.Text, nullable=False, server_default="private"),
    sa.Column("upload_id", KeyText),
    implicit_returning=False,
)
_live = sa.and_(versions.c.is_latest, sa.not_(versions.c.delete_marker))
sa.Index(
    "ux_versions_key_version",
    versions.c.bucket,
    versions.c.key,
    versions.c.version_id,
    unique=True,
)
sa.Index("ix_versions_order", versions.c.bucket, versions.c.key, versions.c.seq.desc())
sa.Index(
    "ux_versions_live",
    versions.c.bucket,
    versions.c.key,
    unique=True,
    sqlite_where=_live,
    postgresql_where=_live,
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("seq", SeqInt, primary_key=True, autoincrement=True),
    sa.Column("upload_id", KeyText, nullable=False, unique=True),
    sa.Column("bucket", KeyText, sa.ForeignKey("buckets.name"), nullable=False),
    sa.Column("key", KeyText, nullable=False),
    sa.Column("initiated", sa.Double, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("storage_class", sa.Text, nullable=False),
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("checksum_algorithm", sa.Text, nullable=False),
    sa.Column("checksum_type", sa.Text, nullable=False),
    sa.Column("headers", sa.Text),
    sa.Column("user_metadata", sa.Text),
    sa.Column("tags", sa.Text),
    sa.Column("acl", sa.Text, nullable=False, server_default="private"),
    sa.Index("ix_uploads_order", "bucket", "key", "seq"),
    implicit_returning=False,
)

parts = sa.Table(
    "parts",
    metadata,
    sa.Column("upload_id", KeyText, sa.ForeignKey("uploads.upload_id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("last_modified", sa.Double, nullable=False),
    sa.Column("md5", sa.LargeBinary, nullable=False),
    sa.Column("checksums", sa.Text),
    sa.Column("manifest", sa.Text),
    sa.Column("inline", sa.LargeBinary),
    implicit_returning=False,
)

blocks = sa.Table(
    "blocks",
    metadata,
    sa.Column("volume", KeyText, primary_key=True),
    sa.Column("block", KeyText, primary_key=True),
    sa.Column("refs", sa.BigInteger, nullable=False),
    sa.Column("zero_since", sa.Double),
    sqlite_with_rowid=False,
    implicit_returning=False,
)
_garbage = blocks.c.refs == sa.literal_column("0")
sa.Index(
    "ix_blocks_garbage",
    blocks.c.zero_since,
    sqlite_where=_garbage,
    postgresql_where=_garbage,
)

servers = sa.Table(
    "servers",
    metadata,
    sa.Column("id", KeyText, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("zone", sa.Text, nullable=False),
    sa.Column("disks", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("heartbeat", sa.Double, nullable=False),
    sa.Column("registered", sa.Double, nullable=False),
    implicit_returning=False,
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", KeyText, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires", sa.Double, nullable=False),
    implicit_returning=False,
)

statuses = sa.Table(
    "statuses",
    metadata,
    sa.Column("name", KeyText, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated", sa.Double, nullable=False),
    implicit_returning=False,
)

pars = sa.Table(
    "pars",
    metadata,
    sa.Column("id", KeyText, primary_key=True),
    sa.Column("owner", KeyText, nullable=False),
    sa.Column("bucket", KeyText, nullable=False),
    sa.Column("key", KeyText),
    sa.Column("readable", sa.Boolean, nullable=False),
    sa.Column("writeable", sa.Boolean, nullable=False),
    sa.Column("listable", sa.Boolean, nullable=False),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("expires", sa.Double, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Column("secret_hash", sa.Text, nullable=False),
    sa.Column("job", sa.Text),
    sa.Index("ix_pars_owner", "owner", "bucket", "created"),
    sa.Index("ix_pars_expires", "expires"),
    implicit_returning=False,
)

par_jobs = sa.Table(
    "par_jobs",
    metadata,
    sa.Column("par_id", KeyText, sa.ForeignKey("pars.id"), primary_key=True),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("args", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("progress", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("stop_requested", sa.Boolean, nullable=False),
    sa.Column("started", sa.Double, nullable=False),
    sa.Column("updated", sa.Double, nullable=False),
    implicit_returning=False,
)
