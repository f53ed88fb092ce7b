"""Supervisors (法制/督查), in a private chat: /overdue, /duesoon [days], /stats, /case N,
/urge N text. Admins may use them too."""

from __future__ import annotations

import datetime as dt
import html

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.records import PersonRecord
from bot.services import CaseDetail, CaseService, DueItem, ServiceError, refuse
from bot.services.cards import deadline_line
from bot.texts import Texts
from handlers.common import command_args, lang_of
from handlers.reply import say

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")

OVERSIGHT = frozenset({"supervisor", "head", "admin"})
LIST_LIMIT = 30  # one message; the dashboard has the full lists


def is_supervisor(message: Message, actor: PersonRecord) -> bool:
    return actor.role in OVERSIGHT


router.message.filter(is_supervisor)


def _due_lines(texts: Texts, services: CaseService, items: list[DueItem], lang: str) -> str:
    lines = [
        texts.get(
            "supervisor.due_item",
            lang,
            number=item.case.number,
            unit=html.escape(services.unit_name(item.case.unit_id, lang)),
            state=texts.label("state", item.case.state, lang),
            deadline=deadline_line(texts, item.deadline, lang),
        )
        for item in items[:LIST_LIMIT]
    ]
    if len(items) > LIST_LIMIT:
        lines.append(texts.get("supervisor.more", lang, count=len(items) - LIST_LIMIT))
    return "\n".join(lines)


@router.message(Command("overdue"))
async def on_overdue(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    items = await services.overdue(session, actor, now)
    text = (
        texts.get(
            "supervisor.overdue",
            lang,
            count=len(items),
            items=_due_lines(texts, services, items, lang),
        )
        if items
        else texts.get("supervisor.none_overdue", lang)
    )
    await say(session, message.chat.id, text, update_id=update_id)


@router.message(Command("duesoon"))
async def on_due_soon(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    arg = command_args(message)
    try:
        days = int(arg) if arg else 3
        items = await services.due_soon(session, actor, days, now)
    except ValueError:
        refuse("supervisor.days_range", repr(arg[:20]))
        await say(
            session, message.chat.id, texts.get("supervisor.days_range", lang), update_id=update_id
        )
        return
    except ServiceError as error:
        refuse(error.key)
        await say(
            session, message.chat.id, texts.get(error.key, lang, **error.fmt), update_id=update_id
        )
        return
    text = (
        texts.get(
            "supervisor.due_soon",
            lang,
            days=days,
            count=len(items),
            items=_due_lines(texts, services, items, lang),
        )
        if items
        else texts.get("supervisor.none_due", lang, days=days)
    )
    await say(session, message.chat.id, text, update_id=update_id)


@router.message(Command("stats"))
async def on_stats(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    rows = []
    for unit in await services.stats(session, actor, now):
        percent = unit.on_time_percent
        rows.append(
            texts.get(
                "supervisor.stats_row",
                lang,
                unit=html.escape(services.unit_name(unit.unit_id, lang)),
                open=unit.open,
                overdue=unit.overdue,
                on_time="—" if percent is None else f"{percent:.0f}%",
                hops=f"{unit.average_hops:.1f}",
            )
        )
    await say(
        session,
        message.chat.id,
        texts.get("supervisor.stats", lang, rows="\n".join(rows)),
        update_id=update_id,
    )


def detail_text(texts: Texts, services: CaseService, detail: CaseDetail, lang: str) -> str:
    """The whole audit trail with deadlines and the days each skipped."""
    case = detail.case
    events = []
    for event in detail.events:
        person = detail.people.get(event.actor_id) if event.actor_id is not None else None
        who = html.escape(person.display_name or str(person.telegram_id)) if person else "—"
        events.append(
            texts.get(
                "supervisor.event",
                lang,
                at=event.at.astimezone(services.tz).strftime("%Y-%m-%d %H:%M"),
                who=who,
                role=texts.label("role", event.actor_role, lang),
                action=texts.label("action", event.action, lang),
                state=texts.label("state", event.to_state, lang) if event.to_state else "—",
                reason=html.escape((event.reason or "")[:200]),
            )
        )
    deadlines = []
    for record in detail.deadlines:
        skipped = record.deadline.skipped
        days = "、".join(f"{d.day.isoformat()}（{html.escape(d.reason)}）" for d in skipped[:12])
        if len(skipped) > 12:
            days += " …"
        deadlines.append(
            deadline_line(texts, record, lang)
            + "\n"
            + texts.get("supervisor.skipped", lang, days=days or "—")
        )
    return texts.get(
        "supervisor.case",
        lang,
        number=case.number,
        path=texts.label("path", case.path, lang),
        topic=texts.label("topic", case.topic, lang),
        state=texts.label("state", case.state, lang),
        unit=html.escape(services.unit_name(case.unit_id, lang)),
        lead=html.escape(services.unit_name(case.lead_unit_id, lang)),
        hops=case.hops,
        attachments=len(detail.attachments),
        text=html.escape(case.text[:800]),
        deadlines="\n".join(deadlines) or "—",
        events="\n".join(events),
    )


@router.message(Command("case"))
async def on_case(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    number = command_args(message)
    try:
        detail = await services.case_detail(session, actor, number)
    except ServiceError as error:
        refuse(error.key)
        await say(
            session, message.chat.id, texts.get(error.key, lang, **error.fmt), update_id=update_id
        )
        return
    await say(
        session, message.chat.id, detail_text(texts, services, detail, lang), update_id=update_id
    )


@router.message(Command("urge"))
async def on_urge(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    number, _, text = command_args(message).partition(" ")
    if not number or not text.strip():
        refuse("supervisor.urge_usage")
        await say(
            session, message.chat.id, texts.get("supervisor.urge_usage", lang), update_id=update_id
        )
        return
    try:
        case = await services.urge(session, actor, number, text, now)
        reply = texts.get("supervisor.urged", lang, number=case.number)
    except ServiceError as error:
        refuse(error.key)
        reply = texts.get(error.key, lang, **error.fmt)
    await say(session, message.chat.id, reply, update_id=update_id)
