"""Operations: ``GET /healthz`` for supervisors and balancers, ``GET /metrics`` for Prometheus.

``/healthz`` answers JSON with the parts (database, scheduler, outbox, inbox) and an overall
``status``, with HTTP 200 when it is ``ok`` or ``degraded`` and 503 when it is ``starting``
(:meth:`Huiyin.start` has not started the loops yet: ``huiyin run --workers`` waits for the
first 200 before it sends a worker traffic) or ``down`` (the database does not answer, or the
reminder scan has stopped). ``degraded`` means working but late: updates or messages waiting
longer than they should (the figures say which).

Whether the scan is alive is read from APScheduler, as the scanner records nothing about its
runs: the scheduler runs, and the ``reminder-scan`` job's next run time is not far in the past.
APScheduler computes the next run when it fires the job, so the last firing was one interval
before the next run; more than :data:`STALE_SCANS` intervals since then means the trigger no
longer fires (a blocked event loop, a stopped scheduler). A scan that hangs is not seen here:
scan() refuses to overlap, so the trigger keeps firing.

``/metrics`` serves this process's own registry (never prometheus_client's global one: tests
run several bots in one process). The figures from the database are shared by every worker
(cases, overdue duties, queues) and read at scrape time with a few indexed COUNT queries,
cached for :data:`METRICS_CACHE_SECONDS` so a storm of scrapes costs one round of queries;
counters (messages sent, 429s, …) and the handling-time histogram are this process's only —
scrape each worker on its own port. On SQLite each round takes the write lock for a moment
(every transaction begins IMMEDIATE, see bot/db/engine.py); the queries are short.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware, Dispatcher
from aiogram.types import TelegramObject, Update
from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import inbox, outbox
from bot.db.models import Case, DeadlineRow, InboxUpdate, OutboxMessage
from bot.db.records import DeadlineStatus
from bot.db.repo_base import from_db
from bot.services.common import NOT_DUTIES, OPEN_STATES
from routing.config import PathCode
from routing.lifecycle import State

if TYPE_CHECKING:
    from bot.app import Huiyin

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
SCAN_JOB = "reminder-scan"  # the job id bot/app.py gives the reminder scan

OK, DEGRADED, DOWN, STARTING = "ok", "degraded", "down", "starting"
# The scan is dead after this many intervals without the trigger firing.
STALE_SCANS = 3
# A person waits for the answer to what they sent: a minute unhandled is already late.
INBOX_LAG_DEGRADED_SECONDS = 60.0
# Messages may wait legitimately: Telegram's flood limits (30 a second, 20 a minute in a
# group) spread a digest burst over minutes, and a 429 asks to wait retry_after seconds.
OUTBOX_LAG_DEGRADED_SECONDS = 300.0
# A health check must answer while the database does not (a balancer polls it).
DATABASE_TIMEOUT_SECONDS = 3.0
METRICS_CACHE_SECONDS = 5.0
UPDATE_TYPES = ("message", "callback_query", "other")


def add_ops_routes(
    web_app: web.Application, huiyin: Huiyin, *, cache_seconds: float = METRICS_CACHE_SECONDS
) -> None:
    """``GET /healthz`` and ``GET /metrics`` on ``web_app`` (before it starts), and the
    handling-time histogram on ``huiyin``'s dispatcher (see :func:`time_updates`)."""
    ops = Ops(huiyin, cache_seconds=cache_seconds)
    time_updates(huiyin.dispatcher, HandlerTimer(ops.handler_seconds))
    web_app.router.add_get(HEALTH_PATH, ops.healthz)
    web_app.router.add_get(METRICS_PATH, ops.metrics)


# ---------------------------------------------------------------------- handling time


def handler_histogram(registry: CollectorRegistry) -> Histogram:
    histogram = Histogram(
        "huiyin_handler_seconds",
        "Time to handle one update, from the first middleware to the commit",
        ["update_type"],
        registry=registry,
    )
    for kind in UPDATE_TYPES:  # every series from the start, at zero
        histogram.labels(update_type=kind)
    return histogram


def update_type(event: TelegramObject) -> str:
    if isinstance(event, Update):
        if event.message is not None:
            return "message"
        if event.callback_query is not None:
            return "callback_query"
    return "other"


class HandlerTimer(BaseMiddleware):
    """Outer middleware on ``update``: the time each update takes to handle, whole — the
    transaction UpdateContext opens and commits included. Register it with
    :func:`time_updates`, which puts it outermost."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        started = time.perf_counter()
        try:
            return await handler(event, data)
        finally:  # failed and timed-out handling took time too
            elapsed = time.perf_counter() - started
            self.histogram.labels(update_type=update_type(event)).observe(elapsed)


def time_updates(dispatcher: Dispatcher, timer: HandlerTimer) -> None:
    """Make ``timer`` the outermost update middleware, replacing an earlier HandlerTimer.

    aiogram runs outer middlewares in the order they were registered, the first outermost;
    UpdateContext is registered when the dispatcher is built and must run inside the timing.
    aiogram has no public insert: take the others out and register them again after it."""
    chain = dispatcher.update.outer_middleware
    others = [m for m in chain if not isinstance(m, HandlerTimer)]
    for middleware in list(chain):
        chain.unregister(middleware)
    chain.register(timer)
    for middleware in others:
        chain.register(middleware)


# ---------------------------------------------------------------------- health parts


@dataclass(frozen=True)
class DatabaseHealth:
    ok: bool
    latency_ms: float | None
    error: str | None = None


@dataclass(frozen=True)
class SchedulerHealth:
    running: bool
    alive: bool
    interval_s: float
    next_scan_at: str | None
    last_scan_at: str | None  # the trigger's last firing, inferred (see the module docstring)
    last_scan_age_s: float | None


def scan_health(
    *, running: bool, next_run_at: dt.datetime | None, interval: float, now: dt.datetime
) -> SchedulerHealth:
    """Whether the reminder scan is alive: the scheduler runs, the job is scheduled, and the
    trigger last fired (one interval before its next run) at most STALE_SCANS intervals ago."""
    if next_run_at is None:  # no job, or paused
        return SchedulerHealth(running, False, interval, None, None, None)
    last = next_run_at - dt.timedelta(seconds=interval)
    age = max(0.0, (now - last).total_seconds())
    alive = running and age <= STALE_SCANS * interval
    return SchedulerHealth(
        running, alive, interval, next_run_at.isoformat(), last.isoformat(), round(age, 3)
    )


async def ping(sessionmaker: async_sessionmaker[AsyncSession]) -> DatabaseHealth:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS), sessionmaker() as session:
            await session.execute(select(1))
    except Exception as error:  # whatever the driver raises, the answer is "unreachable"
        log.warning("health: the database does not answer: %r", error)
        return DatabaseHealth(False, None, type(error).__name__)
    return DatabaseHealth(True, round((time.perf_counter() - started) * 1000, 3))


# ---------------------------------------------------------------------- database figures


@dataclass(frozen=True)
class Snapshot:
    """What the database says, at one moment (ages in seconds at ``taken_at``)."""

    cases: dict[tuple[str, str], int]  # (state, path) → count
    overdue: int
    inbox_waiting: int  # new, or failed with attempts left
    inbox_failed: int  # given up on
    inbox_lag: float  # age of the oldest update waiting
    outbox_pending: int
    outbox_failed: int
    outbox_oldest_pending: float  # age of the oldest pending message
    outbox_lag: float  # how long the longest-waiting due message has been due
    taken_at: dt.datetime


def _age(now: dt.datetime, since: dt.datetime | None) -> float:
    return 0.0 if since is None else max(0.0, (now - from_db(since)).total_seconds())


async def read_snapshot(
    session: AsyncSession, *, now: dt.datetime, today: dt.date, max_attempts: int
) -> Snapshot:
    """A handful of aggregates, each over an index or the few rows in flight. ``now`` is
    UTC wall time (the queues' timestamps are); ``today`` the bureau's day for deadlines;
    ``max_attempts`` the inbox processor's (a failed update with attempts left is waiting)."""
    cases = {
        (state, path): count
        for state, path, count in await session.execute(
            select(Case.state, Case.path, func.count()).group_by(Case.state, Case.path)
        )
    }
    # Open duties past their last day (the last day itself is still in time), of items the
    # bureau still owes something; the citizen's own windows are no one's duty (NOT_DUTIES).
    overdue = await session.scalar(
        select(func.count())
        .select_from(DeadlineRow)
        .join(Case, Case.id == DeadlineRow.case_id)
        .where(
            DeadlineRow.status == DeadlineStatus.OPEN.value,
            DeadlineRow.due < today,
            DeadlineRow.rule.not_in(sorted(NOT_DUTIES)),
            Case.state.in_(sorted(s.value for s in OPEN_STATES)),
        )
    )
    # A failed update with attempts left waits for its retry: still to be handled.
    given_up = (InboxUpdate.status == inbox.FAILED) & (InboxUpdate.attempts >= max_attempts)
    inbox_rows = {
        bool(gave_up): (count, oldest)
        for gave_up, count, oldest in await session.execute(
            select(given_up, func.count(), func.min(InboxUpdate.received_at))
            .where(InboxUpdate.status.in_([inbox.NEW, inbox.FAILED]))
            .group_by(given_up)
        )
    }
    due_since = case((OutboxMessage.not_before <= now, OutboxMessage.not_before))
    outbox_rows = {
        status: (count, oldest, due)
        for status, count, oldest, due in await session.execute(
            select(
                OutboxMessage.status,
                func.count(),
                func.min(OutboxMessage.created_at),
                func.min(due_since),
            )
            .where(OutboxMessage.status.in_([outbox.PENDING, outbox.FAILED]))
            .group_by(OutboxMessage.status)
        )
    }
    waiting, oldest_waiting = inbox_rows.get(False, (0, None))
    pending, oldest_pending, due = outbox_rows.get(outbox.PENDING, (0, None, None))
    return Snapshot(
        cases=cases,
        overdue=int(overdue or 0),
        inbox_waiting=int(waiting),
        inbox_failed=int(inbox_rows.get(True, (0, None))[0]),
        inbox_lag=_age(now, oldest_waiting),
        outbox_pending=int(pending),
        outbox_failed=int(outbox_rows.get(outbox.FAILED, (0, None, None))[0]),
        outbox_oldest_pending=_age(now, oldest_pending),
        outbox_lag=_age(now, due),
        taken_at=now,
    )


# ---------------------------------------------------------------------- the endpoints


class Ops:
    """The two endpoints of one :class:`Huiyin`, with its own metrics registry."""

    def __init__(self, huiyin: Huiyin, *, cache_seconds: float = METRICS_CACHE_SECONDS) -> None:
        self.huiyin = huiyin
        self.cache_seconds = cache_seconds
        self.registry = CollectorRegistry()
        self.handler_seconds = handler_histogram(self.registry)
        self.registry.register(HuiyinCollector(self))
        self.snapshot: Snapshot | None = None
        self._read_at: float | None = None  # loop time of the last read, failed or not
        self._reading = asyncio.Lock()
        self._expose = make_aiohttp_handler(self.registry)

    # ------------------------------------------------------------------ figures

    async def refresh(self) -> Snapshot | None:
        """The database figures, read again when older than ``cache_seconds``; None when
        the database did not answer (a failure is cached as long: a dead database is not
        asked again by every scrape)."""
        if self._fresh():
            return self.snapshot
        async with self._reading:  # concurrent scrapes share one read
            if self._fresh():
                return self.snapshot
            now = inbox.utcnow()
            # The bureau's day by the bot's own clock (injectable, as deadlines are computed).
            today: dt.date = self.huiyin.dispatcher["services"].today(self.huiyin.scanner.clock())
            try:
                async with (
                    asyncio.timeout(DATABASE_TIMEOUT_SECONDS),
                    self.huiyin.sessionmaker() as session,
                ):
                    self.snapshot = await read_snapshot(
                        session,
                        now=now,
                        today=today,
                        max_attempts=self.huiyin.processor.max_attempts,
                    )
            except Exception as error:  # any driver error: report the database as down
                log.warning("metrics: the database does not answer: %r", error)
                self.snapshot = None
            self._read_at = asyncio.get_running_loop().time()
            return self.snapshot

    def _fresh(self) -> bool:
        return (
            self._read_at is not None
            and asyncio.get_running_loop().time() - self._read_at < self.cache_seconds
        )

    def scheduler(self, now: dt.datetime) -> SchedulerHealth | None:
        """None before :meth:`Huiyin.start` made the scheduler."""
        scheduler = self.huiyin.scheduler
        if scheduler is None:
            return None
        job = scheduler.get_job(SCAN_JOB)
        return scan_health(
            running=bool(scheduler.running),
            next_run_at=job.next_run_time if job is not None else None,
            interval=self.huiyin.scan_interval,
            now=now,
        )

    # ------------------------------------------------------------------ handlers

    async def healthz(self, _request: web.Request) -> web.Response:
        report = await self.health()
        code = 503 if report["status"] in (DOWN, STARTING) else 200
        return web.json_response(report, status=code, headers={"Cache-Control": "no-store"})

    async def health(self) -> dict[str, Any]:
        database = await ping(self.huiyin.sessionmaker)  # always afresh, never cached
        snapshot = await self.refresh() if database.ok else None
        scheduler = self.scheduler(inbox.utcnow())
        if scheduler is None:
            status = STARTING
        elif not database.ok or not scheduler.alive:
            status = DOWN
        elif snapshot is None or (
            snapshot.inbox_lag > INBOX_LAG_DEGRADED_SECONDS
            or snapshot.outbox_lag > OUTBOX_LAG_DEGRADED_SECONDS
        ):
            status = DEGRADED
        else:
            status = OK
        return {
            "status": status,
            "database": asdict(database),
            "scheduler": asdict(scheduler) if scheduler is not None else {"running": False},
            "outbox": None
            if snapshot is None
            else {
                "pending": snapshot.outbox_pending,
                "failed": snapshot.outbox_failed,
                "oldest_pending_age_s": round(snapshot.outbox_oldest_pending, 3),
                "lag_s": round(snapshot.outbox_lag, 3),
            },
            "inbox": None
            if snapshot is None
            else {
                "waiting": snapshot.inbox_waiting,
                "failed": snapshot.inbox_failed,
                "lag_s": round(snapshot.inbox_lag, 3),
            },
        }

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        await self.refresh()  # collect() below is synchronous: it reads what this read
        return await self._expose(request)


class HuiyinCollector:
    """Reads its figures at scrape time: the database snapshot (see :meth:`Ops.refresh`),
    the scheduler, and the counters the inbox processor and the outbox sender keep."""

    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    def collect(self) -> Iterable[Metric]:
        snapshot = self.ops.snapshot
        yield _gauge(
            "huiyin_database_up",
            "1 when the database answered the last round of metric queries",
            int(snapshot is not None),
        )
        scheduler = self.ops.scheduler(inbox.utcnow())
        yield _gauge(
            "huiyin_scheduler_up",
            "1 when the reminder scan's trigger fires on time (see /healthz)",
            int(scheduler is not None and scheduler.alive),
        )
        if snapshot is not None:
            yield from _database_metrics(snapshot)
        yield from _counters(self.ops.huiyin)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _database_metrics(snapshot: Snapshot) -> Iterable[Metric]:
    cases = GaugeMetricFamily(
        "huiyin_cases", "Cases by state and path (all workers)", labels=["state", "path"]
    )
    # Every combination, zeros included: a series that vanishes reads as "no data".
    known = {(state.value, path.value) for state in State for path in PathCode}
    for state, path in sorted(known | set(snapshot.cases)):
        cases.add_metric([state, path], snapshot.cases.get((state, path), 0))
    yield cases
    yield _gauge(
        "huiyin_overdue_deadlines",
        "Open duties of the bureau past their last day (the citizen's own windows excluded)",
        snapshot.overdue,
    )
    yield _gauge(
        "huiyin_inbox_queue_length",
        "Updates waiting to be handled (new, or failed with attempts left)",
        snapshot.inbox_waiting,
    )
    yield _gauge(
        "huiyin_inbox_lag_seconds",
        "Age of the oldest update waiting to be handled (0 when none)",
        snapshot.inbox_lag,
    )
    yield _gauge(
        "huiyin_outbox_queue_length", "Messages waiting to be sent", snapshot.outbox_pending
    )
    yield _gauge(
        "huiyin_outbox_oldest_pending_seconds",
        "Age of the oldest message waiting to be sent (0 when none)",
        snapshot.outbox_oldest_pending,
    )
    yield _gauge(
        "huiyin_outbox_lag_seconds",
        "How long the longest-waiting message has been due to be sent (0 when none)",
        snapshot.outbox_lag,
    )


def _counters(huiyin: Huiyin) -> Iterable[Metric]:
    sent = huiyin.sender.stats
    yield _counter("huiyin_outbox_sent", "Messages sent by this process", sent.sent)
    yield _counter("huiyin_outbox_retries", "Bot API calls made again", sent.retries)
    yield _counter(
        "huiyin_outbox_too_many_requests", "429s answered by Telegram", sent.too_many_requests
    )
    yield _counter("huiyin_outbox_errors", "Other failed Bot API calls", sent.errors)
    yield _counter("huiyin_outbox_failed", "Messages given up on", sent.failed)
    yield _counter(
        "huiyin_outbox_blocked", "403s: bot blocked, or removed from the group", sent.blocked
    )
    handled = huiyin.processor.stats
    yield _counter("huiyin_inbox_handled", "Updates handled by this process", handled.done)
    yield _counter("huiyin_inbox_retries", "Handling failures to be retried", handled.retries)
    yield _counter("huiyin_inbox_failed", "Updates given up on", handled.failed)
