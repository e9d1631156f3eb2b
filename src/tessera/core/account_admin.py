"""Account administration: create, delete, list, describe with totals, change
properties, create access keys.

Who may do what: the root account (:data:`ROOT_ACCOUNT`) may do everything;
any other account may only describe and change its own account and create its
own keys. Everything else raises AccessDenied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tessera.core.accounts import AccountOps
from tessera.core.properties import PropertyUpdate
from tessera.core.requests import Principal
from tessera.model.errors import (
    AccessDenied,
    AccountAlreadyExists,
    AccountNotEmpty,
    BucketNotEmpty,
    InvalidArgument,
)
from tessera.model.records import AccessKey, Account

ROOT_ACCOUNT = "root"
"""Id of the administrator account (the one ``tessera serve`` creates)."""
MAX_ACCOUNT_ID = 64


@dataclass(frozen=True, slots=True)
class AccountStats:
    """An account with totals over the buckets it owns (latest live objects)."""

    account: Account
    containers: int
    objects: int
    bytes: int


def _require_root(who: Principal) -> None:
    if who.account_id != ROOT_ACCOUNT:
        raise AccessDenied("Only the root account may administer accounts")


def _require_self_or_root(who: Principal, account_id: str) -> None:
    if who.account_id not in (ROOT_ACCOUNT, account_id):
        raise AccessDenied("Access Denied")


class AccountAdminOps(AccountOps):
    async def create_account_as(
        self, who: Principal, account_id: str, display_name: str = ""
    ) -> bool:
        """Create ``account_id`` (root only); False when it already exists.
        Raises AccessDenied, InvalidArgument (empty or over-long id, ``/``)."""
        _require_root(who)
        if not account_id or len(account_id) > MAX_ACCOUNT_ID or "/" in account_id:
            raise InvalidArgument(f"Invalid account id {account_id!r}", argument="account")
        account = Account(account_id, display_name or account_id, self.clock.now())
        try:
            await self.meta.create_account(account)
        except AccountAlreadyExists:
            return False
        return True

    async def delete_account_as(self, who: Principal, account_id: str) -> None:
        """Delete an account and its keys (root only; the root account itself
        cannot be deleted). Raises AccessDenied, AccountNotFound, AccountNotEmpty
        (it still owns buckets)."""
        _require_root(who)
        if account_id == ROOT_ACCOUNT:
            raise AccessDenied("The root account cannot be deleted")
        try:
            await self.meta.delete_account(account_id)
        except BucketNotEmpty:
            raise AccountNotEmpty("The account still owns buckets", account_id=account_id) from None
        for key_id, (key, _) in list(self._key_cache.items()):
            if key.account_id == account_id:
                self._key_cache.pop(key_id, None)
        self.epoch.bump()

    async def list_account_ids(self, who: Principal) -> list[str]:
        """Every account id, in order (root only). Raises AccessDenied."""
        _require_root(who)
        return [a.id for a in await self.meta.list_accounts()]

    async def account_stats(self, who: Principal, account_id: str) -> AccountStats:
        """The account with its number of buckets and the objects and bytes in
        them (one count per bucket). Raises AccessDenied, AccountNotFound."""
        _require_self_or_root(who, account_id)
        account = await self.meta.get_account(account_id)
        buckets = await self.meta.list_buckets(account_id)
        objects = size = 0
        for bucket in buckets:
            n, b = await self.meta.count_objects(bucket.name)
            objects, size = objects + n, size + b
        return AccountStats(account, len(buckets), objects, size)

    async def update_account_properties(
        self, who: Principal, account_id: str, update: PropertyUpdate
    ) -> Account:
        """Change the account's properties (itself or root); returns the updated
        record. Raises AccessDenied, AccountNotFound, InvalidArgument."""
        _require_self_or_root(who, account_id)
        account = await self.meta.get_account(account_id)
        updated = dataclasses.replace(account, properties=update.apply(account.properties))
        await self.meta.update_account(updated)
        return updated

    async def create_access_key_as(self, who: Principal, account_id: str) -> AccessKey:
        """A new key pair for ``account_id`` (itself or root).
        Raises AccessDenied, AccountNotFound."""
        _require_self_or_root(who, account_id)
        return await self.create_access_key(account_id)
