"""Accounts and access keys: who may sign requests, and as whom."""

from __future__ import annotations

from collections.abc import Sequence

from tessera.common.ids import new_access_key_id, new_secret_key
from tessera.core.base import ServiceBase
from tessera.model.errors import AccessDenied, AccessKeyNotFound, AccountNotFound
from tessera.model.records import AccessKey, Account


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

    async def create_access_key(self, account_id: str) -> AccessKey:
        """A new random key pair for an existing account. Raises AccountNotFound."""
        await self.meta.get_account(account_id)
        key = AccessKey(new_access_key_id(), new_secret_key(), account_id, self.clock.now())
        await self.meta.put_access_key(key)
        return key

    async def lookup_key(self, access_key_id: str) -> AccessKey:
        """The enabled key for SigV4 verification. Raises AccessKeyNotFound
        (also for disabled keys, so they are indistinguishable from unknown ones)."""
        key = await self.meta.get_access_key(access_key_id)
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
