"""The MetadataStore contract: everything Tessera persists about accounts,
buckets, object versions, multipart uploads and block references.

Contracts every implementation honours (checked by ``tests/contract``):

* Every method is atomic: it either fully happens or raises and changes nothing.
* Keys compare as UTF-8 byte strings (S3 order). Listings are ascending by key;
  versions of one key are newest first (insertion order, never clock order).
* Block reference counting: every ``(volume, block)`` pair named by the manifest
  of a stored version or part counts one reference (a manifest naming the same
  block twice counts two). References are added and released in the same
  transaction as the rows that hold them. A pair whose count drops to zero is
  remembered with the time it dropped, for garbage collection after a delay.
* Records returned by listings carry ``inline=None`` (content is not loaded)
  and an empty manifest, headers, user_metadata and tags (only what listings
  show is read); ``get_version`` returns the full record including inline
  data and manifest.
* Missing things raise the domain errors named in each docstring; nothing
  returns None for "missing" unless the docstring says so.
* Guards (conditional writes and deletes): methods that take a ``guard`` call
  it inside their transaction, once the key is locked against concurrent
  writers and before anything is changed for good, with the version the
  condition is about (its listing fields at least: delete marker, last
  modified, size, ETag; content, headers and metadata may be absent). If
  the guard raises, nothing changes and its exception propagates unchanged;
  a check made this way cannot be invalidated by a concurrent write before
  the commit. Guards must be quick, pure checks (they may run on a worker
  thread, and more than once when a transaction is retried).
* The cluster map (chunk servers and their disks, DESIGN.md §1) lives here
  too; disk ids are unique across the whole cluster, since manifests name a
  fragment's disk by id alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tessera.model.cluster import DiskInfo, ManifestRow, ServerInfo, SharedStatus
from tessera.model.manifest import Manifest
from tessera.model.pars import Par, ParJob
from tessera.model.records import AccessKey, Account, Bucket, ObjectVersion, Part, Upload

LatestGuard = Callable[[ObjectVersion | None], None]
"""Checks the latest version of a key (None: the key has no version) before a write."""

VersionGuard = Callable[[ObjectVersion], None]
"""Checks the version about to be removed."""


class MetadataStore(Protocol):
    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...

    # -- accounts and keys -------------------------------------------------------
    async def create_account(self, account: Account) -> None:
        """Raises AccountAlreadyExists."""
        ...

    async def get_account(self, account_id: str) -> Account:
        """Raises AccountNotFound."""
        ...

    async def list_accounts(self) -> list[Account]:
        """All accounts, ordered by id."""
        ...

    async def delete_account(self, account_id: str) -> None:
        """Deletes the account and its access keys. Raises AccountNotFound, or
        BucketNotEmpty when the account still owns buckets."""
        ...

    async def update_account(self, account: Account) -> None:
        """Replace the mutable fields (display_name, email, properties) of the
        account ``account.id``; ``created`` is kept. Raises AccountNotFound."""
        ...

    async def put_access_key(self, key: AccessKey) -> None:
        """Insert or replace (by access_key_id). Raises AccountNotFound."""
        ...

    async def get_access_key(self, access_key_id: str) -> AccessKey:
        """Raises AccessKeyNotFound."""
        ...

    async def list_access_keys(self, account_id: str) -> list[AccessKey]:
        """Keys of one account ordered by creation; empty list if none."""
        ...

    async def delete_access_key(self, access_key_id: str) -> None:
        """Raises AccessKeyNotFound."""
        ...

    # -- buckets -------------------------------------------------------------------
    async def create_bucket(self, bucket: Bucket) -> None:
        """Raises BucketAlreadyOwnedByYou when a bucket of that name has the same
        owner, BucketAlreadyExists when another account owns it."""
        ...

    async def get_bucket(self, name: str) -> Bucket:
        """Raises BucketNotFound."""
        ...

    async def list_buckets(self, owner: str | None = None) -> list[Bucket]:
        """Buckets ordered by name; all of them when owner is None."""
        ...

    async def update_bucket(self, bucket: Bucket) -> None:
        """Replace the mutable fields (versioning, policy, object_lock, tags, config)
        of the bucket named ``bucket.name``. Raises BucketNotFound."""
        ...

    async def delete_bucket(self, name: str) -> None:
        """Raises BucketNotFound, or BucketNotEmpty when any version or delete
        marker remains. Unfinished multipart uploads are aborted with the bucket
        (their parts' references released), as S3 does."""
        ...

    # -- object versions -------------------------------------------------------------
    async def put_version(
        self, version: ObjectVersion, guard: LatestGuard | None = None
    ) -> ObjectVersion | None:
        """Store ``version`` as the newest version of its key.

        If a version with the same ``version_id`` already exists for the key (the
        ``null`` version), it is removed in the same transaction, its block
        references released, and it is returned; otherwise returns None.
        References of the new manifest are added. ``is_latest`` of the input is
        ignored: the new version becomes latest. Raises BucketNotFound.
        ``guard`` is called with the key's latest version before the write (see
        the module docstring); whatever it raises is raised and nothing is stored.
        """
        ...

    async def get_version(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectVersion:
        """The named version, or the latest one (possibly a delete marker) when
        ``version_id`` is None. Raises ObjectNotFound when the key has no version
        at all (and version_id is None), VersionNotFound when the named version
        does not exist. ``is_latest`` is set correctly."""
        ...

    async def delete_version(
        self, bucket: str, key: str, version_id: str, guard: VersionGuard | None = None
    ) -> ObjectVersion:
        """Remove one version row for good, release its references, and make the
        next newest version (if any) latest. Returns the removed record.
        Raises VersionNotFound (before ``guard`` is called). ``guard`` is called
        with the version to remove; whatever it raises is raised and nothing changes."""
        ...

    async def update_version(self, version: ObjectVersion) -> None:
        """Replace tags, user_metadata, headers, content_type, checksums and acl of the
        existing version ``(bucket, key, version_id)`` in place; order, data and
        references are unchanged. Raises VersionNotFound."""
        ...

    async def touch_version(
        self, bucket: str, key: str, version_id: str, last_modified: float
    ) -> None:
        """Set ``last_modified`` of the existing version in place; everything else
        (order, data, references, attributes) is unchanged. Raises VersionNotFound."""
        ...

    async def drain_version(self, bucket: str, key: str, version_id: str) -> ObjectVersion:
        """Drop the data of the existing version in place: its inline content and
        manifest are cleared and its block references released, in one
        transaction; the row (size, ETag, metadata, position) stays. Returns the
        record as it was before (full, with its manifest). Raises VersionNotFound."""
        ...

    async def list_latest(
        self, bucket: str, prefix: str = "", after: str | None = None, limit: int = 1000
    ) -> list[ObjectVersion]:
        """Latest versions that are not delete markers, with key starting with
        ``prefix`` and strictly greater than ``after``, ascending by key, at most
        ``limit``. Implemented as an index seek (no scan of skipped keys)."""
        ...

    async def list_versions(
        self,
        bucket: str,
        prefix: str = "",
        after_key: str | None = None,
        after_version: str | None = None,
        limit: int = 1000,
    ) -> list[ObjectVersion]:
        """All versions and delete markers with key starting with ``prefix``,
        ascending by key then newest first. Position: when ``after_version`` is
        None, start at keys strictly greater than ``after_key``; otherwise start
        with the versions of ``after_key`` older than ``after_version``, then
        greater keys. An unknown ``after_version`` starts at keys greater than
        ``after_key``."""
        ...

    async def count_objects(self, bucket: str) -> tuple[int, int]:
        """(number of latest non-delete-marker versions, their total bytes)."""
        ...

    # -- multipart uploads ---------------------------------------------------------------
    async def create_upload(self, upload: Upload) -> None:
        """Raises BucketNotFound."""
        ...

    async def get_upload(self, bucket: str, upload_id: str) -> Upload:
        """Raises UploadNotFound (also when the upload belongs to another bucket)."""
        ...

    async def list_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        limit: int = 1000,
    ) -> list[Upload]:
        """Uploads ordered by key, then initiation order. Position: after
        ``key_marker`` (and, for that same key, after ``upload_id_marker``)."""
        ...

    async def put_part(self, part: Part) -> Part | None:
        """Store a part, replacing (and returning) a previous part of the same
        number, whose references are released. Raises UploadNotFound."""
        ...

    async def list_parts(self, upload_id: str, after: int = 0, limit: int = 10000) -> list[Part]:
        """Parts with number > after, ascending, at most ``limit``. Listings carry
        inline data and manifests (completion needs them)."""
        ...

    async def complete_upload(
        self,
        bucket: str,
        upload_id: str,
        version: ObjectVersion,
        guard: LatestGuard | None = None,
    ) -> ObjectVersion | None:
        """Atomically remove the upload and all of its parts and store ``version``
        as :meth:`put_version` does (returns what it displaced), with its
        ``upload_id`` set to ``upload_id`` whatever the record says. References
        held by the parts are released and those of the version's manifest added,
        so blocks reused from parts keep their count. Raises UploadNotFound when
        the upload is already gone. ``guard`` is as for :meth:`put_version`; when
        it raises, the upload and its parts are left as they were."""
        ...

    async def get_completed_upload(self, bucket: str, key: str, upload_id: str) -> ObjectVersion:
        """The stored version of ``key`` that completing ``upload_id`` created (the
        full record, ``is_latest`` set correctly; the newest if several carry that
        id). Raises UploadNotFound when there is none: never completed, or that
        version was since deleted or replaced."""
        ...

    async def abort_upload(self, bucket: str, upload_id: str) -> None:
        """Remove the upload and its parts, releasing their references.
        Raises UploadNotFound."""
        ...

    # -- block references and garbage ------------------------------------------------------
    async def block_refcount(self, volume: str, block: str) -> int:
        """Current reference count (0 when unknown)."""
        ...

    async def known_blocks(self, volume: str, names: Sequence[str]) -> set[str]:
        """The ``names`` that have a reference row on ``volume`` (whatever its
        count). Blocks stored but unknown are orphans of writers that never
        committed (a crash between writing fragments and committing the manifest)."""
        ...

    async def claim_garbage(
        self, dropped_before: float, limit: int = 1000
    ) -> list[tuple[str, str]]:
        """Atomically forget and return up to ``limit`` ``(volume, block)`` pairs
        whose count has been zero since before ``dropped_before``. The caller then
        deletes the blocks (a block written again since must be protected by the
        volume's own mtime check)."""
        ...

    # -- cluster map -------------------------------------------------------------------------
    async def register_server(self, server: ServerInfo) -> ServerInfo:
        """Insert or refresh chunk server ``server.id``; returns the stored record.
        A new server is stored with ``state="active"`` and ``registered =
        heartbeat = server.heartbeat``; an existing one gets ``url``, ``zone``,
        ``disks`` and ``heartbeat`` replaced and keeps ``state`` and
        ``registered``. Raises InvalidArgument (nothing changes) when a disk id
        is listed twice or already belongs to another server."""
        ...

    async def heartbeat_server(
        self, server_id: str, disks: tuple[DiskInfo, ...], now: float
    ) -> bool:
        """Record a heartbeat at ``now`` with fresh ``total``/``free`` of the
        server's disks (matched by id; weights and disk list unchanged, unknown
        ids ignored). Never changes ``state`` (a removed server's heartbeat is
        recorded too). False, and nothing changes, when the server is unknown
        (it should register again)."""
        ...

    async def list_servers(self) -> list[ServerInfo]:
        """Every server, ordered by id."""
        ...

    async def get_server(self, server_id: str) -> ServerInfo:
        """Raises ServerNotFound."""
        ...

    async def set_server_state(self, server_id: str, state: str) -> ServerInfo:
        """Set the operator state; returns the updated record. Raises
        InvalidArgument for a state not in ``SERVER_STATES``, ServerNotFound."""
        ...

    async def delete_server(self, server_id: str) -> None:
        """Forget the server (its disk ids are free again). Raises ServerNotFound."""
        ...

    # -- manifest scan and repair (healer, rebalancer) ----------------------------------------
    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``holder`` for ``ttl`` seconds.
        True when ``holder`` holds it afterwards (it was free, expired, or already
        held by ``holder``); False while another holder's lease runs. Used so that
        one gateway of a cluster runs each cluster-wide background job."""
        ...

    async def put_status(self, name: str, holder: str, body: dict[str, Any]) -> None:
        """Publish ``body`` (a JSON-serialisable dict) as the shared status
        ``name`` from ``holder``, stamped now; replaces the previous one."""
        ...

    async def get_status(self, name: str) -> SharedStatus | None:
        """The shared status ``name`` as last published; None when it never was."""
        ...

    async def scan_manifests(self, after: str | None, limit: int) -> list[ManifestRow]:
        """Up to ``limit`` rows holding a non-empty manifest (object versions,
        then upload parts), in one total order, starting after the cursor
        ``after`` (the ``cursor`` of the last row of the previous page; None:
        from the start). Rows without blocks (inline data, delete markers) are
        skipped. A row present for the whole scan is returned exactly once; a
        page shorter than ``limit`` means the scan is complete.
        Pages are index seeks, never ``OFFSET``. Cursors are opaque; their
        string order is the scan order. Raises InvalidArgument for a malformed
        cursor."""
        ...

    async def replace_manifest(self, row: ManifestRow, manifest: Manifest) -> bool:
        """Compare-and-swap: store ``manifest`` in the row scanned as ``row``
        only if its stored manifest text still equals ``row.text``, releasing
        the old manifest's block references and adding the new one's in the
        same transaction (net per block; counts dropping to zero become garbage
        after the usual delay). False, and nothing changes, when the row is gone
        or its manifest changed since the scan. Raises InvalidArgument for a
        malformed cursor or an empty ``manifest``."""
        ...

    # -- pre-authenticated requests (PARs) ------------------------------------------------------
    async def create_par(self, par: Par) -> None:
        """Store a new PAR. Raises Conflict (nothing changes) when one of that id exists."""
        ...

    async def get_par(self, par_id: str) -> Par:
        """The PAR, revoked or expired ones included until swept. Raises ParNotFound."""
        ...

    async def list_pars(self, owner: str, bucket: str | None = None) -> list[Par]:
        """PARs of ``owner`` (revoked and expired ones too, until swept): those of
        ``bucket`` ordered by creation, or all of them by bucket then creation."""
        ...

    async def revoke_par(self, par_id: str) -> Par:
        """Mark the PAR revoked (for good) and return the updated record; revoking
        a revoked PAR changes nothing. Raises ParNotFound."""
        ...

    async def delete_expired_pars(self, before: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` PARs that expired before ``before`` (revoked or
        not), oldest first, together with their job records
        (:meth:`get_par_job` answers None afterwards); returns the number of
        PARs deleted."""
        ...

    # -- jobs of calculation PARs (one record per PAR: its last run) -------------------------
    async def start_par_job(self, job: ParJob, stale_before: float) -> bool:
        """Store ``job`` as the run of PAR ``job.par_id``, replacing its previous
        record, unless that record is ``running`` and its ``updated`` is at or
        after ``stale_before`` (a live run): then False, and nothing changes.
        Atomic: of concurrent starts while no live run exists, exactly one
        succeeds. Raises ParNotFound when the PAR does not exist."""
        ...

    async def get_par_job(self, par_id: str) -> ParJob | None:
        """The PAR's job record as last written; None when it never ran a job
        (or the PAR is gone)."""
        ...

    async def update_par_job(
        self,
        par_id: str,
        holder: str,
        *,
        state: str,
        progress: dict[str, Any],
        result: dict[str, Any],
        error: str,
        updated: float,
    ) -> bool | None:
        """Replace ``state``, ``progress``, ``result``, ``error`` and ``updated``
        of the PAR's job record, only if its ``holder`` is ``holder``; the other
        fields (``stop_requested`` included) are kept. Returns the record's
        ``stop_requested`` flag after the update; None, and nothing changes,
        when there is no record or another holder's (a newer run replaced it).
        ``progress`` and ``result`` are read before the call first yields (the
        running job goes on changing them)."""
        ...

    async def request_par_job_stop(self, par_id: str) -> bool:
        """Set ``stop_requested`` of the PAR's job record if its state is
        ``running`` (its holder then stops it); returns whether it was. False,
        and nothing changes, when there is no record or the run is over."""
        ...
