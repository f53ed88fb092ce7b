"""One middleware per update: a database transaction, the person behind the update, the time.

Handlers receive ``session`` (a transaction; committed when the handler returns, rolled
back when it raises), ``actor`` (the sender as a :class:`PersonRecord`), ``now`` (aware
UTC, from the injectable clock), ``update_id`` and ``sessionmaker`` (for the errors handler,
whose own transaction must not be the failed one).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.fsm import SqlStorage
from bot.db.records import Role

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
        async with self.sessionmaker() as session, session.begin():
            data["session"] = session
            user = sender_of(event)
            if user is not None and not user.is_bot:
                data["actor"] = await self._actor(session, user)
            if self.storage is not None:
                # FSM reads and writes join this transaction (see bot/db/fsm.py).
                with self.storage.use_session(session):
                    return await handler(event, data)
            return await handler(event, data)

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
