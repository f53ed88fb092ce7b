"""Initial schema: units, people, invites, cases and their events, deadlines and
attachments; the update inbox, the message outbox and the FSM store.

Generated from ``bot/db/models.py`` by autogenerate, then checked by hand: tables in the
order of their foreign keys, plain ``create_index`` on the new tables (no batch needed),
and a trigger that no migration could have guessed — the audit log refuses UPDATE.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# case_events is append-only (domain.md "Lifecycle": every change is an event in an
# append-only audit log). The repositories offer no way to change an event; the database
# refuses it too, so no later code path can rewrite history. DELETE stays possible for the
# retention purge of whole cases (settings.retention_days).
APPEND_ONLY_MESSAGE = "case_events is append-only: events are never updated"

SQLITE_TRIGGER = f"""
CREATE TRIGGER case_events_append_only BEFORE UPDATE ON case_events
BEGIN
    SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}');
END
"""

POSTGRES_FUNCTION = f"""
CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}';
END
$$
"""

POSTGRES_TRIGGER = """
CREATE TRIGGER case_events_append_only BEFORE UPDATE ON case_events
FOR EACH ROW EXECUTE FUNCTION case_events_append_only()
"""


def _utc_timestamp(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("forum", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("chat_id", name=op.f("uq_units_chat_id")),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=True),
        sa.Column("blocked_bot", sa.Boolean(), nullable=False),
        _utc_timestamp("created_at"),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_people_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("telegram_id", name=op.f("uq_people_telegram_id")),
    )
    op.create_table(
        "invites",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        _utc_timestamp("created_at"),
        _utc_timestamp("expires_at"),
        sa.Column("used_by", sa.Integer(), nullable=True),
        _utc_timestamp("used_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["people.id"], name=op.f("fk_invites_created_by_people")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_invites_unit_id_units")),
        sa.ForeignKeyConstraint(
            ["used_by"], ["people.id"], name=op.f("fk_invites_used_by_people")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_invites")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=True),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("lead_unit_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("hops", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("applicant", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("classification", sa.JSON(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("requester_kind", sa.String(length=32), nullable=True),
        sa.Column("reply_type", sa.String(length=48), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=True),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("card_message_id", sa.BigInteger(), nullable=True),
        _utc_timestamp("received_at"),
        _utc_timestamp("accepted_at", nullable=True),
        _utc_timestamp("answered_at", nullable=True),
        _utc_timestamp("closed_at", nullable=True),
        _utc_timestamp("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["people.id"], name=op.f("fk_cases_citizen_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["lead_unit_id"], ["units.id"], name=op.f("fk_cases_lead_unit_id_units")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_cases_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("number", name=op.f("uq_cases_number")),
    )
    for column in ("citizen_id", "path", "received_at", "state", "unit_id"):
        op.create_index(op.f(f"ix_cases_{column}"), "cases", [column])

    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        _utc_timestamp("at"),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["people.id"], name=op.f("fk_case_events_actor_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index(op.f("ix_case_events_case_id"), "case_events", ["case_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)

    op.create_table(
        "deadlines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("computation", sa.JSON(), nullable=False),
        sa.Column("calendar_version", sa.String(length=64), nullable=False),
        _utc_timestamp("computed_at"),
        _utc_timestamp("met_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_deadlines_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadlines")),
        sa.UniqueConstraint("case_id", "rule", name="uq_deadline_case_rule"),
    )
    op.create_index(op.f("ix_deadlines_case_id"), "deadlines", ["case_id"])
    op.create_index("ix_deadlines_open_due", "deadlines", ["status", "due"])

    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("file_id", sa.String(length=256), nullable=False),
        sa.Column("file_unique_id", sa.String(length=128), nullable=False),
        sa.Column("file_name", sa.String(length=256), nullable=True),
        sa.Column("mime_type", sa.String(length=128), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("from_role", sa.String(length=20), nullable=False),
        _utc_timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_attachments_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    op.create_index(op.f("ix_attachments_case_id"), "attachments", ["case_id"])

    op.create_table(
        "inbox",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ordering_key", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _utc_timestamp("received_at"),
        _utc_timestamp("processed_at", nullable=True),
        _utc_timestamp("lease_until", nullable=True),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_inbox")),
    )
    op.create_index(op.f("ix_inbox_ordering_key"), "inbox", ["ordering_key"])
    op.create_index("ix_inbox_pending", "inbox", ["status", "update_id"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _utc_timestamp("not_before"),
        _utc_timestamp("lease_until", nullable=True),
        _utc_timestamp("created_at"),
        _utc_timestamp("sent_at", nullable=True),
        sa.Column("result_message_id", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_outbox_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
    )
    op.create_index(op.f("ix_outbox_chat_id"), "outbox", ["chat_id"])
    op.create_index("ix_outbox_pending", "outbox", ["status", "not_before", "id"])

    op.create_table(
        "fsm",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=200), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        _utc_timestamp("updated_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_fsm")),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes and (on both backends) its triggers.
    for table in (
        "fsm",
        "outbox",
        "inbox",
        "attachments",
        "deadlines",
        "case_events",
        "invites",
        "cases",
        "people",
        "units",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS case_events_append_only()")
