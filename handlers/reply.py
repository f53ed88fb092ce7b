"""Replies go through the outbox, in the update's transaction (never message.answer()).

The dedupe key is derived from the update, so an update handled twice (a replay after a
crash before it was marked done) sends nothing twice.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbox import enqueue
from bot.services.common import clip_html

Keyboard = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | dict[str, Any]

TEXT_LIMIT = 4096  # Bot API: a message text is at most 4096 characters


async def say(
    session: AsyncSession,
    chat_id: int,
    text: str,
    *,
    update_id: int,
    n: int = 0,
    keyboard: Keyboard | None = None,
    thread_id: int | None = None,
) -> int | None:
    """Queue an HTML message to ``chat_id`` (escape user text first); ``n`` numbers several
    replies to one update."""
    payload: dict[str, Any] = {"parse_mode": "HTML"}
    if keyboard is not None:
        payload["reply_markup"] = (
            keyboard
            if isinstance(keyboard, dict)
            else keyboard.model_dump(mode="json", exclude_none=True)
        )
    text = clip_html(text, TEXT_LIMIT)
    return await enqueue(
        session,
        chat_id,
        text,
        thread_id=thread_id,
        payload=payload,
        dedupe_key=f"u{update_id}:{chat_id}:{n}",
    )
