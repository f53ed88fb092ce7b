"""Stored deadlines counted again after holidays.yaml or paths.yaml changed.

domain.md "Counting time": deadlines are stored on the ticket with how they were computed
and recomputed when the calendar data changes. :func:`recompute_deadlines` replays every
open deadline with the service's current rules and calendar (``routing.deadlines.recompute``).
A deadline whose last day or provisional flag moved is stored again, the case gets one audit
event, and its unit is told in the case's topic: a unit plans its work by these dates. A
deadline whose dates hold is brought up to the new calendar version silently.

Each case is its own transaction: one broken case (a rule gone from paths.yaml, a pause
that no longer fits the new dates) is logged and reported, and the others go on.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.models import DeadlineRow
from bot.db.records import CaseRecord, DeadlineRecord, DeadlineStatus
from bot.services.common import UNIT_LANGUAGE
from bot.services.service import CaseService
from routing.deadlines import Deadline, recompute

log = logging.getLogger("huiyin.services.recompute")

ACTION = "deadline_recomputed"


@dataclass(frozen=True, slots=True)
class DeadlineChange:
    """One stored deadline whose last day or provisional flag moved."""

    case_id: int
    case_number: str
    rule: str
    due_before: dt.date
    due_after: dt.date
    provisional_before: bool
    provisional_after: bool

    def to_dict(self) -> dict[str, Any]:
        """The audit event's record of the change (JSON-ready)."""
        return {
            "rule": self.rule,
            "due_before": self.due_before.isoformat(),
            "due_after": self.due_after.isoformat(),
            "provisional_before": self.provisional_before,
            "provisional_after": self.provisional_after,
        }


@dataclass(frozen=True, slots=True)
class RecomputeFailure:
    """A case left as it was: why, and how many of its open deadlines were not recomputed."""

    case_id: int
    case_number: str | None
    deadlines: int
    error: str


@dataclass(slots=True)
class RecomputeReport:
    """What a run found. The counts are of open deadlines; ``failed`` counts the deadlines of
    the cases that failed (a case is recomputed whole or not at all)."""

    dry_run: bool = False
    unchanged: int = 0
    changes: list[DeadlineChange] = field(default_factory=list)
    failures: list[RecomputeFailure] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.changes)

    @property
    def failed(self) -> int:
        return sum(failure.deadlines for failure in self.failures)

    @property
    def checked(self) -> int:
        return self.changed + self.unchanged + self.failed


async def recompute_deadlines(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    *,
    now: dt.datetime,
    dry_run: bool = False,
) -> RecomputeReport:
    """Recompute every open deadline with ``service.rules`` and ``service.calendar``.

    ``dry_run`` reports what would change and writes nothing. Running again after a run
    changes nothing more: the stored deadlines then equal their recomputation.
    """
    report = RecomputeReport(dry_run=dry_run)
    async with sessionmaker() as session:
        case_ids = await _cases_with_open_deadlines(session)
    for case_id in case_ids:
        async with sessionmaker() as session:
            try:
                async with session.begin():
                    changes, unchanged = await _recompute_case(
                        session, service, case_id, now=now, dry_run=dry_run
                    )
            except Exception as exc:
                report.failures.append(await _failure(sessionmaker, case_id, exc))
                continue
        report.changes += changes
        report.unchanged += unchanged
    return report


async def _recompute_case(
    session: AsyncSession,
    service: CaseService,
    case_id: int,
    *,
    now: dt.datetime,
    dry_run: bool,
) -> tuple[list[DeadlineChange], int]:
    """One case's open deadlines; the changes and how many kept their dates."""
    case = await repo.get_case(session, case_id)
    if case is None:
        raise repo.NotFound("case", case_id)
    version = service.calendar.data_version
    records = [
        record
        for record in await repo.deadlines_of_case(session, case_id)
        if record.status == DeadlineStatus.OPEN
    ]
    moved: list[tuple[DeadlineRecord, Deadline]] = []
    refreshed: list[Deadline] = []
    for record in records:
        deadline = recompute(record.deadline, service.rules, service.calendar)
        if (deadline.due, deadline.provisional) != (record.due, record.provisional):
            moved.append((record, deadline))
        elif deadline.to_dict() != record.computation or record.calendar_version != version:
            refreshed.append(deadline)  # same dates: nothing anyone needs to hear about
    changes = [
        DeadlineChange(
            case_id=case.id,
            case_number=case.number,
            rule=record.rule,
            due_before=record.due,
            due_after=deadline.due,
            provisional_before=record.provisional,
            provisional_after=deadline.provisional,
        )
        for record, deadline in moved
    ]
    if not dry_run:
        for deadline in [*refreshed, *(deadline for _, deadline in moved)]:
            await repo.upsert_deadline(session, case.id, deadline, version, now=now)
        if changes:
            await _announce(session, service, case, changes, now)
    return changes, len(records) - len(changes)


async def _announce(
    session: AsyncSession,
    service: CaseService,
    case: CaseRecord,
    changes: list[DeadlineChange],
    now: dt.datetime,
) -> None:
    """The audit event, the note in the unit's topic and the card with the new dates."""
    texts = service.texts
    event = await repo.add_event(
        session,
        case.id,
        actor_id=None,
        actor_role="system",
        action=ACTION,
        from_state=case.state,
        to_state=case.state,
        reason=texts.get("recompute.reason", UNIT_LANGUAGE),
        data={
            "calendar_version": service.calendar.data_version,
            "deadlines": [change.to_dict() for change in changes],
        },
        at=now,
    )
    lines = "\n".join(_line(service, change) for change in changes)
    text = texts.get("recompute.unit_notice", UNIT_LANGUAGE, number=case.number, lines=lines)
    await service._to_unit(session, case, text, f"case:{case.id}:recomputed:{event.id}")
    await service._refresh_card(session, case, event)


def _line(service: CaseService, change: DeadlineChange) -> str:
    texts = service.texts
    if change.provisional_after:
        note = texts.get("deadline.provisional", UNIT_LANGUAGE)
    elif change.provisional_before:
        note = texts.get("recompute.confirmed", UNIT_LANGUAGE)
    else:
        note = ""
    return texts.get(
        "recompute.line",
        UNIT_LANGUAGE,
        rule=texts.label("rule", change.rule, UNIT_LANGUAGE),
        before=change.due_before.isoformat(),
        after=change.due_after.isoformat(),
        note=note,
    )


async def _cases_with_open_deadlines(session: AsyncSession) -> list[int]:
    query = (
        select(DeadlineRow.case_id)
        .where(DeadlineRow.status == DeadlineStatus.OPEN.value)
        .distinct()
        .order_by(DeadlineRow.case_id)
    )
    return list(await session.scalars(query))


async def _failure(
    sessionmaker: async_sessionmaker[AsyncSession], case_id: int, exc: Exception
) -> RecomputeFailure:
    """Log the failure; the case's number and open deadlines are read again for the report."""
    if isinstance(exc, (KeyError, ValueError)):  # UnknownRule, an adjustment that no longer fits
        log.warning("case %s: deadlines not recomputed: %s", case_id, exc)
    else:
        log.exception("case %s: deadlines not recomputed", case_id)
    number: str | None = None
    deadlines = 0
    try:
        async with sessionmaker() as session:
            case = await repo.get_case(session, case_id)
            number = case.number if case is not None else None
            records = await repo.deadlines_of_case(session, case_id)
            deadlines = sum(1 for r in records if r.status == DeadlineStatus.OPEN)
    except Exception:  # the database itself is failing: report what is known
        log.exception("case %s: could not read it back for the report", case_id)
    return RecomputeFailure(case_id, number, deadlines, str(exc) or type(exc).__name__)
