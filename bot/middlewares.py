"""One middleware per update: a database transaction, the person behind the update, the time,
and the one log record of a refused update (bot/services/errors.py says what that is).

Handlers receive ``session`` (a transaction; committed when the handler returns, rolled
back when it raises), ``actor`` (the sender as a :class:`PersonRecord`), ``now`` (aware
UTC, from the injectable clock), ``update_id`` and ``sessionmaker`` (for the errors handler,
whose own transaction must not be the failed one).

The same transaction marks the update's inbox row done (bot/inbox.py), so an update's
effects and its "handled" commit together. A worker killed between the two would otherwise
leave the row to be handled again on top of its own effects: the conversation has moved on
(the FSM state is in this transaction too), so the replay would be read as the next step,
e.g. a petition's last answer as a new complaint. A replay of a row already done is skipped.

One statement does both at the start of the transaction: ``UPDATE inbox SET status = 'done'
… WHERE status <> 'done'`` locks the row (PostgreSQL: a second worker that took the row over
from a hung first one waits for its outcome, then finds it done) and a rollback undoes it.
It tells the inbox processor, through its receipt (bot/inbox.py), that the outcome is
written. An update with no inbox row (fed to the dispatcher directly) is handled.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import sqlalchemy as sa
from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.fsm import SqlStorage
from bot.db.models import InboxUpdate
from bot.db.records import Role
from bot.inbox import DONE, inbox_receipt
from bot.services.errors import refusal_level, refusal_log, refusal_scope

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sender_of(update: Update) -> User | None:
    """The person an update comes from, whatever its type."""
    event = update.event
    user = getattr(event, "from_user", None)
    return user if isinstance(user, User) else None


def language_of(user: User) -> str:
    # Chinese by default; English for people whose Telegram speaks English.
    return "en" if (user.language_code or "").lower().startswith("en") else "zh"


def _kind(update: Update) -> str:
    """``message/sticker``, ``callback_query``, ``my_chat_member`` …: what arrived."""
    event = update.event
    content = getattr(event, "content_type", None)
    if content is None:
        return update.event_type
    return f"{update.event_type}/{getattr(content, 'value', content)}"


def _chat_of(update: Update) -> int | None:
    event = update.event
    chat = getattr(event, "chat", None) or getattr(getattr(event, "message", None), "chat", None)
    return getattr(chat, "id", None)


def _log_refusal(update: Update, reason: str, detail: str) -> None:
    """The one record of a refused update (see bot/services/errors.py)."""
    user = sender_of(update)
    refusal_log.log(
        refusal_level(reason),
        "update %s (%s) from user %s in chat %s refused: %s%s",
        update.update_id,
        _kind(update),
        user.id if user is not None else None,
        _chat_of(update),
        reason,
        f" ({detail})" if detail else "",
    )


_MARK_HANDLED = (
    sa.update(InboxUpdate)
    .where(InboxUpdate.update_id == sa.bindparam("id"), InboxUpdate.status != DONE)
    .values(status=DONE, error=None, lease_until=None, processed_at=sa.bindparam("at"))
    .returning(InboxUpdate.update_id)
    .execution_options(synchronize_session=False)
)
_IS_STORED = sa.select(InboxUpdate.update_id).where(InboxUpdate.update_id == sa.bindparam("id"))


async def _mark_handled(session: AsyncSession, update_id: int, *, stored: bool) -> bool:
    """Mark the update's inbox row done in this transaction (see the module docstring);
    False if it was done before (a replay, to be skipped). ``stored``: the row is known
    to exist (the inbox processor claimed it); otherwise a missing row is looked for, and
    an update without one is handled."""
    marked = await session.scalar(_MARK_HANDLED, {"id": update_id, "at": system_clock()})
    if marked is not None:
        return True
    if stored:
        return False
    return await session.scalar(_IS_STORED, {"id": update_id}) is None


class UpdateContext(BaseMiddleware):
    """Outer middleware on ``update``: opens the transaction every handler works in."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        admin_ids: Iterable[int] = (),
        storage: SqlStorage | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.admin_ids = frozenset(admin_ids)
        self.storage = storage
        self.clock = clock

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        data["sessionmaker"] = self.sessionmaker
        data["now"] = self.clock()
        data["update_id"] = event.update_id
        user = sender_of(event)
        if user is None or user.is_bot:
            # A channel post, an anonymous group admin, another bot: no person to act for
            # (every handler acts for ``actor``) and none to answer.
            _log_refusal(event, "no_sender", "the update has no person behind it")
            return UNHANDLED
        receipt = inbox_receipt(event.update_id)
        with refusal_scope() as refusal:
            async with self.sessionmaker() as session, session.begin():
                if not await _mark_handled(session, event.update_id, stored=receipt is not None):
                    log.info("update %s: handled before this replay, skipped", event.update_id)
                    if receipt is not None:
                        receipt.recorded = True  # nothing to write: the row is done
                    return None
                data["session"] = session
                data["actor"] = await self._actor(session, user)
                if self.storage is not None:
                    # FSM reads and writes join this transaction (see bot/db/fsm.py).
                    with self.storage.use_session(session):
                        result = await handler(event, data)
                else:
                    result = await handler(event, data)
            if receipt is not None:
                receipt.recorded = True  # committed with the handler's effects
        # Logged after the commit, and only then: a refusal on record is one that stands
        # (an update that raised is the errors handler's, on huiyin.errors).
        if refusal.reason is not None:
            _log_refusal(event, refusal.reason, refusal.detail)
        elif result is UNHANDLED:
            _log_refusal(event, "unhandled", f"no handler takes {_kind(event)}")
        return result

    async def _actor(self, session: AsyncSession, user: User) -> repo.PersonRecord:
        person = await repo.get_person_by_telegram(session, user.id)
        if person is None or person.display_name != user.full_name:
            # New, or renamed since: staff should see the name people go by now.
            person = await repo.get_or_create_person(
                session, user.id, display_name=user.full_name, language=language_of(user)
            )
        if user.id in self.admin_ids and person.role != Role.ADMIN:
            log.info("person %s is an admin by settings", person.id)
            person = await repo.set_role(session, person.id, Role.ADMIN, None)
        return person
