"""Canned ACLs on object versions and multipart uploads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("versions", "uploads"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("acl", sa.Text, nullable=False, server_default="private"))


def downgrade() -> None:
    for table in ("versions", "uploads"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("acl")
