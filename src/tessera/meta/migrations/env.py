"""Alembic environment for the metadata store.

Run programmatically by :func:`tessera.meta.sql.migrate.upgrade`, which hands
over a connection already inside a transaction (``config.attributes``). From
the alembic command line, an engine is built from ``-x url=...`` or the
``sqlalchemy.url`` option instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from tessera.meta.sql.schema import metadata

config = context.config
VERSION_TABLE = config.get_main_option("version_table") or "tessera_alembic_version"


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("give a database URL with -x url=... or sqlalchemy.url")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) mode is not supported")
run_migrations_online()
