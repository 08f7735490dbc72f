"""Fewer pages written per relayed message (issue #15).

Every relay commits a handled event, an outbox row, the sent mark of the
row before it and a message link, and SQLite writes every b-tree page that
changed.  So:

* ``handled_events`` and ``message_links`` are keyed by a natural key (the
  platform's event, the platform's message); on SQLite they become
  ``WITHOUT ROWID`` tables, so a row lives in its primary-key b-tree and no
  rowid b-tree is written beside it.
* The outbox loses its full (recipient, seq) index: every query that asks
  by recipient asks about pending rows, which the partial index of 0002
  holds.
* The outbox loses the unique index on ``ref``: no query reads it, and
  ``ref`` is a random 128-bit id made in Python (`store.model_base.new_id`),
  unique by construction like every row id, where the index cost a page
  at a random place per message.

PostgreSQL has no rowid tables: there only the two indexes go.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NATURAL_KEY_TABLES = ("handled_events", "message_links")


def _rebuild(with_rowid: bool) -> None:
    """Copy each natural-key table into a new one of the other kind (SQLite
    cannot change a table's kind in place); rows and indexes come along."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in _NATURAL_KEY_TABLES:
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass


def upgrade() -> None:
    """Rebuild the two tables, drop the two indexes no query needs."""
    _rebuild(with_rowid=False)
    op.drop_index("ix_outbox_recipient_hash_seq", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("uq_outbox_ref", type_="unique")


def downgrade() -> None:
    """The indexes and the rowid tables again."""
    with op.batch_alter_table("outbox") as batch:
        batch.create_unique_constraint("uq_outbox_ref", ["ref"])
    op.create_index("ix_outbox_recipient_hash_seq", "outbox", ["recipient_hash", "seq"],
                    unique=False)
    _rebuild(with_rowid=True)
