"""The cluster map: chunk servers, their disks and state (``servers``).

One row per chunk server; its disks are JSON text (the map is read whole, so
they need no table of their own). Existing data is untouched.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("id", KeyText, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("zone", sa.Text, nullable=False),
        sa.Column("disks", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("heartbeat", sa.Double, nullable=False),
        sa.Column("registered", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("servers")
