"""A colleague on duty may help out with an urgent case while its confidant is off shift.

``helper_id`` is the colleague answering, ``help_until`` the end of the
window (the assigned confidant's next shift start), set as soon as the
colleagues on duty are asked.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Two nullable columns (existing cases have no help window), and an
    index for the timer that ends the windows."""
    op.add_column("cases", sa.Column("helper_id", sa.String(length=32), nullable=True))
    op.add_column("cases", sa.Column("help_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_cases_help_until"), "cases", ["help_until"], unique=False)


def downgrade() -> None:
    """Drop them again."""
    op.drop_index(op.f("ix_cases_help_until"), table_name="cases")
    op.drop_column("cases", "help_until")
    op.drop_column("cases", "helper_id")
