"""Initial schema: accounts, access keys, buckets, versions, uploads, parts, blocks.

A frozen copy of ``tessera.meta.sql.schema`` at this revision (migrations never
import the live schema); ``tests/contract`` checks that the migrated database
and the live schema agree.

Revision ID: 0001
Revises:
Create Date: 2024-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
SeqInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _partial(sql_sqlite: str, sql_pg: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(sql_sqlite), "postgresql_where": sa.text(sql_pg)}


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", KeyText, primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("created", sa.Double, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("properties", sa.Text),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", KeyText, primary_key=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("account_id", KeyText, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("created", sa.Double, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
    )
    op.create_index("ix_access_keys_account", "access_keys", ["account_id", "created"])
    op.create_table(
        "buckets",
        sa.Column("name", KeyText, primary_key=True),
        sa.Column("owner", KeyText, nullable=False),
        sa.Column("created", sa.Double, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("versioning", sa.Text, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("object_lock", sa.Boolean, nullable=False),
        sa.Column("tags", sa.Text),
        sa.Column("config", sa.Text),
    )
    op.create_index("ix_buckets_owner", "buckets", ["owner", "name"])
    op.create_table(
        "versions",
        sa.Column("seq", SeqInt, primary_key=True, autoincrement=True),
        sa.Column("bucket", KeyText, sa.ForeignKey("buckets.name"), nullable=False),
        sa.Column("key", KeyText, nullable=False),
        sa.Column("version_id", KeyText, nullable=False),
        sa.Column("is_latest", sa.Boolean, nullable=False),
        sa.Column("delete_marker", sa.Boolean, nullable=False),
        sa.Column("last_modified", sa.Double, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("etag", sa.Text, nullable=False),
        sa.Column("storage_class", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("checksums", sa.Text),
        sa.Column("part_sizes", sa.Text),
        sa.Column("headers", sa.Text),
        sa.Column("user_metadata", sa.Text),
        sa.Column("tags", sa.Text),
        sa.Column("manifest", sa.Text),
        sa.Column("inline", sa.LargeBinary),
    )
    op.create_index(
        "ux_versions_key_version", "versions", ["bucket", "key", "version_id"], unique=True
    )
    op.create_index("ix_versions_order", "versions", ["bucket", "key", sa.text("seq DESC")])
    op.create_index(
        "ux_versions_live",
        "versions",
        ["bucket", "key"],
        unique=True,
        **_partial("is_latest = 1 AND delete_marker = 0", "is_latest AND NOT delete_marker"),
    )
    op.create_table(
        "uploads",
        sa.Column("seq", SeqInt, primary_key=True, autoincrement=True),
        sa.Column("upload_id", KeyText, nullable=False, unique=True),
        sa.Column("bucket", KeyText, sa.ForeignKey("buckets.name"), nullable=False),
        sa.Column("key", KeyText, nullable=False),
        sa.Column("initiated", sa.Double, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("storage_class", sa.Text, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("checksum_algorithm", sa.Text, nullable=False),
        sa.Column("checksum_type", sa.Text, nullable=False),
        sa.Column("headers", sa.Text),
        sa.Column("user_metadata", sa.Text),
        sa.Column("tags", sa.Text),
    )
    op.create_index("ix_uploads_order", "uploads", ["bucket", "key", "seq"])
    op.create_table(
        "parts",
        sa.Column("upload_id", KeyText, sa.ForeignKey("uploads.upload_id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("etag", sa.Text, nullable=False),
        sa.Column("last_modified", sa.Double, nullable=False),
        sa.Column("md5", sa.LargeBinary, nullable=False),
        sa.Column("checksums", sa.Text),
        sa.Column("manifest", sa.Text),
        sa.Column("inline", sa.LargeBinary),
    )
    op.create_table(
        "blocks",
        sa.Column("volume", KeyText, primary_key=True),
        sa.Column("block", KeyText, primary_key=True),
        sa.Column("refs", sa.BigInteger, nullable=False),
        sa.Column("zero_since", sa.Double),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_blocks_garbage", "blocks", ["zero_since"], **_partial("refs = 0", "refs = 0")
    )


def downgrade() -> None:
    for index, table in (
        ("ix_blocks_garbage", "blocks"),
        ("ix_uploads_order", "uploads"),
        ("ux_versions_live", "versions"),
        ("ix_versions_order", "versions"),
        ("ux_versions_key_version", "versions"),
        ("ix_buckets_owner", "buckets"),
        ("ix_access_keys_account", "access_keys"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("blocks", "parts", "uploads", "versions", "buckets", "access_keys", "accounts"):
        op.drop_table(table)
