"""``/healthz`` and ``/metrics`` (bot/ops.py) over real HTTP, on the whole bot running against
the sandbox (tests/e2e/conftest.py's world), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.types import Update
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import Huiyin
from bot.db import repo
from bot.db.engine import make_sessionmaker
from bot.ops import HandlerTimer, add_ops_routes, handler_histogram, scan_health, time_updates
from bot.outbox import enqueue
from bot.services import Intake
from bot.settings import Settings
from routing.config import DEFAULT_CONFIG_DIR
from tests.e2e.conftest import World, make_world
from tests.infra.conftest import eventually
from tests.services.conftest import PETITION, RECONSIDERATION


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    async with make_world(db_url) as world:
        yield world


class Ops:
    """The ops endpoints of a world's bot, on a web app of their own."""

    def __init__(self, http: aiohttp.ClientSession, server: TestServer) -> None:
        self.http = http
        self.server = server

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with self.http.get(self.server.make_url("/healthz")) as response:
            return response.status, await response.json()

    async def metrics(self) -> dict[str, list[Any]]:
        """Sample name → its samples."""
        async with self.http.get(self.server.make_url("/metrics")) as response:
            assert response.status == 200
            text = await response.text()
        samples: dict[str, list[Any]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample)
        return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    (match,) = [s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    return float(match.value)


@pytest.fixture
async def ops(world: World) -> AsyncIterator[Ops]:
    async with serve_ops(world.huiyin, world.http, cache_seconds=0) as served:
        yield served


class serve_ops:
    def __init__(
        self, huiyin: Huiyin, http: aiohttp.ClientSession, *, cache_seconds: float
    ) -> None:
        app = web.Application()
        add_ops_routes(app, huiyin, cache_seconds=cache_seconds)
        self.server = TestServer(app)
        self.http = http

    async def __aenter__(self) -> Ops:
        await self.server.start_server()
        return Ops(self.http, self.server)

    async def __aexit__(self, *_exc: object) -> None:
        await self.server.close()


async def file(world: World, intake: Intake) -> None:
    services = world.huiyin.dispatcher["services"]
    async with world.huiyin.sessionmaker() as session, session.begin():
        citizen = await repo.get_or_create_person(session, world.citizen, "张三")
        await services.file_case(session, citizen, intake, world.clock())


# ---------------------------------------------------------------------- /healthz


async def test_healthz_is_ok_with_every_part(world: World, ops: Ops) -> None:
    status, report = await ops.health()
    assert status == 200, report
    assert report["status"] == "ok"
    assert report["database"]["ok"] is True
    assert report["database"]["latency_ms"] >= 0
    scheduler = report["scheduler"]
    assert scheduler["running"] is True and scheduler["alive"] is True
    assert scheduler["interval_s"] == world.huiyin.scan_interval
    assert scheduler["last_scan_age_s"] <= 3 * scheduler["interval_s"]
    assert set(report["outbox"]) == {"pending", "failed", "oldest_pending_age_s", "lag_s"}
    assert set(report["inbox"]) == {"waiting", "failed", "lag_s"}


async def test_healthz_is_503_down_without_the_database(
    world: World, ops: Ops, tmp_path: Path
) -> None:
    working = world.huiyin.sessionmaker
    # A SQLite file whose folder is a plain file: every connection fails at once.
    (tmp_path / "not-a-folder").write_text("")
    broken = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'not-a-folder' / 'db'}")
    world.huiyin.sessionmaker = make_sessionmaker(broken)
    try:
        status, report = await ops.health()
        samples = await ops.metrics()
    finally:
        world.huiyin.sessionmaker = working
        await broken.dispose()
    assert status == 503
    assert report["status"] == "down"
    assert report["database"]["ok"] is False and report["database"]["error"]
    assert report["outbox"] is None and report["inbox"] is None
    # /metrics still answers, with what this process knows.
    assert value(samples, "huiyin_database_up") == 0
    assert "huiyin_cases" not in samples
    assert "huiyin_outbox_sent_total" in samples

    status, report = await ops.health()
    assert (status, report["status"]) == (200, "ok")


async def test_healthz_is_503_down_when_the_scheduler_stops(world: World, ops: Ops) -> None:
    assert world.huiyin.scheduler is not None
    world.huiyin.scheduler.shutdown(wait=False)
    status, report = await ops.health()
    assert status == 503
    assert report["status"] == "down"
    assert report["scheduler"]["running"] is False
    assert value(await ops.metrics(), "huiyin_scheduler_up") == 0


async def test_healthz_is_503_starting_until_the_bot_starts(db_url: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=db_url, config_dir=DEFAULT_CONFIG_DIR
    )
    # Nothing talks to the Bot API before start(): no server behind this URL is needed.
    huiyin = await Huiyin.create(settings, token="42:TEST", api_url="http://127.0.0.1:9")
    try:
        async with (
            aiohttp.ClientSession() as http,
            serve_ops(huiyin, http, cache_seconds=0) as ops,
        ):
            status, report = await ops.health()
    finally:
        await huiyin.stop()
    assert status == 503
    assert report["status"] == "starting"
    assert report["database"]["ok"] is True


@pytest.mark.parametrize(
    ("next_in", "running", "alive"),
    [
        (30.0, True, True),  # due in half an interval
        (0.0, True, True),  # firing now
        (-120.0, True, True),  # late by two intervals: the last firing was three ago
        (-121.0, True, False),  # more than three intervals since the trigger fired
        (30.0, False, False),  # scheduler shut down
        (None, True, False),  # no job, or paused
    ],
)
def test_the_scan_is_alive_while_its_trigger_fires(
    next_in: float | None, running: bool, alive: bool
) -> None:
    now = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    next_run_at = None if next_in is None else now + dt.timedelta(seconds=next_in)
    health = scan_health(running=running, next_run_at=next_run_at, interval=60.0, now=now)
    assert health.alive is alive


# ---------------------------------------------------------------------- /metrics


async def test_metrics_count_cases_queue_and_handling(world: World, ops: Ops) -> None:
    await file(world, PETITION)
    await file(world, PETITION)
    await file(world, RECONSIDERATION)
    # Two messages for tomorrow: they stay queued while the sender sends the rest.
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    async with world.huiyin.sessionmaker() as session, session.begin():
        for n in range(2):
            await enqueue(session, world.citizen, f"later {n}", not_before=tomorrow)
    world.huiyin.sender.wake()
    await world.send(world.citizen, "/start")
    await world.bot_says(world.citizen)

    async def all_done_but_tomorrows() -> bool:
        samples = await ops.metrics()
        return (
            value(samples, "huiyin_outbox_queue_length") == 2
            and value(samples, "huiyin_inbox_queue_length") == 0
        )

    await eventually(all_done_but_tomorrows)
    samples = await ops.metrics()
    assert value(samples, "huiyin_database_up") == 1
    assert value(samples, "huiyin_scheduler_up") == 1
    assert value(samples, "huiyin_cases", state="routed", path="petition") == 2
    assert value(samples, "huiyin_cases", state="routed", path="reconsideration") == 1
    assert value(samples, "huiyin_cases", state="closed", path="petition") == 0
    assert sum(s.value for s in samples["huiyin_cases"]) == 3
    assert value(samples, "huiyin_overdue_deadlines") == 0
    assert value(samples, "huiyin_outbox_oldest_pending_seconds") >= 0
    assert value(samples, "huiyin_outbox_lag_seconds") == 0  # nothing due is waiting
    assert value(samples, "huiyin_outbox_sent_total") >= 3  # receipts and cards
    assert value(samples, "huiyin_outbox_errors_total") == 0
    assert value(samples, "huiyin_outbox_too_many_requests_total") == 0
    assert value(samples, "huiyin_outbox_failed_total") == 0
    assert value(samples, "huiyin_inbox_queue_length") == 0
    assert value(samples, "huiyin_inbox_lag_seconds") == 0
    assert value(samples, "huiyin_handler_seconds_count", update_type="message") >= 1
    assert value(samples, "huiyin_handler_seconds_count", update_type="callback_query") == 0

    _, report = await ops.health()
    assert report["outbox"]["pending"] == 2 and report["outbox"]["lag_s"] == 0


async def test_overdue_counts_open_duties_past_their_last_day(world: World, ops: Ops) -> None:
    await file(world, PETITION)
    await file(world, RECONSIDERATION)  # its application window is the citizen's, not a duty
    now = world.advance(days=120)
    samples = await ops.metrics()
    services = world.huiyin.dispatcher["services"]
    async with world.huiyin.sessionmaker() as session:
        supervisor = await repo.get_person_by_telegram(session, world.supervisor)
        assert supervisor is not None
        overdue = await services.overdue(session, supervisor, now)
    assert overdue  # the check below compares something
    assert value(samples, "huiyin_overdue_deadlines") == len(overdue)


async def test_metrics_are_read_once_per_cache_period(world: World) -> None:
    async with serve_ops(world.huiyin, world.http, cache_seconds=3600) as ops:
        before = await ops.metrics()
        await file(world, PETITION)
        after = await ops.metrics()
    assert value(before, "huiyin_cases", state="routed", path="petition") == 0
    assert value(after, "huiyin_cases", state="routed", path="petition") == 0


async def test_registries_are_per_bot(world: World, ops: Ops) -> None:
    # A second set of endpoints on the same bot (and any other bot in this process) has a
    # registry of its own: registering the same names twice would raise otherwise.
    async with serve_ops(world.huiyin, world.http, cache_seconds=0) as again:
        assert "huiyin_cases" in await again.metrics()


# ---------------------------------------------------------------------- HandlerTimer


async def test_the_timer_wraps_every_middleware_and_labels_by_update_type() -> None:
    dispatcher = Dispatcher()
    seen: list[str] = []

    async def earlier(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        seen.append("earlier")
        return await handler(event, data)

    dispatcher.update.outer_middleware(earlier)
    histogram = handler_histogram(CollectorRegistry())
    time_updates(dispatcher, HandlerTimer(histogram))
    time_updates(dispatcher, timer := HandlerTimer(histogram))  # again: replaces, not adds
    # aiogram's own (errors, user context, FSM) and ours, in their order, inside the timer.
    chain = list(dispatcher.update.outer_middleware)
    assert chain[0] is timer and chain[-1] is earlier
    assert sum(isinstance(m, HandlerTimer) for m in chain) == 1

    @dispatcher.message(F.text)
    async def on_text(message: Any) -> None:
        seen.append("handled")

    user = {"id": 1, "is_bot": False, "first_name": "张三"}
    chat = {"id": 1, "type": "private"}
    message = {"message_id": 1, "date": 0, "chat": chat, "from": user, "text": "hi"}
    updates = [
        {"update_id": 1, "message": message},
        {"update_id": 2, "callback_query": {"id": "1", "from": user, "chat_instance": "1"}},
        {"update_id": 3, "edited_message": {**message, "edit_date": 0}},
    ]
    bot = Bot("42:TEST")
    try:
        for update in updates:
            await dispatcher.feed_update(bot, Update.model_validate(update, context={"bot": bot}))
    finally:
        await bot.session.close()
    assert seen == ["earlier", "handled", "earlier", "earlier"]
    counts = {
        sample.labels["update_type"]: sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if sample.name == "huiyin_handler_seconds_count"
    }
    assert counts == {"message": 1, "callback_query": 1, "other": 1}
