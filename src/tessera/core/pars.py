"""Pre-authenticated requests (PARs): links that act for their owner, within a scope.

Theory of operation
-------------------
* **Creation.** Only the bucket's owner creates a PAR on it. It names one
  bucket and either exactly one key (object PAR) or none (bucket PAR), at
  least one permission (read, write, list; list only for bucket PARs) and an
  expiry in the future, at most :attr:`ParOptions.max_ttl` seconds away. The
  caller gets the record and a fresh random secret, once: the store keeps only
  the secret's SHA-256.
* **Resolution.** ``(id, secret)`` -> the PAR, comparing secret hashes in
  constant time. Unknown id, wrong secret and revoked PAR all raise
  :class:`ParNotFound` (indistinguishable to the caller); an expired PAR whose
  secret matches raises :class:`ParExpired`. Both are AccessDenied.
* **Authority and scope.** A use acts as ``Principal(par.owner)``, so every
  ordinary bucket and object check still applies (an owner who lost the bucket
  loses its PARs; a bucket deleted and created again, even by the same owner,
  is not the one the PAR was made for), and is confined by :meth:`ParOps.par_target`: the PAR's
  bucket only, exactly its key for an object PAR, and keys with ``.`` or ``..``
  segments are refused outright, so no later path normalisation can widen it.
* **Revocation.** By the owner (signed API), or by anyone presenting the secret
  (proof of possession: whoever can use a link may kill it). Revocation is
  immediate for this gateway and every other one sharing the metadata store:
  each use reads the row.
* **Calculation PARs** name a job (:mod:`tessera.core.par_jobs`) instead of
  permissions: their holder starts, stops and watches that job on the PAR's
  bucket, running as the owner, and reaches no data directly. The job's state
  lives in the metadata store, so any gateway or worker answers for it.
  Revoking one stops its job.
* **Sweep.** Rows expired for longer than :attr:`ParOptions.keep_expired` are
  deleted by :meth:`ParOps.sweep_pars` (with their job state); until then
  listings show them and uses answer ParExpired. A swept PAR answers ParNotFound.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, cast

from tessera.core.base import ServiceBase
from tessera.core.par_jobs import JOBS, JobService, JobState, ParJobs
from tessera.core.requests import Principal
from tessera.core.validation import check_key
from tessera.model.errors import (
    AccessDenied,
    BucketNotFound,
    InvalidArgument,
    ParExpired,
    ParNotFound,
)
from tessera.model.pars import Par

log = logging.getLogger(__name__)

ACTIONS = ("read", "write", "list")
_DUMMY_HASH = hashlib.sha256(b"no such PAR").hexdigest()
_GONE = "The pre-authenticated request does not exist or was revoked."


@dataclass(frozen=True, slots=True)
class ParOptions:
    max_ttl: float = 7 * 86400.0
    """Longest lifetime a new PAR may ask for, in seconds."""
    keep_expired: float = 86400.0
    """Seconds an expired PAR stays listed (and answers "expired") before the sweep deletes it."""
    sweep_interval: float = 600.0
    """Seconds between two sweeps of :meth:`ParOps.run_par_sweeper`."""


def secret_hash(secret: str) -> str:
    """Lower-case hex SHA-256 of a PAR secret (what the store keeps)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _denied(message: str, par: Par) -> AccessDenied:
    return AccessDenied(message, bucket=par.bucket, par_id=par.id)


def check_par_key(key: str) -> None:
    """Refuse keys a PAR must never address: empty, too long, or holding a ``.``
    or ``..`` path segment (which a proxy or client could normalise into another
    key). Raises AccessDenied (an escape attempt) or KeyTooLong."""
    if not key or any(seg in (".", "..") for seg in key.split("/")):
        raise AccessDenied("Keys with '.' or '..' segments cannot be reached through a PAR.")
    check_key(key)


class ParOps(ServiceBase):
    """Create, resolve, scope, revoke, list and sweep PARs."""

    par_options: ParOptions = ParOptions()
    """Replace on the service instance to configure (the server sets it from its config)."""
    _par_jobs: ParJobs | None = None
    """Jobs of calculation PARs, created on first use (see :mod:`tessera.core.par_jobs`)."""

    async def create_par(
        self,
        who: Principal,
        bucket: str,
        key: str | None = None,
        *,
        readable: bool = True,
        writeable: bool = False,
        listable: bool = False,
        expires: float,
        job: str | None = None,
    ) -> tuple[Par, str]:
        """A new PAR and its secret (returned only here). ``expires`` is epoch seconds.

        Raises BucketNotFound, AccessDenied (``who`` does not own the bucket),
        InvalidArgument (no permission; ``listable`` on an object PAR; expiry
        not in the future or beyond ``par_options.max_ttl``), KeyTooLong, or
        AccessDenied for a key with ``.``/``..`` segments."""
        await self._bucket(who, bucket, "owner")
        if job is not None:  # a calculation PAR reaches no data itself
            if job not in JOBS:
                raise InvalidArgument(f"Unknown job {job!r}; one of {', '.join(JOBS)}.")
            if key is not None:
                raise InvalidArgument("A calculation PAR names a bucket, not a key.")
            readable = writeable = listable = False
        elif key is not None:
            check_par_key(key)
        if not (readable or writeable or listable or job):
            raise InvalidArgument("A PAR needs at least one of readable, writeable, listable.")
        if listable and key is not None:
            raise InvalidArgument("Only bucket PARs (no key) can be listable.")
        now = self.clock.now()
        if not expires > now:
            raise InvalidArgument("The PAR's expiry must be in the future.", value=str(expires))
        if expires - now > self.par_options.max_ttl:
            raise InvalidArgument(
                f"A PAR lives at most {int(self.par_options.max_ttl)} seconds.",
                value=str(expires),
            )
        secret = secrets.token_urlsafe(32)
        par = Par(
            id=secrets.token_hex(12),
            owner=who.account_id,
            bucket=bucket,
            key=key,
            readable=readable,
            writeable=writeable,
            listable=listable,
            created=now,
            expires=expires,
            secret_hash=secret_hash(secret),
            job=job,
        )
        await self.meta.create_par(par)
        return par, secret

    async def _par_with_secret(self, par_id: str, secret: str) -> Par:
        """The PAR if ``secret`` is its secret (revoked and expired ones too).
        Raises ParNotFound, after the same hash comparison as for a known id."""
        try:
            par = await self.meta.get_par(par_id)
        except ParNotFound:
            par = None
        given = secret_hash(secret)
        if not hmac.compare_digest(given, par.secret_hash if par else _DUMMY_HASH) or par is None:
            raise ParNotFound(_GONE)
        return par

    async def resolve_par(self, par_id: str, secret: str) -> Par:
        """The usable PAR for ``(par_id, secret)``. Raises ParNotFound (unknown
        id, wrong secret, revoked, or its bucket is gone or was created anew
        since) or ParExpired."""
        par = await self._par_with_secret(par_id, secret)
        if par.revoked:
            raise ParNotFound(_GONE)
        if par.expires <= self.clock.now():
            raise ParExpired("The pre-authenticated request has expired.", par_id=par_id)
        try:
            bucket = await self._bucket(Principal(par.owner), par.bucket, "exists")
        except BucketNotFound:
            raise ParNotFound(_GONE) from None
        if bucket.created > par.created:  # deleted and created again since: not the same bucket
            raise ParNotFound(_GONE)
        return par

    def par_target(self, par: Par, action: str, key: str | None) -> tuple[Principal, str, str]:
        """What a use of ``par`` for ``action`` (``read``, ``write``, ``list``) on
        ``key`` may touch: ``(owner principal, bucket, key)``; for ``list`` the
        key is empty. ``key`` is None when the use names no key (an object PAR's
        own URL). Raises AccessDenied for anything outside the PAR's scope or
        permissions."""
        if action not in ACTIONS:
            raise InvalidArgument(f"Unknown PAR action {action!r}.")
        if par.is_calculation:
            raise _denied("A calculation PAR does not reach data.", par)
        allowed = {"read": par.readable, "write": par.writeable, "list": par.listable}[action]
        if action == "list":
            if not par.is_bucket:
                raise _denied("An object PAR cannot list its bucket.", par)
            if not allowed:
                raise _denied("This PAR does not allow listing.", par)
            return Principal(par.owner), par.bucket, ""
        if not allowed:
            raise _denied(f"This PAR does not allow {action}ing.", par)
        if par.key is not None:  # object PAR: its own key, named by the PAR alone
            if key is not None:
                raise _denied("An object PAR reaches only its own object.", par)
            return Principal(par.owner), par.bucket, par.key
        if key is None:
            raise _denied("A bucket PAR needs a key after its URL.", par)
        check_par_key(key)
        return Principal(par.owner), par.bucket, key

    def _jobs(self) -> ParJobs:
        if self._par_jobs is None:
            # The service composing ParOps is an ObjectService: it lists, reads and copies.
            self._par_jobs = ParJobs(cast(JobService, self), self.meta, self.clock)
        return self._par_jobs

    def _calculation(self, par: Par) -> Par:
        if not par.is_calculation:
            raise _denied("This PAR does not control a job.", par)
        return par

    async def start_par_job(self, par: Par, args: dict[str, Any]) -> JobState:
        """Start the job of calculation PAR ``par`` (as its owner, in its bucket).
        Raises AccessDenied (not a calculation PAR), InvalidArgument, Conflict
        (already running, in this process or another sharing the store)."""
        return await self._jobs().start(self._calculation(par), args)

    async def stop_par_job(self, par: Par) -> JobState | None:
        """Stop its running job, wherever it runs; the last run's state, None if
        it never ran one. Raises AccessDenied (not a calculation PAR)."""
        return await self._jobs().stop(self._calculation(par))

    async def par_job_status(self, par: Par) -> JobState | None:
        """The last run's state, wherever it runs (None: never ran). Raises AccessDenied."""
        return await self._jobs().status(self._calculation(par))

    async def close_par_jobs(self) -> None:
        """Stop every running job of this process."""
        if self._par_jobs is not None:
            await self._par_jobs.close()

    async def revoke_par(self, who: Principal, par_id: str) -> Par:
        """Revoke one of ``who``'s PARs. Raises ParNotFound (also for another
        account's PAR: its existence is not revealed)."""
        try:
            par = await self.meta.get_par(par_id)
        except ParNotFound:
            par = None
        if par is None or par.owner != who.account_id:
            raise ParNotFound(_GONE, par_id=par_id)
        return await self._revoked(par_id)

    async def revoke_par_with_secret(self, par_id: str, secret: str) -> Par:
        """Revoke by proof of possession: whoever holds the secret may revoke,
        expired or not. Raises ParNotFound (unknown id or wrong secret)."""
        await self._par_with_secret(par_id, secret)
        return await self._revoked(par_id)

    async def _revoked(self, par_id: str) -> Par:
        """Revoke in the store; a calculation PAR's running job is stopped too."""
        par = await self.meta.revoke_par(par_id)
        if par.is_calculation:
            await self._jobs().stop(par)
        return par

    async def list_pars(self, who: Principal, bucket: str | None = None) -> list[Par]:
        """``who``'s PARs (of one bucket, or all), revoked and recently expired
        ones included. Raises BucketNotFound / AccessDenied when ``bucket`` is
        named and not ``who``'s."""
        if bucket is not None:
            await self._bucket(who, bucket, "owner")
        return await self.meta.list_pars(who.account_id, bucket)

    async def sweep_pars(self, batch: int = 1000) -> int:
        """Delete PARs expired more than ``par_options.keep_expired`` seconds ago;
        returns how many. Safe to run on several gateways at once."""
        before = self.clock.now() - self.par_options.keep_expired
        total = 0
        while True:
            n = await self.meta.delete_expired_pars(before, batch)
            total += n
            if n < batch:
                return total

    async def run_par_sweeper(self) -> None:
        """Sweep every ``par_options.sweep_interval`` seconds until cancelled;
        a failed sweep is logged and retried at the next interval."""
        while True:
            await asyncio.sleep(self.par_options.sweep_interval)
            try:
                n = await self.sweep_pars()
            except Exception:
                log.exception("sweeping expired PARs failed")
            else:
                if n:
                    log.info("swept %d expired PARs", n)
