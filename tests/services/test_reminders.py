"""The reminder scan (bot/reminders.py) with an injected clock: a case walked through office
hours, weekends and holidays gets the right notifications at the right moments, once.

Times are Anshun local time. 2026-03-02 is a Monday; in 2026 中秋 is 25–27 September and
国庆 1–7 October, with a make-up working day on Saturday 10 October (checked below).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.models import DeadlineRow, Notification, OutboxMessage
from bot.leader import LeaderLease
from bot.reminders import ReminderScanner, ScanReport
from bot.services import CaseService
from routing.deadlines import Deadline
from routing.reminders import ReminderPolicy
from tests.services.conftest import CHATS, DISCLOSURE, NOW, PETITION, People

SHANGHAI = ZoneInfo("Asia/Shanghai")
XIXIU = CHATS["xixiu"]
SUPERVISORS = (301, 302)


def at(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def scanner(
    sessionmaker: async_sessionmaker[AsyncSession], service: CaseService, **kwargs: object
) -> ReminderScanner:
    return ReminderScanner(
        sessionmaker,
        service,
        ReminderPolicy.default(),
        clock=lambda: dt.datetime.now(dt.UTC),
        **kwargs,  # type: ignore[arg-type]
    )


async def reminders(session: AsyncSession) -> list[tuple[int, str]]:
    """(chat, text) of every reminder message queued so far (digests left out). Ends the
    read transaction: on SQLite every transaction holds the write lock the scan needs."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.dedupe_key.like("remind:%"))
        .order_by(OutboxMessage.id)
    )
    found = [(row.chat_id, row.payload["text"]) for row in rows]
    await session.commit()
    return found


async def walk(
    scan: ReminderScanner, session: AsyncSession, moment: dt.datetime
) -> tuple[ScanReport, list[tuple[int, str]]]:
    """Scan at ``moment``; the report and the reminder messages it added."""
    before = len(await reminders(session))
    report = await scan.scan(moment)
    return report, (await reminders(session))[before:]


async def test_a_petition_walked_through_its_reminders_and_escalation(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    session: AsyncSession,
    people: People,
) -> None:
    """告知是否受理 is due 15 days after Monday 2 March: Tuesday 17 March (信访工作条例 Art
    23). Warn 3 and 1 working days before, on the day; overdue to the unit the next working
    day, supervisors 2 working days after, the head 5 after."""
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    await session.commit()
    scan = scanner(sessionmaker, service)

    report, sent = await walk(scan, session, at(3, 2, 10))
    assert sent == [] and report.deadlines == 1  # planned: nothing due yet

    report, sent = await walk(scan, session, at(3, 12, 8, 59))
    assert report.skipped == "outside office hours" and sent == []
    _, sent = await walk(scan, session, at(3, 12, 9))
    assert [chat for chat, _ in sent] == [XIXIU]
    assert "2026-03-17" in sent[0][1] and "3 个工作日" in sent[0][1] and case.number in sent[0][1]
    _, sent = await walk(scan, session, at(3, 12, 15))
    assert sent == []  # once

    report, sent = await walk(scan, session, at(3, 14, 10))  # Saturday
    assert report.skipped == "outside office hours" and sent == []

    # Monday 16 March: the bot is down all day, back in the evening — after hours. At the
    # next opening the stale "1 day left" is superseded by "due today".
    report, sent = await walk(scan, session, at(3, 16, 18))
    assert report.skipped == "outside office hours" and sent == []
    _, sent = await walk(scan, session, at(3, 17, 9, 1))
    assert len(sent) == 1 and "今天到期" in sent[0][1]

    _, sent = await walk(scan, session, at(3, 18, 9))
    assert len(sent) == 1 and sent[0][0] == XIXIU and "已逾期" in sent[0][1]

    _, sent = await walk(scan, session, at(3, 19, 9))
    assert sorted(chat for chat, _ in sent) == list(SUPERVISORS)
    assert all("二级" in text and "西秀区民政局" in text for _, text in sent)

    _, sent = await walk(scan, session, at(3, 23, 9))
    assert sent == []
    # No 局领导 registered: level 3 goes to the supervisors.
    _, sent = await walk(scan, session, at(3, 24, 9))
    assert sorted(chat for chat, _ in sent) == list(SUPERVISORS)
    assert all("三级" in text for _, text in sent)
    _, sent = await walk(scan, session, at(4, 30, 10))
    assert sent == []  # the plan is done

    rows = (await session.execute(select(Notification.kind, Notification.level))).all()
    assert sorted(r for r in rows if r[0] != "digest") == [
        ("due_today", 0),
        ("overdue", 1),
        ("overdue", 2),
        ("overdue", 3),
        ("warn", 3),
    ]


async def test_a_deadline_met_ends_its_reminders_and_the_next_one_is_planned(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    session: AsyncSession,
    people: People,
) -> None:
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    await session.commit()
    scan = scanner(sessionmaker, service)
    await walk(scan, session, at(3, 2, 10))
    await service.accept(session, people.xixiu_staff, case.id, at(3, 3, 10))
    await session.commit()
    # 办结答复 60 days from 3 March: 2 May is in the 劳动节 holiday → Wednesday 6 May.
    _, sent = await walk(scan, session, at(3, 17, 9))
    assert sent == []  # 告知是否受理 was met: no "due today" for it
    _, sent = await walk(scan, session, at(4, 29, 9))
    assert len(sent) == 1 and "2026-05-06" in sent[0][1] and "3 个工作日" in sent[0][1]


async def test_a_deadline_after_national_day_counts_make_up_days(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    session: AsyncSession,
    people: People,
) -> None:
    """Due Thursday 8 October 2026, the first working day after 国庆: warned on the last
    working days before the holiday, escalated on the make-up Saturday 10 October."""
    calendar = service.calendar
    assert calendar.is_working_day(dt.date(2026, 10, 8))
    assert calendar.is_working_day(dt.date(2026, 10, 10))  # Saturday, made up
    assert not calendar.is_working_day(dt.date(2026, 10, 7))
    assert not calendar.is_working_day(dt.date(2026, 9, 25))  # 中秋
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    deadline = service.rules.due_date("petition.acknowledge", dt.date(2026, 9, 22), calendar)
    assert deadline.due == dt.date(2026, 10, 8)
    await repo.upsert_deadline(
        session, case.id, deadline, calendar.data_version, now=at(9, 22, 10)
    )
    await session.commit()
    scan = scanner(sessionmaker, service)

    expected = {
        at(9, 28, 9): ("3 个工作日", (XIXIU,)),  # Mon; Fri 25 is 中秋
        at(9, 30, 9): ("1 个工作日", (XIXIU,)),
        at(10, 8, 9): ("今天到期", (XIXIU,)),
        at(10, 9, 9): ("已逾期", (XIXIU,)),
        at(10, 10, 9): ("二级", SUPERVISORS),  # the make-up Saturday
    }
    moments = sorted({*expected, at(9, 25, 10), at(9, 29, 9), at(10, 3, 10), at(10, 11, 10)})
    for moment in moments:
        report, sent = await walk(scan, session, moment)
        if moment not in expected:
            assert sent == [], (moment, sent, report)
            continue
        words, chats = expected[moment]
        assert sorted(chat for chat, _ in sent) == sorted(chats), moment
        assert all(words in text for _, text in sent), (moment, sent)


async def test_an_extension_moves_the_reminders_to_the_new_date(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    session: AsyncSession,
    people: People,
) -> None:
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    await service.accept(session, people.xixiu_staff, case.id, at(3, 3, 10))
    await session.commit()
    scan = scanner(sessionmaker, service)
    await walk(scan, session, at(3, 3, 11))
    await service.extend(
        session, people.xixiu_staff, case.id, "需要调取档案", "王局长", at(4, 1, 10)
    )
    await session.commit()
    # 30 more days from Wed 6 May: Fri 5 June. Nothing on the old date.
    _, sent = await walk(scan, session, at(5, 6, 9))
    assert sent == []
    _, sent = await walk(scan, session, at(6, 2, 9))
    assert len(sent) == 1 and "2026-06-05" in sent[0][1]


async def test_daily_digests_once_a_working_day(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    session: AsyncSession,
    people: People,
) -> None:
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    await session.commit()
    scan = scanner(sessionmaker, service)

    await scan.scan(at(3, 16, 8, 30))  # before the digest hour: nothing
    await scan.scan(at(3, 16, 9, 0))
    await scan.scan(at(3, 16, 11, 0))  # a second scan that day: nothing more
    digests = list(
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.dedupe_key.like("digest:%"))
        )
    )
    by_chat = {row.chat_id: row.payload["text"] for row in digests}
    assert sorted(by_chat) == sorted([XIXIU, *SUPERVISORS])  # units with nothing due: silent
    assert case.number in by_chat[XIXIU] and "7日内到期：1 件" in by_chat[XIXIU]
    assert "西秀区民政局" in by_chat[301]
    # Every bound unit has its day marked, message or not.
    days = await session.scalar(
        select(func.count()).select_from(Notification).where(Notification.kind == "digest")
    )
    assert days == len(CHATS) + 1

    await session.commit()
    await scan.scan(at(3, 21, 9, 30))  # Saturday: none
    await scan.scan(at(3, 23, 9, 30))  # Monday: the next ones; the case is overdue now
    rows = await session.scalars(
        select(OutboxMessage).where(OutboxMessage.dedupe_key.like("digest:xixiu:2026-03-23:%"))
    )
    (monday,) = list(rows)
    assert "已逾期：1 件" in monday.payload["text"]


async def test_an_answered_item_closes_after_15_quiet_days(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    session: AsyncSession,
    people: People,
) -> None:
    quiet = await service.file_case(session, people.citizen, PETITION, NOW)
    rated = await service.file_case(session, people.citizen, PETITION, NOW)
    for case in (quiet, rated):
        await service.accept(session, people.xixiu_staff, case.id, at(3, 3, 10))
        await service.answer(
            session, people.xixiu_staff, case.id, "已核实，低保已批准。", at(3, 10, 10)
        )
    await service.rate(session, people.citizen, rated.id, 5, at(3, 11, 10))
    await session.commit()
    scan = scanner(sessionmaker, service)

    report = await scan.scan(at(3, 24, 16))  # 14 days: still answered
    assert report.closed == 0
    report = await scan.scan(at(3, 25, 9))  # 15 days after 10 March
    assert report.closed == 1
    closed = await repo.get_case(session, quiet.id)
    assert closed is not None and closed.state == "closed"
    told = (
        await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.dedupe_key == f"case:{quiet.id}:quiet-closed:citizen"
            )
        )
    ).one()
    # 复查 within 30 days of the answer (信访工作条例 Art 35): 9 April.
    assert "已办结" in told.payload["text"] and "2026-04-09" in told.payload["text"]
    events = [e.action for e in await repo.events_of_case(session, quiet.id)]
    assert events[-1] == "quiet_period_ended"
    await session.commit()
    assert (await scan.scan(at(3, 26, 9))).closed == 0


async def test_two_scanners_on_one_database_write_each_notification_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    session: AsyncSession,
    people: People,
    db_url: str,
) -> None:
    """PostgreSQL: both take batches with SKIP LOCKED; SQLite: the second waits for the
    first's lease. Either way 300 due reminders make 300 rows and 300 messages."""
    # 300 cases whose 告知 deadline is due Tuesday 17 March.
    cases = [await service.file_case(session, people.citizen, PETITION, NOW) for _ in range(300)]
    await session.commit()
    scan_a = scanner(sessionmaker, service, batch=20, lease=_lease(db_url, sessionmaker, "a"))
    scan_b = scanner(sessionmaker, service, batch=20, lease=_lease(db_url, sessionmaker, "b"))
    await scan_a.scan(at(3, 2, 10))  # plan
    moment = at(3, 17, 9, 30)
    first, second = await asyncio.gather(scan_a.scan(moment), scan_b.scan(moment))
    if db_url.startswith("sqlite"):
        assert second.skipped == "another process holds the scan lease"
    total = await session.scalar(
        select(func.count()).select_from(Notification).where(Notification.kind == "due_today")
    )
    assert total == len(cases) == first.deadlines + second.deadlines
    messages = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.dedupe_key.like("remind:%:due_today:%"))
    )
    assert messages == len(cases)
    due = await session.scalar(
        select(func.count()).select_from(DeadlineRow).where(DeadlineRow.next_reminder_at <= moment)
    )
    assert due == 0


def _lease(
    db_url: str, sessionmaker: async_sessionmaker[AsyncSession], name: str
) -> LeaderLease | None:
    if not db_url.startswith("sqlite"):
        return None
    return LeaderLease(sessionmaker, "reminder-scan", holder=name, ttl=60)


async def test_steps_are_computed_from_the_stored_deadline(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    """A deadline stored again with the same date keeps its place in the plan; a moved
    date starts a new plan."""
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    query = select(DeadlineRow).where(DeadlineRow.case_id == case.id)
    (row,) = list(await session.scalars(query))
    row.reminder_step, row.next_reminder_at = 2, at(3, 17, 9)
    await session.flush()
    same = Deadline.from_dict(row.computation)
    await repo.upsert_deadline(session, case.id, same, "v2", now=at(3, 5, 10))
    await session.refresh(row)
    assert row.reminder_step == 2
    moved = Deadline.from_dict({**row.computation, "due": "2026-03-20"})
    await repo.upsert_deadline(session, case.id, moved, "v2", now=at(3, 5, 10))
    await session.refresh(row)
    assert row.reminder_step is None and row.due == dt.date(2026, 3, 20)


async def test_a_disclosure_waiting_for_its_correction_is_not_reminded(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    session: AsyncSession,
    people: People,
) -> None:
    """政府信息公开条例 第三十条: the reply period counts again from the corrected application,
    so while it is awaited there is nothing to remind of; a petition's clock runs on."""
    disclosure = await service.file_case(session, people.citizen, DISCLOSURE, NOW)
    petition = await service.file_case(session, people.citizen, PETITION, NOW)
    for case, staff in ((disclosure, people.disclosure_staff), (petition, people.xixiu_staff)):
        await service.accept(session, staff, case.id, at(3, 3, 10))
        await service.request_supplement(session, staff, case.id, "请补充身份证明", at(3, 3, 11))
    await session.commit()
    scan = scanner(sessionmaker, service)
    await walk(scan, session, at(3, 3, 12))
    # 20 working days from 2 March is 30 March: warned 25 March, if it were running.
    _, sent = await walk(scan, session, at(3, 25, 9))
    assert sent == []
    _, sent = await walk(scan, session, at(4, 29, 9))  # the petition's 办结答复 on 6 May
    assert len(sent) == 1 and petition.number in sent[0][1]


async def test_a_unit_without_a_group_is_reminded_through_its_staff(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    session: AsyncSession,
    people: People,
) -> None:
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    await repo.set_unit_chat(session, "xixiu", None, forum=False)
    await session.commit()
    scan = scanner(sessionmaker, service)
    await walk(scan, session, at(3, 2, 10))
    _, sent = await walk(scan, session, at(3, 12, 9))
    assert [chat for chat, _ in sent] == [people.xixiu_staff.telegram_id]
    assert "尚未绑定" in sent[0][1] and "3 个工作日" in sent[0][1] and case.number in sent[0][1]
