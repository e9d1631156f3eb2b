"""Typed configuration of a Tessera node.

Theory of operation
-------------------
One schema (the pydantic models below) and four sources, lowest precedence first:

1. the defaults written in the models (``config.example.toml`` documents every key
   and a unit test keeps the two equal);
2. a TOML file: ``--config FILE``, else ``$TESSERA_CONFIG`` when set;
3. the environment: ``TESSERA_<SECTION>_<KEY>`` for every key (``TESSERA_SERVER_LISTEN``,
   ``TESSERA_STORAGE_SEGMENT_SIZE``...), plus the aliases ``TESSERA_ROOT_ACCESS_KEY`` /
   ``TESSERA_ROOT_SECRET_KEY`` for ``[auth] root_access_key`` / ``root_secret_key``;
4. command-line flags, passed to :func:`load_config` as ``{"section.key": value}``.

A later source replaces a key as a whole (lists are not merged). Environment and
flag values are strings: list keys take comma-separated items or a JSON array
(``TESSERA_AUTH_ACCOUNTS`` takes a JSON array of tables); sizes take an integer or a
number with a unit (``8MiB``, ``64KiB``). Environment variables with the prefix but
an unknown section (``TESSERA_TEST_...``) are ignored, so test harnesses and other
tools may use the prefix; an unknown key in a known section is an error.

Every value is validated once, at load time; :class:`ConfigError` names the key,
the source that set it (file, environment variable or flag) and what is wrong.
Relative paths are relative to the working directory of the process. Derived
defaults (disks, metadata URL) are empty in the schema and resolved by the
properties of :class:`Config`, so the defaults stay independent of the data dir.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tessera.model.errors import InvalidArgument
from tessera.model.policy import Policy, auto_policy

__all__ = [
    "ENV_PREFIX",
    "ROOT_ACCOUNT_ID",
    "AccountConfig",
    "AuthConfig",
    "Config",
    "ConfigError",
    "GatewayConfig",
    "MetaConfig",
    "ServerConfig",
    "StorageConfig",
    "load_config",
    "parse_listen",
    "parse_size",
]

ENV_PREFIX = "TESSERA_"
CONFIG_FILE_ENV = "TESSERA_CONFIG"
ENV_ALIASES: Mapping[str, tuple[str, str]] = {
    "TESSERA_ROOT_ACCESS_KEY": ("auth", "root_access_key"),
    "TESSERA_ROOT_SECRET_KEY": ("auth", "root_secret_key"),
}
"""Short names for the root credentials (as the README documents), equivalent to the
long ``TESSERA_AUTH_ROOT_*`` forms; setting both forms to different values is an error."""

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30


class ConfigError(Exception):
    """The configuration cannot be loaded: unreadable file, bad TOML, unknown key or
    invalid value. ``str(error)`` is a complete message for the operator."""


# --------------------------------------------------------------------------- values

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "B": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}


def parse_size(value: object) -> object:
    """``8388608``, ``"8388608"``, ``"8MiB"``, ``"8M"``, ``"64KiB"`` → bytes. Units are
    binary whatever the spelling (``8MB`` is 8 MiB). Non-strings are returned
    unchanged for pydantic to check."""
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m is None:
            raise ValueError(f"not a size: {value!r} (use bytes or a unit: 64KiB, 8MiB, 1GiB)")
        unit = (m.group(2) or "").upper()[:1]
        return int(m.group(1)) * _SIZE_UNITS[unit]
    return value


Size = Annotated[int, BeforeValidator(parse_size)]


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) into ``(host, port)``.

    The host is required (``0.0.0.0`` listens everywhere); port 0 asks the kernel for
    a free port (the ready line reports the real one). Raises ValueError otherwise.
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"expected [IPV6]:PORT, got {text!r}")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"expected HOST:PORT (IPv6 as [ADDR]:PORT), got {text!r}")
    if not host:
        raise ValueError(f"missing host in {text!r} (use 0.0.0.0:PORT to listen everywhere)")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535, got {port_text!r}")
    return host, int(port_text)


def _empty_to_none(value: object) -> object:
    return None if value == "" else value


OptionalPath = Annotated[Path | None, BeforeValidator(_empty_to_none)]

_TOKEN_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
"""Printable ASCII without spaces: ids and access keys as S3 tools accept them."""


def _token(value: str, what: str) -> str:
    if not _TOKEN_RE.match(value):
        raise ValueError(f"{what} must be 1-256 printable ASCII characters without spaces")
    return value


# -------------------------------------------------------------------------- schema


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    """``[server]``: the process, its address and its data directory."""

    listen: str = "127.0.0.1:9000"
    data: Path = Path("tessera-data")
    tls_cert: OptionalPath = None
    tls_key: OptionalPath = None
    shutdown_timeout: float = Field(default=10.0, ge=0, le=3600)
    workers: int = Field(default=1, ge=1, le=64)
    """Processes serving requests, sharing the listening socket, the metadata
    store and the disks (one process uses one core; see server/workers.py)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value.strip()

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together (or both left empty)")
        return self

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of :attr:`listen`."""
        return parse_listen(self.listen)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


class StorageConfig(_Section):
    """``[storage]``: where and how object data is written."""

    disks: list[Path] = Field(default_factory=list)
    segment_size: Size = Field(default=8 * MiB, ge=4 * KiB, le=1 * GiB)
    inline_threshold: Size = Field(default=64 * KiB, ge=0, le=16 * MiB)
    write_concurrency: int = Field(default=3, ge=1, le=64)
    """Segments of one upload written at once (3 keeps a single upload at full
    speed here; 4 only added memory)."""
    total_write_concurrency: int = Field(default=0, ge=0, le=1024)
    """Segments written at once by all uploads together (at least
    ``write_concurrency``; 0, the default, means ``write_concurrency + 1``). Memory in flight is
    about (total_write_concurrency + uploads) x segment_size (x 1.5 for
    ec/k=4,m=2 parity), however many uploads run: four erasure-coded uploads
    peaked at 243 MiB with 4 and 314 MiB with no shared bound, no slower."""
    default_policy: str = "auto"
    """Policy of new buckets; ``auto`` picks it from the number of disks (or
    servers): see :func:`tessera.model.policy.auto_policy`."""
    classes: dict[str, str] = Field(default_factory=dict)
    """``x-amz-storage-class`` -> policy, e.g. ``{"REDUCED_REDUNDANCY": "rep/n=2"}``."""
    trash_delay: float = Field(default=86400.0, ge=0)
    """Seconds a deleted block stays in its disk's trash (undeletable) before removal."""
    scrub_rate: Size = Field(default=64 * MiB, ge=0)
    """Bytes per second the scrubber re-reads per process; 0 disables scrubbing."""
    scrub_interval: float = Field(default=7 * 86400.0, gt=0)
    """Seconds between the starts of two scrub passes."""
    heal_interval: float = Field(default=3600.0, gt=0)
    """Seconds between two full healing passes (read repair runs continuously)."""
    heal_rate: Size = Field(default=0, ge=0)
    """Bytes per second the healer may rebuild (per gateway); 0: as fast as it can."""
    direct_io: bool = True
    """Write block files of 256 KiB or more with O_DIRECT (around the page cache;
    see data/direct_io.py). Ignored where the file system refuses it."""
    min_free: Size = Field(default=64 * MiB, ge=0)
    """Bytes kept free on every disk: a write that would go below answers
    InsufficientStorage, so deletes and metadata commits still have room."""
    gc_grace: float = Field(default=3600.0, ge=0)
    """Seconds a block stays unreferenced before garbage collection deletes it
    (must exceed the longest single upload; see docs/data-path.md)."""
    gc_interval: float = Field(default=60.0, gt=0, le=86400)
    """Seconds between garbage-collection passes."""
    orphan_interval: float = Field(default=21600.0, gt=0)
    """Seconds between scans of every disk for orphan blocks (written by an upload
    that never committed: a crashed gateway). Each scan lists every block."""

    @field_validator("disks")
    @classmethod
    def _unique_disks(cls, value: list[Path]) -> list[Path]:
        seen = [os.path.normpath(p.expanduser().absolute()) for p in value]
        if len(set(seen)) != len(seen):
            raise ValueError("a directory is listed more than once")
        return value

    @model_validator(mode="after")
    def _total_covers_one_upload(self) -> StorageConfig:
        total = self.total_write_concurrency
        if total and total < self.write_concurrency:
            raise ValueError(
                f"total_write_concurrency ({total}) is below write_concurrency "
                f"({self.write_concurrency}): one upload alone could not use its own"
            )
        return self

    @field_validator("default_policy")
    @classmethod
    def _check_policy(cls, value: str) -> str:
        if value.strip() == "auto":
            return "auto"
        try:
            return str(Policy.parse(value))
        except InvalidArgument as e:
            raise ValueError(f"{e} (expected auto, plain, rep/n=N or ec/k=K,m=M)") from None

    @field_validator("classes")
    @classmethod
    def _check_classes(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, policy in value.items():
            if not re.fullmatch(r"[A-Z][A-Z_]*", name):
                raise ValueError(f"{name!r} is not a storage class name (e.g. STANDARD)")
            try:
                out[name] = str(Policy.parse(policy))
            except InvalidArgument as e:
                raise ValueError(f"{name}: {e} (expected plain, rep/n=N or ec/k=K,m=M)") from None
        return out

    def policy(self, disks: int, servers: int = 1) -> str:
        """The default bucket policy, ``auto`` resolved for this many disks/servers."""
        if self.default_policy == "auto":
            return str(auto_policy(disks, servers))
        return self.default_policy


class MetaConfig(_Section):
    """``[meta]``: the metadata database."""

    url: str = ""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not re.match(r"^[a-z][a-z0-9+]*://", value):
            raise ValueError("expected a database URL such as sqlite:////abs/path/meta.db")
        return value


class ClusterConfig(_Section):
    """``[cluster]``: gateways and chunk servers sharing one metadata database."""

    secret: str = ""
    """Shared key every chunk-server request carries (``X-Tessera-Cluster-Key``);
    empty means none (only acceptable on a private network or loopback)."""
    zone: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    """The chunk server's failure domain (rack, room, site)."""
    server_id: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,62})?$")
    """The chunk server's id; empty: generated once and kept in its first disk."""
    advertise: str = ""
    """URL gateways use to reach this chunk server; empty: ``http://<listen>``."""
    heartbeat_interval: float = Field(default=2.0, gt=0, le=3600)
    """Seconds between a chunk server's heartbeats (and gateways' cluster-map reads)."""
    heartbeat_timeout: float = Field(default=10.0, gt=0, le=86400)
    """A chunk server silent this long is treated as down: no new fragments go to
    it and reads try it last."""
    io_timeout: float = Field(default=10.0, gt=0, le=3600)
    """Seconds a gateway waits for a chunk server to send the next bytes (or to
    accept a connection: a fifth of it) before trying other fragments."""
    lease_ttl: float = Field(default=30.0, gt=0, le=3600)
    """Seconds a gateway's lease on cluster-wide background work (full healing
    passes, orphan scans) lasts without renewal; another gateway takes over after."""
    down_out: float = Field(default=900.0, gt=0)
    """A chunk server silent this long is treated as removed: the healer rebuilds
    its fragments elsewhere (when there is a disk to put them on)."""

    @field_validator("advertise")
    @classmethod
    def _check_advertise(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+/?$", value):
            raise ValueError("expected a base URL such as http://10.0.0.5:9101")
        return value.rstrip("/")


class GatewayConfig(_Section):
    """``[gateway]``: the S3 endpoint."""

    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    virtual_host_domains: list[str] = Field(default_factory=lambda: ["localhost"])
    max_clock_skew: int = Field(default=900, ge=1, le=7 * 24 * 3600)
    bucket_cache_ttl: float = Field(default=1.0, ge=0, le=60)
    """Seconds a gateway reuses a bucket record it read; a change made through
    another gateway (versioning, ACL, deletion) applies here within that delay."""
    par_max_ttl: float = Field(default=7 * 86400.0, gt=0, le=366 * 86400.0)
    """Longest lifetime, in seconds, a new pre-authenticated link may ask for."""
    block_signature_ttl: float = Field(default=14 * 86400.0, gt=0, le=366 * 86400.0)
    """Seconds a block locator's signature stays valid after the block API signs it."""

    @field_validator("virtual_host_domains")
    @classmethod
    def _check_domains(cls, value: list[str]) -> list[str]:
        out = []
        for raw in value:
            domain = raw.strip().strip(".").lower()
            if not re.match(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", domain):
                raise ValueError(f"not a DNS domain (no port, no scheme): {raw!r}")
            out.append(domain)
        return out


class AccountConfig(_Section):
    """One ``[[auth.accounts]]`` entry: an account and one access key for it, created
    (or updated) at start-up."""

    id: str
    display_name: str = ""
    """Shown as the owner's DisplayName; empty means the id."""
    email: str = ""
    access_key: str
    secret_key: str = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return _token(value, "id")

    @field_validator("access_key")
    @classmethod
    def _check_access_key(cls, value: str) -> str:
        return _token(value, "access_key")


ROOT_ACCOUNT_ID = "root"
"""Id of the account that holds the root credentials."""


class AuthConfig(_Section):
    """``[auth]``: the root identity and extra accounts declared up front."""

    root_access_key: str = ""
    root_secret_key: str = ""
    accounts: list[AccountConfig] = Field(default_factory=list)
    key_cache_ttl: float = Field(default=5.0, ge=0, le=3600)
    """Seconds a gateway reuses an access key it looked up; a key disabled through
    another gateway keeps working here that long (0: look it up every request)."""

    @model_validator(mode="after")
    def _consistent(self) -> AuthConfig:
        if bool(self.root_access_key) != bool(self.root_secret_key):
            raise ValueError(
                "root_access_key and root_secret_key must be set together "
                "(or both left empty to generate them)"
            )
        if self.root_access_key:
            _token(self.root_access_key, "root_access_key")
        ids = [a.id for a in self.accounts]
        if ROOT_ACCOUNT_ID in ids:
            raise ValueError(f"account id {ROOT_ACCOUNT_ID!r} is reserved for the root account")
        if len(set(ids)) != len(ids):
            raise ValueError("two accounts have the same id")
        keys = [a.access_key for a in self.accounts]
        if self.root_access_key:
            keys.append(self.root_access_key)
        if len(set(keys)) != len(keys):
            raise ValueError("an access key is used twice (access keys are global)")
        return self


class Config(_Section):
    """The whole node configuration. Build with :func:`load_config`; ``Config()`` is the
    defaults. The properties resolve derived defaults to absolute paths/URLs."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    meta: MetaConfig = Field(default_factory=MetaConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)

    @property
    def data_dir(self) -> Path:
        """Absolute data directory (holds LOCK, root credentials, default disk and DB)."""
        return _absolute(self.server.data)

    @property
    def disk_dirs(self) -> list[Path]:
        """Absolute block-volume directories; ``<data>/disk0`` when none are configured."""
        return [_absolute(p) for p in self.storage.disks] or [self.data_dir / "disk0"]

    @property
    def meta_url(self) -> str:
        """The metadata URL; ``sqlite:///<data>/meta.db`` when none is configured."""
        return self.meta.url or f"sqlite:///{self.data_dir / 'meta.db'}"

    @property
    def root_credentials(self) -> tuple[str, str] | None:
        """``(access_key, secret_key)`` when configured, else None (the node generates them)."""
        if self.auth.root_access_key:
            return self.auth.root_access_key, self.auth.root_secret_key
        return None


def _absolute(path: Path) -> Path:
    return Path(os.path.normpath(path.expanduser().absolute()))


SECTIONS: Mapping[str, type[_Section]] = {
    "server": ServerConfig,
    "storage": StorageConfig,
    "meta": MetaConfig,
    "gateway": GatewayConfig,
    "cluster": ClusterConfig,
    "auth": AuthConfig,
}
"""The sections of :class:`Config`, by TOML table name."""


# -------------------------------------------------------------------------- loading


def load_config(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Config:
    """Build the configuration from defaults, ``config_file``, ``env`` and ``flags``.

    Args:
        config_file: TOML file; when None, ``env["TESSERA_CONFIG"]`` if set, else none.
        env: the environment to read (``os.environ`` when None; pass ``{}`` to ignore it).
        flags: ``{"section.key": value}`` from the command line; None values are skipped.
            String values of list keys are split on commas.

    Raises:
        ConfigError: with a message naming each bad key and where it was set.
    """
    env = os.environ if env is None else env
    raw: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], str] = {}

    if config_file is None and env.get(CONFIG_FILE_ENV):
        config_file = env[CONFIG_FILE_ENV]
    if config_file is not None:
        _merge_file(Path(config_file), raw, origin)
    _merge_env(env, raw, origin)
    for dotted, value in (flags or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        _field_type(section, key, f"flag {dotted}")  # programming error if unknown
        _set(raw, origin, section, key, _coerce(section, key, value), f"--{key.replace('_', '-')}")

    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_describe(e, origin)) from None


def _set(
    raw: dict[str, dict[str, Any]],
    origin: dict[tuple[str, str], str],
    section: str,
    key: str,
    value: Any,
    source: str,
) -> None:
    raw.setdefault(section, {})[key] = value
    origin[(section, key)] = source


def _merge_file(
    path: Path, raw: dict[str, dict[str, Any]], origin: dict[tuple[str, str], str]
) -> None:
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    for section, table in doc.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"config file {path}: unknown section [{section}] "
                f"(known: {', '.join(f'[{s}]' for s in SECTIONS)})"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: {section} must be a table ([{section}])")
        for key, value in table.items():
            _set(raw, origin, section, key, value, f"config file {path}")


def _merge_env(
    env: Mapping[str, str], raw: dict[str, dict[str, Any]], origin: dict[tuple[str, str], str]
) -> None:
    by_key: dict[tuple[str, str], tuple[str, str]] = {}
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_ENV:
            continue
        if name in ENV_ALIASES:
            section, key = ENV_ALIASES[name]
        else:
            section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
            if section not in SECTIONS:
                continue  # another tool's TESSERA_* variable
            _field_type(section, key, f"environment variable {name}")
        previous = by_key.get((section, key))
        if previous is not None and previous[1] != value:
            raise ConfigError(
                f"environment variables {previous[0]} and {name} set [{section}] {key} "
                "to different values; set only one"
            )
        by_key[(section, key)] = (name, value)
        _set(raw, origin, section, key, _coerce(section, key, value), f"environment {name}")


def _field_type(section: str, key: str, where: str) -> Any:
    model = SECTIONS.get(section)
    if model is None or key not in model.model_fields:
        known = ", ".join(model.model_fields) if model else ", ".join(SECTIONS)
        raise ConfigError(f"{where}: unknown setting [{section}] {key} (known: {known})")
    return model.model_fields[key].annotation


def _coerce(section: str, key: str, value: object) -> object:
    """Turn a string from the environment or a flag into the shape the key expects."""
    annotation = SECTIONS[section].model_fields[key].annotation
    if isinstance(value, str) and get_origin(annotation) is dict:
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError(f"[{section}] {key}: not a valid JSON object: {e}") from None
    if not isinstance(value, str) or get_origin(annotation) is not list:
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"[{section}] {key}: not a valid JSON array: {e}") from None
    return [item.strip() for item in text.split(",") if item.strip()]


def _describe(error: ValidationError, origin: Mapping[tuple[str, str], str]) -> str:
    lines = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"]]
        section = loc[0] if loc else ""
        key = loc[1] if len(loc) > 1 else ""
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            known = ", ".join(SECTIONS[section].model_fields) if section in SECTIONS else ""
            message = f"unknown setting (known: {known})" if len(loc) == 2 else "unknown setting"
        where = f"[{section}] {'.'.join(loc[1:])}".rstrip() if section else "configuration"
        detail = ""
        source = origin.get((section, key))
        if source:
            shown = item["type"] != "extra_forbidden" and "secret" not in ".".join(loc)
            detail = (
                f" (set by {source}, value {item['input']!r})" if shown else f" (set by {source})"
            )
        lines.append(f"  {where}: {message}{detail}")
    return "invalid configuration:\n" + "\n".join(lines)
