"""Initial schema: every table of the first release.

Contacts and confidants point at their current case while cases point back
at both; those two foreign keys are added after all tables exist (in batch
mode, so SQLite rebuilds the two tables instead of altering them).

Revision ID: 0001
Revises:
Create Date: 2026-11-27 13:10:28.704796
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CYCLE = (("contacts", "active_case_id"), ("confidants", "current_case_id"))


def upgrade() -> None:
    """Create every table, then the two foreign keys that close the cycle."""
    op.create_table(
        "app_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_app_meta")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)

    op.create_table(
        "button_tokens",
        sa.Column("token", sa.String(length=24), nullable=False),
        sa.Column("owner_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("menu_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_button_tokens")),
    )
    with op.batch_alter_table("button_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_button_tokens_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_button_tokens_menu_id"), ["menu_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_button_tokens_owner_hash"), ["owner_hash"], unique=False
        )

    op.create_table(
        "case_statistics",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("theme", sa.String(length=24), nullable=False),
        sa.Column("heard_in_time", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_statistics")),
    )
    with op.batch_alter_table("case_statistics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_statistics_month"), ["month"], unique=False)

    op.create_table(
        "data_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shredded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
    )
    op.create_table(
        "handled_events",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("event_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "event_key", name=op.f("pk_handled_events")),
    )
    with op.batch_alter_table("handled_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_handled_events_handled_at"), ["handled_at"], unique=False
        )

    op.create_table(
        "rooms",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("site", sa.String(length=80), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rooms")),
        sa.UniqueConstraint("name", name=op.f("uq_rooms_name")),
    )
    op.create_table(
        "channel_state",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value_enc", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_key_id"], ["data_keys.id"], name=op.f("fk_channel_state_data_key_id_data_keys")
        ),
        sa.PrimaryKeyConstraint("channel", "key", name=op.f("pk_channel_state")),
    )
    op.create_table(
        "confidants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("bio", sa.Text(), nullable=False),
        sa.Column("languages", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("data_key_id", sa.String(length=32), nullable=False),
        sa.Column("attested_by", sa.String(length=80), nullable=False),
        sa.Column("attested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_case_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_key_id"], ["data_keys.id"], name=op.f("fk_confidants_data_key_id_data_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confidants")),
        sa.UniqueConstraint("name", name=op.f("uq_confidants_name")),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sender_enc", sa.LargeBinary(), nullable=False),
        sa.Column("address_enc", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_id", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("welcomed", sa.Boolean(), nullable=False),
        sa.Column("active_case_id", sa.String(length=32), nullable=True),
        sa.Column("pending", sa.String(length=32), nullable=True),
        sa.Column("pending_enc", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_key_id"], ["data_keys.id"], name=op.f("fk_contacts_data_key_id_data_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("address_hash", name=op.f("uq_contacts_address_hash")),
    )
    op.create_table(
        "declarations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("data_key_id", sa.String(length=32), nullable=False),
        sa.Column("facts_enc", sa.LargeBinary(), nullable=False),
        sa.Column("identity_agreed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_key_id"], ["data_keys.id"], name=op.f("fk_declarations_data_key_id_data_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_declarations")),
    )
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_declarations_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "absences",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("confidant_id", sa.String(length=32), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["confidant_id"],
            ["confidants.id"],
            name=op.f("fk_absences_confidant_id_confidants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_absences")),
    )
    with op.batch_alter_table("absences", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_absences_confidant_id"), ["confidant_id"], unique=False
        )

    op.create_table(
        "cases",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("contact_id", sa.String(length=32), nullable=True),
        sa.Column("data_key_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("chosen_confidant_id", sa.String(length=32), nullable=True),
        sa.Column("confidant_id", sa.String(length=32), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("unreachable", sa.Boolean(), nullable=False),
        sa.Column("theme", sa.String(length=24), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heard_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmation_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["chosen_confidant_id"],
            ["confidants.id"],
            name=op.f("fk_cases_chosen_confidant_id_confidants"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["confidant_id"],
            ["confidants.id"],
            name=op.f("fk_cases_confidant_id_confidants"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_cases_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["data_key_id"], ["data_keys.id"], name=op.f("fk_cases_data_key_id_data_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("code", name=op.f("uq_cases_code")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_confidant_id"), ["confidant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_status"), ["status"], unique=False)
        batch_op.create_index("ix_cases_status_closed_at", ["status", "closed_at"], unique=False)
        batch_op.create_index(
            "ix_cases_status_last_activity_at", ["status", "last_activity_at"], unique=False
        )

    op.create_table(
        "confidant_addresses",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("confidant_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("address_enc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["confidant_id"],
            ["confidants.id"],
            name=op.f("fk_confidant_addresses_confidant_id_confidants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confidant_addresses")),
        sa.UniqueConstraint("address_hash", name=op.f("uq_confidant_addresses_address_hash")),
        sa.UniqueConstraint(
            "confidant_id", "channel", name=op.f("uq_confidant_addresses_confidant_id")
        ),
    )
    op.create_table(
        "login_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("confidant_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["confidant_id"],
            ["confidants.id"],
            name=op.f("fk_login_tokens_confidant_id_confidants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_login_tokens")),
    )
    op.create_table(
        "shifts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("confidant_id", sa.String(length=32), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start", sa.Time(), nullable=False),
        sa.Column("end", sa.Time(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["confidant_id"],
            ["confidants.id"],
            name=op.f("fk_shifts_confidant_id_confidants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shifts")),
    )
    with op.batch_alter_table("shifts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shifts_confidant_id"), ["confidant_id"], unique=False)

    op.create_table(
        "appointments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("confidant_id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=32), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded_day_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_hour_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_appointments_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["confidant_id"],
            ["confidants.id"],
            name=op.f("fk_appointments_confidant_id_confidants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_appointments_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appointments_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "ix_appointments_status_starts_at", ["status", "starts_at"], unique=False
        )
        batch_op.create_index(
            "uq_appointments_confidant_start",
            ["confidant_id", "starts_at"],
            unique=True,
            sqlite_where=sa.text("status = 'booked'"),
            postgresql_where=sa.text("status = 'booked'"),
        )
        batch_op.create_index(
            "uq_appointments_room_start",
            ["room_id", "starts_at"],
            unique=True,
            sqlite_where=sa.text("status = 'booked'"),
            postgresql_where=sa.text("status = 'booked'"),
        )

    op.create_table(
        "case_messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_messages_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_messages")),
    )
    with op.batch_alter_table("case_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_messages_case_id"), ["case_id"], unique=False)

    op.create_table(
        "consents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agreed", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_consents_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consents_case_id"), ["case_id"], unique=False)

    op.create_table(
        "message_links",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("platform_message_id", sa.String(length=128), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_message_links_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "channel", "chat_hash", "platform_message_id", name=op.f("pk_message_links")
        ),
    )
    with op.batch_alter_table("message_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_links_case_id"), ["case_id"], unique=False)

    op.create_table(
        "notes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("confidant_id", sa.String(length=32), nullable=True),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_notes_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["confidant_id"],
            ["confidants.id"],
            name=op.f("fk_notes_confidant_id_confidants"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notes_case_id"), ["case_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ref", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("recipient_enc", sa.LargeBinary(), nullable=True),
        sa.Column("payload_enc", sa.LargeBinary(), nullable=True),
        sa.Column("data_key_id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_outbox_case_id_cases"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["data_key_id"], ["data_keys.id"], name=op.f("fk_outbox_data_key_id_data_keys")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("ref", name=op.f("uq_outbox_ref")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_recipient_hash_seq", ["recipient_hash", "seq"], unique=False
        )
        batch_op.create_index(
            "ix_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )

    for table, column in _CYCLE:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(
                f"fk_{table}_{column}_cases", "cases", [column], ["id"], ondelete="SET NULL"
            )


def downgrade() -> None:
    """Drop everything, the cycle-closing foreign keys first."""
    for table, column in _CYCLE:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_{column}_cases", type_="foreignkey")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_next_attempt_at")
        batch_op.drop_index("ix_outbox_recipient_hash_seq")

    op.drop_table("outbox")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notes_case_id"))

    op.drop_table("notes")
    with op.batch_alter_table("message_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_links_case_id"))

    op.drop_table("message_links")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consents_case_id"))

    op.drop_table("consents")
    with op.batch_alter_table("case_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_messages_case_id"))

    op.drop_table("case_messages")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_appointments_room_start",
            sqlite_where=sa.text("status = 'booked'"),
            postgresql_where=sa.text("status = 'booked'"),
        )
        batch_op.drop_index(
            "uq_appointments_confidant_start",
            sqlite_where=sa.text("status = 'booked'"),
            postgresql_where=sa.text("status = 'booked'"),
        )
        batch_op.drop_index("ix_appointments_status_starts_at")
        batch_op.drop_index(batch_op.f("ix_appointments_case_id"))

    op.drop_table("appointments")
    with op.batch_alter_table("shifts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shifts_confidant_id"))

    op.drop_table("shifts")
    op.drop_table("login_tokens")
    op.drop_table("confidant_addresses")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_status_last_activity_at")
        batch_op.drop_index("ix_cases_status_closed_at")
        batch_op.drop_index(batch_op.f("ix_cases_status"))
        batch_op.drop_index(batch_op.f("ix_cases_contact_id"))
        batch_op.drop_index(batch_op.f("ix_cases_confidant_id"))

    op.drop_table("cases")
    with op.batch_alter_table("absences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_absences_confidant_id"))

    op.drop_table("absences")
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_declarations_expires_at"))

    op.drop_table("declarations")
    op.drop_table("contacts")
    op.drop_table("confidants")
    op.drop_table("channel_state")
    op.drop_table("rooms")
    with op.batch_alter_table("handled_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handled_events_handled_at"))

    op.drop_table("handled_events")
    op.drop_table("data_keys")
    with op.batch_alter_table("case_statistics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_statistics_month"))

    op.drop_table("case_statistics")
    with op.batch_alter_table("button_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_button_tokens_owner_hash"))
        batch_op.drop_index(batch_op.f("ix_button_tokens_menu_id"))
        batch_op.drop_index(batch_op.f("ix_button_tokens_expires_at"))

    op.drop_table("button_tokens")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")
    op.drop_table("app_meta")
