"""Units from config, people and roles, invite codes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.repo_base import UNAMBIGUOUS_ALPHABET
from tests.db.samples import NOW, UNITS

# --------------------------------------------------------------------------- units


async def test_sync_units_inserts_and_lists_them(session: AsyncSession) -> None:
    active = await repo.sync_units(session, UNITS)

    assert [unit.id for unit in active] == ["assistance", "legal", "xixiu"]
    assert await repo.get_unit(session, "xixiu") == repo.UnitRecord(
        id="xixiu",
        name="西秀区民政局",
        name_en="Xixiu District Bureau",
        kind="subdivision",
        chat_id=None,
        forum=True,
        active=True,
    )
    assert await repo.get_unit(session, "nowhere") is None


async def test_sync_units_keeps_a_chat_bound_at_runtime(session: AsyncSession) -> None:
    await repo.sync_units(session, UNITS)
    await repo.set_unit_chat(session, "legal", -1001, forum=False)
    await session.commit()

    renamed = [dataclasses.replace(UNITS[1], name="法制科"), UNITS[0], UNITS[2]]
    await repo.sync_units(session, renamed)

    legal = await repo.get_unit(session, "legal")
    assert legal is not None
    assert (legal.name, legal.chat_id, legal.forum) == ("法制科", -1001, False)


async def test_a_chat_in_the_config_wins(session: AsyncSession) -> None:
    await repo.sync_units(session, UNITS)
    await repo.set_unit_chat(session, "legal", -1001, forum=True)
    await repo.set_unit_chat(session, "assistance", -1002, forum=True)

    # The config now gives legal's group to xixiu, and assistance a new group.
    configured = [
        dataclasses.replace(UNITS[0], chat_id=-1003),
        UNITS[1],
        dataclasses.replace(UNITS[2], chat_id=-1001),
    ]
    await repo.sync_units(session, configured)

    chats = {unit.id: unit.chat_id for unit in await repo.list_units(session)}
    assert chats == {"assistance": -1003, "legal": None, "xixiu": -1001}


async def test_units_dropped_from_the_config_are_deactivated_not_deleted(
    session: AsyncSession,
) -> None:
    await repo.sync_units(session, UNITS)

    active = await repo.sync_units(session, UNITS[:2])

    assert [unit.id for unit in active] == ["assistance", "legal"]
    everything = await repo.list_units(session, active_only=False)
    assert [(unit.id, unit.active) for unit in everything] == [
        ("assistance", True),
        ("legal", True),
        ("xixiu", False),
    ]
    # Configured again → active again.
    assert len(await repo.sync_units(session, UNITS)) == 3


async def test_sync_units_takes_routing_config_specs(session: AsyncSession) -> None:
    from routing.config import UnitSpec

    spec = UnitSpec(id="office", name="办公室", name_en="Office", kind="office", chat_id=-5)
    [unit] = await repo.sync_units(session, [spec])
    assert (unit.id, unit.kind, unit.chat_id) == ("office", "office", -5)


async def test_set_unit_chat(session: AsyncSession) -> None:
    await repo.sync_units(session, UNITS)

    bound = await repo.set_unit_chat(session, "legal", -100123, forum=True)
    assert (bound.chat_id, bound.forum) == (-100123, True)
    assert await repo.get_unit_by_chat(session, -100123) == bound
    assert await repo.get_unit_by_chat(session, -1) is None

    # Binding it again to the same unit is fine; to another is refused.
    await repo.set_unit_chat(session, "legal", -100123, forum=False)
    with pytest.raises(repo.ChatAlreadyBound) as refused:
        await repo.set_unit_chat(session, "xixiu", -100123, forum=True)
    assert refused.value.unit_id == "legal"

    unbound = await repo.set_unit_chat(session, "legal", None, forum=False)
    assert unbound.chat_id is None
    with pytest.raises(repo.NotFound):
        await repo.set_unit_chat(session, "nowhere", -1, forum=True)


# --------------------------------------------------------------------------- people


async def test_get_or_create_person(session: AsyncSession) -> None:
    created = await repo.get_or_create_person(session, 42, "张三", "zh")
    assert (created.telegram_id, created.display_name, created.role) == (42, "张三", "citizen")
    assert created.unit_id is None
    assert not created.blocked_bot
    assert created.created_at.tzinfo == dt.UTC

    await repo.set_language(session, created.id, "en")
    again = await repo.get_or_create_person(session, 42, "张三丰", "zh")

    assert again.id == created.id
    assert again.display_name == "张三丰"  # names are refreshed
    assert again.language == "en"  # a chosen language is not reset by the client's locale
    nameless = await repo.get_or_create_person(session, 42)
    assert nameless.display_name == "张三丰"
    assert await repo.get_person_by_telegram(session, 42) == nameless
    assert await repo.get_person(session, created.id) == nameless
    assert await repo.get_person_by_telegram(session, 43) is None


async def test_roles(session: AsyncSession) -> None:
    await repo.sync_units(session, UNITS)
    person = await repo.get_or_create_person(session, 7, "李四")

    staff = await repo.set_role(session, person.id, "staff", "legal")
    assert (staff.role, staff.unit_id) == ("staff", "legal")
    supervisor = await repo.set_role(session, person.id, repo.Role.SUPERVISOR, None)
    assert (supervisor.role, supervisor.unit_id) == ("supervisor", None)

    with pytest.raises(ValueError, match="unit"):
        await repo.set_role(session, person.id, "staff", None)
    with pytest.raises(ValueError, match="janitor"):
        await repo.set_role(session, person.id, "janitor", None)
    with pytest.raises(repo.NotFound):
        await repo.set_role(session, 999, "admin", None)


async def test_list_people(session: AsyncSession) -> None:
    await repo.sync_units(session, UNITS)
    for telegram_id, role, unit in [
        (1, "staff", "legal"),
        (2, "staff", "xixiu"),
        (3, "admin", None),
    ]:
        person = await repo.get_or_create_person(session, telegram_id)
        await repo.set_role(session, person.id, role, unit)
    await repo.get_or_create_person(session, 4)

    assert [p.telegram_id for p in await repo.list_people(session, role="staff")] == [1, 2]
    assert [p.telegram_id for p in await repo.list_people(session, unit_id="xixiu")] == [2]
    assert len(await repo.list_people(session)) == 4


async def test_mark_blocked(session: AsyncSession) -> None:
    person = await repo.get_or_create_person(session, 5)
    assert (await repo.mark_blocked(session, person.id)).blocked_bot
    assert not (await repo.mark_blocked(session, person.id, blocked=False)).blocked_bot


# --------------------------------------------------------------------------- invites


@pytest.fixture
async def admin(session: AsyncSession) -> repo.PersonRecord:
    await repo.sync_units(session, UNITS)
    person = await repo.get_or_create_person(session, 900, "管理员")
    person = await repo.set_role(session, person.id, "admin", None)
    await session.commit()
    return person


async def _invite(
    session: AsyncSession,
    admin: repo.PersonRecord,
    *,
    role: str = "staff",
    unit_id: str | None = "legal",
    ttl: dt.timedelta = dt.timedelta(hours=24),
) -> str:
    return await repo.create_invite(
        session, role=role, unit_id=unit_id, created_by=admin.id, ttl=ttl, now=NOW
    )


async def test_an_invite_makes_staff_once(session: AsyncSession, admin: repo.PersonRecord) -> None:
    code = await _invite(session, admin)
    assert re.fullmatch(f"[{UNAMBIGUOUS_ALPHABET}]{{8}}", code)
    newcomer = await repo.get_or_create_person(session, 901, "王五")

    # Typed lower-case with a dash, an hour later.
    invite = await repo.redeem_invite(
        session, f"{code[:4].lower()}-{code[4:]}", newcomer.id, NOW + dt.timedelta(hours=1)
    )

    assert (invite.code, invite.used_by, invite.role, invite.unit_id) == (
        code,
        newcomer.id,
        "staff",
        "legal",
    )
    assert invite.used_at == NOW + dt.timedelta(hours=1)
    assert invite.expires_at == NOW + dt.timedelta(hours=24)
    staff = await repo.get_person(session, newcomer.id)
    assert staff is not None
    assert (staff.role, staff.unit_id) == ("staff", "legal")

    other = await repo.get_or_create_person(session, 902)
    with pytest.raises(repo.InviteUsed):
        await repo.redeem_invite(session, code, other.id, NOW + dt.timedelta(hours=2))
    with pytest.raises(repo.InviteUsed):  # not even by the same person
        await repo.redeem_invite(session, code, newcomer.id, NOW + dt.timedelta(hours=2))


async def test_an_expired_invite_is_refused(
    session: AsyncSession, admin: repo.PersonRecord
) -> None:
    code = await _invite(session, admin, ttl=dt.timedelta(hours=1))
    person = await repo.get_or_create_person(session, 903)

    with pytest.raises(repo.InviteExpired) as expired:
        await repo.redeem_invite(session, code, person.id, NOW + dt.timedelta(hours=1))
    assert expired.value.expired_at == NOW + dt.timedelta(hours=1)
    still_citizen = await repo.get_person(session, person.id)
    assert still_citizen is not None
    assert still_citizen.role == "citizen"


async def test_an_unknown_invite_is_refused(
    session: AsyncSession, admin: repo.PersonRecord
) -> None:
    with pytest.raises(repo.InviteNotFound):
        await repo.redeem_invite(session, "ZZZZ-ZZZZ", admin.id, NOW)
    # All three are one family the handler can catch.
    assert issubclass(repo.InviteNotFound, repo.InviteError)
    assert issubclass(repo.InviteExpired, repo.InviteError)
    assert issubclass(repo.InviteUsed, repo.InviteError)


async def test_an_invite_for_a_supervisor(session: AsyncSession, admin: repo.PersonRecord) -> None:
    code = await _invite(session, admin, role="supervisor", unit_id=None)
    person = await repo.get_or_create_person(session, 904)
    await repo.redeem_invite(session, code, person.id, NOW)
    supervisor = await repo.get_person(session, person.id)
    assert supervisor is not None
    assert supervisor.role == "supervisor"

    with pytest.raises(ValueError, match="unit"):
        await _invite(session, admin, role="staff", unit_id=None)


async def test_invite_times_must_be_aware(session: AsyncSession, admin: repo.PersonRecord) -> None:
    with pytest.raises(ValueError, match="naive"):
        await repo.create_invite(
            session,
            role="admin",
            unit_id=None,
            created_by=admin.id,
            ttl=dt.timedelta(hours=1),
            now=dt.datetime(2026, 3, 2, 9, 30),
        )


async def test_two_people_racing_for_one_invite(
    sessionmaker: async_sessionmaker[AsyncSession], admin: repo.PersonRecord
) -> None:
    async with sessionmaker.begin() as session:
        code = await _invite(session, admin)
        racers = [(await repo.get_or_create_person(session, 910 + i)).id for i in range(2)]

    async def redeem(person_id: int) -> str:
        async with sessionmaker.begin() as session:
            try:
                await repo.redeem_invite(session, code, person_id, NOW)
            except repo.InviteUsed:
                return "refused"
            return "joined"

    results = await asyncio.gather(*(redeem(person_id) for person_id in racers))
    assert sorted(results) == ["joined", "refused"]


async def test_records_are_frozen(session: AsyncSession) -> None:
    person = await repo.get_or_create_person(session, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        person.role = "admin"  # type: ignore[misc]
