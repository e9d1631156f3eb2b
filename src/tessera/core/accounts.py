"""Accounts and access keys: who may sign requests, and as whom."""

from __future__ import annotations

from collections.abc import Sequence

from tessera.common.ids import new_access_key_id, new_secret_key
from tessera.core.base import ServiceBase
from tessera.model.errors import AccessDenied, AccessKeyNotFound, AccountNotFound
from tessera.model.records import AccessKey, Account

KEY_CACHE_SIZE = 10_000
"""Cached access keys per process; the cache is simply emptied when full."""


class AccountOps(ServiceBase):
    async def ensure_account(
        self,
        account_id: str,
        display_name: str,
        keys: Sequence[tuple[str, str]],
        *,
        email: str = "",
    ) -> None:
        """Create the account when missing and put each ``(access_key_id, secret)``.

        Idempotent; used at start-up to load configured identities. A key id that
        belongs to another account is moved to this one (configuration wins).
        """
        try:
            await self.meta.get_account(account_id)
        except AccountNotFound:
            await self.meta.create_account(
                Account(account_id, display_name, self.clock.now(), email=email)
            )
        for access_key_id, secret in keys:
            try:
                existing = await self.meta.get_access_key(access_key_id)
                if (
                    existing.secret == secret
                    and existing.account_id == account_id
                    and existing.enabled
                ):
                    continue
            except AccessKeyNotFound:
                pass
            await self.meta.put_access_key(
                AccessKey(access_key_id, secret, account_id, self.clock.now())
            )
            self._key_cache.pop(access_key_id, None)
            self.epoch.bump()

    async def create_access_key(self, account_id: str) -> AccessKey:
        """A new random key pair for an existing account. Raises AccountNotFound."""
        await self.meta.get_account(account_id)
        key = AccessKey(new_access_key_id(), new_secret_key(), account_id, self.clock.now())
        await self.meta.put_access_key(key)
        return key

    async def lookup_key(self, access_key_id: str) -> AccessKey:
        """The enabled key for SigV4 verification. Raises AccessKeyNotFound
        (also for disabled keys, so they are indistinguishable from unknown ones).

        Keys found are cached for ``options.key_cache_ttl`` seconds (every signed
        request needs one, and it was a metadata read each time): a key deleted
        or disabled through *another* gateway keeps working here for at most
        that long; through this one, at once. Unknown keys are not cached."""
        self._check_epoch()
        now = self.clock.now()
        cached = self._key_cache.get(access_key_id)
        if cached is not None and cached[1] > now:
            key = cached[0]
        else:
            key = await self.meta.get_access_key(access_key_id)
            if self.options.key_cache_ttl > 0:
                if len(self._key_cache) >= KEY_CACHE_SIZE:
                    self._key_cache.clear()
                self._key_cache[access_key_id] = (key, now + self.options.key_cache_ttl)
        if not key.enabled:
            raise AccessKeyNotFound(
                "The AWS Access Key Id you provided does not exist in our records."
            )
        return key

    async def get_account(self, account_id: str) -> Account:
        return await self.meta.get_account(account_id)

    @staticmethod
    def _require_self(caller: str, account_id: str) -> None:
        if caller != account_id:
            raise AccessDenied("Access Denied")
