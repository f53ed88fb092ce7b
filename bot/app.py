"""Assembly: one :class:`Huiyin` holds the bot, the dispatcher and the loops that move updates
and messages, all of them on one database.

    updates ─(LongPolling | webhook)→ inbox table ─(InboxProcessor)→ Dispatcher → handlers
    handlers ─(outbox.enqueue, same transaction)→ outbox table ─(OutboxSender)→ Bot API

Nothing reaches Telegram or leaves it except through those two tables, so a crash at any
point loses nothing that was confirmed and sends nothing twice on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseStorage
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.fsm import SqlStorage
from bot.db.migrate import upgrade_database
from bot.inbox import InboxProcessor
from bot.middlewares import Clock, UpdateContext, system_clock
from bot.outbox import OutboxSender, SendLimits
from bot.polling import LongPolling
from bot.settings import Settings
from bot.topics import TopicKeeper
from bot.webhook import add_webhook_route, set_webhook
from routing.calendar import WorkCalendar
from routing.classifier import Classifier
from routing.config import Config, load_config
from routing.deadlines import DeadlineRules

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
STOP_GRACE_SECONDS = 10.0


def make_bot(token: str, api_url: str | None = None) -> Bot:
    """A Bot for Telegram, or for another Bot API server (a local one, or the sandbox)."""
    session = (
        AiohttpSession(api=TelegramAPIServer.from_base(api_url)) if api_url else AiohttpSession()
    )
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def build_dispatcher(
    *,
    config: Config,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    storage: BaseStorage,
    clock: Clock = system_clock,
) -> Dispatcher:
    """The dispatcher with every router, the per-update middleware and the services."""
    from bot.services import CaseService
    from bot.texts import Texts
    from handlers import admin, citizen, errors, staff, supervisor

    texts = Texts.load(settings.config_dir)
    services = CaseService(
        config=config,
        classifier=Classifier.from_config(config),
        rules=DeadlineRules.from_paths(config.paths),
        calendar=WorkCalendar.from_holidays(config.holidays),
        texts=texts,
    )
    dispatcher = Dispatcher(storage=storage)
    dispatcher.update.outer_middleware(
        UpdateContext(
            sessionmaker,
            admin_ids=settings.admin_ids,
            storage=storage if isinstance(storage, SqlStorage) else None,
            clock=clock,
        )
    )
    dispatcher.include_routers(
        admin.router, supervisor.router, staff.router, citizen.router, errors.router
    )
    dispatcher["services"] = services
    dispatcher["texts"] = texts
    dispatcher["config"] = config
    dispatcher["settings"] = settings
    return dispatcher


@dataclass
class Huiyin:
    """The running bot: build with :meth:`create`, then :meth:`start` and :meth:`stop`."""

    settings: Settings
    config: Config
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bot: Bot
    dispatcher: Dispatcher
    processor: InboxProcessor
    sender: OutboxSender
    topics: TopicKeeper
    polling: LongPolling | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _secret: str = ""

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        token: str,
        api_url: str | None = None,
        clock: Clock = system_clock,
        limits: SendLimits | None = None,
    ) -> Huiyin:
        config = load_config(settings.config_dir)
        await upgrade_database(settings.database_url)
        engine = make_engine(settings.database_url)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session, session.begin():
            await repo.sync_units(session, config.units.units)
        storage = _storage(settings, sessionmaker)
        bot = make_bot(token, api_url)
        dispatcher = build_dispatcher(
            config=config,
            sessionmaker=sessionmaker,
            settings=settings,
            storage=storage,
            clock=clock,
        )

        async def handle(update: dict[str, Any]) -> None:
            await dispatcher.feed_raw_update(bot, update)

        processor = InboxProcessor(sessionmaker, handle)
        topics = TopicKeeper(sessionmaker, bot, dispatcher["services"])
        sender = OutboxSender(
            sessionmaker,
            bot,
            limits or SendLimits(),
            on_blocked=_mark_blocked(sessionmaker),
            on_thread_not_found=topics.on_thread_not_found,
            on_sent=topics.on_sent,
            prepare=topics.prepare,
        )
        return cls(
            settings, config, engine, sessionmaker, bot, dispatcher, processor, sender, topics
        )

    def add_routes(self, web_app: web.Application) -> None:
        """Webhook mode (``settings.webhook_url``): the route Telegram posts updates to.
        Call before the web app starts; :meth:`start` then registers the webhook."""
        if not self.settings.webhook_url:
            return
        self._secret = (
            self.settings.webhook_secret.get_secret_value()
            if self.settings.webhook_secret
            else secrets.token_urlsafe(32)
        )
        add_webhook_route(
            web_app,
            WEBHOOK_PATH,
            self.sessionmaker,
            secret_token=self._secret,
            on_stored=self.processor.wake,
        )

    async def start(self) -> None:
        """Start the loops: the webhook (see :meth:`add_routes`) or long polling, the inbox
        processor and the outbox sender."""
        self._wrap_feed(self.sender.wake)
        if self.settings.webhook_url:
            url = self.settings.webhook_url.rstrip("/") + WEBHOOK_PATH
            await set_webhook(self.bot, url, secret_token=self._secret)
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self.polling = LongPolling(self.bot, self.sessionmaker, on_stored=self.processor.wake)
            self.tasks.append(asyncio.create_task(self.polling.run(), name="polling"))
        self.tasks.append(asyncio.create_task(self.processor.run(), name="inbox"))
        self.tasks.append(asyncio.create_task(self.sender.run(), name="outbox"))
        await self._set_commands()

    def _wrap_feed(self, after: Callable[[], None]) -> None:
        """Wake the sender right after each update's transaction commits: the reply is in
        the outbox by then, and waiting for the sender's next poll would only add latency."""
        handle = self.processor.handle

        async def handle_and_wake(update: dict[str, Any]) -> None:
            await handle(update)
            after()

        self.processor.handle = handle_and_wake

    async def _set_commands(self) -> None:
        from aiogram.types import BotCommand

        with contextlib.suppress(Exception):  # commands are a convenience, not a duty
            await self.bot.set_my_commands(
                [
                    BotCommand(command="start", description="开始 / Start"),
                    BotCommand(command="my", description="我的事项 / My items"),
                    BotCommand(command="status", description="查询进度 / Status"),
                    BotCommand(command="language", description="语言 / Language"),
                ]
            )

    async def stop(self) -> None:
        if self.polling is not None:
            self.polling.stop()
        self.processor.stop()
        self.sender.stop()
        # Let the loops finish what is in flight (a message half-sent would otherwise keep
        # its lease, and hold up its chat, for a minute after a restart).
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=STOP_GRACE_SECONDS)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        await self.bot.session.close()
        await self.dispatcher.storage.close()
        _detach_routers(self.dispatcher)
        await self.engine.dispose()


def _detach_routers(dispatcher: Dispatcher) -> None:
    """The handlers' routers are module-level and aiogram lets a router have one parent:
    free them so a new Dispatcher (a restart in the same process, the next test) can take
    them. aiogram has no public detach."""
    for router in dispatcher.sub_routers:
        router._parent_router = None
    dispatcher.sub_routers.clear()


def _storage(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> BaseStorage:
    """Redis when configured (several workers), else the SQL table (one process)."""
    if settings.redis_url:
        from aiogram.fsm.storage.redis import RedisStorage

        return RedisStorage.from_url(settings.redis_url)
    return SqlStorage(sessionmaker)


def _mark_blocked(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Callable[[int], Awaitable[None]]:
    async def on_blocked(chat_id: int) -> None:
        async with sessionmaker() as session, session.begin():
            person = await repo.get_person_by_telegram(session, chat_id)
            if person is not None:
                await repo.mark_blocked(session, person.id)

    return on_blocked
