"""Reminders, escalation, daily digests and the quiet-period close: one periodic scan.

domain.md "Reminders and escalation". APScheduler only triggers :meth:`ReminderScanner.scan`
every ``scan_every_seconds`` (bot/app.py); what is due comes from our own tables:

- each open deadline carries ``next_reminder_at`` and ``reminder_step`` (its place in
  :func:`routing.reminders.schedule`); the scan reads the rows whose time has come through a
  partial index, so its cost grows with what is due, not with the table;
- every notification is a row of ``notifications`` with a unique key (deadline, due date,
  kind, level; or unit and date for a digest), written in the same transaction as its outbox
  messages and the deadline's next step. Whatever happens — two workers, a crash mid-scan,
  a restart — there is at most one row per key, and a row exists only with its messages.

Several workers: on PostgreSQL each scan takes its batch with ``FOR UPDATE SKIP LOCKED``, so
two scanners share the work and never take the same deadline; the row locks last for the
batch's transaction, and a worker that dies loses its connection and with it the locks
(its batch is rolled back and the next scan takes it). SQLite has no row locks: one process
holds the ``reminder-scan`` lease (bot/leader.py) and the others wait.

Notifications go out in office hours on working days only (reminders.yaml): outside them the
scan does nothing, and whatever fell due meanwhile goes at the next opening. Nothing is
dropped as late: after an outage, the latest due step of each audience is sent (an older
"3 days left" is superseded once the item is overdue).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot.db.models import Case, DeadlineRow, Notification, Person, Unit
from bot.db.records import Role, UnitRecord
from bot.db.repo_base import from_db, insert, to_record, to_utc
from bot.leader import LeaderLease
from bot.outbox import Outgoing, enqueue_many
from bot.services.base import topic_message
from bot.services.common import NOT_DUTIES, OPEN_STATES, UNIT_LANGUAGE, clip_html, esc
from bot.services.errors import ServiceError
from bot.texts import Texts
from routing.calendar import WorkCalendar
from routing.config import PathCode
from routing.lifecycle import State
from routing.reminders import (
    Audience,
    ReminderPolicy,
    Step,
    digest_due,
    due_now,
    first_after,
    in_working_hours,
    quiet_close_at,
    schedule,
)

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

# States in which a unit has work due.
RUNNING_STATES = frozenset(s.value for s in OPEN_STATES)
# Lines per section of a digest; the rest is counted ("… and 12 more").
DIGEST_LINES = 15
DIGEST_DAYS_AHEAD = 7
QUIET_CLOSE_BATCH = 200


@dataclass
class ScanReport:
    deadlines: int = 0  # deadline rows taken by the scan
    notifications: int = 0  # rows written (reminders, escalations, digests, closes)
    messages: int = 0  # outbox rows written
    closed: int = 0  # items closed after the quiet period
    skipped: str | None = None  # why the scan did nothing

    def __str__(self) -> str:
        if self.skipped:
            return f"scan skipped: {self.skipped}"
        return (
            f"scan: {self.deadlines} deadlines, {self.notifications} notifications, "
            f"{self.messages} messages, {self.closed} closed"
        )


@dataclass
class _People:
    """Who receives what, read once per scan."""

    units: dict[str, UnitRecord]
    staff: dict[str, list[tuple[int, str]]]  # unit id → (telegram id, language)
    supervisors: list[tuple[int, str]]
    heads: list[tuple[int, str]]


@dataclass
class _Batch:
    notifications: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, list[Outgoing]] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)


class ReminderScanner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        services: Any,
        policy: ReminderPolicy,
        *,
        clock: Clock,
        lease: LeaderLease | None = None,
        batch: int = 500,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.services = services
        self.texts: Texts = services.texts
        self.calendar: WorkCalendar = services.calendar
        self.policy = policy
        self.clock = clock
        self.lease = lease
        self.batch = batch
        bind = sessionmaker.kw.get("bind")
        postgres = bind is not None and bind.dialect.name == "postgresql"
        self.parallel = 2 if postgres else 1

    # ------------------------------------------------------------------ the scan

    async def scan(self, now: dt.datetime | None = None) -> ScanReport:
        """One pass: reminders and escalations due, today's digests, quiet closes."""
        # UTC throughout: SQLite keeps a datetime's digits and drops its offset.
        now = to_utc(now or self.clock())
        report = ScanReport()
        if not in_working_hours(now, self.policy, self.calendar):
            report.skipped = "outside office hours"
            return report
        if self.lease is not None and not await self.lease.acquire():
            report.skipped = "another process holds the scan lease"
            return report
        people = await self._people()
        # On PostgreSQL two batches at a time (SKIP LOCKED keeps them apart): one waits for
        # the database while the other is built, which nearly halves a large scan.
        await asyncio.gather(*(self._drain(now, people, report) for _ in range(self.parallel)))
        await self._digests(now, people, report)
        await self._quiet_closes(now, report)
        if report.deadlines or report.notifications or report.closed:
            log.info("%s", report)
        return report

    async def _people(self) -> _People:
        async with self.sessionmaker() as session:
            units = {u.id: to_record(UnitRecord, u) for u in await session.scalars(select(Unit))}
            staff: dict[str, list[tuple[int, str]]] = defaultdict(list)
            supervisors: list[tuple[int, str]] = []
            heads: list[tuple[int, str]] = []
            query = select(Person).where(
                Person.role.in_([Role.STAFF, Role.SUPERVISOR, Role.HEAD]),
                Person.blocked_bot.is_(False),
            )
            for person in await session.scalars(query):
                who = (person.telegram_id, person.language)
                if person.role == Role.STAFF and person.unit_id:
                    staff[person.unit_id].append(who)
                elif person.role == Role.SUPERVISOR:
                    supervisors.append(who)
                elif person.role == Role.HEAD:
                    heads.append(who)
        return _People(units, staff, supervisors, heads)

    # ------------------------------------------------------------------ reminders

    async def _drain(self, now: dt.datetime, people: _People, report: ScanReport) -> None:
        while await self._reminders(now, people, report) == self.batch:
            pass

    async def _reminders(self, now: dt.datetime, people: _People, report: ScanReport) -> int:
        """One batch of deadlines whose next reminder has come; how many were taken."""
        due_rows = (
            select(
                DeadlineRow.id,
                DeadlineRow.case_id,
                DeadlineRow.rule,
                DeadlineRow.due,
                DeadlineRow.status,
                DeadlineRow.computed_at,
                DeadlineRow.next_reminder_at,
                DeadlineRow.reminder_step,
            )
            .where(DeadlineRow.next_reminder_at <= now)
            .order_by(DeadlineRow.next_reminder_at)
            .limit(self.batch)
            # PostgreSQL: scanners skip each other's rows; SQLite: the lease serialises.
            .with_for_update(skip_locked=True, of=DeadlineRow)
        )
        async with self.sessionmaker() as session, session.begin():
            rows = (await session.execute(due_rows)).all()
            if not rows:
                return 0
            wanted = select(*CASE_COLUMNS).where(Case.id.in_({row.case_id for row in rows}))
            cases = {c.id: _case_line(c) for c in await session.execute(wanted)}
            batch = _Batch()
            plans: dict[dt.date, tuple[Step, ...]] = {}
            for row in rows:
                case = cases.get(row.case_id)
                next_at, step = None, row.reminder_step
                if (
                    case is not None
                    and row.status == "open"
                    and row.rule not in NOT_DUTIES
                    and clock_runs(case)
                ):
                    steps = plans.get(row.due) or plans.setdefault(
                        row.due, schedule(row.due, self.policy, self.calendar)
                    )
                    if step is None:  # a new or moved date: from when it was computed
                        step = first_after(steps, from_db(row.computed_at))
                    else:
                        # Where the plan stands is kept as a time, not an index: a changed
                        # reminders.yaml gives another list of steps, and the time still
                        # says which of them are done.
                        step = first_at_or_after(steps, from_db(row.next_reminder_at))
                    sending, step = due_now(steps, step, now)
                    for item in sending:
                        self._notify(batch, row, case, item, now, people)
                    next_at = steps[step].at.astimezone(dt.UTC) if step < len(steps) else None
                batch.steps.append(
                    {"id": row.id, "next_reminder_at": next_at, "reminder_step": step}
                )
            await self._write(session, batch, report)
            # Most rows of a batch move on to the same next step (tomorrow's 09:00): one
            # UPDATE per distinct (time, step) rather than one per row.
            moves: dict[tuple[dt.datetime | None, int | None], list[int]] = defaultdict(list)
            for move in batch.steps:
                moves[move["next_reminder_at"], move["reminder_step"]].append(move["id"])
            for (next_at, step), ids in moves.items():
                await session.execute(
                    update(DeadlineRow)
                    .where(DeadlineRow.id.in_(ids))
                    .values(next_reminder_at=next_at, reminder_step=step)
                    .execution_options(synchronize_session=False)
                )
            report.deadlines += len(rows)
            return len(rows)

    def _notify(
        self,
        batch: _Batch,
        row: Any,
        case: CaseLine,
        step: Step,
        now: dt.datetime,
        people: _People,
    ) -> None:
        key = f"remind:{row.id}:{row.due.isoformat()}:{step.kind}:{step.level}"
        unit = people.units.get(case.unit_id)
        messages: list[Outgoing] = []
        if step.audience is Audience.UNIT and unit is not None and unit.chat_id is not None:
            text = self._unit_text(step, case, row, now, UNIT_LANGUAGE)
            thread_id, payload = topic_message(case, unit, self.services.topic_name(case))
            messages.append(
                Outgoing(
                    unit.chat_id,
                    clip_html(text, 4096),
                    f"{key}:{unit.chat_id}",
                    "sendMessage",
                    thread_id,
                    payload,
                    case.id,
                )
            )
        else:
            for chat_id, language in self._private_recipients(step.audience, case, people):
                text = self._private_text(step, case, row, now, language)
                payload = {"parse_mode": "HTML"}
                link = topic_link(unit, case)
                if link:
                    label = self.texts.get("remind.open_topic", language)
                    payload["reply_markup"] = {"inline_keyboard": [[{"text": label, "url": link}]]}
                messages.append(
                    Outgoing(
                        chat_id,
                        clip_html(text, 4096),
                        f"{key}:{chat_id}",
                        "sendMessage",
                        None,
                        payload,
                        case.id,
                    )
                )
        batch.notifications.append(
            {
                "key": key,
                "kind": step.kind,
                "level": step.level,
                "audience": step.audience.value,
                "case_id": case.id,
                "deadline_id": row.id,
                "unit_id": case.unit_id,
                "due": row.due,
                "recipients": len(messages),
                "created_at": now,
            }
        )
        batch.messages[key] = messages

    def _unit_text(
        self, step: Step, case: CaseLine, row: Any, now: dt.datetime, language: str
    ) -> str:
        """What the handling unit is told: a warning, due today, or overdue."""
        days = step.level if step.kind == "warn" else self._days_overdue(row.due, now)
        return self.texts.get(
            f"remind.{step.kind}",
            language,
            rule=self.texts.label("rule", row.rule, language),
            due=row.due.isoformat(),
            number=case.number,
            days=days,
        )

    def _private_text(
        self, step: Step, case: CaseLine, row: Any, now: dt.datetime, language: str
    ) -> str:
        unit_name = self.services.unit_name(case.unit_id, language)
        if step.audience is Audience.UNIT:  # the unit has no group: its staff directly
            head = self.texts.get("remind.private_head", language, unit=esc(unit_name))
            return f"{head}\n{self._unit_text(step, case, row, now, language)}"
        return self.texts.get(
            f"remind.escalate_{step.audience.value}",
            language,
            number=case.number,
            unit=esc(unit_name),
            path=self.texts.label("path", case.path, language),
            rule=self.texts.label("rule", row.rule, language),
            due=row.due.isoformat(),
            days=self._days_overdue(row.due, now),
            summary=esc(case.summary),
        )

    def _private_recipients(
        self, audience: Audience, case: CaseLine, people: _People
    ) -> list[tuple[int, str]]:
        """The unit's staff when its group is not bound; the head, else the supervisors."""
        if audience is Audience.UNIT:
            chosen = people.staff.get(case.unit_id) or people.supervisors
        elif audience is Audience.HEAD:
            chosen = people.heads or people.supervisors
        else:
            chosen = people.supervisors
        if not chosen:
            log.warning("case %s: nobody to tell (%s); recorded only", case.id, audience.value)
        return chosen

    def _days_overdue(self, due: dt.date, now: dt.datetime) -> int:
        today = now.astimezone(self.policy.timezone).date()
        return max(1, int(self.calendar.working_days_between(due, today)))

    async def _write(self, session: AsyncSession, batch: _Batch, report: ScanReport) -> None:
        """The notifications not written before (by another worker, an earlier try), and
        their messages, in the caller's transaction."""
        if not batch.notifications:
            return
        statement = (
            insert(session, Notification)
            .on_conflict_do_nothing(index_elements=[Notification.key])
            .returning(Notification.key)
        )
        connection = await session.connection()  # many parameter sets, one statement
        written = list((await connection.execute(statement, batch.notifications)).scalars())
        messages = [m for key in written for m in batch.messages.get(key, ())]
        report.notifications += len(written)
        queued = await enqueue_many(session, messages)
        report.messages += queued

    # ------------------------------------------------------------------ digests

    async def _digests(self, now: dt.datetime, people: _People, report: ScanReport) -> None:
        """At ``digest_at`` on working days: one digest per unit with a group, one for the
        supervisors. Each is a notification keyed by unit and date: sent once that day."""
        day = digest_due(now, self.policy, self.calendar)
        if day is None:
            return
        wanted = {
            f"digest:{unit.id}:{day.isoformat()}": unit
            for unit in people.units.values()
            if unit.chat_id is not None and unit.active
        }
        supervisors_key = f"digest:supervisors:{day.isoformat()}"
        async with self.sessionmaker() as session:
            done = set(
                await session.scalars(
                    select(Notification.key).where(
                        Notification.key.in_([*wanted, supervisors_key])
                    )
                )
            )
        if set(wanted) | {supervisors_key} <= done:
            return
        duties = await self._open_duties(day)
        batch = _Batch()
        for key, unit in wanted.items():
            if key in done:
                continue
            text = self._digest_text(duties, unit.id, day, UNIT_LANGUAGE, people=people)
            # Nothing due: no message, but the day is marked done.
            messages = [_digest_message(unit.chat_id, text, key)] if text and unit.chat_id else []
            self._digest_row(batch, key, unit.id, day, now, messages)
        if supervisors_key not in done:
            messages = []
            for chat_id, language in people.supervisors:
                text = self._digest_text(duties, None, day, language, people=people)
                if text:
                    messages.append(_digest_message(chat_id, text, supervisors_key))
            self._digest_row(batch, supervisors_key, None, day, now, messages)
        async with self.sessionmaker() as session, session.begin():
            await self._write(session, batch, report)

    @staticmethod
    def _digest_row(
        batch: _Batch,
        key: str,
        unit_id: str | None,
        day: dt.date,
        now: dt.datetime,
        messages: list[Outgoing],
    ) -> None:
        batch.notifications.append(
            {
                "key": key,
                "kind": "digest",
                "level": 0,
                "audience": Audience.UNIT.value if unit_id else Audience.SUPERVISORS.value,
                "case_id": None,
                "deadline_id": None,
                "unit_id": unit_id,
                "due": day,
                "recipients": len(messages),
                "created_at": now,
            }
        )
        batch.messages[key] = messages

    async def _open_duties(self, day: dt.date) -> _Duties:
        """Open duties due within the digest's horizon, of items whose clock runs: the
        counts per unit and section, and the first lines of each (the database counts and
        ranks; only what is shown is read)."""
        until = day + dt.timedelta(days=DIGEST_DAYS_AHEAD)
        section = sql_case((DeadlineRow.due < day, 0), (DeadlineRow.due == day, 1), else_=2)
        duties = (
            select(
                Case.unit_id.label("unit_id"),
                section.label("section"),
                DeadlineRow.rule.label("rule"),
                DeadlineRow.due.label("due"),
                *CASE_COLUMNS,
            )
            .join(Case, Case.id == DeadlineRow.case_id)
            .where(
                DeadlineRow.status == "open",
                DeadlineRow.due <= until,
                DeadlineRow.rule.not_in(NOT_DUTIES),
                Case.state.in_(RUNNING_STATES),
                ~((Case.state == State.AWAITING_SUPPLEMENT) & (Case.path == PathCode.DISCLOSURE)),
            )
            .subquery()
        )
        order = (duties.c.due, duties.c.id)
        per_unit = func.row_number().over(
            partition_by=(duties.c.unit_id, duties.c.section), order_by=order
        )
        overall = func.row_number().over(partition_by=duties.c.section, order_by=order)
        ranked = select(duties, per_unit.label("in_unit"), overall.label("in_all")).subquery()
        shown = select(ranked).where(
            (ranked.c.in_unit <= DIGEST_LINES) | (ranked.c.in_all <= DIGEST_LINES)
        )
        counted = select(duties.c.unit_id, duties.c.section, func.count()).group_by(
            duties.c.unit_id, duties.c.section
        )
        async with self.sessionmaker() as session:
            counts = {(u, int(sec)): int(n) for u, sec, n in await session.execute(counted)}
            lines = [
                _DueLine(
                    row.rule,
                    row.due,
                    int(row.section),
                    _case_line(row),
                    row.in_unit <= DIGEST_LINES,
                    row.in_all <= DIGEST_LINES,
                )
                for row in await session.execute(shown.order_by(ranked.c.due, ranked.c.id))
            ]
        return _Duties(counts, lines)

    def _digest_text(
        self,
        duties: _Duties,
        unit_id: str | None,
        day: dt.date,
        language: str,
        *,
        people: _People,
    ) -> str | None:
        """A unit's digest (``unit_id``) or the supervisors' (None); None when empty."""
        count = duties.count(unit_id)
        if not any(count):
            return None
        t = self.texts
        if unit_id is not None:
            name = self.services.unit_name(unit_id, language)
            title = t.get("digest.unit_title", language, unit=esc(name), date=day.isoformat())
        else:
            title = t.get("digest.supervisors_title", language, date=day.isoformat())
        parts = [title]
        for section, name in enumerate(("overdue", "today", "week")):
            parts.append(t.get(f"digest.{name}", language, count=count[section]))
            shown = duties.shown(unit_id, section)
            for item in shown:
                parts.append(self._digest_line(item, language, people, with_unit=unit_id is None))
            if count[section] > len(shown):
                parts.append(t.get("digest.more", language, count=count[section] - len(shown)))
        return clip_html("\n".join(parts), 4096)

    def _digest_line(
        self, item: _DueLine, language: str, people: _People, *, with_unit: bool
    ) -> str:
        case = item.case
        link = topic_link(people.units.get(case.unit_id), case)
        number = f'<a href="{link}">{case.number}</a>' if link else case.number
        rule = self.texts.label("rule", item.rule, language)
        line = f"· {number} {esc(rule)} {item.due.isoformat()}"
        if with_unit:
            line += f" · {esc(self.services.unit_name(case.unit_id, language))}"
        return line

    # ------------------------------------------------------------------ quiet close

    async def _quiet_closes(self, now: dt.datetime, report: ScanReport) -> None:
        """Answered items nobody reacted to for ``quiet_close_days`` close (domain.md
        "Lifecycle": answered → closed, rated or after a quiet period)."""
        since = now - dt.timedelta(days=self.policy.quiet_close_days - 1)
        query = (
            select(Case.id, Case.answered_at)
            .where(Case.state == State.ANSWERED.value, Case.answered_at <= since)
            .order_by(Case.answered_at)
            .limit(QUIET_CLOSE_BATCH)
        )
        async with self.sessionmaker() as session:
            candidates = (await session.execute(query)).all()
        for case_id, answered_at in candidates:
            if answered_at is None:
                continue
            answered_on = from_db(answered_at).astimezone(self.policy.timezone).date()
            if quiet_close_at(answered_on, self.policy, self.calendar) > now:
                continue
            try:
                async with self.sessionmaker() as session, session.begin():
                    closed = await self.services.close_quietly(
                        session, case_id, now, days=self.policy.quiet_close_days
                    )
                    if closed is not None:
                        await self._write(session, _quiet_batch(case_id, now), report)
            except (StaleDataError, ServiceError):
                continue  # another worker closed it, or the citizen acted meanwhile
            except SQLAlchemyError:
                log.exception("quiet close of case %s failed", case_id)
                continue
            if closed is not None:
                report.closed += 1


@dataclass(frozen=True, slots=True)
class CaseLine:
    """What the scan needs of a case (a full record would read its texts and JSON too)."""

    id: int
    number: str
    state: str
    path: str
    unit_id: str
    summary: str
    thread_id: int | None
    card_message_id: int | None


CASE_COLUMNS = (
    Case.id,
    Case.number,
    Case.state,
    Case.path,
    Case.unit_id.label("case_unit_id"),
    Case.summary,
    Case.thread_id,
    Case.card_message_id,
)


def _case_line(row: Any) -> CaseLine:
    return CaseLine(
        row.id,
        row.number,
        row.state,
        row.path,
        row.case_unit_id,
        row.summary,
        row.thread_id,
        row.card_message_id,
    )


@dataclass(frozen=True, slots=True)
class _DueLine:
    rule: str
    due: dt.date
    section: int  # 0 overdue, 1 due today, 2 due within DIGEST_DAYS_AHEAD
    case: CaseLine
    in_unit: bool  # among the first lines of its unit's section
    in_all: bool  # among the first lines of the section across units


@dataclass(frozen=True)
class _Duties:
    counts: dict[tuple[str, int], int]  # (unit id, section) → open duties
    lines: list[_DueLine]

    def count(self, unit_id: str | None) -> tuple[int, int, int]:
        totals = [0, 0, 0]
        for (unit, section), n in self.counts.items():
            if unit_id is None or unit == unit_id:
                totals[section] += n
        return totals[0], totals[1], totals[2]

    def shown(self, unit_id: str | None, section: int) -> list[_DueLine]:
        if unit_id is None:
            return [i for i in self.lines if i.section == section and i.in_all]
        return [
            i
            for i in self.lines
            if i.section == section and i.in_unit and i.case.unit_id == unit_id
        ]


def _digest_message(chat_id: int, text: str, key: str) -> Outgoing:
    payload = {"parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}
    return Outgoing(chat_id, text, f"{key}:{chat_id}", payload=payload)


def _quiet_batch(case_id: int, now: dt.datetime) -> _Batch:
    batch = _Batch()
    batch.notifications.append(
        {
            "key": f"quiet:{case_id}",
            "kind": "closed",
            "level": 0,
            "audience": "citizen",
            "case_id": case_id,
            "deadline_id": None,
            "unit_id": None,
            "due": None,
            "recipients": 1,
            "created_at": now,
        }
    )
    return batch


def clock_runs(case: CaseLine) -> bool:
    """Whether the unit's clock runs: an open item, except a disclosure request waiting for
    its 补正 (政府信息公开条例 第三十条: the reply period counts again from the corrected
    application, which stores a new date and so a new plan). A petition's 60 days run on
    while more material is awaited."""
    if case.state not in RUNNING_STATES:
        return False
    return not (case.state == State.AWAITING_SUPPLEMENT and case.path == PathCode.DISCLOSURE)


def first_at_or_after(steps: Sequence[Step], moment: dt.datetime) -> int:
    """The index of the first step at ``moment`` or later."""
    return next((i for i, step in enumerate(steps) if step.at >= moment), len(steps))


def topic_link(unit: UnitRecord | None, case: CaseLine) -> str | None:
    """A one-tap link to the case's topic (or card) in a supergroup: t.me/c/<id>/<message>.

    Supergroup ids are -100 followed by the id the link uses (Bot API, Chat.id)."""
    if unit is None or unit.chat_id is None:
        return None
    digits = str(unit.chat_id)
    if not digits.startswith("-100"):
        return None
    target = case.thread_id if unit.forum and case.thread_id else case.card_message_id
    return f"https://t.me/c/{digits[4:]}/{target}" if target else None


async def count_due(session: AsyncSession, now: dt.datetime) -> int:
    """How many deadlines have a reminder due (for metrics and the benchmark)."""
    total = await session.scalar(
        select(func.count())
        .select_from(DeadlineRow)
        .where(DeadlineRow.next_reminder_at <= to_utc(now))
    )
    return int(total or 0)
