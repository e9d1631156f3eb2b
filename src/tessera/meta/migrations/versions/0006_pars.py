"""Pre-authenticated requests (``pars``).

One row per PAR: its scope (bucket, key or NULL), permissions, lifetime,
revocation flag and the SHA-256 of its secret. Existing data is untouched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "pars",
        sa.Column("id", KeyText, primary_key=True),
        sa.Column("owner", KeyText, nullable=False),
        sa.Column("bucket", KeyText, nullable=False),
        sa.Column("key", KeyText),
        sa.Column("readable", sa.Boolean, nullable=False),
        sa.Column("writeable", sa.Boolean, nullable=False),
        sa.Column("listable", sa.Boolean, nullable=False),
        sa.Column("created", sa.Double, nullable=False),
        sa.Column("expires", sa.Double, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("job", sa.Text),
    )
    op.create_index("ix_pars_owner", "pars", ["owner", "bucket", "created"])
    op.create_index("ix_pars_expires", "pars", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_pars_expires", table_name="pars")
    op.drop_index("ix_pars_owner", table_name="pars")
    op.drop_table("pars")
