"""The sender against the sandbox's default Telegram limits, judged where Telegram counts:
by the sandbox's own clock at each message's arrival (GET /stats/sends).

Bot FAQ ("My bot is hitting limits"): no more than one message per second in a chat, 20 per
minute in a group, about 30 per second in all. Held to the letter here: in every window,
sliding, with no slack.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot

from bot.outbox import OutboxSender, SendLimits, enqueue
from tests.infra.conftest import Control, Database, eventually, serving

PER_SECOND_OVERALL = 30
PER_MINUTE_IN_A_GROUP = 20
# 2,000 messages at once. 30 private chats at 1 a second, with the groups, ask for more than
# 30 a second: the overall limit binds, and each chat's own limit holds it back too. With
# ~100 chats, the overall queue (first come, first served) would give every chat a turn only
# every 3-4 s: no chat's own limit would bind, and the groups would stretch the burst. A
# group's 21 messages need over a minute at 20 a minute, about as long as the rest take at
# 30 a second, so the burst lasts little more than the 67 s that 30 a second allows.
PRIVATE_CHATS, GROUPS, PER_GROUP, TOTAL = 30, 10, 21, 2000


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about timing at the Bot API, which the database does not
    change, and the burst takes over a minute."""
    return f"sqlite+aiosqlite:///{tmp_path / 'huiyin.sqlite3'}"


def most_within(times: list[float], seconds: float) -> int:
    """The most of ``times`` (sorted) that fall in any window [t, t + seconds)."""
    return max(
        (bisect.bisect_left(times, start + seconds) - i for i, start in enumerate(times)),
        default=0,
    )


async def put(db: Database, chat_id: int, text: str) -> None:
    async with db.sessionmaker() as session, session.begin():
        assert await enqueue(session, chat_id, text) is not None


async def settled(db: Database) -> bool:
    return all(row.status != "pending" for row in await db.outbox())


async def sends_by_chat(control: Control) -> dict[int, list[dict[str, Any]]]:
    by_chat: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for send in await control.get("/stats/sends"):
        by_chat[send["chat_id"]].append(send)
    return by_chat


async def test_a_burst_of_2000_keeps_every_limit_in_every_window(
    bot: Bot, control: Control, db: Database
) -> None:
    citizens = [await control.user(f"市民{n}") for n in range(PRIVATE_CHATS)]
    groups = [await control.forum([citizens[n]], f"科室{n}") for n in range(GROUPS)]
    planned = dict.fromkeys(groups, PER_GROUP)
    for n, citizen in enumerate(citizens):
        share, extra = divmod(TOTAL - GROUPS * PER_GROUP, PRIVATE_CHATS)
        planned[citizen] = share + (n < extra)
    assert sum(planned.values()) == TOTAL
    async with db.sessionmaker() as session, session.begin():
        for n in range(max(planned.values())):
            for chat, count in planned.items():
                if n < count:
                    await enqueue(session, chat, f"第{n}条")
    worker = OutboxSender(db.sessionmaker, bot, SendLimits())

    async def all_done() -> bool:
        return worker.stats.sent + worker.stats.failed >= TOTAL

    async with serving(worker):
        await eventually(all_done, within=3 * TOTAL / PER_SECOND_OVERALL)

    # Not one 429, seen from either end; each message delivered once, in order.
    stats = await control.get("/stats")
    assert stats["too_many_requests"] == 0, stats
    assert stats["calls"]["sendMessage"] == TOTAL, stats
    assert (worker.stats.too_many_requests, worker.stats.sent, worker.stats.failed) == (
        0,
        TOTAL,
        0,
    )
    assert {row.status for row in await db.outbox()} == {"sent"}
    for chat, count in planned.items():
        assert await control.texts(chat) == [f"第{n}条" for n in range(count)], chat
    # Every limit, in every window, on the sandbox's clock.
    by_chat = await sends_by_chat(control)
    assert {chat: len(sends) for chat, sends in by_chat.items()} == planned
    arrivals = sorted(send["at"] for sends in by_chat.values() for send in sends)
    assert most_within(arrivals, 1.0) <= PER_SECOND_OVERALL
    for citizen in citizens:
        times = [send["at"] for send in by_chat[citizen]]
        assert most_within(times, 1.0) == 1, (citizen, times)
    for group in groups:
        times = [send["at"] for send in by_chat[group]]
        assert most_within(times, 60.0) <= PER_MINUTE_IN_A_GROUP, (group, times)


async def test_a_429_pauses_its_chat_for_retry_after_while_others_go_on(
    bot: Bot, control: Control, db: Database
) -> None:
    # test_outbox.py covers an injected 429 (/faults) by the test's own clock; this one is the
    # sandbox's flood limit answering it, timed where Telegram counts.
    # The sandbox allows the group one message per 6 s, with no burst; the sender's default
    # is one per 3 s, so its second message meets a 429 with retry_after 3 (6 s less the 3
    # already waited, rounded up as Telegram does).
    await control.post("/limits", {"group_per_minute": 10, "group_burst": 1})
    staff, citizen = await control.user("王科员"), await control.user("张三")
    group = await control.forum([staff])
    await put(db, group, "新工单 HY-1")
    await put(db, group, "新工单 HY-2")
    for n in range(8):
        await put(db, citizen, f"第{n}条")
    worker = OutboxSender(db.sessionmaker, bot, SendLimits())

    async with serving(worker):
        await eventually(lambda: settled(db))

    by_chat = await sends_by_chat(control)
    [refused] = [send for send in by_chat[group] if send["retry_after"] is not None]
    retry_after = refused["retry_after"]
    assert retry_after == 3
    admitted = [send["at"] for send in by_chat[group] if send["retry_after"] is None]
    assert len(admitted) == 2
    assert admitted[1] >= refused["at"] + retry_after  # waited as long as told, on arrival
    meanwhile = [
        send["at"]
        for send in by_chat[citizen]
        if refused["at"] < send["at"] < refused["at"] + retry_after
    ]
    assert len(meanwhile) >= 2  # the citizen's messages went on, one a second
    # Delivered once each, in order; the 429 was the only one, as both ends saw it.
    assert await control.texts(group) == ["新工单 HY-1", "新工单 HY-2"]
    assert await control.texts(citizen) == [f"第{n}条" for n in range(8)]
    stats = await control.get("/stats")
    assert (stats["too_many_requests"], stats["calls"]["sendMessage"]) == (1, 11)
    assert (worker.stats.too_many_requests, worker.stats.retries, worker.stats.sent) == (
        1,
        1,
        10,
    )
