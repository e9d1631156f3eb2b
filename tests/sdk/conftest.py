"""Fixtures of the SDK contract suite: every test runs against both backends.

* ``api`` is parametrised over ``remote`` (``tessera.connect`` to a real
  ``tessera serve`` on 127.0.0.1, started once per session with
  ``integration.harness``) and ``embedded`` (``tessera.open`` on a temporary
  directory; skipped while :mod:`tessera.server.embedded` does not exist).
  Both act for the root account.
* ``login(account)``: an API acting for another account (a fresh access key
  created by root); ``other_api`` acts for ``harness.ALT_ACCOUNT``'s id.
* ``container`` / ``versioned``: a fresh container of ``api`` (versioning off /
  on), force-deleted afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from sdk_support import EMBEDDED_MISSING, Login, embedded_available, unique

import tessera
from integration import harness
from tessera.sdk import Conflict, ObjectStorageApi, TesseraClientError

BACKENDS = ("remote", "embedded")


@pytest.fixture(scope="session")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Server]:
    base = tmp_path_factory.mktemp("sdk-server")
    env = {"TESSERA_AUTH_ACCOUNTS": json.dumps([harness.ALT_ACCOUNT])}
    try:
        server = harness.start_server(base / "data", env=env)
    except harness.ServerStartError as e:
        pytest.fail(str(e), pytrace=False)
    yield server
    code = server.stop()
    if code != 0:
        print(f"tessera serve exited with {code}\n{server.stderr()}")


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not embedded_available():
        pytest.skip(EMBEDDED_MISSING)
    return tmp_path_factory.mktemp("embedded") / "data"


def _open_embedded(path: Path, account: str | None = None) -> ObjectStorageApi:
    if account is None:
        api: ObjectStorageApi = tessera.open(path)
        return api
    try:
        other: ObjectStorageApi = tessera.open(path, account=account)
    except Conflict as e:
        if e.code != "DataDirectoryInUse":
            raise
        pytest.skip(
            "embedded: the data directory is held by the root API (one backend per "
            "directory), so a second account cannot act on it at the same time"
        )
    return other


@pytest.fixture(scope="session", params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(scope="session")
def api(backend_kind: str, request: pytest.FixtureRequest) -> Iterator[ObjectStorageApi]:
    """The API under test, acting for the root account."""
    if backend_kind == "remote":
        server: harness.Server = request.getfixturevalue("sdk_server")
        result: ObjectStorageApi = tessera.connect(
            server.endpoint, server.access_key, server.secret_key
        )
    else:
        result = _open_embedded(request.getfixturevalue("embedded_dir"))
    yield result
    result.close()


@pytest.fixture(scope="session")
def login(
    api: ObjectStorageApi, backend_kind: str, request: pytest.FixtureRequest
) -> Iterator[Login]:
    """``login(account)`` -> an API acting for ``account`` (created when missing)."""
    opened: list[ObjectStorageApi] = []

    def open_as(account: str) -> ObjectStorageApi:
        api.account_create(account)
        if backend_kind == "remote":
            server: harness.Server = request.getfixturevalue("sdk_server")
            key = api.access_key_create(account)
            other: ObjectStorageApi = tessera.connect(
                server.endpoint, key.access_key_id, key.secret
            )
        else:
            other = _open_embedded(request.getfixturevalue("embedded_dir"), account)
        opened.append(other)
        return other

    yield open_as
    for other in opened:
        other.close()


@pytest.fixture(scope="session")
def other_api(login: Login) -> ObjectStorageApi:
    """An API of a second account (not root)."""
    return login(str(harness.ALT_ACCOUNT["id"]))


def _cleanup(api: ObjectStorageApi, name: str) -> None:
    with suppress(TesseraClientError):
        api.container_delete(name, force=True)


@pytest.fixture
def container(api: ObjectStorageApi) -> Iterator[str]:
    name = unique()
    assert api.container_create(name) is True
    yield name
    _cleanup(api, name)


@pytest.fixture
def versioned(api: ObjectStorageApi) -> Iterator[str]:
    name = unique("sdkv")
    assert api.container_create(name, versioning=True) is True
    yield name
    _cleanup(api, name)


@pytest.fixture
def cleanup(api: ObjectStorageApi) -> Iterator[list[str]]:
    """Append container names a test creates itself; they are force-deleted after it."""
    names: list[str] = []
    yield names
    for name in names:
        _cleanup(api, name)
