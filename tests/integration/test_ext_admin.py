"""The operator routes (``/_tessera/v1/admin/``) as routes of the extension API:
root only, JSON errors, listed in the OpenAPI document, and a hook the node
does not have answers 501."""

from __future__ import annotations

from collections.abc import Iterator

import harness
import pytest

from tessera.sdk.errors import Forbidden, TesseraClientError
from tessera.sdk.http import Endpoint, SignedClient


def _client(server: harness.Server, access: str, secret: str) -> SignedClient:
    return SignedClient(Endpoint(server.endpoint, access, secret))


@pytest.fixture(scope="module")
def root(http_server: harness.Server) -> Iterator[SignedClient]:
    client = _client(http_server, http_server.access_key, http_server.secret_key)
    yield client
    client.close()


def test_root_reads_the_scrubber_and_runs_a_verify_pass(root: SignedClient) -> None:
    scrub = root.ext("GET", "admin/scrub")
    assert isinstance(scrub, dict) and scrub
    verified = root.ext("POST", "admin/heal", query={"mode": "verify", "wait": "1"})
    assert verified["segments"] >= 0 and verified["lost"] == 0
    status = root.ext("GET", "admin/heal")
    assert status["passes"] >= 1


def test_another_account_is_refused(http_server: harness.Server) -> None:
    alt = _client(http_server, harness.ALT_ACCOUNT["access_key"], harness.ALT_ACCOUNT["secret_key"])
    try:
        with pytest.raises(Forbidden) as refused:
            alt.ext("GET", "admin/heal")
        assert refused.value.code == "AccessDenied"
    finally:
        alt.close()


def test_missing_hook_and_bad_arguments(root: SignedClient) -> None:
    with pytest.raises(TesseraClientError) as missing:
        root.ext("GET", "admin/servers")  # a one-node server has no cluster map
    assert (missing.value.code, missing.value.status) == ("NotImplemented", 501)
    with pytest.raises(TesseraClientError) as bad:
        root.ext("POST", "admin/heal", query={"mode": "melt"})
    assert (bad.value.code, bad.value.status) == ("InvalidArgument", 400)


def test_admin_routes_are_in_the_openapi_document(root: SignedClient) -> None:
    paths = root.ext("GET", "openapi.json")["paths"]
    assert {"get", "post"} <= set(paths["/_tessera/v1/admin/heal"])
    assert "post" in paths["/_tessera/v1/admin/servers/{server}"]
