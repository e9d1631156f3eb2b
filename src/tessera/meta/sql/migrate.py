"""Schema migrations, run in code (no ``alembic.ini`` needed at run time).

The migration scripts live in ``tessera/meta/migrations`` and are found
relative to this file, so they work from an installed (non-editable) package.
Alembic records the revision in ``tessera_alembic_version`` (not the default
``alembic_version``, so Tessera can share a PostgreSQL database with other
alembic users). On PostgreSQL the upgrade holds an advisory lock so that
gateways starting together migrate one at a time.

For development, ``alembic -x url=sqlite:///meta.db -c <ini naming this
script_location>`` works too: ``env.py`` builds an engine from ``-x url`` or
``sqlalchemy.url`` when no connection is handed over.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "tessera_alembic_version"
_MIGRATION_LOCK = 0x7465737365726101  # "tessera" + 1: advisory lock id


class SchemaOutOfDate(RuntimeError):
    """The database schema is not at the revision this code expects."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for the packaged migrations; with ``connection``, env.py
    runs on it (inside its current transaction)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def upgrade(conn: Connection) -> None:
    """Bring the schema to the newest revision, in the caller's transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    command.upgrade(alembic_config(conn), "head")


def check(conn: Connection) -> None:
    """Raise SchemaOutOfDate unless the schema is at the newest revision."""
    current, head = current_revision(conn), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"metadata schema is at revision {current or 'none'}, this Tessera needs {head}: "
            "connect with migrate=True to upgrade"
        )
