"""Who is who: units (mirrored from units.yaml), people and their roles, invite codes.

Every function takes the caller's ``AsyncSession`` and neither commits nor rolls back: the
caller decides what one transaction is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Invite, Person, Unit
from bot.db.records import (
    ChatAlreadyBound,
    InviteExpired,
    InviteNotFound,
    InviteRecord,
    InviteUsed,
    NotFound,
    PersonRecord,
    Role,
    UnitRecord,
)
from bot.db.repo_base import from_db, insert, normalise_code, random_code, to_record, to_utc

INVITE_CODE_LENGTH = 8  # 31**8 ≈ 8.5e11 codes, each alive for hours: not worth guessing


class UnitSpecLike(Protocol):
    """What sync_units needs of a unit; ``routing.config.UnitSpec`` is one."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def name_en(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def chat_id(self) -> int | None: ...


# --------------------------------------------------------------------------- units


async def sync_units(session: AsyncSession, units: Iterable[UnitSpecLike]) -> list[UnitRecord]:
    """Make the units table match the configuration; returns the active units.

    A unit's group chat is usually bound at runtime (``set_unit_chat``) and kept; a
    ``chat_id`` written in the configuration wins, taking the chat from any other unit.
    Units no longer configured are deactivated, not deleted: old cases still name them.
    """
    specs = list(units)
    for spec in specs:
        if spec.chat_id is not None:
            await session.execute(
                update(Unit)
                .where(Unit.chat_id == spec.chat_id, Unit.id != spec.id)
                .values(chat_id=None)
                .execution_options(synchronize_session=False)
            )
    for spec in specs:
        statement = insert(session, Unit).values(
            id=spec.id,
            name=spec.name,
            name_en=spec.name_en,
            kind=spec.kind,
            chat_id=spec.chat_id,
            forum=True,
            active=True,
        )
        changes = {
            "name": statement.excluded.name,
            "name_en": statement.excluded.name_en,
            "kind": statement.excluded.kind,
            "active": True,
        }
        if spec.chat_id is not None:
            changes["chat_id"] = statement.excluded.chat_id
        # One statement, so two workers starting together both succeed.
        await session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changes))
    await session.execute(
        update(Unit)
        .where(Unit.id.not_in([spec.id for spec in specs]))
        .values(active=False)
        .execution_options(synchronize_session=False)
    )
    return await list_units(session)


async def get_unit(session: AsyncSession, unit_id: str) -> UnitRecord | None:
    unit = await session.get(Unit, unit_id, populate_existing=True)
    return None if unit is None else to_record(UnitRecord, unit)


async def get_unit_by_chat(session: AsyncSession, chat_id: int) -> UnitRecord | None:
    """The unit whose group this is, if any."""
    unit = await session.scalar(
        select(Unit).where(Unit.chat_id == chat_id).execution_options(populate_existing=True)
    )
    return None if unit is None else to_record(UnitRecord, unit)


async def list_units(session: AsyncSession, *, active_only: bool = True) -> list[UnitRecord]:
    query = select(Unit).order_by(Unit.id).execution_options(populate_existing=True)
    if active_only:
        query = query.where(Unit.active.is_(True))
    return [to_record(UnitRecord, unit) for unit in await session.scalars(query)]


async def set_unit_chat(
    session: AsyncSession, unit_id: str, chat_id: int | None, forum: bool
) -> UnitRecord:
    """Bind (or with ``None`` unbind) the unit's Telegram group.

    Raises :class:`ChatAlreadyBound` when the group serves another unit: silently moving it
    would leave that unit's tickets with nowhere to go.
    """
    unit = await session.get(Unit, unit_id, populate_existing=True)
    if unit is None:
        raise NotFound("unit", unit_id)
    if chat_id is not None:
        holder = await session.scalar(
            select(Unit.id).where(Unit.chat_id == chat_id, Unit.id != unit_id)
        )
        if holder is not None:
            raise ChatAlreadyBound(chat_id, holder)
    unit.chat_id = chat_id
    unit.forum = forum
    await session.flush()
    return to_record(UnitRecord, unit)


# --------------------------------------------------------------------------- people


async def get_or_create_person(
    session: AsyncSession, telegram_id: int, display_name: str = "", language: str = "zh"
) -> PersonRecord:
    """The person with this Telegram id, created as a citizen on first contact.

    A non-empty ``display_name`` refreshes the stored one (people rename themselves; staff
    should see the current name). ``language`` only applies to a new person: a choice
    made with ``set_language`` is not overwritten by the client's locale.
    """
    statement = insert(session, Person).values(
        telegram_id=telegram_id,
        display_name=display_name,
        language=language,
        role=Role.CITIZEN.value,
        blocked_bot=False,
    )
    if display_name:
        statement_with_conflict = statement.on_conflict_do_update(
            index_elements=["telegram_id"],
            set_={"display_name": statement.excluded.display_name},
            # Called for every update a person sends: write only when the name changed.
            where=Person.display_name != statement.excluded.display_name,
        )
    else:
        statement_with_conflict = statement.on_conflict_do_nothing(index_elements=["telegram_id"])
    await session.execute(statement_with_conflict)
    person = await get_person_by_telegram(session, telegram_id)
    assert person is not None  # inserted or already there, in this transaction
    return person


async def get_person(session: AsyncSession, person_id: int) -> PersonRecord | None:
    person = await session.get(Person, person_id, populate_existing=True)
    return None if person is None else to_record(PersonRecord, person)


async def get_person_by_telegram(session: AsyncSession, telegram_id: int) -> PersonRecord | None:
    person = await session.scalar(
        select(Person)
        .where(Person.telegram_id == telegram_id)
        .execution_options(populate_existing=True)
    )
    return None if person is None else to_record(PersonRecord, person)


async def list_people(
    session: AsyncSession, *, role: str | None = None, unit_id: str | None = None
) -> list[PersonRecord]:
    """People by role and/or unit, e.g. the staff of a unit or all supervisors."""
    query = select(Person).order_by(Person.id).execution_options(populate_existing=True)
    if role is not None:
        query = query.where(Person.role == role)
    if unit_id is not None:
        query = query.where(Person.unit_id == unit_id)
    return [to_record(PersonRecord, person) for person in await session.scalars(query)]


async def set_role(
    session: AsyncSession, person_id: int, role: str, unit_id: str | None
) -> PersonRecord:
    """Give a person a role; staff must belong to a unit (their group's tickets)."""
    _check_role(role, unit_id)
    return await _change_person(session, person_id, role=role, unit_id=unit_id)


async def set_language(session: AsyncSession, person_id: int, language: str) -> PersonRecord:
    return await _change_person(session, person_id, language=language)


async def mark_blocked(
    session: AsyncSession, person_id: int, blocked: bool = True
) -> PersonRecord:
    """Record that the person blocked the bot (403 from Telegram), or unblocked it."""
    return await _change_person(session, person_id, blocked_bot=blocked)


async def _change_person(session: AsyncSession, person_id: int, **changes: object) -> PersonRecord:
    person = await session.get(Person, person_id, populate_existing=True)
    if person is None:
        raise NotFound("person", person_id)
    for name, value in changes.items():
        setattr(person, name, value)
    await session.flush()
    return to_record(PersonRecord, person)


def _check_role(role: str, unit_id: str | None) -> None:
    Role(role)  # ValueError names the unknown role
    if role == Role.STAFF and unit_id is None:
        raise ValueError("staff must belong to a unit")


# --------------------------------------------------------------------------- invites


async def create_invite(
    session: AsyncSession,
    *,
    role: str,
    unit_id: str | None,
    created_by: int,
    ttl: dt.timedelta,
    now: dt.datetime,
) -> str:
    """A new single-use code granting ``role`` (in ``unit_id``) until ``now + ttl``."""
    _check_role(role, unit_id)
    now = to_utc(now)
    code = random_code(INVITE_CODE_LENGTH)
    while await session.get(Invite, code) is not None:  # practically never
        code = random_code(INVITE_CODE_LENGTH)
    session.add(
        Invite(
            code=code,
            role=role,
            unit_id=unit_id,
            created_by=created_by,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    await session.flush()
    return code


async def redeem_invite(
    session: AsyncSession, code: str, person_id: int, now: dt.datetime
) -> InviteRecord:
    """Use the code: the person gets its role and unit. Returns the used invite.

    Raises :class:`InviteNotFound`, :class:`InviteExpired` or :class:`InviteUsed`. The
    check and the marking are one UPDATE, so two people racing for one code cannot both
    win, on either backend.
    """
    code = normalise_code(code)
    now = to_utc(now)
    redeemed = await session.scalar(
        update(Invite)
        .where(Invite.code == code, Invite.used_by.is_(None), Invite.expires_at > now)
        .values(used_by=person_id, used_at=now)
        .returning(Invite.code)
        # Rows are re-read with populate_existing below; nothing to synchronise in Python.
        .execution_options(synchronize_session=False)
    )
    invite = await session.get(Invite, code, populate_existing=True)
    if redeemed is None:
        if invite is None:
            raise InviteNotFound(code)
        if invite.used_by is not None:
            raise InviteUsed(code, None if invite.used_at is None else from_db(invite.used_at))
        raise InviteExpired(code, from_db(invite.expires_at))
    assert invite is not None
    await set_role(session, person_id, invite.role, invite.unit_id)
    return to_record(InviteRecord, invite)
