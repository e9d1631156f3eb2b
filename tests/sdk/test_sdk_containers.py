"""ObjectStorageApi contract, accounts and containers (both backends)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sdk_support import EMBEDDED_MISSING, Login, embedded_available, payload, read_all, unique

import tessera
from tessera.sdk import (
    Conflict,
    ContainerNotEmpty,
    Forbidden,
    NoSuchAccount,
    NoSuchContainer,
    NoSuchObject,
    ObjectStorageApi,
)

# ------------------------------------------------------------------ accounts


def test_acts_for_root(api: ObjectStorageApi) -> None:
    assert api.account == "root"
    assert "root" in api.account_list()
    assert api.account_show("root").id == "root"


def test_account_lifecycle(api: ObjectStorageApi) -> None:
    name = unique("acct")
    assert api.account_create(name, "Test Account") is True
    assert api.account_create(name) is False
    assert name in api.account_list()
    info = api.account_show(name)
    assert (info.id, info.display_name) == (name, "Test Account")
    assert (info.containers, info.objects, info.bytes) == (0, 0, 0)

    api.account_set_properties(name, {"team": "blue", "tier": "gold"})
    assert api.account_show(name).properties == {"team": "blue", "tier": "gold"}
    api.account_set_properties(name, {"tier": "silver"})
    api.account_del_properties(name, ["team", "never-set"])
    assert api.account_show(name).properties == {"tier": "silver"}
    assert api.account_refresh(name).properties == {"tier": "silver"}
    api.account_flush(name)

    api.account_delete(name)
    assert name not in api.account_list()
    for call in (api.account_show, api.account_delete, api.account_flush, api.account_refresh):
        with pytest.raises(NoSuchAccount):
            call(name)
    with pytest.raises(NoSuchAccount):
        api.account_set_properties(name, {"a": "1"})


def test_account_totals_and_keys(api: ObjectStorageApi, login: Login) -> None:
    name = unique("acct")
    user = login(name)
    assert user.account == name
    c = unique()
    user.container_create(c)
    user.object_create(c, data=b"abc", obj_name="x")
    user.object_create(c, data=payload(5000), obj_name="y")
    for who in (api, user):
        info = who.account_show(name)
        assert (info.containers, info.objects, info.bytes) == (1, 2, 5003)
    with pytest.raises(Conflict):
        api.account_delete(name)
    user.container_delete(c, force=True)
    api.account_delete(name)
    with pytest.raises(NoSuchAccount):
        api.account_show(name)


def test_non_root_is_confined_to_its_account(
    api: ObjectStorageApi, other_api: ObjectStorageApi
) -> None:
    with pytest.raises(Forbidden):
        other_api.account_create(unique("acct"))
    with pytest.raises(Forbidden):
        other_api.account_list()
    with pytest.raises(Forbidden):
        other_api.account_show("root")
    with pytest.raises(Forbidden):
        other_api.account_set_properties("root", {"x": "1"})
    with pytest.raises(Forbidden):
        other_api.access_key_create("root")
    assert other_api.account_show(other_api.account).id == other_api.account
    key = other_api.access_key_create(other_api.account)
    assert key.account == other_api.account and key.access_key_id and key.secret


# ---------------------------------------------------------------- containers


def test_container_lifecycle(api: ObjectStorageApi, cleanup: list[str]) -> None:
    name = unique()
    cleanup.append(name)
    assert api.container_create(name, {"owner-team": "blue"}) is True
    assert api.container_create(name) is False
    info = api.container_show(name)
    assert (info.name, info.owner, info.objects, info.bytes) == (name, "root", 0, 0)
    assert (info.versioning, info.frozen) == ("unversioned", False)
    assert info.properties == {"owner-team": "blue"}
    assert name in [c.name for c in api.container_list()]
    api.container_delete(name)
    with pytest.raises(NoSuchContainer):
        api.container_show(name)
    with pytest.raises(NoSuchContainer):
        api.container_delete(name)
    with pytest.raises(NoSuchContainer):
        api.container_touch(name)
    assert name not in [c.name for c in api.container_list()]


def test_container_versioning_and_policy(api: ObjectStorageApi, cleanup: list[str]) -> None:
    name = unique()
    cleanup.append(name)
    api.container_create(name, policy="plain", versioning=True)
    info = api.container_show(name)
    assert (info.versioning, info.policy) == ("enabled", "plain")


def test_container_create_many(api: ObjectStorageApi, cleanup: list[str]) -> None:
    names = [unique() for _ in range(3)]
    cleanup.extend(names)
    assert api.container_create_many(names) == [(n, True) for n in names]
    assert api.container_create_many(names[:2]) == [(n, False) for n in names[:2]]
    listed = {c.name for c in api.container_list()}
    assert set(names) <= listed


def check_confined(other: ObjectStorageApi, container: str, key: str) -> None:
    """``other`` (not the owner, not root) can do nothing with ``container``."""
    with pytest.raises(Conflict):
        other.container_create(container)
    calls = [
        lambda: other.container_show(container),
        lambda: other.container_delete(container, force=True),
        lambda: other.container_set_properties(container, {"a": "b"}),
        lambda: other.container_snapshot(container, unique("snap")),
        lambda: other.object_list(container),
        lambda: other.object_fetch(container, key),
        lambda: other.object_head(container, key),
        lambda: other.object_create(container, data=b"x", obj_name="k2"),
        lambda: other.object_create(container, data=b"x", obj_name=key, append=True),
        lambda: other.object_delete(container, key),
        lambda: other.object_delete_many(container, [key]),
        lambda: other.object_set_properties(container, key, {"a": "b"}),
        lambda: other.object_locate(container, key),
        lambda: other.object_truncate(container, key, 0),
        lambda: other.object_touch(container, key),
        lambda: other.object_drain(container, key),
    ]
    for call in calls:
        with pytest.raises(Forbidden):
            call()
    assert container not in [c.name for c in other.container_list()]
    mine = unique()
    other.container_create(mine)
    try:
        with pytest.raises(Forbidden):
            other.object_link(container, key, mine, "stolen")
        with pytest.raises(Forbidden):
            other.object_copy(container, key, mine, "stolen")
        with pytest.raises(NoSuchObject):
            other.object_head(mine, "stolen")
    finally:
        other.container_delete(mine, force=True)


def test_another_accounts_container(
    api: ObjectStorageApi, other_api: ObjectStorageApi, container: str
) -> None:
    api.object_create(container, data=b"secret", obj_name="k")
    check_confined(other_api, container, "k")
    assert read_all(api, container, "k") == b"secret"
    assert api.object_head(container, "k").properties == {}


def test_embedded_accounts_are_confined(backend_kind: str, tmp_path: Path) -> None:
    """The embedded backend holds its directory alone, so the two accounts act
    in turn here (the remote run of the suite has them side by side)."""
    if backend_kind != "embedded":
        pytest.skip("covered by test_another_accounts_container")
    if not embedded_available():
        pytest.skip(EMBEDDED_MISSING)
    name = unique("acct")
    with tessera.open(tmp_path) as root:
        root.account_create(name)
        c = unique()
        root.container_create(c)
        root.object_create(c, data=b"secret", obj_name="k")
    with tessera.open(tmp_path, account=name) as other:
        assert other.account == name
        check_confined(other, c, "k")
        with pytest.raises(Forbidden):
            other.account_create(unique("acct"))
        with pytest.raises(Forbidden):
            other.account_show("root")
        other.container_create(unique())
        other.object_create(other.container_list()[0].name, data=b"abc", obj_name="x")
        assert other.account_show(name).objects == 1
    with tessera.open(tmp_path) as root:
        assert read_all(root, c, "k") == b"secret"
        info = root.account_show(name)
        assert (info.containers, info.objects, info.bytes) == (1, 1, 3)
        with pytest.raises(Conflict):
            root.account_delete(name)


def test_container_delete_refuses_non_empty(api: ObjectStorageApi, cleanup: list[str]) -> None:
    name = unique()
    cleanup.append(name)
    api.container_create(name)
    api.object_create(name, data=b"x", obj_name="a/b")
    with pytest.raises(ContainerNotEmpty):
        api.container_delete(name)
    assert read_all(api, name, "a/b") == b"x"
    api.container_delete(name, force=True)
    with pytest.raises(NoSuchContainer):
        api.container_show(name)


def test_container_list_paging(api: ObjectStorageApi, cleanup: list[str]) -> None:
    p = unique("sdkl")
    names = [f"{p}a", f"{p}b-1", f"{p}b-2", f"{p}c"]
    cleanup.extend(names)
    api.container_create_many(names)

    def listed(**kw: object) -> tuple[list[str], list[str], bool, str]:
        page = api.container_list(prefix=p, **kw)  # type: ignore[arg-type]
        return [c.name for c in page], page.prefixes, page.truncated, page.next_marker

    assert listed() == (names, [], False, "")
    assert listed(delimiter="-") == ([f"{p}a", f"{p}c"], [f"{p}b-"], False, "")
    assert listed(marker=f"{p}a")[0] == names[1:]
    assert listed(end_marker=f"{p}c")[0] == names[:3]
    assert listed(limit=2) == (names[:2], [], True, f"{p}b-1")
    assert listed(limit=2, marker=f"{p}b-1") == (names[2:], [], False, "")
    assert listed(delimiter="-", limit=2) == ([f"{p}a"], [f"{p}b-"], True, f"{p}b-")
    assert listed(delimiter="-", marker=f"{p}b-") == ([f"{p}c"], [], False, "")


def test_container_properties(api: ObjectStorageApi, container: str) -> None:
    api.container_set_properties(container, {"a": "1"})
    assert api.container_get_properties(container) == {"a": "1"}
    api.container_set_properties(container, {"b": "2"})
    assert api.container_get_properties(container) == {"a": "1", "b": "2"}
    api.container_set_properties(container, {"c": "3"}, clear=True)
    assert api.container_get_properties(container) == {"c": "3"}
    api.container_del_properties(container, ["c", "never-set"])
    assert api.container_get_properties(container) == {}
    missing = unique()
    with pytest.raises(NoSuchContainer):
        api.container_get_properties(missing)
    with pytest.raises(NoSuchContainer):
        api.container_set_properties(missing, {"a": "1"})
    with pytest.raises(NoSuchContainer):
        api.container_del_properties(missing, ["a"])


def test_container_counters(api: ObjectStorageApi, container: str) -> None:
    api.object_create(container, data=b"abc", obj_name="a")
    api.object_create(container, data=payload(100_000), obj_name="b")
    info = api.container_show(container)
    assert (info.objects, info.bytes) == (2, 100_003)
    assert api.container_refresh(container) == info
    api.container_touch(container)
    api.object_delete(container, "a")
    assert (api.container_refresh(container).objects, api.container_show(container).bytes) == (
        1,
        100_000,
    )


def test_container_flush_unversioned(api: ObjectStorageApi, container: str) -> None:
    api.container_set_properties(container, {"keep": "me"})
    for i in range(5):
        api.object_create(container, data=payload(10 + i), obj_name=f"o/{i}")
    assert api.container_flush(container) == 5
    assert api.object_list(container).objects == []
    info = api.container_show(container)
    assert (info.objects, info.properties) == (0, {"keep": "me"})
    assert api.container_flush(container) == 0


def test_container_flush_versioned(api: ObjectStorageApi, versioned: str) -> None:
    api.object_create(versioned, data=b"1", obj_name="x")
    api.object_create(versioned, data=b"2", obj_name="x")
    api.object_create(versioned, data=b"3", obj_name="y")
    api.object_delete(versioned, "y")
    assert api.container_flush(versioned) == 4
    page = api.object_list(versioned, versions=True, deleted=True)
    assert page.objects == []
    api.container_delete(versioned)


def test_container_purge(api: ObjectStorageApi, versioned: str, container: str) -> None:
    for i in range(3):
        api.object_create(versioned, data=f"a{i}".encode(), obj_name="a")
    api.object_create(versioned, data=b"b0", obj_name="b")
    assert api.container_purge(versioned, maxvers=2) == 1
    assert len(api.object_list(versioned, versions=True).objects) == 3
    assert api.container_purge(versioned) == 1
    page = api.object_list(versioned, versions=True, deleted=True)
    assert [(o.name, o.is_latest) for o in page.objects] == [("a", True), ("b", True)]
    assert read_all(api, versioned, "a") == b"a2"
    api.object_create(container, data=b"x", obj_name="x")
    assert api.container_purge(container) == 0
    assert read_all(api, container, "x") == b"x"


def test_container_snapshot(api: ObjectStorageApi, container: str, cleanup: list[str]) -> None:
    big = payload(300_000, seed=3)
    api.object_create(container, data=b"small", obj_name="s", properties={"p": "1"})
    api.object_create(container, data=big, obj_name="dir/big")
    snap = unique("snap")
    cleanup.append(snap)
    info = api.container_snapshot(container, snap)
    assert (info.name, info.frozen, info.objects, info.bytes) == (snap, True, 2, 300_005)
    assert api.container_show(snap).frozen is True
    assert read_all(api, snap, "dir/big") == big
    assert api.object_head(snap, "s").properties == {"p": "1"}
    src = api.object_locate(container, "dir/big")
    dst = api.object_locate(snap, "dir/big")
    assert [s.hash for s in dst.segments] == [s.hash for s in src.segments]
    # The source moves on; the snapshot does not, and refuses writes.
    api.object_create(container, data=b"changed", obj_name="s")
    api.object_delete(container, "dir/big")
    assert read_all(api, snap, "s") == b"small"
    assert read_all(api, snap, "dir/big") == big
    for write in (
        lambda: api.object_create(snap, data=b"x", obj_name="new"),
        lambda: api.object_delete(snap, "s"),
        lambda: api.object_set_properties(snap, "s", {"q": "2"}),
        lambda: api.object_create(snap, data=b"x", obj_name="s", append=True),
    ):
        with pytest.raises(Conflict) as e:
            write()
        assert e.value.code == "FrozenContainer"
    with pytest.raises(NoSuchObject):
        api.object_head(snap, "new")
    with pytest.raises(NoSuchContainer):
        api.container_snapshot(unique(), unique("snap"))
    with pytest.raises(Conflict):
        api.container_snapshot(container, snap)
