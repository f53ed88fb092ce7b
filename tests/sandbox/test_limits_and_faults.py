"""Flood limits, blocked users and injected faults surface as aiogram's own exceptions."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramForbiddenError,
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
