"""Cases, their audit log, deadlines and attachments."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import itertools
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo, repo_cases
from bot.db.repo_base import UNAMBIGUOUS_ALPHABET
from routing.calendar import WorkCalendar
from routing.deadlines import DeadlineRules, restart_after_supplement
from tests.db.samples import NOW

CALENDAR = WorkCalendar.load()
RULES = DeadlineRules.load()
SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = re.compile(rf"HY-(\d{{4}})-[{UNAMBIGUOUS_ALPHABET}]{{4}}-[{UNAMBIGUOUS_ALPHABET}]{{4}}")


async def _case(
    session: AsyncSession, citizen: repo.PersonRecord, **changes: Any
) -> repo.CaseRecord:
    fields: dict[str, Any] = {
        "citizen_id": citizen.id,
        "path": "petition",
        "topic": "social_assistance",
        "unit_id": "assistance",
        "state": "received",
        "text": "我家低保被取消了，想问问原因",
        "received_at": NOW,
    }
    fields.update(changes)
    return await repo.create_case(session, **fields)


# --------------------------------------------------------------------------- cases


async def test_create_case(session: AsyncSession, citizen: repo.PersonRecord) -> None:
    case = await _case(
        session,
        citizen,
        district="西秀区",
        summary="低保取消" * 100,
        applicant={"name": "张三", "contact": "138…"},
        classification={"path": "petition", "confidence": 0.9},
    )

    assert NUMBER.fullmatch(case.number)
    assert case.number.startswith("HY-2026-")
    assert (case.unit_id, case.lead_unit_id, case.hops, case.version) == (
        "assistance",
        "assistance",
        0,
        1,
    )
    assert case.received_at == NOW
    assert case.received_at.tzinfo == dt.UTC
    assert case.updated_at.tzinfo == dt.UTC
    assert len(case.summary) == 200
    assert case.applicant == {"name": "张三", "contact": "138…"}
    assert await repo.get_case(session, case.id) == case
    assert await repo.get_case(session, 10_000) is None


async def test_the_number_carries_the_bureaus_year(
    session: AsyncSession, citizen: repo.PersonRecord
) -> None:
    # 00:30 on New Year's Day in Anshun is still the old year in UTC.
    new_year = dt.datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI)
    case = await _case(session, citizen, received_at=new_year)

    assert case.number.startswith("HY-2027-")
    assert case.received_at == new_year
    assert case.received_at.tzinfo == dt.UTC
    assert case.received_at.hour == 16  # stored and returned as UTC, the same instant


async def test_numbers_are_unique_and_not_sequential(
    session: AsyncSession, citizen: repo.PersonRecord
) -> None:
    numbers = [(await _case(session, citizen)).number for _ in range(60)]

    assert len(set(numbers)) == len(numbers)
    assert numbers != sorted(numbers)
    # A counter would leave neighbours sharing 7 of their 8 symbols; chance, about 2.
    shared = [
        sum(a == b for a, b in zip(x[8:], y[8:], strict=True))
        for x, y in itertools.pairwise(numbers)
    ]
    assert max(shared) < 7


async def test_a_taken_number_is_drawn_again(
    session: AsyncSession, citizen: repo.PersonRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _case(session, citizen)
    taken = first.number.replace("-", "")[6:]
    draws = iter([taken, "ABCDEFGH"])
    monkeypatch.setattr(repo_cases, "random_code", lambda length: next(draws))

    second = await _case(session, citizen)

    assert second.number == "HY-2026-ABCD-EFGH"


async def test_get_case_by_number_however_typed(
    session: AsyncSession, citizen: repo.PersonRecord
) -> None:
    case = await _case(session, citizen)
    digits = case.number.replace("-", "")
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in case.number.lower())  # ＨＹ－２０２６…

    for typed in (case.number, case.number.lower(), f" {digits} ", full_width):
        assert await repo.get_case_by_number(session, typed) == case, typed
    assert await repo.get_case_by_number(session, "HY-2026-2222-2222") is None
    assert await repo.get_case_by_number(session, "hello") is None


async def test_cases_of_citizen_newest_first(
    session: AsyncSession, citizen: repo.PersonRecord
) -> None:
    other = await repo.get_or_create_person(session, 2002)
    older = await _case(session, citizen, received_at=NOW - dt.timedelta(days=3))
    newer = await _case(session, citizen)
    await _case(session, other)

    assert [c.id for c in await repo.cases_of_citizen(session, citizen.id)] == [newer.id, older.id]


async def test_update_case(session: AsyncSession, citizen: repo.PersonRecord) -> None:
    case = await _case(session, citizen)
    accepted_at = dt.datetime(2026, 3, 2, 18, 0, tzinfo=SHANGHAI)

    updated = await repo.update_case(
        session,
        case.id,
        case.version,
        state="accepted",
        accepted_at=accepted_at,
        unit_id="xixiu",
        hops=1,
        details={"note": "转西秀区"},
    )

    assert (updated.state, updated.unit_id, updated.hops, updated.version) == (
        "accepted",
        "xixiu",
        1,
        2,
    )
    assert updated.lead_unit_id == "assistance"  # 首接负责: the lead stays
    assert updated.accepted_at == accepted_at
    assert updated.accepted_at is not None
    assert updated.accepted_at.tzinfo == dt.UTC
    await session.commit()
    assert await repo.get_case(session, case.id) == updated


async def test_a_stale_version_is_refused(
    session: AsyncSession, citizen: repo.PersonRecord
) -> None:
    case = await _case(session, citizen)
    await repo.update_case(session, case.id, case.version, state="routed")

    with pytest.raises(repo.ConcurrentUpdate) as stale:
        await repo.update_case(session, case.id, case.version, state="accepted")

    assert (stale.value.expected_version, stale.value.actual_version) == (1, 2)
    current = await repo.get_case(session, case.id)
    assert current is not None
    assert current.state == "routed"


async def test_concurrent_updates_one_wins(
    sessionmaker: async_sessionmaker[AsyncSession], citizen: repo.PersonRecord
) -> None:
    """Both read version 1; the second writer learns of the first and is refused."""
    async with sessionmaker.begin() as session:
        case = await _case(session, citizen)

    async with sessionmaker() as first, sessionmaker() as second:
        await repo.update_case(first, case.id, 1, state="accepted")  # holds the row (lock)

        async def late_writer() -> None:
            async with second.begin():
                await repo.update_case(second, case.id, 1, state="not_accepted")

        late = asyncio.create_task(late_writer())
        await asyncio.sleep(0.2)  # let it read, and wait for the lock; the outcome is the same
        await first.commit()
        with pytest.raises(repo.ConcurrentUpdate):
            await late

    async with sessionmaker() as session:
        final = await repo.get_case(session, case.id)
    assert final is not None
    assert (final.state, final.version) == ("accepted", 2)


async def test_update_case_refuses_protected_and_unknown_fields(
    session: AsyncSession, citizen: repo.PersonRecord
) -> None:
    case = await _case(session, citizen)
    for field in ("number", "citizen_id", "received_at", "text", "version", "colour"):
        with pytest.raises(ValueError, match=field):
            await repo.update_case(session, case.id, 1, **{field: "x"})
    with pytest.raises(repo.NotFound):
        await repo.update_case(session, 10_000, 1, state="closed")


async def test_records_hold_private_copies(
    session: AsyncSession, citizen: repo.PersonRecord
) -> None:
    applicant = {"name": "张三"}
    case = await _case(session, citizen, applicant=applicant)
    applicant["name"] = "changed by the caller"
    case.applicant["name"] = "changed through the record"

    stored = await repo.get_case(session, case.id)
    assert stored is not None
    assert stored.applicant == {"name": "张三"}


async def test_naive_datetimes_are_refused(
    session: AsyncSession, citizen: repo.PersonRecord
) -> None:
    with pytest.raises(ValueError, match="naive"):
        await _case(session, citizen, received_at=dt.datetime(2026, 3, 2, 9, 30))


async def test_list_cases_filters(session: AsyncSession, citizen: repo.PersonRecord) -> None:
    day = dt.timedelta(days=1)
    a = await _case(session, citizen, received_at=NOW - 10 * day, text="低保 100% 取消")
    b = await _case(
        session,
        citizen,
        unit_id="legal",
        path="disclosure",
        state="accepted",
        text="申请公开 ABC 文件",
        summary="政府信息公开",
    )
    c = await _case(
        session,
        citizen,
        unit_id="legal",
        path="reconsideration",
        state="closed",
        received_at=NOW + day,
        text="不服决定",
    )
    await repo.upsert_deadline(
        session, b.id, RULES.due_date("disclosure.reply", dt.date(2026, 2, 2), CALENDAR), "v1"
    )

    async def ids(**filters: Any) -> list[int]:
        return [case.id for case in await repo.list_cases(session, **filters)]

    assert await ids() == [c.id, b.id, a.id]
    assert await ids(unit_id="legal") == [c.id, b.id]
    assert await ids(path="disclosure") == [b.id]
    assert await ids(state="closed") == [c.id]
    assert await ids(state=["accepted", "received"]) == [b.id, a.id]
    assert await ids(since=NOW) == [c.id, b.id]
    assert await ids(until=NOW) == [a.id]
    assert await ids(since=NOW - day, until=NOW + day) == [b.id]
    assert await ids(text="abc") == [b.id]  # case-insensitive
    assert await ids(text="信息公开") == [b.id]  # the summary too
    assert await ids(text="100%") == [a.id]  # % matches itself, not everything
    assert await ids(text=c.number[-4:].lower()) == [c.id]
    assert await ids(limit=2) == [c.id, b.id]
    assert await ids(limit=2, offset=2) == [a.id]

    due = (await repo.deadlines_of_case(session, b.id))[0].due
    assert await ids(overdue_on=due) == []  # the last day itself is not overdue
    assert await ids(overdue_on=due + day) == [b.id]
    await repo.mark_deadline(session, b.id, "disclosure.reply", "met", NOW)
    assert await ids(overdue_on=due + day) == []


# --------------------------------------------------------------------------- events


async def test_events_in_order(session: AsyncSession, citizen: repo.PersonRecord) -> None:
    case = await _case(session, citizen)
    staff = await repo.get_or_create_person(session, 3003, "科员")

    routed = await repo.add_event(
        session,
        case.id,
        actor_id=None,
        actor_role="system",
        action="route",
        from_state="received",
        to_state="routed",
        data={"unit": "assistance", "rule": 3},
    )
    accepted = await repo.add_event(
        session,
        case.id,
        actor_id=staff.id,
        actor_role="staff",
        action="accept",
        from_state="routed",
        to_state="accepted",
        reason="符合受理条件",
        at=dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI),
    )

    events = await repo.events_of_case(session, case.id)
    assert events == [routed, accepted]
    assert events[0].data == {"unit": "assistance", "rule": 3}
    assert events[0].at.tzinfo == dt.UTC
    assert events[1].at == dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    assert (events[1].actor_id, events[1].reason) == (staff.id, "符合受理条件")
    assert await repo.events_of_case(session, 10_000) == []


def test_no_function_can_change_an_event() -> None:
    """The audit log is append-only: adding and reading are the only operations."""
    public = {
        name for name, value in inspect.getmembers(repo) if inspect.iscoroutinefunction(value)
    }
    about_events = {name for name in public if "event" in name}
    assert about_events == {"add_event", "events_of_case"}


async def test_the_database_refuses_to_change_an_event(
    sessionmaker: async_sessionmaker[AsyncSession], citizen: repo.PersonRecord
) -> None:
    async with sessionmaker.begin() as session:
        case = await _case(session, citizen)
        await repo.add_event(session, case.id, actor_id=None, actor_role="system", action="route")

    async with sessionmaker() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE case_events SET reason = 'rewritten'"))
        await session.rollback()
        [event] = await repo.events_of_case(session, case.id)
    assert event.reason is None


# --------------------------------------------------------------------------- deadlines


async def test_deadlines(session: AsyncSession, citizen: repo.PersonRecord) -> None:
    case = await _case(session, citizen, path="disclosure", unit_id="legal")
    received = dt.date(2026, 3, 2)
    reply = RULES.due_date("disclosure.reply", received, CALENDAR)
    notice = RULES.due_date("disclosure.supplement_notice", received, CALENDAR)

    stored = await repo.upsert_deadline(session, case.id, reply, "cal-1", now=NOW)
    await repo.upsert_deadline(session, case.id, notice, "cal-1", now=NOW)

    assert (stored.rule, stored.start, stored.due, stored.status) == (
        "disclosure.reply",
        received,
        reply.due,
        "open",
    )
    assert stored.computation == reply.to_dict()
    assert stored.deadline == reply  # the computation round-trips
    assert stored.computed_at == NOW
    assert [d.rule for d in await repo.deadlines_of_case(session, case.id)] == [
        "disclosure.supplement_notice",
        "disclosure.reply",
    ]


async def test_recomputing_replaces_the_deadline_and_keeps_its_status(
    session: AsyncSession, citizen: repo.PersonRecord
) -> None:
    case = await _case(session, citizen, path="disclosure", unit_id="legal")
    reply = RULES.due_date("disclosure.reply", dt.date(2026, 3, 2), CALENDAR)
    first = await repo.upsert_deadline(session, case.id, reply, "cal-1", now=NOW)

    # 补正: the clock restarts when the corrected application arrives (条例 Art 30).
    restarted = restart_after_supplement(reply, dt.date(2026, 3, 10), CALENDAR)
    later = NOW + dt.timedelta(days=8)
    second = await repo.upsert_deadline(session, case.id, restarted, "cal-2", now=later)

    assert second.id == first.id
    assert (second.start, second.due, second.calendar_version) == (
        restarted.start,
        restarted.due,
        "cal-2",
    )
    assert second.due > first.due
    assert second.deadline.history == restarted.history
    assert second.computed_at == later

    await repo.mark_deadline(session, case.id, "disclosure.reply", "met", later)
    third = await repo.upsert_deadline(session, case.id, restarted, "cal-3", now=later)
    assert third.status == "met"


async def test_open_deadlines_due_by(session: AsyncSession, citizen: repo.PersonRecord) -> None:
    one = await _case(session, citizen)
    two = await _case(session, citizen)
    early = RULES.due_date("petition.acknowledge", dt.date(2026, 3, 2), CALENDAR)
    late = RULES.due_date("petition.respond", dt.date(2026, 3, 2), CALENDAR)
    await repo.upsert_deadline(session, one.id, early, "cal-1")
    await repo.upsert_deadline(session, one.id, late, "cal-1")
    await repo.upsert_deadline(session, two.id, early, "cal-2")

    due = await repo.open_deadlines_due_by(session, early.due)
    assert [(d.case_id, d.rule) for d in due] == [
        (one.id, "petition.acknowledge"),
        (two.id, "petition.acknowledge"),
    ]
    assert await repo.open_deadlines_due_by(session, early.due - dt.timedelta(days=1)) == []
    assert len(await repo.open_deadlines_due_by(session, late.due)) == 3

    await repo.mark_deadline(session, two.id, "petition.acknowledge", "void", NOW)
    assert [d.case_id for d in await repo.open_deadlines_due_by(session, early.due)] == [one.id]
    stale = await repo.stale_deadlines(session, "cal-1")
    assert stale == []
    assert {d.rule for d in await repo.stale_deadlines(session, "cal-2")} == {
        "petition.acknowledge",
        "petition.respond",
    }


async def test_mark_deadline(session: AsyncSession, citizen: repo.PersonRecord) -> None:
    case = await _case(session, citizen)
    await repo.upsert_deadline(
        session,
        case.id,
        RULES.due_date("petition.acknowledge", dt.date(2026, 3, 2), CALENDAR),
        "v",
    )
    at = dt.datetime(2026, 3, 5, 16, 0, tzinfo=SHANGHAI)

    met = await repo.mark_deadline(session, case.id, "petition.acknowledge", "met", at)
    assert (met.status, met.met_at) == ("met", at)
    reopened = await repo.mark_deadline(session, case.id, "petition.acknowledge", "open", at)
    assert (reopened.status, reopened.met_at) == ("open", None)
    missed = await repo.mark_deadline(session, case.id, "petition.acknowledge", "missed", at)
    assert (missed.status, missed.met_at) == ("missed", None)

    with pytest.raises(ValueError, match="late"):
        await repo.mark_deadline(session, case.id, "petition.acknowledge", "late", at)
    with pytest.raises(repo.NotFound):
        await repo.mark_deadline(session, case.id, "petition.respond", "met", at)


# --------------------------------------------------------------------------- attachments


async def test_attachments(session: AsyncSession, citizen: repo.PersonRecord) -> None:
    case = await _case(session, citizen)
    photo = await repo.add_attachment(
        session, case.id, kind="photo", file_id="AgAD-1", file_unique_id="u1", size=12_345
    )
    document = await repo.add_attachment(
        session,
        case.id,
        kind="document",
        file_id="BQAD-2",
        file_name="决定书.pdf",
        mime_type="application/pdf",
        caption="低保终止决定",
        from_role="staff",
    )

    assert await repo.attachments_of_case(session, case.id) == [photo, document]
    assert (photo.kind, photo.size, photo.from_role) == ("photo", 12_345, "citizen")
    assert (document.file_name, document.from_role) == ("决定书.pdf", "staff")
    assert document.created_at.tzinfo == dt.UTC
    assert await repo.attachments_of_case(session, 10_000) == []
