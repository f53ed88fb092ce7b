"""The inbox: stored once, handled in order per person, retried, never lost, never doubled."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import Counter, defaultdict
from typing import Any

import pytest

from bot.db.models import InboxUpdate
from bot.inbox import Backoff, InboxProcessor, ordering_key, retry_failed, store_updates
from tests.infra.conftest import Database, eventually, serving

CITIZEN_A = 7_100_000_001
CITIZEN_B = 7_100_000_002
GROUP = -1_002_000_000_001
QUICK = Backoff(first=0.05, factor=1.0, maximum=0.05)


def message(update_id: int, user_id: int, text: str = "您好") -> dict[str, Any]:
    person = {"id": user_id, "is_bot": False, "first_name": "张三"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_760_000_000,
            "text": text,
            "from": person,
            "chat": {"id": user_id, "type": "private", "first_name": "张三"},
        },
    }


def who(update: dict[str, Any]) -> int:
    return int(update["message"]["from"]["id"])


async def test_replayed_updates_are_stored_once(db: Database) -> None:
    first = await store_updates(db.sessionmaker, [message(1, CITIZEN_A), message(2, CITIZEN_A)])
    # Telegram sends 2 again (it was not confirmed) together with a new one.
    replay = await store_updates(
        db.sessionmaker, [message(2, CITIZEN_A, "改过的"), message(3, CITIZEN_B)]
    )

    assert (first, replay) == (2, 1)
    rows = await db.inbox()
    assert [(r.update_id, r.ordering_key, r.status) for r in rows] == [
        (1, CITIZEN_A, "new"),
        (2, CITIZEN_A, "new"),
        (3, CITIZEN_B, "new"),
    ]
    assert rows[1].payload == message(2, CITIZEN_A)  # the first copy stays


async def test_what_no_database_takes_is_cleaned_before_storing(db: Database) -> None:
    """NUL (PostgreSQL's text and json refuse it) is dropped and a lone surrogate replaced,
    so such an update is stored and handled like any other instead of failing every time."""
    hostile = message(1, CITIZEN_A, "低保\x00申请\ud800")
    hostile["message"]["from"]["first_name"] = "张\x00某"
    assert await store_updates(db.sessionmaker, [hostile]) == 1

    (row,) = await db.inbox()
    assert row.payload["message"]["text"] == "低保申请\ufffd"
    assert row.payload["message"]["from"]["first_name"] == "张某"
    assert row.ordering_key == CITIZEN_A


def test_ordering_key_is_the_person_then_the_chat() -> None:
    person = {"id": CITIZEN_A, "is_bot": False, "first_name": "张三"}
    group = {"id": GROUP, "type": "supergroup", "title": "社会救助科"}
    press = {
        "id": "1",
        "from": person,
        "chat_instance": "9",
        "data": "accept",
        "message": {"message_id": 5, "date": 0, "chat": group},
    }

    assert ordering_key(message(1, CITIZEN_A)) == CITIZEN_A
    assert (
        ordering_key({"update_id": 2, "edited_message": message(2, CITIZEN_B)["message"]})
        == CITIZEN_B
    )
    assert ordering_key({"update_id": 3, "callback_query": press}) == CITIZEN_A
    assert (
        ordering_key({"update_id": 4, "channel_post": {"message_id": 1, "date": 0, "chat": group}})
        == GROUP
    )
    assert ordering_key({"update_id": 5, "poll": {"id": "p", "question": "?"}}) is None


@pytest.mark.parametrize("workers", [1, 2])
async def test_each_person_in_order_people_in_parallel(db: Database, workers: int) -> None:
    # Two citizens writing at once: their updates interleave in update_id order.
    updates = [message(n, CITIZEN_A if n % 2 else CITIZEN_B) for n in range(1, 21)]
    await store_updates(db.sessionmaker, updates)
    handled: dict[int, list[int]] = defaultdict(list)
    calls: Counter[int] = Counter()
    in_progress: Counter[int] = Counter()
    most_at_once = 0
    overlaps: list[int] = []

    async def handle(update: dict[str, Any]) -> None:
        nonlocal most_at_once
        person = who(update)
        calls[update["update_id"]] += 1
        in_progress[person] += 1
        if in_progress[person] > 1:
            overlaps.append(update["update_id"])
        most_at_once = max(most_at_once, sum(in_progress.values()))
        # A's handlers are slower than B's, so any reordering would show.
        await asyncio.sleep(0.02 if person == CITIZEN_A else 0.005)
        handled[person].append(update["update_id"])
        in_progress[person] -= 1

    processors = [
        InboxProcessor(db.sessionmaker, handle, concurrency=4, poll_interval=0.02)
        for _ in range(workers)
    ]

    async def all_handled() -> bool:
        return sum(len(ids) for ids in handled.values()) == 20

    async with serving(*processors):
        await eventually(all_handled)

    assert handled[CITIZEN_A] == list(range(1, 21, 2))
    assert handled[CITIZEN_B] == list(range(2, 21, 2))
    assert overlaps == []  # one person's updates never ran concurrently
    assert set(calls.values()) == {1}  # and no update ran twice
    assert most_at_once == 2  # but the two people were served side by side
    assert {row.status for row in await db.inbox()} == {"done"}


async def test_failing_update_is_retried_then_left_failed(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await store_updates(
        db.sessionmaker,
        [
            message(1, CITIZEN_A),
            message(2, CITIZEN_A, "坏的"),
            message(3, CITIZEN_A),
            message(4, CITIZEN_B),
        ],
    )
    handled: list[int] = []
    broken = {2}

    async def handle(update: dict[str, Any]) -> None:
        handled.append(update["update_id"])
        if update["update_id"] in broken:
            raise RuntimeError("数据库里没有这个单位")

    processor = InboxProcessor(
        db.sessionmaker, handle, max_attempts=3, backoff=QUICK, poll_interval=0.02
    )

    async def settled() -> bool:
        return all(row.status in ("done", "failed") for row in await db.inbox())

    with caplog.at_level(logging.WARNING, logger="bot.inbox"):
        async with serving(processor):
            await eventually(settled)

    rows = {row.update_id: row for row in await db.inbox()}
    assert (rows[2].status, rows[2].attempts) == ("failed", 3)
    assert "RuntimeError: 数据库里没有这个单位" in (rows[2].error or "")
    assert [rows[n].status for n in (1, 3, 4)] == ["done"] * 3
    # A's later update waited until the broken one was given up: order is kept.
    assert [n for n in handled if n != 4] == [1, 2, 2, 2, 3]
    assert (processor.stats.retries, processor.stats.failed, processor.stats.done) == (2, 1, 3)
    given_up = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage()[:34] for r in given_up] == ["inbox: update 2 failed 3 times, gi"]

    # Nothing is lost: once the cause is fixed, the failed update can be run again.
    broken.clear()
    assert await retry_failed(db.sessionmaker, [2]) == 1
    async with serving(processor):
        await eventually(settled)
    assert (await db.inbox())[1].status == "done"


async def test_a_flaky_update_succeeds_on_retry(db: Database) -> None:
    await store_updates(db.sessionmaker, [message(1, CITIZEN_A)])
    failures = iter([ConnectionError("下游超时"), ConnectionError("下游超时")])

    async def handle(update: dict[str, Any]) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    processor = InboxProcessor(db.sessionmaker, handle, backoff=QUICK, poll_interval=0.02)

    async def done() -> bool:
        return (await db.inbox())[0].status == "done"

    async with serving(processor):
        await eventually(done)

    row = (await db.inbox())[0]
    assert (row.attempts, row.error, row.lease_until) == (3, None, None)


async def test_a_crashed_workers_update_is_retaken_after_its_lease(db: Database) -> None:
    await store_updates(db.sessionmaker, [message(1, CITIZEN_A)])
    started = asyncio.Event()

    async def hangs(update: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    crashed = InboxProcessor(db.sessionmaker, hangs, lease=1.5, poll_interval=0.02)
    task = asyncio.create_task(crashed.run())
    await started.wait()
    task.cancel()  # the process dies mid-update: no outcome is written
    with pytest.raises(asyncio.CancelledError):
        await task

    handled: list[int] = []

    async def handle(update: dict[str, Any]) -> None:
        handled.append(update["update_id"])

    async def retaken() -> bool:
        return handled == [1]

    survivor = InboxProcessor(db.sessionmaker, handle, lease=1.5, poll_interval=0.02)
    async with serving(survivor):
        await asyncio.sleep(0.2)
        assert handled == []  # still leased by the dead worker: not taken early
        await eventually(retaken)

    row = (await db.inbox())[0]
    assert (row.status, row.attempts) == ("done", 2)


async def test_a_slow_handler_keeps_its_lease(db: Database) -> None:
    await store_updates(db.sessionmaker, [message(1, CITIZEN_A)])
    calls: list[int] = []

    async def slow(update: dict[str, Any]) -> None:
        calls.append(update["update_id"])
        await asyncio.sleep(2.5)  # over two lease periods

    workers = [
        InboxProcessor(db.sessionmaker, slow, lease=1.0, poll_interval=0.05) for _ in range(2)
    ]

    async def done() -> bool:
        return (await db.inbox())[0].status == "done"

    async with serving(*workers):
        await eventually(done)

    assert calls == [1]
    assert (await db.inbox())[0].attempts == 1


async def test_an_update_whose_last_attempt_crashed_is_given_up(db: Database) -> None:
    stuck = message(1, CITIZEN_A)
    await store_updates(db.sessionmaker, [stuck, message(2, CITIZEN_A)])
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    async with db.sessionmaker() as session, session.begin():
        row = await session.get(InboxUpdate, 1)
        assert row is not None
        row.attempts, row.lease_until = 2, past  # its worker died during attempt 2 of 2
    handled: list[int] = []

    async def handle(update: dict[str, Any]) -> None:
        handled.append(update["update_id"])

    processor = InboxProcessor(db.sessionmaker, handle, max_attempts=2, poll_interval=0.02)

    async def settled() -> bool:
        return [r.status for r in await db.inbox()] == ["failed", "done"]

    async with serving(processor):
        await eventually(settled)

    assert handled == [2]
    first = (await db.inbox())[0]
    assert "lease expired" in (first.error or "")
