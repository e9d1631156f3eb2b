"""Jobs of calculation PARs (``par_jobs``).

One row per calculation PAR that ran a job: its last run (kind, arguments,
state, progress, result, error, the process holding it, a stop request, start
and last-update times), shared by every process over this store. Existing data
is untouched.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "par_jobs",
        sa.Column("par_id", KeyText, sa.ForeignKey("pars.id"), primary_key=True),
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("args", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("progress", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("stop_requested", sa.Boolean, nullable=False),
        sa.Column("started", sa.Double, nullable=False),
        sa.Column("updated", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("par_jobs")
