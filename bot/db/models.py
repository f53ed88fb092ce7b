"""The database schema (SQLAlchemy 2 declarative). Repositories turn rows into dataclasses;
nothing outside ``bot/db`` sees an ORM object.

Timestamps are timezone-aware UTC; calendar dates (deadlines) are plain dates in the
bureau's time zone (Asia/Shanghai).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Every constraint gets a predictable name: SQLite cannot ALTER a constraint, so a later
# migration rebuilds the table (alembic batch mode) and must name what it drops; PostgreSQL's
# own generated names would differ from SQLite's (which has none).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        dt.datetime: DateTime(timezone=True),
        dt.date: Date,
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Unit(Base):
    """A responsible unit (科室 or 县区/街镇 bureau); mirrored from units.yaml on start."""

    __tablename__ = "units"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    forum: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Person(Base):
    """Anyone the bot knows: citizens, staff (with a unit), supervisors, admins."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    role: Mapped[str] = mapped_column(String(20), default="citizen")
    unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))
    blocked_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)


class Invite(Base):
    """A one-time code binding a person to a unit and role (/invite → /join)."""

    __tablename__ = "invites"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))
    created_by: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)
    expires_at: Mapped[dt.datetime]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    used_at: Mapped[dt.datetime | None]


class Case(Base):
    """One item (事项): a complaint, request or application on exactly one path."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Shown to the citizen; long and random enough that guessing one reveals nothing.
    number: Mapped[str] = mapped_column(String(32), unique=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    path: Mapped[str] = mapped_column(String(20), index=True)
    topic: Mapped[str] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(64))
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    lead_unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"))
    state: Mapped[str] = mapped_column(String(24), index=True)
    hops: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(String(200), default="")
    # Path-specific application content (domain.md "Application content"): name, contact,
    # ID (masked for display), address, information wanted, form, act contested, dates …
    applicant: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    classification: Mapped[dict[str, Any]] = mapped_column(default=dict)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    # For the annual disclosure report: 自然人 or one of the five organisation kinds,
    # and the Art 36 reply type chosen when answering.
    requester_kind: Mapped[str | None] = mapped_column(String(32))
    reply_type: Mapped[str | None] = mapped_column(String(48))
    answer: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    # Telegram: the forum topic of this case in its unit's group, and the card message.
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[dt.datetime] = mapped_column(default=_now, index=True)
    accepted_at: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=_now, onupdate=_now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    # The quiet-period close looks for answered cases by when they were answered.
    __table_args__ = (Index("ix_cases_state_answered", "state", "answered_at"),)


class CaseEvent(Base):
    """Append-only audit log: who, when, what, why. Never updated, never deleted."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=_now)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str | None] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DeadlineRow(Base):
    """A computed deadline of a case, with how it was computed (routing.deadlines.Deadline)."""

    __tablename__ = "deadlines"
    __table_args__ = (
        UniqueConstraint("case_id", "rule", name="uq_deadline_case_rule"),
        Index("ix_deadlines_open_due", "status", "due"),
        # The reminder scan reads only rows with a reminder to come (a partial index: cost
        # grows with what is due, not with the table).
        Index(
            "ix_deadlines_next_reminder",
            "next_reminder_at",
            postgresql_where=text("next_reminder_at IS NOT NULL"),
            sqlite_where=text("next_reminder_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Looked up by case through uq_deadline_case_rule (case_id first): no index of its own,
    # one less to maintain on every reminder step.
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    rule: Mapped[str] = mapped_column(String(64))
    start: Mapped[dt.date]
    due: Mapped[dt.date]
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, met, missed, void
    computation: Mapped[dict[str, Any]] = mapped_column(default=dict)  # Deadline.to_dict()
    calendar_version: Mapped[str] = mapped_column(String(64), default="")
    computed_at: Mapped[dt.datetime] = mapped_column(default=_now)
    met_at: Mapped[dt.datetime | None]
    # Reminders (bot/reminders.py): when the next one falls due, and which step of the
    # plan (routing.reminders.schedule) comes next; step None = plan from computed_at.
    # Cleared when the deadline is no longer open.
    next_reminder_at: Mapped[dt.datetime | None]
    reminder_step: Mapped[int | None] = mapped_column(Integer)


class Notification(Base):
    """A reminder, an escalation, a digest or a system notice: one row per ``key``, whatever
    happens (two workers, a restart mid-scan). Its messages are outbox rows keyed
    ``<key>:<chat id>``, written in the same transaction."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # e.g. "remind:<deadline>:<due>:overdue:2", "digest:<unit>:<date>", "quiet:<case>"
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    level: Mapped[int] = mapped_column(Integer, default=0)
    audience: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    deadline_id: Mapped[int | None] = mapped_column(ForeignKey("deadlines.id"))
    unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))
    due: Mapped[dt.date | None]
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)


class Lease(Base):
    """A named lease one process holds at a time (e.g. the outbox sender, the SQLite
    reminder scan): taken when free or expired, renewed while held."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime]


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # photo, document
    file_id: Mapped[str] = mapped_column(String(256))
    file_unique_id: Mapped[str] = mapped_column(String(128), default="")
    file_name: Mapped[str | None] = mapped_column(String(256))
    mime_type: Mapped[str | None] = mapped_column(String(128))
    size: Mapped[int | None] = mapped_column(Integer)
    caption: Mapped[str | None] = mapped_column(Text)
    from_role: Mapped[str] = mapped_column(String(20), default="citizen")
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)


class InboxUpdate(Base):
    """Every update as received, saved before it is confirmed to Telegram."""

    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_pending", "status", "update_id"),
        # The claim's "no earlier unfinished update of this person" probe (bot/inbox.py):
        # only unfinished rows, so it stays small and needs no fresh planner statistics.
        Index(
            "ix_inbox_unfinished",
            "ordering_key",
            "update_id",
            postgresql_where=text("status <> 'done'"),
            sqlite_where=text("status <> 'done'"),
        ),
    )

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Updates of one user are processed in order; different users in parallel.
    ordering_key: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="new")  # new, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=_now)
    processed_at: Mapped[dt.datetime | None]
    lease_until: Mapped[dt.datetime | None]


class OutboxMessage(Base):
    """Every message the bot sends, written in the same transaction as the change it reports."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "not_before", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # At most one message per key, whatever happens (e.g. "notify:case:42:accepted").
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(40), default="sendMessage")
    payload: Mapped[dict[str, Any]]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[dt.datetime] = mapped_column(default=_now)
    lease_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)
    sent_at: Mapped[dt.datetime | None]
    result_message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)


class FsmRecord(Base):
    """aiogram FSM state and data, so an intake survives a restart (SQL-backed storage)."""

    __tablename__ = "fsm"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=_now, onupdate=_now)
