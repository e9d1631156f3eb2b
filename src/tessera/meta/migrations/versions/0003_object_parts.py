"""Per-part records of multipart objects and the upload id they came from.

``versions.part_sizes`` (a JSON list of sizes) becomes ``versions.parts``, a
JSON list of ``[number, size]`` or ``[number, size, {algorithm: checksum}]``:
GetObjectAttributes lists each part's number, size and checksum. Rows written
before this revision get numbers 1..N and no part checksums (they were not
kept). ``versions.upload_id`` (nullable) names the multipart upload a version
was completed from, so a repeated CompleteMultipartUpload finds it.

The rename is a plain ``ALTER TABLE ... RENAME COLUMN`` (SQLite >= 3.25 and
PostgreSQL both have it) rather than a batch table rebuild, which would have
to recreate the partial indexes of ``versions``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _rewrite(column: str, convert: object) -> None:
    """Apply ``convert`` (old JSON value -> new JSON value) to every non-NULL ``column``."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(f"SELECT seq, {column} FROM versions WHERE {column} IS NOT NULL")
    ).fetchall()
    update = sa.text(f"UPDATE versions SET {column} = :v WHERE seq = :seq")
    for seq, text in rows:
        new = convert(json.loads(text))  # type: ignore[operator]
        conn.execute(update, {"v": json.dumps(new, separators=(",", ":")), "seq": seq})


def upgrade() -> None:
    op.execute("ALTER TABLE versions RENAME COLUMN part_sizes TO parts")
    _rewrite("parts", lambda sizes: [[i, size] for i, size in enumerate(sizes, 1)])
    op.add_column("versions", sa.Column("upload_id", KeyText))


def downgrade() -> None:
    op.execute("ALTER TABLE versions DROP COLUMN upload_id")  # SQLite >= 3.35
    _rewrite("parts", lambda parts: [item[1] for item in parts])
    op.execute("ALTER TABLE versions RENAME COLUMN parts TO part_sizes")
