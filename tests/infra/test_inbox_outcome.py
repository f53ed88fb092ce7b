"""An update's outcome is written once: in the handler's own transaction (bot/middlewares.py),
not again by the inbox processor; updates the middleware turns away still end done."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import Message
from sqlalchemy import event

from bot.inbox import InboxProcessor, store_updates
from bot.middlewares import UpdateContext
from tests.infra.conftest import Database, eventually, serving
from tests.infra.test_inbox import CITIZEN_A, QUICK, message

CHANNEL = -1_003_000_000_001


def channel_post(update_id: int) -> dict[str, Any]:
    chat = {"id": CHANNEL, "type": "channel", "title": "民政局公告"}
    return {
        "update_id": update_id,
        "channel_post": {
            "message_id": update_id,
            "date": 1_760_000_000,
            "text": "通知",
            "chat": chat,
        },
    }


@contextmanager
def outcome_writes(db: Database) -> Iterator[list[str]]:
    """The statements that write an inbox row's status (not the claims' lease updates)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE inbox SET status") and "attempts" not in statement:
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


def dispatcher_for(db: Database, handled: Counter[int]) -> Dispatcher:
    dispatcher = Dispatcher()
    dispatcher.update.outer_middleware(UpdateContext(db.sessionmaker))
    router = Router(name=__name__)

    @router.message(F.text)
    async def on_text(message: Message) -> None:
        handled[message.message_id] += 1

    dispatcher.include_router(router)
    return dispatcher


async def all_done(db: Database, count: int) -> bool:
    rows = await db.inbox()
    return len(rows) == count and all(row.status == "done" for row in rows)


async def test_each_outcome_is_written_once_refusals_included(db: Database) -> None:
    handled: Counter[int] = Counter()
    dispatcher = dispatcher_for(db, handled)
    bot = Bot("123456:TEST")

    async def handle(update: dict[str, Any]) -> None:
        await dispatcher.feed_raw_update(bot, update)

    await store_updates(
        db.sessionmaker, [message(1, CITIZEN_A), message(2, CITIZEN_A), channel_post(3)]
    )
    processor = InboxProcessor(db.sessionmaker, handle, poll_interval=0.02)
    with outcome_writes(db) as writes:
        async with serving(processor):
            await eventually(lambda: all_done(db, 3))

    assert handled == Counter({1: 1, 2: 1})
    # The two messages: marked done by the middleware, in the handler's transaction. The
    # channel post (no person behind it, refused before any transaction): by the processor.
    assert len(writes) == 3, writes
    assert processor.stats.done == 3
    rows = await db.inbox()
    assert [(row.attempts, row.error, row.lease_until) for row in rows] == [(1, None, None)] * 3


async def test_an_error_after_the_handlers_commit_leaves_the_update_done(db: Database) -> None:
    """The commit went through but the caller saw an error (e.g. the connection dropped in
    the commit's reply): the row stays done, and the update is not handled again."""
    handled: Counter[int] = Counter()
    dispatcher = dispatcher_for(db, handled)
    bot = Bot("123456:TEST")
    failures = 0

    async def handle(update: dict[str, Any]) -> None:
        nonlocal failures
        await dispatcher.feed_raw_update(bot, update)
        failures += 1
        raise ConnectionResetError("the commit's reply was lost")

    await store_updates(db.sessionmaker, [message(1, CITIZEN_A)])
    processor = InboxProcessor(db.sessionmaker, handle, backoff=QUICK, poll_interval=0.02)
    async with serving(processor):
        await eventually(lambda: all_done(db, 1))

        async def retry_recorded() -> bool:
            return processor.stats.retries == 1

        await eventually(retry_recorded)
        # Claim rounds well past the retry time (QUICK: 0.05 s): a row overwritten as
        # failed would be claimed and handled again by now.
        for _ in range(10):
            processor.wake()
            await asyncio.sleep(0.05)

    assert (failures, handled) == (1, Counter({1: 1}))
    [row] = await db.inbox()
    assert (row.status, row.attempts, row.error) == ("done", 1, None)
