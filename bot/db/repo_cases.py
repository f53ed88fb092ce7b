"""Cases and what hangs off them: the audit log of events, deadlines, attachments.

Every function takes the caller's ``AsyncSession`` and neither commits nor rolls back.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case as sql_case
from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from bot.db.models import Attachment, Case, CaseEvent, DeadlineRow
from bot.db.records import (
    AttachmentRecord,
    CaseEventRecord,
    CaseRecord,
    ConcurrentUpdate,
    DeadlineRecord,
    DeadlineStatus,
    NotFound,
)
from bot.db.repo_base import insert, normalise_code, random_code, to_record, to_utc
from routing.deadlines import Deadline

# The year in a tracking number is the bureau's year: an item sent at 00:30 on 1 January
# in Anshun is a new year's item even though it is still 31 December in UTC.
BUREAU_TZ = ZoneInfo("Asia/Shanghai")
CASE_NUMBER_PREFIX = "HY"
SUMMARY_LENGTH = 200  # models.Case.summary is String(200); PostgreSQL would refuse more

# What update_case may change. Not the identity (id, number, citizen) nor what the
# statutory clock runs from (received_at) nor the citizen's own words (text: a supplement
# is an event and attachments, the original stays as filed). version and updated_at are
# maintained by the database layer.
UPDATABLE_CASE_FIELDS = frozenset(
    {
        "path",
        "topic",
        "district",
        "unit_id",
        "lead_unit_id",
        "state",
        "hops",
        "summary",
        "applicant",
        "details",
        "classification",
        "anonymous",
        "requester_kind",
        "reply_type",
        "answer",
        "rating",
        "rating_comment",
        "thread_id",
        "card_message_id",
        "accepted_at",
        "answered_at",
        "closed_at",
    }
)


def _fresh(value: Any) -> Any:
    """A value on its way into a row: UTC datetimes, private copies of JSON."""
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, Mapping):
        return copy.deepcopy(dict(value))
    if isinstance(value, list):
        return copy.deepcopy(value)
    return value


# --------------------------------------------------------------------------- cases


def new_case_number(received_at: dt.datetime) -> str:
    """``HY-2026-7KQ3-M9XT``: the year, then 8 random symbols (31**8 ≈ 8.5e11 per year).

    Random, not sequential: the number is what a citizen quotes to ask about the item,
    and a neighbouring number must not lead to someone else's.
    """
    code = random_code(8)
    year = received_at.astimezone(BUREAU_TZ).year
    return f"{CASE_NUMBER_PREFIX}-{year}-{code[:4]}-{code[4:]}"


async def create_case(
    session: AsyncSession,
    *,
    citizen_id: int,
    path: str,
    topic: str,
    unit_id: str,
    state: str,
    text: str,
    received_at: dt.datetime,
    district: str | None = None,
    lead_unit_id: str | None = None,
    summary: str = "",
    applicant: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    classification: Mapping[str, Any] | None = None,
    anonymous: bool = False,
    requester_kind: str | None = None,
) -> CaseRecord:
    """A new case with a fresh tracking number; the lead unit defaults to the first unit
    contacted (首接负责)."""
    number = new_case_number(received_at)
    while await session.scalar(select(Case.id).where(Case.number == number)) is not None:
        number = new_case_number(received_at)  # practically never; the unique key backs it
    case = Case(
        number=number,
        citizen_id=citizen_id,
        path=path,
        topic=topic,
        district=district,
        unit_id=unit_id,
        lead_unit_id=lead_unit_id or unit_id,
        state=state,
        hops=0,
        text=text,
        summary=summary[:SUMMARY_LENGTH],
        applicant=_fresh(applicant or {}),
        details=_fresh(details or {}),
        classification=_fresh(classification or {}),
        anonymous=anonymous,
        requester_kind=requester_kind,
        received_at=to_utc(received_at),
    )
    session.add(case)
    await session.flush()
    return to_record(CaseRecord, case)


async def get_case(session: AsyncSession, case_id: int) -> CaseRecord | None:
    case = await session.get(Case, case_id, populate_existing=True)
    return None if case is None else to_record(CaseRecord, case)


async def get_case_by_number(session: AsyncSession, number: str) -> CaseRecord | None:
    """The case a person quotes, however typed: ``hy 2026 7kq3m9xt``, full-width, …"""
    typed = normalise_code(number)
    if len(typed) != 14 or not typed.startswith(CASE_NUMBER_PREFIX):
        return None
    canonical = f"{typed[:2]}-{typed[2:6]}-{typed[6:10]}-{typed[10:]}"
    case = await session.scalar(
        select(Case).where(Case.number == canonical).execution_options(populate_existing=True)
    )
    return None if case is None else to_record(CaseRecord, case)


async def get_case_in_unit_chat(
    session: AsyncSession,
    unit_id: str,
    *,
    thread_id: int | None = None,
    card_message_id: int | None = None,
) -> CaseRecord | None:
    """The case of a unit whose forum topic is ``thread_id`` (or, in a group without
    topics, whose card is ``card_message_id``): what a staff message in the group is about."""
    if thread_id is not None:
        condition = Case.thread_id == thread_id
    elif card_message_id is not None:
        condition = Case.card_message_id == card_message_id
    else:
        return None
    case = await session.scalar(
        select(Case)
        .where(Case.unit_id == unit_id, condition)
        .order_by(Case.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return None if case is None else to_record(CaseRecord, case)


async def cases_of_citizen(session: AsyncSession, person_id: int) -> list[CaseRecord]:
    """The person's cases, newest first."""
    query = select(Case).where(Case.citizen_id == person_id)
    return await _cases(session, query)


async def update_case(
    session: AsyncSession, case_id: int, expected_version: int, **changes: Any
) -> CaseRecord:
    """Change a case if nobody else did since the caller read ``expected_version``.

    Raises :class:`ConcurrentUpdate` otherwise — found either here, or by the database
    when another transaction updates the row between our read and our write (the UPDATE
    carries ``WHERE version = …``). After that error, roll the transaction back.
    Unknown or protected fields (see :data:`UPDATABLE_CASE_FIELDS`) raise ``ValueError``.
    """
    refused = set(changes) - UPDATABLE_CASE_FIELDS
    if refused:
        raise ValueError(f"update_case cannot change {', '.join(sorted(refused))}")
    case = await session.get(Case, case_id, populate_existing=True)
    if case is None:
        raise NotFound("case", case_id)
    if case.version != expected_version:
        raise ConcurrentUpdate(case_id, expected_version, case.version)
    for name, value in changes.items():
        if name == "summary":
            value = value[:SUMMARY_LENGTH]
        setattr(case, name, _fresh(value))
    try:
        await session.flush()
    except StaleDataError as error:
        raise ConcurrentUpdate(case_id, expected_version, None) from error
    return to_record(CaseRecord, case)


async def list_cases(
    session: AsyncSession,
    *,
    unit_id: str | None = None,
    path: str | None = None,
    state: str | Collection[str] | None = None,
    overdue_on: dt.date | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    text: str | None = None,
    limit: int | None = 200,
    offset: int = 0,
) -> list[CaseRecord]:
    """Cases matching every given filter, newest first.

    ``overdue_on``: only cases with an open deadline whose last day is before that day.
    ``since``/``until``: received in ``[since, until)``. ``text``: a case-insensitive
    substring of the text, the summary or the number (``%`` and ``_`` match literally).
    """
    query = select(Case)
    if unit_id is not None:
        query = query.where(Case.unit_id == unit_id)
    if path is not None:
        query = query.where(Case.path == path)
    if isinstance(state, str):
        query = query.where(Case.state == state)
    elif state is not None:
        query = query.where(Case.state.in_(list(state)))
    if overdue_on is not None:
        query = query.where(
            exists().where(
                DeadlineRow.case_id == Case.id,
                DeadlineRow.status == DeadlineStatus.OPEN,
                DeadlineRow.due < overdue_on,
            )
        )
    if since is not None:
        query = query.where(Case.received_at >= to_utc(since))
    if until is not None:
        query = query.where(Case.received_at < to_utc(until))
    if text:
        query = query.where(
            or_(
                Case.text.icontains(text, autoescape=True),
                Case.summary.icontains(text, autoescape=True),
                Case.number.icontains(text, autoescape=True),
            )
        )
    return await _cases(session, query.limit(limit).offset(offset))


async def _cases(session: AsyncSession, query: Any) -> list[CaseRecord]:
    query = query.order_by(Case.received_at.desc(), Case.id.desc()).execution_options(
        populate_existing=True
    )
    return [to_record(CaseRecord, case) for case in await session.scalars(query)]


# --------------------------------------------------------------------------- events
# Append-only: there is deliberately no function to change or delete an event, and the
# database refuses UPDATE on case_events (migration 0001).


async def add_event(
    session: AsyncSession,
    case_id: int,
    *,
    actor_id: int | None,
    actor_role: str,
    action: str,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> CaseEventRecord:
    """Record who (``actor_id``, ``None`` for the system) did what to a case, and why."""
    event = CaseEvent(
        case_id=case_id,
        actor_id=actor_id,
        actor_role=actor_role,
        action=action,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        data=_fresh(data or {}),
    )
    if at is not None:
        event.at = to_utc(at)
    session.add(event)
    await session.flush()
    return to_record(CaseEventRecord, event)


async def events_of_case(session: AsyncSession, case_id: int) -> list[CaseEventRecord]:
    """The case's events in the order they were recorded."""
    query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
    return [to_record(CaseEventRecord, event) for event in await session.scalars(query)]


# --------------------------------------------------------------------------- deadlines


async def upsert_deadline(
    session: AsyncSession,
    case_id: int,
    deadline: Deadline,
    calendar_version: str,
    *,
    now: dt.datetime | None = None,
) -> DeadlineRecord:
    """Store a case's deadline for ``deadline.rule``, replacing an earlier computation.

    The status is kept: recomputing (new calendar data, an extension, a 补正 restart)
    changes when the deadline falls, not whether it was met.
    """
    computed_at = to_utc(now) if now is not None else dt.datetime.now(dt.UTC)
    statement = insert(session, DeadlineRow).values(
        case_id=case_id,
        rule=deadline.rule,
        start=deadline.start,
        due=deadline.due,
        provisional=deadline.provisional,
        status=DeadlineStatus.OPEN.value,
        computation=deadline.to_dict(),
        calendar_version=calendar_version,
        computed_at=computed_at,
        # A new or moved date gets a new reminder plan (bot/reminders.py), from now on.
        next_reminder_at=computed_at,
        reminder_step=None,
    )
    recomputed: dict[str, Any] = {
        name: statement.excluded[name]
        for name in ("start", "due", "provisional", "computation", "calendar_version")
    }
    moved = DeadlineRow.due != statement.excluded.due
    # The reminder plan stays as it is when the date did not move.
    for name in ("next_reminder_at", "reminder_step"):
        recomputed[name] = sql_case(
            (moved, statement.excluded[name]), else_=getattr(DeadlineRow, name)
        )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["case_id", "rule"], set_={**recomputed, "computed_at": computed_at}
        )
    )
    return await _deadline(session, case_id, deadline.rule)


async def deadlines_of_case(session: AsyncSession, case_id: int) -> list[DeadlineRecord]:
    query = select(DeadlineRow).where(DeadlineRow.case_id == case_id)
    return await _deadlines(session, query)


async def open_deadlines_due_by(session: AsyncSession, day: dt.date) -> list[DeadlineRecord]:
    """Open deadlines whose last day is ``day`` or earlier: due now, or overdue."""
    query = select(DeadlineRow).where(
        DeadlineRow.status == DeadlineStatus.OPEN, DeadlineRow.due <= day
    )
    return await _deadlines(session, query)


async def stale_deadlines(session: AsyncSession, calendar_version: str) -> list[DeadlineRecord]:
    """Open deadlines computed with other calendar data: to recompute (domain.md)."""
    query = select(DeadlineRow).where(
        DeadlineRow.status == DeadlineStatus.OPEN,
        DeadlineRow.calendar_version != calendar_version,
    )
    return await _deadlines(session, query)


async def mark_deadline(
    session: AsyncSession, case_id: int, rule: str, status: str, at: dt.datetime
) -> DeadlineRecord:
    """Set a deadline's status; ``met`` records ``at`` as when it was met."""
    status = DeadlineStatus(status).value
    row = await session.scalar(
        select(DeadlineRow)
        .where(DeadlineRow.case_id == case_id, DeadlineRow.rule == rule)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound("deadline", (case_id, rule))
    row.status = status
    row.met_at = to_utc(at) if status == DeadlineStatus.MET else None
    if status != DeadlineStatus.OPEN:
        row.next_reminder_at = None  # nothing more to remind of
    await session.flush()
    return to_record(DeadlineRecord, row)


async def _deadline(session: AsyncSession, case_id: int, rule: str) -> DeadlineRecord:
    query = select(DeadlineRow).where(DeadlineRow.case_id == case_id, DeadlineRow.rule == rule)
    (record,) = await _deadlines(session, query)
    return record


async def _deadlines(session: AsyncSession, query: Any) -> list[DeadlineRecord]:
    query = query.order_by(DeadlineRow.due, DeadlineRow.case_id, DeadlineRow.rule)
    rows = await session.scalars(query.execution_options(populate_existing=True))
    return [to_record(DeadlineRecord, row) for row in rows]


# --------------------------------------------------------------------------- attachments


async def add_attachment(
    session: AsyncSession,
    case_id: int,
    *,
    kind: str,
    file_id: str,
    file_unique_id: str = "",
    file_name: str | None = None,
    mime_type: str | None = None,
    size: int | None = None,
    caption: str | None = None,
    from_role: str = "citizen",
) -> AttachmentRecord:
    """A photo or document sent for the case; the file stays on Telegram (``file_id``)."""
    attachment = Attachment(
        case_id=case_id,
        kind=kind,
        file_id=file_id,
        file_unique_id=file_unique_id,
        file_name=file_name,
        mime_type=mime_type,
        size=size,
        caption=caption,
        from_role=from_role,
    )
    session.add(attachment)
    await session.flush()
    return to_record(AttachmentRecord, attachment)


async def attachments_of_case(session: AsyncSession, case_id: int) -> list[AttachmentRecord]:
    query = select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id)
    return [to_record(AttachmentRecord, row) for row in await session.scalars(query)]
