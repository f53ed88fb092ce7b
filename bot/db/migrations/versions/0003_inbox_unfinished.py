"""Inbox: an index on the unfinished rows by person, for the claim's ordering probe.

The claim takes an update only if no earlier unfinished update of the same person exists
(bot/inbox.py). On a freshly filled inbox that planner statistics had not caught up with,
PostgreSQL ran that probe as a nested loop over every unfinished row (> 1 s per claim
during a 10,000-update backlog, until ANALYZE). A partial index on (ordering_key,
update_id) of the unfinished rows answers it whatever the statistics say, and stays as
small as the backlog. It replaces the index on ordering_key alone, which nothing else
reads and which every stored update paid for.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = sa.text("status <> 'done'")


def upgrade() -> None:
    op.create_index(
        "ix_inbox_unfinished",
        "inbox",
        ["ordering_key", "update_id"],
        postgresql_where=UNFINISHED,
        sqlite_where=UNFINISHED,
    )
    op.drop_index("ix_inbox_ordering_key", table_name="inbox")


def downgrade() -> None:
    op.create_index("ix_inbox_ordering_key", "inbox", ["ordering_key"])
    op.drop_index("ix_inbox_unfinished", table_name="inbox")
