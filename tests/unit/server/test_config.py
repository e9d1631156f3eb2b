"""The configuration loader: defaults, TOML, environment, flags, precedence and errors."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tessera.server.config import (
    Config,
    ConfigError,
    load_config,
    parse_listen,
    parse_size,
)
from tessera.server.node import segment_store

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tessera.toml"
    path.write_text(text)
    return path


# ------------------------------------------------------- the example file


def test_example_file_parses_to_the_defaults() -> None:
    assert load_config(EXAMPLE, env={}) == Config()


def test_example_file_lists_every_key() -> None:
    document = tomllib.loads(EXAMPLE.read_text())
    in_file = {(section, key) for section, table in document.items() for key in table}
    in_schema = {
        (section, key)
        for section, field in Config.model_fields.items()
        for key in field.annotation.model_fields  # type: ignore[union-attr]
    }
    assert in_file == in_schema


# ----------------------------------------------------------------- defaults


def test_defaults_and_derived_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={})
    assert cfg.server.address == ("127.0.0.1", 9000)
    assert cfg.data_dir == tmp_path / "tessera-data"
    assert cfg.disk_dirs == [tmp_path / "tessera-data" / "disk0"]
    assert cfg.meta_url == f"sqlite:///{tmp_path}/tessera-data/meta.db"
    assert cfg.meta_url.startswith("sqlite:////")
    assert cfg.storage.segment_size == 8 << 20
    assert cfg.storage.inline_threshold == 64 << 10
    assert cfg.storage.write_concurrency == 3
    assert cfg.storage.default_policy == "auto"
    assert cfg.storage.policy(1) == "plain" and cfg.storage.policy(6) == "ec/k=4,m=2"
    assert cfg.gateway.virtual_host_domains == ["localhost"]
    assert cfg.gateway.max_clock_skew == 900
    assert cfg.root_credentials is None
    assert not cfg.server.tls


def test_configured_disks_and_meta_url_win_over_derived_ones(tmp_path: Path) -> None:
    cfg = load_config(
        env={
            "TESSERA_STORAGE_DISKS": f"{tmp_path}/a, {tmp_path}/b",
            "TESSERA_META_URL": "sqlite:////var/lib/tessera/meta.db",
        }
    )
    assert cfg.disk_dirs == [tmp_path / "a", tmp_path / "b"]
    assert cfg.meta_url == "sqlite:////var/lib/tessera/meta.db"


# --------------------------------------------------------------- precedence


def test_file_env_and_flags_in_order_of_precedence(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\nlisten = "127.0.0.1:1001"\ndata = "/from/file"\n'
        "[storage]\nsegment_size = 1048576\n",
    )
    assert load_config(path, env={}).server.listen == "127.0.0.1:1001"

    env = {"TESSERA_SERVER_LISTEN": "127.0.0.1:1002"}
    cfg = load_config(path, env=env)
    assert cfg.server.listen == "127.0.0.1:1002"
    assert cfg.server.data == Path("/from/file")  # untouched keys keep the file's value
    assert cfg.storage.segment_size == 1 << 20

    cfg = load_config(path, env=env, flags={"server.listen": "127.0.0.1:1003", "server.data": None})
    assert cfg.server.listen == "127.0.0.1:1003"
    assert cfg.server.data == Path("/from/file")  # None means "flag not given"


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateway]\nregion = "eu-west-3"\n')
    assert load_config(env={"TESSERA_CONFIG": str(path)}).gateway.region == "eu-west-3"
    other = tmp_path / "other.toml"
    other.write_text('[gateway]\nregion = "ap-south-1"\n')
    assert load_config(other, env={"TESSERA_CONFIG": str(path)}).gateway.region == "ap-south-1"


def test_lists_replace_rather_than_merge(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateway]\nvirtual_host_domains = ["a.test", "b.test"]\n')
    env = {"TESSERA_GATEWAY_VIRTUAL_HOST_DOMAINS": "c.test"}
    assert load_config(path, env=env).gateway.virtual_host_domains == ["c.test"]
    assert (
        load_config(env={"TESSERA_GATEWAY_VIRTUAL_HOST_DOMAINS": ""}).gateway.virtual_host_domains
        == []
    )
    json_env = {"TESSERA_GATEWAY_VIRTUAL_HOST_DOMAINS": '["S3.Example.com."]'}
    assert load_config(env=json_env).gateway.virtual_host_domains == ["s3.example.com"]


def test_flag_disks_are_comma_separated(tmp_path: Path) -> None:
    cfg = load_config(env={}, flags={"storage.disks": f"{tmp_path}/d1,{tmp_path}/d2"})
    assert cfg.disk_dirs == [tmp_path / "d1", tmp_path / "d2"]


def test_other_tools_tessera_variables_are_ignored() -> None:
    assert load_config(env={"TESSERA_TEST_PG_URL": "x", "TESSERA": "y"}) == Config()


# ------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (4096, 4096),
        ("4096", 4096),
        ("64KiB", 64 << 10),
        ("8MiB", 8 << 20),
        ("8M", 8 << 20),
        ("1 GiB", 1 << 30),
        ("16kb", 16 << 10),
    ],
)
def test_sizes(text: object, expected: int) -> None:
    assert parse_size(text) == expected


def test_sizes_in_environment() -> None:
    cfg = load_config(
        env={"TESSERA_STORAGE_SEGMENT_SIZE": "4MiB", "TESSERA_STORAGE_INLINE_THRESHOLD": "0"}
    )
    assert (cfg.storage.segment_size, cfg.storage.inline_threshold) == (4 << 20, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:9000", ("::1", 9000)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    "text", ["9000", ":9000", "host:", "host:x", "host:65536", "::1:9000", "[::1]"]
)
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


def test_policy_is_normalised() -> None:
    cfg = load_config(env={"TESSERA_STORAGE_DEFAULT_POLICY": " ec/k=4,m=2 "})
    assert cfg.storage.default_policy == "ec/k=4,m=2"


def test_tls_pair(tmp_path: Path) -> None:
    cfg = load_config(
        env={}, flags={"server.tls_cert": tmp_path / "c", "server.tls_key": tmp_path / "k"}
    )
    assert cfg.server.tls
    assert cfg.server.tls_cert == tmp_path / "c"
    assert (
        load_config(env={"TESSERA_SERVER_TLS_CERT": "", "TESSERA_SERVER_TLS_KEY": ""}) == Config()
    )


# ----------------------------------------------------------------- accounts


ACCOUNTS = """
[auth]
root_access_key = "ROOTKEY"
root_secret_key = "root-secret"

[[auth.accounts]]
id = "testid"
display_name = "M. Tester"
email = "tester@example.com"
access_key = "0555b35654ad1656d804"
secret_key = "h7GhxuBLTrlhVUyxSPUKUV8r/2EI4ngqJxD7iBdBYLhwluN30JaT3Q=="

[[auth.accounts]]
id = "56789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234"
access_key = "NOPQRSTUVWXYZABCDEFG"
secret_key = "nopqrstuvwxyzabcdefghijklmnabcdefghijklm"
"""


def test_accounts_from_toml(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ACCOUNTS), env={})
    assert cfg.root_credentials == ("ROOTKEY", "root-secret")
    first, second = cfg.auth.accounts
    assert (first.id, first.display_name, first.email) == (
        "testid",
        "M. Tester",
        "tester@example.com",
    )
    assert first.secret_key.endswith("==")
    assert second.display_name == "" and second.email == ""


def test_accounts_from_environment_json() -> None:
    accounts = [{"id": "alt", "access_key": "ALTKEY", "secret_key": "alt-secret"}]
    cfg = load_config(env={"TESSERA_AUTH_ACCOUNTS": json.dumps(accounts)})
    assert [a.id for a in cfg.auth.accounts] == ["alt"]


def test_root_key_aliases() -> None:
    env = {"TESSERA_ROOT_ACCESS_KEY": "AK", "TESSERA_ROOT_SECRET_KEY": "SK"}
    assert load_config(env=env).root_credentials == ("AK", "SK")
    env["TESSERA_AUTH_ROOT_ACCESS_KEY"] = "AK"  # same value under both names: fine
    assert load_config(env=env).root_credentials == ("AK", "SK")


# ------------------------------------------------------------------- errors


def error_for(
    tmp_path: Path,
    *,
    toml: str | None = None,
    env: dict[str, str] | None = None,
    flags: dict[str, Any] | None = None,
) -> str:
    path = write(tmp_path, toml) if toml is not None else None
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {}, flags=flags)
    return str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"env": {"TESSERA_SERVER_LISTEN": "nowhere"}},
            ["[server] listen", "TESSERA_SERVER_LISTEN", "HOST:PORT"],
        ),
        (
            {"env": {"TESSERA_SERVER_LISTN": "x"}},
            ["TESSERA_SERVER_LISTN", "unknown setting", "listen"],
        ),
        (
            {"env": {"TESSERA_STORAGE_SEGMENT_SIZE": "big"}},
            ["segment_size", "not a size", "TESSERA_STORAGE_SEGMENT_SIZE"],
        ),
        ({"env": {"TESSERA_STORAGE_SEGMENT_SIZE": "1"}}, ["segment_size", "greater than or equal"]),
        ({"env": {"TESSERA_STORAGE_DEFAULT_POLICY": "raid5"}}, ["default_policy", "raid5"]),
        ({"env": {"TESSERA_STORAGE_DISKS": "/a,/b,/a/"}}, ["disks", "more than once"]),
        ({"env": {"TESSERA_GATEWAY_MAX_CLOCK_SKEW": "-5"}}, ["max_clock_skew"]),
        (
            {"env": {"TESSERA_GATEWAY_VIRTUAL_HOST_DOMAINS": "http://x.test"}},
            ["virtual_host_domains", "DNS"],
        ),
        ({"env": {"TESSERA_META_URL": "meta.db"}}, ["[meta] url", "database URL"]),
        ({"env": {"TESSERA_SERVER_LOG_LEVEL": "loud"}}, ["log_level"]),
        ({"env": {"TESSERA_AUTH_ACCOUNTS": "[{"}}, ["accounts", "JSON"]),
        ({"flags": {"server.tls_cert": "/c.pem"}}, ["tls_cert and tls_key"]),
        ({"flags": {"server.listen": "x"}}, ["--listen"]),
        ({"toml": "[server\n"}, ["not valid TOML"]),
        ({"toml": "[servr]\nlisten = '1:1'\n"}, ["unknown section [servr]", "[server]"]),
        ({"toml": "listen = '1:1'\n"}, ["unknown section [listen]"]),
        ({"toml": "[server]\nport = 9000\n"}, ["[server] port", "unknown setting", "config file"]),
        ({"toml": "[storage]\nsegment_size = '8 parsecs'\n"}, ["segment_size", "config file"]),
        (
            {"env": {"TESSERA_STORAGE_TOTAL_WRITE_CONCURRENCY": "2"}},
            ["total_write_concurrency (2) is below write_concurrency (3)"],
        ),
    ],
)
def test_invalid_values_give_clear_errors(
    tmp_path: Path, kwargs: dict[str, Any], expected: list[str]
) -> None:
    message = error_for(tmp_path, **kwargs)
    for fragment in expected:
        assert fragment in message, message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.toml", env={})


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[auth]\nroot_access_key = "AK"\n', "must be set together"),
        ('[[auth.accounts]]\nid = "root"\naccess_key = "A"\nsecret_key = "S"\n', "reserved"),
        (
            '[[auth.accounts]]\nid = "a"\naccess_key = "K"\nsecret_key = "S"\n'
            '[[auth.accounts]]\nid = "a"\naccess_key = "L"\nsecret_key = "S"\n',
            "same id",
        ),
        (
            '[auth]\nroot_access_key = "K"\nroot_secret_key = "S"\n'
            '[[auth.accounts]]\nid = "a"\naccess_key = "K"\nsecret_key = "S"\n',
            "used twice",
        ),
        ('[[auth.accounts]]\nid = "a"\naccess_key = "K"\n', "secret_key"),
        ('[[auth.accounts]]\nid = "has space"\naccess_key = "K"\nsecret_key = "S"\n', "id must be"),
    ],
)
def test_account_errors(tmp_path: Path, toml: str, expected: str) -> None:
    assert expected in error_for(tmp_path, toml=toml)


def test_secrets_are_not_echoed(tmp_path: Path) -> None:
    toml = '[[auth.accounts]]\nid = "a"\naccess_key = "K"\nsecret_key = ""\n'
    message = error_for(tmp_path, toml=toml)
    assert "secret_key" in message and "value" not in message


def test_conflicting_root_key_aliases() -> None:
    env = {
        "TESSERA_ROOT_ACCESS_KEY": "AK1",
        "TESSERA_AUTH_ROOT_ACCESS_KEY": "AK2",
        "TESSERA_ROOT_SECRET_KEY": "S",
    }
    with pytest.raises(
        ConfigError, match="TESSERA_AUTH_ROOT_ACCESS_KEY and TESSERA_ROOT_ACCESS_KEY"
    ):
        load_config(env=env)


def test_storage_classes_map_to_policies() -> None:
    cfg = load_config(
        env={
            "TESSERA_STORAGE_CLASSES": '{"REDUCED_REDUNDANCY": "rep/n=2", "STANDARD": "ec/k=4,m=2"}'
        }
    )
    assert cfg.storage.classes == {"REDUCED_REDUNDANCY": "rep/n=2", "STANDARD": "ec/k=4,m=2"}
    for bad, words in [
        ('{"standard": "plain"}', ["classes", "storage class name"]),
        ('{"STANDARD": "raid5"}', ["classes", "raid5"]),
        ("STANDARD=plain", ["classes", "JSON object"]),
    ]:
        with pytest.raises(ConfigError) as info:
            load_config(env={"TESSERA_STORAGE_CLASSES": bad})
        assert all(w in str(info.value) for w in words), str(info.value)


@pytest.mark.parametrize(
    ("disks", "servers", "policy"),
    [
        (1, 1, "plain"),
        (2, 1, "rep/n=2"),
        (3, 1, "rep/n=3"),
        (5, 1, "rep/n=3"),
        (6, 1, "ec/k=4,m=2"),
        (12, 2, "rep/n=2"),
        (6, 3, "rep/n=3"),
        (6, 6, "ec/k=4,m=2"),
    ],
)
def test_auto_policy(disks: int, servers: int, policy: str) -> None:
    assert load_config(env={}).storage.policy(disks, servers) == policy


async def test_storage_settings_reach_the_data_path(tmp_path: Path) -> None:
    cfg = load_config(
        env={
            "TESSERA_SERVER_DATA": str(tmp_path / "data"),
            "TESSERA_STORAGE_WRITE_CONCURRENCY": "2",
            "TESSERA_STORAGE_SEGMENT_SIZE": "1MiB",
        }
    )
    store = segment_store(cfg)
    try:
        assert (store.write_concurrency, store.segment_size) == (2, 1 << 20)
        assert store.total_write_concurrency == 3  # 0: one more than an upload's own
    finally:
        await store.close()
    cfg = load_config(
        env={
            "TESSERA_SERVER_DATA": str(tmp_path / "data"),
            "TESSERA_STORAGE_TOTAL_WRITE_CONCURRENCY": "7",
        }
    )
    store = segment_store(cfg)
    try:
        assert (store.write_concurrency, store.total_write_concurrency) == (3, 7)
    finally:
        await store.close()
