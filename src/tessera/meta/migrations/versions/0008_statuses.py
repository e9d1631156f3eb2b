"""Shared status documents of background work (``statuses``).

One row per named document (``heal``, ``scrub``): the counters as the process
doing the work last published them (JSON text), that process, and when. Every
process over this store answers status requests from it. Existing data is
untouched.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "statuses",
        sa.Column("name", KeyText, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("statuses")
