"""Long polling against the sandbox: an update is stored before its offset confirms it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from aiogram import Bot
from sqlalchemy.exc import SQLAlchemyError

from bot.inbox import Backoff, InboxProcessor
from bot.polling import LongPolling
from tests.infra.conftest import Control, Database, eventually, serving

QUICK = Backoff(first=0.05, factor=1.0, maximum=0.05)


async def test_updates_are_confirmed_only_after_they_are_stored(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    texts = ("我要反映低保的问题", "补充一下", "谢谢")
    sent = [await control.send(citizen, text) for text in texts]
    poller = LongPolling(bot, db.sessionmaker)

    assert await poller.poll_once(wait=0) == 3
    assert [row.update_id for row in await db.inbox()] == sent
    # Stored, but Telegram still holds them until the next call's offset says otherwise.
    assert await control.pending_updates() == sent
    assert poller.offset == sent[-1] + 1

    assert await poller.poll_once(wait=0) == 0
    assert await control.pending_updates() == []


async def test_a_crash_after_storing_loses_nothing_and_doubles_nothing(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    sent = [await control.send(citizen, text) for text in ("第一条", "第二条")]
    crashed = LongPolling(bot, db.sessionmaker)
    await crashed.poll_once(wait=0)  # stored; the process dies before the next getUpdates
    calls: Counter[int] = Counter()

    async def handle(update: dict[str, Any]) -> None:
        calls[update["update_id"]] += 1

    processor = InboxProcessor(db.sessionmaker, handle, poll_interval=0.02)
    restarted = LongPolling(bot, db.sessionmaker, timeout=1, on_stored=processor.wake)

    async def caught_up() -> bool:
        return sum(calls.values()) == 2 and await control.pending_updates() == []

    async with serving(processor, restarted):
        await eventually(caught_up)

    # Telegram sent both again after the restart; the inbox kept one copy of each.
    assert calls == {sent[0]: 1, sent[1]: 1}
    assert [row.update_id for row in await db.inbox()] == sent


async def test_a_crash_before_storing_gets_the_update_again(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    update_id = await control.send(citizen, "我想申请政府信息公开")
    await db.drop_inbox()  # the database fails the store
    failing = LongPolling(bot, db.sessionmaker)

    with pytest.raises(SQLAlchemyError):
        await failing.poll_once(wait=0)

    assert failing.offset is None  # nothing was confirmed
    assert await control.pending_updates() == [update_id]
    await db.restore_inbox()
    restarted = LongPolling(bot, db.sessionmaker)
    assert await restarted.poll_once(wait=0) == 1
    assert [row.update_id for row in await db.inbox()] == [update_id]


async def test_server_errors_and_a_broken_database_are_waited_out(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    update_id = await control.send(citizen, "您好")
    await control.post(
        "/faults", {"kind": "error", "status": 502, "html": True, "method": "getUpdates"}
    )
    await control.post("/faults", {"kind": "error", "status": 500, "method": "getUpdates"})
    await db.drop_inbox()
    poller = LongPolling(bot, db.sessionmaker, timeout=1, backoff=QUICK)

    async def stored() -> bool:
        try:
            return [row.update_id for row in await db.inbox()] == [update_id]
        except SQLAlchemyError:
            return False

    async def faults_spent_and_store_tried() -> bool:
        stats = await control.get("/stats")
        return bool(stats["faults_injected"] == 2 and stats["calls"]["getUpdates"] >= 4)

    async with serving(poller):
        await eventually(faults_spent_and_store_tried)
        assert await control.pending_updates() == [update_id]  # not confirmed meanwhile
        await db.restore_inbox()
        await eventually(stored)

    assert await control.pending_updates() == []  # stop() confirmed what was stored


async def test_stop_ends_a_long_poll_at_once(bot: Bot, control: Control, db: Database) -> None:
    poller = LongPolling(bot, db.sessionmaker, timeout=30)
    task = asyncio.create_task(poller.run())

    async def polling() -> bool:
        return bool((await control.get("/stats"))["calls"].get("getUpdates"))

    await eventually(polling)
    poller.stop()
    await asyncio.wait_for(task, 5)  # not the 30 s of the long poll


async def test_cancellation_propagates(bot: Bot, control: Control, db: Database) -> None:
    poller = LongPolling(bot, db.sessionmaker, timeout=30)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.1)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
