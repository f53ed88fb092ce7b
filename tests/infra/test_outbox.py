"""The outbox and its sender, against the sandbox's flood limits and injected faults."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter

from bot.db.models import OutboxMessage
from bot.inbox import Backoff
from bot.outbox import OutboxItem, OutboxSender, Rate, SendLimits, enqueue
from tests.infra.conftest import Control, Database, eventually, serving

QUICK = Backoff(first=0.05, factor=1.0, maximum=0.05)
# Far above the sandbox's defaults, for tests that are not about limits.
UNLIMITED = SendLimits(overall=Rate(1000, 1), private_chat=Rate(1000, 1), group_chat=Rate(1000, 1))


async def put(db: Database, chat_id: int, text: str | None = None, **options: Any) -> int:
    async with db.sessionmaker() as session, session.begin():
        row_id = await enqueue(session, chat_id, text, **options)
    assert row_id is not None
    return row_id


async def settled(db: Database) -> bool:
    return all(row.status != "pending" for row in await db.outbox())


def sender(db: Database, bot: Bot, limits: SendLimits = UNLIMITED, **options: Any) -> OutboxSender:
    options.setdefault("backoff", QUICK)
    options.setdefault("poll_interval", 0.02)
    return OutboxSender(db.sessionmaker, bot, limits, **options)


# Enqueueing -----------------------------------------------------------------------------------


async def test_a_dedupe_key_queues_one_message(db: Database) -> None:
    key = "notify:case:42:accepted"
    async with db.sessionmaker() as session, session.begin():
        first = await enqueue(session, 7_100_000_001, "您的诉求已受理", dedupe_key=key)
        again = await enqueue(session, 7_100_000_001, "您的诉求已受理", dedupe_key=key)
    async with db.sessionmaker() as session, session.begin():
        replayed = await enqueue(session, 7_100_000_001, "您的诉求已受理", dedupe_key=key)
        plain = [await enqueue(session, 7_100_000_001, "同样的话") for _ in range(2)]

    assert isinstance(first, int)
    assert (again, replayed) == (None, None)
    assert None not in plain
    assert len(await db.outbox()) == 3


async def test_a_message_exists_only_if_its_transaction_commits(db: Database) -> None:
    async with db.sessionmaker() as session:
        await session.begin()
        await enqueue(session, 7_100_000_001, "受理告知")
        await session.rollback()  # the change it reported did not happen

    assert await db.outbox() == []


async def test_enqueue_refuses_what_cannot_be_sent(db: Database) -> None:
    async with db.sessionmaker() as session, session.begin():
        with pytest.raises(ValueError, match="unknown Bot API method"):
            await enqueue(session, 1, "x", method="sendTelegram")
        with pytest.raises(ValueError, match="naive datetime"):
            await enqueue(session, 1, "x", not_before=dt.datetime(2026, 1, 5, 9))
        with pytest.raises(ValueError, match="text"):
            await enqueue(session, 1)  # sendMessage without text
        with pytest.raises(ValueError, match="reply_markup"):
            await enqueue(session, 1, "x", payload={"reply_markup": "评价按钮"})
    assert await db.outbox() == []


# Sending --------------------------------------------------------------------------------------


async def test_methods_are_sent_and_their_message_ids_recorded(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    staff = await control.user("王科员")
    group = await control.forum([staff])
    keyboard = {"inline_keyboard": [[{"text": "评价", "callback_data": "rate:42"}]]}
    notice = await put(db, citizen, "您的诉求已受理", payload={"reply_markup": keyboard})
    topic = await put(db, group, method="createForumTopic", payload={"name": "HY-42 低保"})
    later = await put(
        db, citizen, "稍后发送", not_before=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )
    worker = sender(db, bot)

    async with serving(worker):

        async def first_two_sent() -> bool:
            return [row.status for row in await db.outbox()] == ["sent", "sent", "pending"]

        await eventually(first_two_sent)
        rows = {row.id: row for row in await db.outbox()}
        thread_id = rows[topic].result_message_id
        assert thread_id is not None
        card = await put(db, group, "新工单 HY-42", thread_id=thread_id)
        edit = await put(
            db,
            citizen,
            "您的诉求已受理（已更新）",
            method="editMessageText",
            payload={"message_id": rows[notice].result_message_id},
        )

        async def all_due_sent() -> bool:
            return {row.id for row in await db.outbox() if row.status == "sent"} == {
                notice,
                topic,
                card,
                edit,
            }

        await eventually(all_due_sent)

    rows = {row.id: row for row in await db.outbox()}
    assert rows[later].status == "pending"  # not before its time
    assert await control.texts(citizen) == ["您的诉求已受理（已更新）"]
    assert await control.texts(group, thread=thread_id) == ["新工单 HY-42"]
    assert rows[card].result_message_id is not None
    assert rows[card].sent_at is not None
    assert worker.stats.sent == 4


async def test_a_burst_keeps_every_flood_limit(bot: Bot, control: Control, db: Database) -> None:
    # The limits have teeth: past a limiter, a second message at 1 per 100 s meets a 429.
    bystander = await control.user("对照")
    await control.post("/limits", {"private_per_second": 0.01, "private_burst": 1})
    await bot.send_message(bystander, "直接发送")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(bystander, "再次直接发送")
    # The sandbox refuses what Telegram would, scaled down to keep the test short: 10/s per
    # private chat, 240/min per group, 30/s overall, with small bursts for network jitter.
    await control.post(
        "/limits",
        {
            "private_per_second": 10,
            "private_burst": 3,
            "group_per_minute": 240,
            "group_burst": 3,
            "global_per_second": 30,
            "global_burst": 5,
        },
    )
    await control.post("/stats/reset")
    citizens = [await control.user(f"市民{n}") for n in range(3)]
    group = await control.forum([citizens[0]])
    for n in range(6):
        for chat in (*citizens, group):
            await put(db, chat, f"第{n}条")
    # The sender keeps a margin under each sandbox limit, without bursts.
    limits = SendLimits(
        overall=Rate(1, 1 / 24), private_chat=Rate(1, 1 / 8), group_chat=Rate(1, 60 / 200)
    )
    worker = sender(db, bot, limits)

    async with serving(worker):
        await eventually(lambda: settled(db))

    stats = await control.get("/stats")
    assert stats["too_many_requests"] == 0, stats
    assert worker.stats.too_many_requests == 0
    assert stats["calls"]["sendMessage"] == 24, stats
    for chat in (*citizens, group):
        assert await control.texts(chat) == [f"第{n}条" for n in range(6)]  # in order


async def test_retry_after_is_honoured_and_the_message_sent_once(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    await control.post("/faults", {"kind": "flood", "retry_after": 1, "method": "sendMessage"})
    await put(db, citizen, "您的申请已收到")
    worker = sender(db, bot)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async with serving(worker):
        await eventually(lambda: settled(db))

    assert loop.time() - started >= 1.0  # it waited the retry_after Telegram asked for
    assert await control.texts(citizen) == ["您的申请已收到"]
    assert (await control.get("/stats"))["calls"]["sendMessage"] == 2
    assert (worker.stats.too_many_requests, worker.stats.retries, worker.stats.sent) == (1, 1, 1)


async def test_a_429_holds_up_only_its_own_chat(bot: Bot, control: Control, db: Database) -> None:
    first, second = await control.user("甲"), await control.user("乙")
    await control.post("/faults", {"kind": "flood", "retry_after": 3, "method": "sendMessage"})
    await put(db, first, "给甲")
    await put(db, second, "给乙")
    worker = sender(db, bot)

    async def one_sent() -> bool:
        return [row.status for row in await db.outbox()].count("sent") == 1

    async with serving(worker):
        await eventually(one_sent, within=2.0)  # well inside the 3 s the other chat waits
        await eventually(lambda: settled(db))

    assert await control.texts(first) == ["给甲"]
    assert await control.texts(second) == ["给乙"]


async def test_server_errors_are_retried_and_the_message_delivered_once(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    await control.post("/faults", {"kind": "error", "status": 500, "method": "sendMessage"})
    await control.post(
        "/faults", {"kind": "error", "status": 502, "html": True, "method": "sendMessage"}
    )
    row_id = await put(db, citizen, "您的诉求已办结")
    worker = sender(db, bot)

    async with serving(worker):
        await eventually(lambda: settled(db))

    assert await control.texts(citizen) == ["您的诉求已办结"]
    assert (await control.get("/stats"))["calls"]["sendMessage"] == 3
    row = {row.id: row for row in await db.outbox()}[row_id]
    assert (row.status, row.attempts) == ("sent", 2)
    assert (worker.stats.errors, worker.stats.retries, worker.stats.sent) == (2, 2, 1)


async def test_server_errors_without_end_leave_the_message_failed(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    await control.post(
        "/faults", {"kind": "error", "status": 503, "count": 10, "method": "sendMessage"}
    )
    await put(db, citizen, "您好")
    worker = sender(db, bot, max_attempts=3, retry_for=0)  # no outage window: 3 tries

    async with serving(worker):
        await eventually(lambda: settled(db))

    [row] = await db.outbox()
    assert (row.status, row.attempts) == ("failed", 3)
    assert "Service Unavailable" in (row.error or "")
    assert await control.texts(citizen) == []


async def test_a_blocked_user_fails_the_message_and_is_reported(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    await control.post(f"/users/{citizen}/block")
    await put(db, citizen, "请对本次办理进行评价")
    blocked: list[int] = []

    async def on_blocked(chat_id: int) -> None:
        blocked.append(chat_id)

    worker = sender(db, bot, on_blocked=on_blocked)
    async with serving(worker):
        await eventually(lambda: settled(db))

    [row] = await db.outbox()
    assert row.status == "failed"
    assert "bot was blocked by the user" in (row.error or "")
    assert blocked == [citizen]
    assert worker.stats.blocked == 1


@pytest.mark.parametrize("recreate", [True, False])
async def test_a_deleted_topic_is_handed_back(
    bot: Bot, control: Control, db: Database, recreate: bool
) -> None:
    staff = await control.user("王科员")
    group = await control.forum([staff])
    old = await bot.create_forum_topic(group, "HY-7 殡葬")
    await bot.delete_forum_topic(group, old.message_thread_id)
    row_id = await put(db, group, "市民补充了材料", thread_id=old.message_thread_id)
    asked: list[int] = []

    async def new_topic(item: OutboxItem) -> int | None:
        asked.append(item.id)
        if not recreate:
            return None
        topic = await bot.create_forum_topic(item.chat_id, "HY-7 殡葬")
        return topic.message_thread_id

    worker = sender(db, bot, on_thread_not_found=new_topic)
    async with serving(worker):
        await eventually(lambda: settled(db))

    row = {row.id: row for row in await db.outbox()}[row_id]
    assert asked == [row_id]
    if recreate:
        assert row.status == "sent"
        assert row.thread_id is not None
        assert row.thread_id != old.message_thread_id
        assert await control.texts(group, thread=row.thread_id) == ["市民补充了材料"]
    else:
        assert row.status == "failed"
        assert "message thread not found" in (row.error or "")


async def test_two_senders_send_each_message_once_in_order(
    bot: Bot, control: Control, db: Database
) -> None:
    await control.post("/limits", {"enabled": False})
    citizens = [await control.user(f"市民{n}") for n in range(4)]
    for n in range(5):
        for chat in citizens:
            await put(db, chat, f"第{n}条")
    workers = [sender(db, bot), sender(db, bot)]

    async with serving(*workers):
        await eventually(lambda: settled(db))

    assert (await control.get("/stats"))["calls"]["sendMessage"] == 20
    for chat in citizens:
        assert await control.texts(chat) == [f"第{n}条" for n in range(5)]
    assert sum(worker.stats.sent for worker in workers) == 20


async def test_a_crashed_senders_message_is_sent_after_its_lease(
    bot: Bot, control: Control, db: Database
) -> None:
    citizen = await control.user()
    row_id = await put(db, citizen, "您好")
    async with db.sessionmaker() as session, session.begin():
        row = await session.get(OutboxMessage, row_id)
        assert row is not None
        # Claimed by a sender that died before calling Telegram.
        row.lease_until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    worker = sender(db, bot)

    async with serving(worker):
        await asyncio.sleep(0.2)
        assert await control.texts(citizen) == []  # its lease still holds
        await eventually(lambda: settled(db))

    assert await control.texts(citizen) == ["您好"]
