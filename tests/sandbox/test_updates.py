"""Receiving updates: getUpdates offsets and long polling, and webhook delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramConflictError
from aiohttp import web

from tests.sandbox.conftest import Control


async def test_offset_confirms_and_discards_older_updates(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    first = await control.post("/send", {"user_id": citizen, "text": "一"})
    second = await control.post("/send", {"user_id": citizen, "text": "二"})

    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
    assert updates[0].message is not None
    assert updates[0].message.text == "一"

    again = await bot.get_updates(offset=second["update_id"])
    assert [u.update_id for u in again] == [second["update_id"]]
    assert await bot.get_updates(offset=second["update_id"] + 1) == []
    assert await bot.get_updates() == []  # confirmed updates are gone for good


async def test_long_poll_wakes_when_an_update_arrives(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    assert not poll.done()

    sent = await control.post("/send", {"user_id": citizen, "text": "在吗"})

    updates = await asyncio.wait_for(poll, 3)
    assert [u.update_id for u in updates] == [sent["update_id"]]


async def test_long_poll_times_out_empty(bot: Bot) -> None:
    assert await bot.get_updates(timeout=1) == []


async def test_allowed_updates_filters_new_updates(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    await bot.get_updates(allowed_updates=["callback_query"])

    skipped = await control.post("/send", {"user_id": citizen, "text": "不会送达"})

    assert skipped["update_id"] is None
    assert await bot.get_updates() == []


async def test_a_second_poller_ends_the_first(bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)

    second = asyncio.create_task(bot.get_updates(timeout=1))

    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 3)
    assert await second == []


@dataclass
class Receiver:
    """A webhook endpoint that fails its first `failures` requests with HTTP 500."""

    failures: int = 1
    reply: dict[str, Any] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str | None] = field(default_factory=list)
    attempts: int = 0
    url: str = ""
    got_two: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        self.secrets.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        if self.attempts <= self.failures:
            return web.Response(status=500)
        self.bodies.append(await request.json())
        if len(self.bodies) >= 2:
            self.got_two.set()
        return web.json_response(self.reply)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    app = web.Application()
    app.router.add_post("/hook", endpoint.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    endpoint.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield endpoint
    await runner.cleanup()


async def test_webhook_retries_until_2xx_and_keeps_order(
    bot: Bot, control: Control, receiver: Receiver
) -> None:
    citizen = await control.user()
    await bot.set_webhook(receiver.url, secret_token="s3cret_token")
    first = await control.post("/send", {"user_id": citizen, "text": "一"})
    second = await control.post("/send", {"user_id": citizen, "text": "二"})

    await asyncio.wait_for(receiver.got_two.wait(), 5)

    assert [b["update_id"] for b in receiver.bodies] == [first["update_id"], second["update_id"]]
    assert receiver.attempts == 3  # one failure, then both delivered
    assert set(receiver.secrets) == {"s3cret_token"}
    info = await bot.get_webhook_info()
    assert info.url == receiver.url
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()


async def test_webhook_answer_may_carry_a_method(
    bot: Bot, control: Control, receiver: Receiver
) -> None:
    citizen = await control.user()
    receiver.failures = 0
    receiver.reply = {"method": "sendMessage", "chat_id": citizen, "text": "自动回复"}
    await bot.set_webhook(receiver.url)

    await control.post("/send", {"user_id": citizen, "text": "一"})
    await control.post("/send", {"user_id": citizen, "text": "二"})
    await asyncio.wait_for(receiver.got_two.wait(), 5)
    await bot.delete_webhook()

    texts = [m["text"] for m in await control.get(f"/chats/{citizen}/messages")]
    assert texts.count("自动回复") >= 1
    assert await bot.get_updates() == []
