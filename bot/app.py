"""Assembly: one :class:`Huiyin` holds the bot, the dispatcher and the loops that move updates
and messages, all of them on one database.

    updates ─(LongPolling | webhook)→ inbox table ─(InboxProcessor)→ Dispatcher → handlers
    handlers ─(outbox.enqueue, same transaction)→ outbox table ─(OutboxSender)→ Bot API
    APScheduler ─(every scan_every_seconds)→ ReminderScanner → notifications + outbox

Nothing reaches Telegram or leaves it except through those two tables, so a crash at any
point loses nothing that was confirmed and sends nothing twice on purpose.

Several processes may share one database (``huiyin run --workers N``, or any balancer in
front of webhook workers). Every one handles updates and scans for reminders; the outbox
sender and the long poller run in one process at a time, under a lease (bot/leader.py):
Telegram's flood limits count per bot, and getUpdates admits one caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.methods.base import Response, TelegramMethod, TelegramType
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.engine import is_sqlite, make_engine, make_sessionmaker
from bot.db.fsm import SqlStorage
from bot.db.migrate import upgrade_database
from bot.inbox import InboxProcessor
from bot.leader import LeaderLease, process_name, while_leader
from bot.middlewares import Clock, UpdateContext, system_clock
from bot.outbox import BestEffortCallbackAnswers, OutboxSender, SendLimits
from bot.polling import LongPolling
from bot.reminders import ReminderScanner
from bot.settings import Settings
from bot.topics import TopicKeeper
from bot.webhook import add_webhook_route, set_webhook
from routing.calendar import WorkCalendar
from routing.classifier import Classifier
from routing.config import Config, load_config
from routing.deadlines import DeadlineRules
from routing.reminders import ReminderPolicy

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
STOP_GRACE_SECONDS = 10.0
# How long a lease outlives a process that died holding it (renewed every third of it).
LEASE_SECONDS = 15.0


class _ResponseTypesKept(AiohttpSession):
    """aiogram parses every answer as ``Response[T]`` (T: the method's result type), and
    pydantic keeps such classes only weakly: each was garbage-collected soon after use and
    built again, schema and all, for most calls (~10 ms of CPU each; bench/e2e's profile).
    Holding them turns that into a dictionary lookup."""

    _kept: ClassVar[dict[Any, Any]] = {}

    def check_response(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        status_code: int,
        content: str,
    ) -> Response[TelegramType]:
        returning = method.__returning__
        with contextlib.suppress(TypeError):  # an unhashable result type: not kept
            if returning not in self._kept:
                self._kept[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)


def make_bot(token: str, api_url: str | None = None) -> Bot:
    """A Bot for Telegram, or for another Bot API server (a local one, or the sandbox)."""
    session = (
        _ResponseTypesKept(api=TelegramAPIServer.from_base(api_url))
        if api_url
        else _ResponseTypesKept()
    )
    # A failed answerCallbackQuery must not undo the press it answers (bot/outbox.py).
    session.middleware(BestEffortCallbackAnswers())
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
    from handlers import admin, citizen, dashboard, errors, staff, supervisor

    texts = Texts.load(settings.config_dir)
    services = CaseService(
        config=config,
        classifier=Classifier.from_config(config),
        rules=DeadlineRules.from_paths(config.paths),
        calendar=WorkCalendar.from_holidays(config.holidays),
        texts=texts,
    )
    sql_storage = storage if isinstance(storage, SqlStorage) else None
    dispatcher = Dispatcher(
        storage=storage,
        events_isolation=_events_isolation(storage),
        disable_fsm=sql_storage is not None,
    )
    dispatcher.update.outer_middleware(
        UpdateContext(sessionmaker, admin_ids=settings.admin_ids, storage=sql_storage, clock=clock)
    )
    if sql_storage is not None:
        # aiogram's FSM middleware (it reads the state) inside UpdateContext, not before it:
        # the read joins the update's transaction (bot/db/fsm.py) instead of costing one
        # transaction of its own per update, and follows the inbox row's lock.
        dispatcher.update.outer_middleware(dispatcher.fsm)
    # The dashboard before the citizen's router, which answers any other /command.
    dispatcher.include_routers(
        admin.router,
        supervisor.router,
        dashboard.router,
        staff.router,
        citizen.router,
        errors.router,
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
    scanner: ReminderScanner
    scan_interval: float
    lease_seconds: float = LEASE_SECONDS
    holder: str = field(default_factory=process_name)
    polling: LongPolling | None = None
    scheduler: AsyncIOScheduler | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _scanning: asyncio.Lock = field(default_factory=asyncio.Lock)
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
        scan_interval: float | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> Huiyin:
        """``scan_interval`` overrides reminders.yaml's ``scan_every_seconds`` (tests)."""
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
        policy = ReminderPolicy.from_config(config.reminders)
        interval = scan_interval or float(policy.scan_every_seconds)
        holder = process_name()
        scanner = ReminderScanner(
            sessionmaker,
            dispatcher["services"],
            policy,
            clock=clock,
            # SQLite has no SKIP LOCKED: one process scans, the others wait for its lease.
            lease=(
                LeaderLease(sessionmaker, "reminder-scan", holder=holder, ttl=3 * interval)
                if is_sqlite(settings.database_url)
                else None
            ),
        )
        return cls(
            settings,
            config,
            engine,
            sessionmaker,
            bot,
            dispatcher,
            processor,
            sender,
            topics,
            scanner,
            interval,
            lease_seconds,
            holder,
        )

    def add_routes(self, web_app: web.Application) -> None:
        """``/healthz`` and ``/metrics`` (bot/ops.py), the dashboard (bot/web/); in webhook mode
        (``settings.webhook_url``) the route Telegram posts updates to. Call before the web
        app starts; :meth:`start` then registers the webhook."""
        from bot.ops import add_ops_routes
        from bot.web import add_dashboard_routes

        add_ops_routes(web_app, self)
        add_dashboard_routes(web_app, self)
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
        processor, the outbox sender and the reminder scan."""
        self._wrap_feed(self.sender.wake)
        self._stopping.clear()
        if self.settings.webhook_url:
            url = self.settings.webhook_url.rstrip("/") + WEBHOOK_PATH
            await set_webhook(self.bot, url, secret_token=self._secret)
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self.polling = LongPolling(self.bot, self.sessionmaker, on_stored=self.processor.wake)
            self._lead("polling", self.polling.run, self.polling.stop)
        self.tasks.append(asyncio.create_task(self.processor.run(), name="inbox"))
        self._lead("outbox", self.sender.run, self.sender.stop)
        self._start_scheduler()
        await self._set_commands()

    def _lead(
        self, name: str, work: Callable[[], Coroutine[Any, Any, None]], stop: Callable[[], None]
    ) -> None:
        """Run ``work`` while this process holds the lease ``name`` (one process at a time)."""
        lease = LeaderLease(self.sessionmaker, name, holder=self.holder, ttl=self.lease_seconds)
        self.tasks.append(
            asyncio.create_task(
                while_leader(lease, work, stop, stopping=self._stopping), name=f"lead-{name}"
            )
        )

    def _start_scheduler(self) -> None:
        """APScheduler triggers the scan, nothing more: in-memory job store (never shared
        between processes), one instance at a time, missed runs coalesced into one, and no
        misfire is too late to run (what is due comes from the tables, not from the job)."""
        self.scheduler = AsyncIOScheduler(
            # Overlaps are refused by scan() itself, quietly: APScheduler's own max_instances
            # would log a warning each time a long scan meets the next trigger.
            job_defaults={"coalesce": True, "max_instances": 2, "misfire_grace_time": None}
        )
        self.scheduler.add_job(
            self.scan,
            "interval",
            seconds=self.scan_interval,
            kwargs={"skip_if_busy": True},
            id="reminder-scan",
            next_run_time=dt.datetime.now(dt.UTC),
        )
        self.scheduler.start()

    async def scan(self, *, skip_if_busy: bool = False) -> None:
        """One reminder scan, never two at once: a call while one runs waits for it, then
        scans (the scheduler's own trigger skips instead). A failure is logged and the next
        run tries again."""
        if skip_if_busy and self._scanning.locked():
            return
        async with self._scanning:
            if self._stopping.is_set():
                return  # a trigger that fired as stop() began: the loop is about to close
            try:
                report = await self.scanner.scan()
            except Exception:
                log.exception("reminder scan failed")
                return
        if report.messages:
            self.sender.wake()

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
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self._stopping.set()
        if self.polling is not None:
            self.polling.stop()
        self.processor.stop()
        self.sender.stop()
        # Let the loops finish what is in flight (a message half-sent would otherwise keep
        # its lease, and hold up its chat, for a minute after a restart).
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=STOP_GRACE_SECONDS)
        # A scan the scheduler started is not among the tasks: let it finish too, rather
        # than be cancelled when the loop closes (APScheduler would log that as an error).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                async with self._scanning:
                    pass
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        await self.bot.session.close()
        await self.dispatcher.fsm.close()  # the FSM storage and the events isolation
        _detach_routers(self.dispatcher)
        await self.engine.dispose()


def _detach_routers(dispatcher: Dispatcher) -> None:
    """The handlers' routers are module-level and aiogram lets a router have one parent:
    free them so a new Dispatcher (a restart in the same process, the next test) can take
    them. aiogram has no public detach."""
    for router in dispatcher.sub_routers:
        router._parent_router = None
    dispatcher.sub_routers.clear()


def _events_isolation(storage: BaseStorage) -> BaseEventIsolation | None:
    """With Redis (several workers): one update at a time per chat and user across all
    processes, as aiogram's RedisEventIsolation locks it. The inbox already hands one
    person's updates out in order; this also covers what reaches the dispatcher otherwise.
    It shares the storage's connection pool (closed with the storage: the isolation's own
    close() closes nothing)."""
    from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

    if isinstance(storage, RedisStorage):
        return RedisEventIsolation(storage.redis)
    return None


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
