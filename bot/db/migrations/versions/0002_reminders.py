"""Reminders: when each open deadline's next reminder falls due, the notifications sent
(one row per key), named leases, an index for the quiet-period close; and one index less on
deadlines (a reminder step rewrites the row, and every index with it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_NULL_REMINDER = sa.text("next_reminder_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("deadlines") as batch:
        batch.add_column(sa.Column("next_reminder_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reminder_step", sa.Integer(), nullable=True))
    # Deadlines open before this revision are planned by the first scan.
    op.execute("UPDATE deadlines SET next_reminder_at = CURRENT_TIMESTAMP WHERE status = 'open'")
    op.create_index(
        "ix_deadlines_next_reminder",
        "deadlines",
        ["next_reminder_at"],
        postgresql_where=NOT_NULL_REMINDER,
        sqlite_where=NOT_NULL_REMINDER,
    )
    op.create_index("ix_cases_state_answered", "cases", ["state", "answered_at"])
    # uq_deadline_case_rule (case_id, rule) serves lookups by case: this one only cost writes.
    op.drop_index("ix_deadlines_case_id", table_name="deadlines")
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("deadline_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.String(length=64), nullable=True),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_notifications_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["deadline_id"], ["deadlines.id"], name=op.f("fk_notifications_deadline_id_deadlines")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_notifications_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_notifications_key")),
    )
    op.create_index(op.f("ix_notifications_case_id"), "notifications", ["case_id"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("notifications")
    op.create_index("ix_deadlines_case_id", "deadlines", ["case_id"])
    op.drop_index("ix_cases_state_answered", table_name="cases")
    op.drop_index("ix_deadlines_next_reminder", table_name="deadlines")
    with op.batch_alter_table("deadlines") as batch:
        batch.drop_column("reminder_step")
        batch.drop_column("next_reminder_at")
