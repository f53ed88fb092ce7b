"""People and groups: /invite unit role, /units, /whois (admins, private); /bind unit_id
(an admin, in the unit's group); /join code (anyone, from any chat)."""

from __future__ import annotations

import datetime as dt
import html
import re

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.records import PersonRecord
from bot.services import CaseService, ServiceError, refuse
from bot.texts import Texts
from handlers.common import command_args, lang_of, thread_of
from handlers.reply import say

router = Router(name=__name__)


def is_admin(message: Message, actor: PersonRecord) -> bool:
    return actor.role == "admin"


def in_private(message: Message) -> bool:
    return message.chat.type == "private"


def in_group(message: Message) -> bool:
    return message.chat.type in ("group", "supergroup")


@router.message(Command("join"))
async def on_join(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    """Staff join from any chat, even their unit's group (the code is single-use)."""
    lang = lang_of(actor)
    try:
        invite = await services.join(session, actor, command_args(message), now)
        reply = texts.get(
            "admin.joined",
            lang,
            role=texts.label("role", invite.role, lang),
            unit=html.escape(services.unit_name(invite.unit_id, lang)) if invite.unit_id else "—",
        )
    except ServiceError as error:
        refuse(error.key)
        reply = texts.get(error.key, lang, **error.fmt)
    await say(session, message.chat.id, reply, update_id=update_id, thread_id=thread_of(message))


@router.message(Command("bind"), in_group, is_admin)
async def on_bind(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    unit_id = command_args(message)
    try:
        unit = await services.bind(
            session, actor, unit_id, message.chat.id, bool(message.chat.is_forum), now
        )
        key = "admin.bound" if unit.forum else "admin.bound_no_topics"
        reply = texts.get(key, lang, unit=html.escape(unit.name))
    except ServiceError as error:
        refuse(error.key)
        reply = texts.get(error.key, lang, **error.fmt)
    await say(session, message.chat.id, reply, update_id=update_id, thread_id=thread_of(message))


@router.message(Command("invite"), in_private, is_admin)
async def on_invite(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    args = command_args(message).split()
    if not args:
        refuse("admin.invite_usage")
        await say(
            session, message.chat.id, texts.get("admin.invite_usage", lang), update_id=update_id
        )
        return
    # "/invite legal staff", "/invite legal" (staff), "/invite supervisor" or "/invite head".
    if args[0] in ("supervisor", "head", "admin"):
        unit_id, role = None, args[0]
    else:
        unit_id, role = args[0], args[1] if len(args) > 1 else "staff"
    try:
        code = await services.invite(session, actor, unit_id, role, now)
        reply = texts.get(
            "admin.invited",
            lang,
            code=code,
            role=texts.label("role", role, lang),
            unit=html.escape(services.unit_name(unit_id, lang)) if unit_id else "—",
            hours=int(services.invite_ttl.total_seconds() // 3600),
        )
    except ServiceError as error:
        refuse(error.key)
        reply = texts.get(error.key, lang, **error.fmt)
    await say(session, message.chat.id, reply, update_id=update_id)


@router.message(Command("units"), in_private, is_admin)
async def on_units(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    rows = [
        texts.get(
            "admin.unit_row",
            lang,
            id=unit.id,
            name=html.escape(unit.name_en if lang == "en" and unit.name_en else unit.name),
            group=texts.get("admin.group_bound" if unit.chat_id else "admin.group_none", lang),
            staff=staff,
        )
        for unit, staff in await services.units(session, actor)
    ]
    await say(
        session,
        message.chat.id,
        texts.get("admin.units", lang, rows="\n".join(rows)),
        update_id=update_id,
    )


@router.message(Command("whois"), in_private, is_admin)
async def on_whois(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    update_id: int,
) -> None:
    """/whois TELEGRAM_ID, or in reply to a forwarded message."""
    lang = lang_of(actor)
    arg = command_args(message)
    # ASCII digits only ("²".isdigit() is true, and int() refuses it), and no more than a
    # Telegram id has (52 bits): a longer number would overflow the database's BIGINT.
    target: int | None = int(arg) if re.fullmatch(r"-?[0-9]{1,16}", arg) else None
    if target is None and message.reply_to_message and message.reply_to_message.forward_origin:
        origin = message.reply_to_message.forward_origin
        sender = getattr(origin, "sender_user", None)
        target = sender.id if sender else None
    if target is None:
        refuse("admin.whois_usage")
        await say(
            session, message.chat.id, texts.get("admin.whois_usage", lang), update_id=update_id
        )
        return
    try:
        person = await services.whois(session, actor, target)
        reply = texts.get(
            "admin.whois",
            lang,
            id=person.telegram_id,
            name=html.escape(person.display_name or "—"),
            role=texts.label("role", person.role, lang),
            unit=html.escape(services.unit_name(person.unit_id, lang)) if person.unit_id else "—",
            language=person.language,
        )
    except ServiceError as error:
        refuse(error.key)
        reply = texts.get(error.key, lang, **error.fmt)
    await say(session, message.chat.id, reply, update_id=update_id)
