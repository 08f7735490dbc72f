"""Admin accounts for the web admin console, their one-time login links and sessions.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Three new tables; nothing existing changes."""
    op.create_table(
        "admin_accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_admin_accounts_name")),
    )
    for table, key in (("admin_login_tokens", "token_hash"), ("admin_sessions", "sid_hash")):
        op.create_table(
            table,
            sa.Column(key, sa.LargeBinary(length=32), nullable=False),
            sa.Column("admin_id", sa.String(length=32), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            *([sa.Column("used_at", sa.DateTime(timezone=True), nullable=True)]
              if table == "admin_login_tokens" else []),
            sa.ForeignKeyConstraint(
                ["admin_id"], ["admin_accounts.id"],
                name=op.f(f"fk_{table}_admin_id_admin_accounts"), ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint(key, name=op.f(f"pk_{table}")),
        )
        op.create_index(op.f(f"ix_{table}_admin_id"), table, ["admin_id"], unique=False)
    op.create_index(op.f("ix_admin_sessions_expires_at"), "admin_sessions", ["expires_at"],
                    unique=False)


def downgrade() -> None:
    """Drop them again (sessions and links first: they point at the accounts)."""
    op.drop_index(op.f("ix_admin_sessions_expires_at"), table_name="admin_sessions")
    for table in ("admin_sessions", "admin_login_tokens"):
        op.drop_index(op.f(f"ix_{table}_admin_id"), table_name=table)
        op.drop_table(table)
    op.drop_table("admin_accounts")
