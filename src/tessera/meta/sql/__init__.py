"""SQL implementation of the metadata store (SQLAlchemy Core; SQLite and PostgreSQL).

Modules: :mod:`.store` (the class, accounts and buckets), :mod:`.versions`,
:mod:`.multipart`, :mod:`.blocks`, :mod:`.cluster`, :mod:`.manifests` (method groups), :mod:`.schema` (tables and
indexes, with the reasoning behind them), :mod:`.rows` (records <-> rows),
:mod:`.transactions` (threads, connections, group commit), :mod:`.dialects`
(SQLite/PostgreSQL differences), :mod:`.migrate` (alembic, run in code).
"""

from tessera.meta.sql.store import SqlMetadataStore

__all__ = ["SqlMetadataStore"]
