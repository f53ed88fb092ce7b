"""A Dispatcher assembled like bot/app.py's (the same routers, in the same order, and a
middleware giving handlers the same keyword arguments), a Bot whose *session* is fake (no
network; it records the calls), SQL-backed FSM, and helpers to build updates."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import GetMe, TelegramMethod
from aiogram.types import CallbackQuery, Chat, Message, Update, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.fsm import SqlStorage
from bot.services import CaseService
from bot.texts import Texts
from handlers import admin, citizen, errors, staff, supervisor
from routing.config import Config
from tests.services.conftest import (  # noqa: F401  (fixtures)
    CHATS,
    NOW,
    People,
    config,
    engine,
    people,
    service,
    sessionmaker,
    texts,
)

TOKEN = "42:TEST"


class FakeSession(BaseSession):
    """aiogram's tests fake the session, not the Bot methods: every call is recorded and
    answered ``True`` (what answerCallbackQuery returns), getMe with the bot (the Command
    filter asks it for @mentions)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 (BaseSession's signature)
    ) -> Any:
        self.calls.append(method)
        if isinstance(method, GetMe):
            return User(id=42, is_bot=True, first_name="回音", username="huiyin_bot")
        return True

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    async def close(self) -> None:
        pass


class Context(BaseMiddleware):
    """The per-update context bot/middlewares.py provides (see the contract)."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    async def __call__(
        self,
        handler: Callable[[Update, dict[str, Any]], Awaitable[Any]],
        event: Update,  # type: ignore[override]
        data: dict[str, Any],
    ) -> Any:
        h = self.harness
        user: User = data["event_from_user"]
        async with h.sessionmaker() as session:
            actor = await repo.get_or_create_person(session, user.id, user.full_name)
            data.update(
                sessionmaker=h.sessionmaker,
                session=session,
                actor=actor,
                services=h.service,
                texts=h.texts,
                config=h.config,
                now=h.now,
                update_id=event.update_id,
            )
            with h.storage.use_session(session):
                try:
                    result = await handler(event, data)
                except Exception:
                    await session.rollback()
                    raise
                await session.commit()
            return result


@dataclass
class Harness:
    dp: Dispatcher
    bot: Bot
    fake: FakeSession
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: SqlStorage
    service: CaseService
    texts: Texts
    config: Config
    people: People
    now: dt.datetime = NOW
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    async def feed(self, update: Update) -> None:
        await self.dp.feed_update(self.bot, update)

    # ---------------------------------------------------------------- updates

    def _user(self, telegram_id: int) -> User:
        return User(id=telegram_id, is_bot=False, first_name=f"u{telegram_id}")

    def _message(
        self,
        telegram_id: int,
        text: str | None,
        chat_id: int | None,
        thread_id: int | None,
        **extra: Any,
    ) -> Message:
        chat = (
            Chat(id=telegram_id, type="private")
            if chat_id is None
            else Chat(id=chat_id, type="supergroup", is_forum=thread_id is not None)
        )
        return Message(
            message_id=next(self.ids),
            date=self.now,
            chat=chat,
            from_user=self._user(telegram_id),
            text=text,
            message_thread_id=thread_id,
            is_topic_message=True if thread_id is not None else None,
            **extra,
        )

    async def send(
        self,
        telegram_id: int,
        text: str | None,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        update_id: int | None = None,
        **extra: Any,
    ) -> int:
        uid = update_id if update_id is not None else next(self.ids)
        message = self._message(telegram_id, text, chat_id, thread_id, **extra)
        await self.feed(Update(update_id=uid, message=message))
        return uid

    async def press(
        self,
        telegram_id: int,
        data: str,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
    ) -> None:
        message = self._message(telegram_id, "card", chat_id, thread_id)
        query = CallbackQuery(
            id=str(next(self.ids)),
            from_user=self._user(telegram_id),
            chat_instance="x",
            data=data,
            message=message,
        )
        await self.feed(Update(update_id=next(self.ids), callback_query=query))

    # ---------------------------------------------------------------- inspection

    async def outbox_to(self, chat_id: int) -> list[dict[str, Any]]:
        from tests.services.conftest import sent_to

        async with self.sessionmaker() as session:
            return await sent_to(session, chat_id)

    async def last_text(self, chat_id: int) -> str:
        rows = await self.outbox_to(chat_id)
        assert rows, f"nothing queued for {chat_id}"
        return str(rows[-1].get("text", ""))

    def alerts(self) -> list[str]:
        return [str(getattr(c, "text", "") or "") for c in self.fake.calls]


@pytest.fixture
async def harness(
    sessionmaker: async_sessionmaker[AsyncSession],  # noqa: F811 (fixtures imported above)
    service: CaseService,  # noqa: F811
    texts: Texts,  # noqa: F811
    config: Config,  # noqa: F811
    people: People,  # noqa: F811
) -> AsyncIterator[Harness]:
    storage = SqlStorage(sessionmaker)
    dp = Dispatcher(storage=storage)
    dp.include_routers(
        admin.router, supervisor.router, staff.router, citizen.router, errors.router
    )
    fake = FakeSession()
    bot = Bot(TOKEN, session=fake)
    h = Harness(dp, bot, fake, sessionmaker, storage, service, texts, config, people)
    dp.update.outer_middleware(Context(h))
    yield h
    # Each test builds its own routers' Dispatcher; aiogram routers may be attached once.
    for router in (admin.router, supervisor.router, staff.router, citizen.router, errors.router):
        router._parent_router = None
