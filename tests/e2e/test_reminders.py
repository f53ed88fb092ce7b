"""Reminders through the sandbox: the scan (as the scheduler runs it) posts in the case's
topic of the unit's group, tells the supervisors privately when it escalates, and the
digest reaches the group with a link to the topic."""

from __future__ import annotations

import datetime as dt

from tests.e2e.conftest import World
from tests.e2e.test_staff import petition

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def at(month: int, day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, 0, tzinfo=SHANGHAI)


async def test_reminders_reach_the_topic_and_escalate_to_supervisors(world: World) -> None:
    """Filed Monday 2 March: 告知是否受理 is due Tuesday 17 March (15 days, 信访工作条例
    Art 23). The unit is warned in the case's topic 3 working days before (Thu 12 March);
    two working days after the due day the supervisors hear of it (Thu 19 March)."""
    number, desk = await petition(world)

    world.clock.now = at(3, 12, 9)
    await world.huiyin.scan()
    warning = await desk.says(lambda t: "期限提醒" in t)
    assert number in warning["text"] and "2026-03-17" in warning["text"]

    world.clock.now = at(3, 13, 9)  # Friday: the digest lists it with a link to its topic
    await world.huiyin.scan()
    chat = world.unit("xixiu")["chat_id"]
    digest = await world.bot_says(chat, lambda m: "每日期限摘要" in (m["text"] or ""))
    assert number in digest["text"] and digest.get("message_thread_id") is None

    world.clock.now = at(3, 19, 9)
    await world.huiyin.scan()
    escalation = await world.bot_says(world.supervisor, lambda m: "二级" in (m["text"] or ""))
    assert number in escalation["text"] and "西秀区民政局" in escalation["text"]
    link = escalation["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert link == f"https://t.me/c/{str(chat)[4:]}/{desk.thread}"
