"""Supervisors' lists, statistics, case detail and 督办; admins' invites, joining, binding."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.services import CaseNotFound, CaseService, NotAllowed, ServiceError
from tests.services.conftest import CHATS, DISCLOSURE, NOW, PETITION, People, sent_to

# 18 March: the petition's 15-day acknowledge period (to 17 March) has run out.
AFTER = dt.datetime(2026, 3, 18, 2, 0, tzinfo=dt.UTC)


async def test_overdue_due_soon_and_stats(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    late = await service.file_case(session, people.citizen, PETITION, NOW)
    on_time = await service.file_case(session, people.citizen, DISCLOSURE, NOW)
    await service.accept(session, people.disclosure_staff, on_time.id, NOW)
    await service.answer(session, people.disclosure_staff, on_time.id, "予以公开", NOW, "1")

    overdue = await service.overdue(session, people.supervisor, AFTER)
    assert [(i.case.id, i.deadline.rule) for i in overdue] == [(late.id, "petition.acknowledge")]
    assert await service.overdue(session, people.supervisor, NOW) == []
    soon = await service.due_soon(session, people.supervisor, 15, NOW)
    assert [i.case.id for i in soon] == [late.id]
    with pytest.raises(ServiceError):
        await service.due_soon(session, people.supervisor, 99, NOW)

    stats = {s.unit_id: s for s in await service.stats(session, people.admin, AFTER)}
    assert (stats["xixiu"].open, stats["xixiu"].overdue) == (1, 1)
    office = stats["disclosure_office"]
    assert (office.open, office.answered, office.on_time_percent) == (0, 1, 100.0)
    assert stats["legal"].on_time_percent is None


async def test_citizens_and_staff_cannot_oversee(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    for actor in (people.citizen, people.xixiu_staff):
        for operation in (
            service.overdue(session, actor, NOW),
            service.due_soon(session, actor, 3, NOW),
            service.stats(session, actor, NOW),
            service.case_detail(session, actor, case.number),
            service.urge(session, actor, case.number, "请加快", NOW),
            service.invite(session, actor, "legal", "staff", NOW),
            service.bind(session, actor, "legal", -9, True, NOW),
            service.units(session, actor),
            service.whois(session, actor, 101),
        ):
            with pytest.raises(NotAllowed):
                await operation
    # Supervisors oversee but do not administer.
    for operation in (
        service.invite(session, people.supervisor, "legal", "staff", NOW),
        service.bind(session, people.supervisor, "legal", -9, True, NOW),
        service.whois(session, people.supervisor, 101),
    ):
        with pytest.raises(NotAllowed):
            await operation


async def test_case_detail_and_urge(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    await service.urge(session, people.supervisor, case.number, "请本周内受理", NOW)
    posted = (await sent_to(session, CHATS["xixiu"]))[-1]
    assert "督办" in posted["text"]
    assert "请本周内受理" in posted["text"]
    # The other supervisor gets a copy; the one who urged does not.
    assert len(await sent_to(session, people.supervisor2.telegram_id)) == 1
    assert await sent_to(session, people.supervisor.telegram_id) == []

    detail = await service.case_detail(session, people.supervisor, case.number)
    assert [e.action for e in detail.events] == ["receive", "route", "urge"]
    assert detail.people[people.supervisor.id].display_name == "周督查"
    (deadline,) = detail.deadlines
    assert deadline.rule == "petition.acknowledge"
    # Working-day periods record every weekend and holiday they skipped.
    other = await service.file_case(session, people.citizen, DISCLOSURE, NOW)
    detail = await service.case_detail(session, people.admin, other.number)
    reply = next(d for d in detail.deadlines if d.rule == "disclosure.reply")
    assert dt.date(2026, 3, 7) in {day.day for day in reply.deadline.skipped}
    with pytest.raises(CaseNotFound):
        await service.case_detail(session, people.supervisor, "HY-2026-AAAA-BBBB")
    await service.withdraw(session, people.citizen, case.id, NOW)
    with pytest.raises(ServiceError):  # nothing to urge on a withdrawn item
        await service.urge(session, people.supervisor, case.number, "请办理", NOW)


async def test_invite_join_bind_units_whois(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    with pytest.raises(ServiceError):
        await service.invite(session, people.admin, "nowhere", "staff", NOW)
    with pytest.raises(ServiceError):
        await service.invite(session, people.admin, "legal", "king", NOW)
    code = await service.invite(session, people.admin, "legal", "staff", NOW)
    newcomer = await repo.get_or_create_person(session, 555, "新同事")
    invite = await service.join(session, newcomer, code.lower(), NOW)
    assert (invite.role, invite.unit_id) == ("staff", "legal")
    joined = await repo.get_person(session, newcomer.id)
    assert joined is not None
    assert (joined.role, joined.unit_id) == ("staff", "legal")
    for bad, key in ((code, "admin.invite_used"), ("ZZZZZZZZ", "admin.invite_unknown")):
        with pytest.raises(ServiceError) as error:
            await service.join(session, people.other_citizen, bad, NOW)
        assert error.value.key == key
    expired = await service.invite(session, people.admin, None, "supervisor", NOW)
    with pytest.raises(ServiceError) as error:
        await service.join(session, people.other_citizen, expired, NOW + dt.timedelta(days=4))
    assert error.value.key == "admin.invite_expired"

    with pytest.raises(ServiceError) as taken:  # a group serves one unit
        await service.bind(session, people.admin, "legal", CHATS["xixiu"], True, NOW)
    assert taken.value.key == "admin.chat_bound"
    unit = await service.bind(session, people.admin, "charity", -3001, False, NOW)
    assert (unit.chat_id, unit.forum) == (-3001, False)
    units = {u.id: n for u, n in await service.units(session, people.admin)}
    assert units["legal"] == 2
    assert (await service.whois(session, people.admin, 101)).display_name == "张三"
    with pytest.raises(ServiceError):
        await service.whois(session, people.admin, 999)
