"""Flood limits, blocked users and injected faults surface as aiogram's own exceptions."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from tests.sandbox.conftest import Control


async def test_private_chat_flood_answers_retry_after(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    # One message per 100 s and no burst: the second send must wait, whatever the clock does.
    await control.post("/limits", {"private_per_second": 0.01, "private_burst": 1})

    await bot.send_message(citizen, "第一条")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(citizen, "第二条")

    assert caught.value.retry_after == 100
    assert "Too Many Requests: retry after 100" in caught.value.message
    stats = await control.get("/stats")
    assert stats["too_many_requests"] == 1
    assert stats["calls"]["sendMessage"] == 2


async def test_group_limit_counts_per_minute(bot: Bot, control: Control) -> None:
    staff = await control.user()
    group = await control.forum([staff])
    await control.post("/limits", {"group_per_minute": 2, "group_burst": 2})

    await bot.send_message(group, "一")
    await bot.send_message(group, "二")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(group, "三")

    assert caught.value.retry_after == 30  # one token every 30 s at 2/min


async def test_limits_switch_off(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    await control.post("/limits", {"enabled": False, "private_burst": 1})

    for n in range(5):
        await bot.send_message(citizen, f"第{n}条")

    assert len(await control.get(f"/chats/{citizen}/messages")) == 5


async def test_blocked_user_is_forbidden(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    await control.post(f"/users/{citizen}/block")

    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(citizen, "您好")

    updates = await bot.get_updates()
    member = updates[-1].my_chat_member
    assert member is not None
    assert member.new_chat_member.status == "kicked"
    await control.post(f"/users/{citizen}/block", {"blocked": False})
    assert await bot.send_message(citizen, "您好")


async def test_bot_cannot_write_first(bot: Bot, control: Control) -> None:
    stranger = await control.user("新用户", started=False)

    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation"):
        await bot.send_message(stranger, "您好")


async def test_injected_server_errors_hit_only_their_method(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    await control.post(
        "/faults", {"kind": "error", "status": 502, "count": 2, "method": "sendMessage"}
    )

    assert await bot.get_me()
    for _ in range(2):
        with pytest.raises(TelegramServerError, match="Bad Gateway"):
            await bot.send_message(citizen, "x")
    assert await bot.send_message(citizen, "x")
    assert (await control.get("/stats"))["faults_injected"] == 2


async def test_injected_flood_and_html_gateway(bot: Bot, control: Control) -> None:
    await control.post("/faults", {"kind": "flood", "retry_after": 7})
    await control.post("/faults", {"kind": "error", "status": 502, "html": True})

    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.get_me()
    assert caught.value.retry_after == 7
    # nginx's HTML page is not JSON: aiogram cannot decode it, as with the real front end.
    with pytest.raises(ClientDecodeError):
        await bot.get_me()
    assert (await control.get("/faults"))["faults"] == []


async def test_slow_fault_delays_then_answers(bot: Bot, control: Control) -> None:
    await control.post("/faults", {"kind": "slow", "delay": 0.2, "method": "getMe"})

    assert (await bot.get_me()).is_bot
    assert (await control.get("/stats"))["faults_injected"] == 1


async def test_a_timeout_drops_the_call_unprocessed(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    # Held past the client's own timeout: the client gives up first.
    await control.post("/faults", {"kind": "timeout", "delay": 1.5, "method": "sendMessage"})
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(citizen, "超时", request_timeout=1)
    # Held for less than the client waits: the connection closes without an answer.
    await control.post("/faults", {"kind": "timeout", "delay": 0.1, "method": "sendMessage"})
    with pytest.raises(TelegramNetworkError, match="Disconnected"):
        await bot.send_message(citizen, "断开")
    await asyncio.sleep(1.0)  # the first hold has run out too

    assert await control.get(f"/chats/{citizen}/messages") == []  # neither was processed
    assert await bot.send_message(citizen, "正常")
    stats = await control.get("/stats")
    assert stats["faults"] == {"timeout": 2}
    assert stats["calls"]["sendMessage"] == 3


async def test_a_slow_call_is_processed_though_the_client_gave_up(
    bot: Bot, control: Control
) -> None:
    citizen = await control.user()
    await control.post("/faults", {"kind": "slow", "delay": 1.5, "method": "sendMessage"})

    with pytest.raises(TelegramNetworkError, match="timeout"):
        await bot.send_message(citizen, "迟到", request_timeout=1)

    for _ in range(100):  # processed when the delay is over, half a second from now
        texts = [m["text"] for m in await control.get(f"/chats/{citizen}/messages")]
        if texts:
            break
        await asyncio.sleep(0.05)
    assert texts == ["迟到"]  # done, though the client never heard so


async def test_random_faults_follow_their_seed(bot: Bot, control: Control) -> None:
    body = {
        "rate": 0.3,
        "seed": 11,
        "methods": ["getMe"],
        "mix": {"error": 1, "html": 1, "flood": 1},
        "max_burst": 3,
    }

    async def outcomes() -> list[str]:
        seen = []
        for _ in range(40):
            try:
                await bot.get_me()
                seen.append("ok")
            except TelegramRetryAfter as error:
                seen.append(f"flood {error.retry_after}")
            except TelegramServerError:
                seen.append("error")
            except ClientDecodeError:
                seen.append("html")
        return seen

    await control.post("/faults/random", body)
    first = await outcomes()
    await control.post("/faults/random", body)  # the same seed again
    again = await outcomes()
    await control.post("/faults/random", {**body, "seed": 12})
    other = await outcomes()

    assert first == again
    assert first != other
    assert {"ok", "flood 1", "error", "html"} <= set(first)
    # Bursts: a fault goes on for up to max_burst calls in a row, never longer.
    runs = [len(list(run)) for kind, run in itertools.groupby(first) if kind != "ok"]
    assert max(runs) > 1
    stats = await control.get("/stats")
    faults = sum(len(seen) - seen.count("ok") for seen in (first, again, other))
    assert sum(stats["faults"].values()) == stats["faults_injected"] == faults
    # Other methods are left alone; DELETE stops the draws.
    citizen = await control.user()
    assert await bot.send_message(citizen, "不受影响")
    assert (await control.call("DELETE", "/faults/random"))["random"] is None
    assert [await bot.get_me() for _ in range(5)]


async def test_random_faults_refuse_nonsense(control: Control) -> None:
    for body in (
        {"rate": 2},
        {"rate": 0.1, "mix": {"meteor": 1}},
        {"rate": 0.1, "statuses": [404]},
        {"rate": 0.1, "max_burst": 0},
        {},
    ):
        answer = await control.post("/faults/random", body, expect=400)
        assert "error" in answer
    await control.post("/faults", {"kind": "meteor"}, expect=400)
