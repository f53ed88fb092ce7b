"""The last resort, included after every other router: whatever a handler raised, the person
gets a short clear message (never a traceback) and the log gets the update's context; whatever
no other handler took is refused (bot/services/errors.py), with a short answer where there
is someone to answer."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Router
from aiogram.types import CallbackQuery, ErrorEvent, Message, Update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.engine import database_unavailable
from bot.db.records import ConcurrentUpdate, PersonRecord
from bot.services import ServiceError, refuse
from bot.texts import DEFAULT_LANGUAGE, Texts
from handlers.common import lang_of, thread_of
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
    if database_unavailable(error):
        # Nothing was stored: re-raised, the inbox keeps the update and handles it again
        # once the database is back (bot/inbox.py). Answered here, it would count as
        # handled, and what the person sent would be lost.
        log.warning(
            "update %s (%s): the database is unavailable: %r", update.update_id, kind, error
        )
        raise error
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


# --------------------------------------------------------------------------- what nobody took


@router.message()
async def on_unread_message(
    message: Message, session: AsyncSession, actor: PersonRecord, texts: Texts, update_id: int
) -> None:
    """A message no router took: in a private chat, content the current step cannot use (a
    photo while a tracking number is asked for); in a group, one the bot does not serve
    (staff routers take only their units' groups) or a command that is not for groups."""
    if message.chat.type == "private":
        # Something readable that this step cannot take (a photo where a number is asked
        # for) needs a different word from something unreadable (a sticker).
        key = (
            "error.text_expected"
            if message.photo or message.document
            else "error.unsupported_content"
        )
        refuse(key, "not usable at this step")
        await say(session, message.chat.id, texts.get(key, lang_of(actor)), update_id=update_id)
        return
    # No answer in a group: a bot that talks back to every line of a chat it does not serve
    # is noise (an admin binds a group with /bind; staff /join from anywhere).
    refuse("not_served", f"a {message.chat.type} chat the bot does not serve")


@router.edited_message()
async def on_edited(
    message: Message, session: AsyncSession, actor: PersonRecord, texts: Texts, update_id: int
) -> None:
    """An edit is not read again: what was sent has been acted on (a description filed, a
    message relayed). The citizen is told to send the correction as a new message; staff
    in a topic likewise (the citizen saw the first version)."""
    refuse("error.edited", f"edit of message {message.message_id}")
    if message.chat.type == "private" or thread_of(message) is not None:
        await say(
            session,
            message.chat.id,
            texts.get("error.edited", lang_of(actor)),
            update_id=update_id,
            thread_id=thread_of(message),
        )


@router.callback_query()
async def on_unread_button(callback: CallbackQuery, actor: PersonRecord, texts: Texts) -> None:
    """A press outside the chats the bot works in (an unknown group, an inline message)."""
    refuse("error.bad_button", f"data {callback.data!r}")
    await callback.answer(texts.get("error.bad_button", lang_of(actor)), show_alert=True)
