"""The last resort: whatever a handler raised, the person gets a short clear message (never
a traceback) and the log gets the update's context."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Router
from aiogram.types import ErrorEvent, Update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.records import ConcurrentUpdate, PersonRecord
from bot.services import ServiceError
from bot.texts import DEFAULT_LANGUAGE, Texts
from handlers.reply import say

log = logging.getLogger("huiyin.errors")

router = Router(name=__name__)


def _where(update: Update) -> tuple[int | None, int | None, int | None, str]:
    """(chat id, thread id, user id, kind) of an update, as far as it has them."""
    if update.message is not None:
        message = update.message
        thread = message.message_thread_id if message.is_topic_message else None
        user = message.from_user.id if message.from_user else None
        return message.chat.id, thread, user, "message"
    if update.callback_query is not None:
        query = update.callback_query
        chat = query.message.chat.id if query.message is not None else query.from_user.id
        return chat, None, query.from_user.id, "callback_query"
    return None, None, None, update.event_type


@router.error()
async def on_error(event: ErrorEvent, **data: Any) -> None:
    update = event.update
    error = event.exception
    chat_id, thread_id, user_id, kind = _where(update)
    log.error(
        "update %s (%s) from user %s in chat %s failed: %r",
        update.update_id,
        kind,
        user_id,
        chat_id,
        error,
        exc_info=error,
    )
    texts: Texts | None = data.get("texts")
    actor: PersonRecord | None = data.get("actor")
    if texts is None or chat_id is None:
        return
    lang = actor.language if actor is not None else DEFAULT_LANGUAGE
    if isinstance(error, ServiceError):
        text = texts.get(error.key, lang, **error.fmt)
    elif isinstance(error, ConcurrentUpdate):
        text = texts.get("error.concurrent", lang)
    else:
        text = texts.get("error.internal", lang)
    if update.callback_query is not None:
        # The spinner on the button stops either way; the message explains.
        chat_id = update.callback_query.from_user.id if thread_id is None else chat_id
    try:
        await _queue(data, chat_id, text, update.update_id, thread_id)
    except Exception:  # the database itself may be what failed
        log.exception("could not queue the error message for update %s", update.update_id)


async def _queue(
    data: dict[str, Any], chat_id: int, text: str, update_id: int, thread_id: int | None
) -> None:
    """The handler's transaction was rolled back: this message is all the update leaves, in
    a transaction of its own (the middleware's ``sessionmaker``; else the failed session,
    rolled back first)."""
    maker: async_sessionmaker[AsyncSession] | None = data.get("sessionmaker")
    if maker is not None:
        async with maker() as session, session.begin():
            await say(session, chat_id, text, update_id=update_id, n=99, thread_id=thread_id)
        return
    failed: AsyncSession | None = data.get("session")
    if failed is None:
        return
    await failed.rollback()
    await say(failed, chat_id, text, update_id=update_id, n=99, thread_id=thread_id)
    await failed.commit()
