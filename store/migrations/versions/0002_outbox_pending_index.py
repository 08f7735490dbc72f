"""Partial index on pending outbox rows by recipient, for the order checks.

"Is an older message for this person still pending?" is asked for every
message (the delivery pass and the fast lane).  The full (recipient, seq)
index also holds every delivered row until it is purged, so a busy
confidant's history made each check slower; this index holds pending rows only.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the partial index (both SQLite and PostgreSQL support them)."""
    op.create_index(
        "ix_outbox_pending_recipient_seq", "outbox", ["recipient_hash", "seq"], unique=False,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    """Drop it again."""
    op.drop_index("ix_outbox_pending_recipient_seq", table_name="outbox")
