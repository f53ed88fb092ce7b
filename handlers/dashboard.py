"""/dashboard in a private chat: a one-time login link to the web dashboard (bot/web/).

Supervisors, heads and admins get a link to every unit; staff to their own unit's items;
anyone else is told the dashboard is not for them. The link is signed, lasts ten minutes and
works once (bot/web/auth.py); it goes through the outbox like every reply.
"""

from __future__ import annotations

import datetime as dt
import html

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.records import PersonRecord
from bot.services import refuse
from bot.settings import Settings
from bot.texts import Texts
from bot.web.auth import LINK_TTL, derive_key, issue_login_token
from handlers.common import lang_of
from handlers.reply import say

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")

DASHBOARD_ROLES = frozenset({"supervisor", "head", "admin"})


def base_url(settings: Settings) -> str:
    """Where the dashboard is served: the public webhook URL when there is one (the same
    web server), else the address ``huiyin run`` listens on."""
    if settings.webhook_url:
        return settings.webhook_url.rstrip("/")
    return f"http://{settings.host}:{settings.port}"


def may_log_in(actor: PersonRecord) -> bool:
    return actor.role in DASHBOARD_ROLES or (actor.role == "staff" and actor.unit_id is not None)


@router.message(Command("dashboard"))
async def on_dashboard(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    bot: Bot,
    settings: Settings,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    if not may_log_in(actor):
        refuse("dashboard.not_allowed", f"role {actor.role}")
        await say(
            session, message.chat.id, texts.get("dashboard.not_allowed", lang), update_id=update_id
        )
        return
    token = issue_login_token(derive_key(settings, bot.token), actor.id, actor.role, now)
    url = f"{base_url(settings)}/dashboard/login?t={token}"
    text = texts.get(
        "dashboard.link",
        lang,
        url=html.escape(url),
        minutes=int(LINK_TTL.total_seconds() // 60),
    )
    await say(session, message.chat.id, text, update_id=update_id)
