"""Who was told of a waiting case, so "taken by" reaches only them.

Until now a claim told every candidate that the case was taken, also those
it had never been announced to because they were off duty.  A case that
waits at the upgrade keeps that rule: its announcement is recorded for
every confidant who would have been told (the chosen one, or everyone; and
everyone once it was escalated).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The table, then the announcements of the cases waiting now."""
    op.create_table(
        "case_announcements",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("confidant_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_case_announcements_case_id_cases"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["confidant_id"], ["confidants.id"],
                                name=op.f("fk_case_announcements_confidant_id_confidants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "confidant_id",
                                name=op.f("pk_case_announcements")),
    )
    op.execute(
        "INSERT INTO case_announcements (case_id, confidant_id) "
        "SELECT cases.id, confidants.id FROM cases CROSS JOIN confidants "
        "WHERE cases.status = 'waiting' AND cases.announced_at IS NOT NULL "
        "AND (cases.chosen_confidant_id IS NULL OR cases.escalated_at IS NOT NULL "
        "OR cases.chosen_confidant_id = confidants.id)")


def downgrade() -> None:
    """Drop it again."""
    op.drop_table("case_announcements")
