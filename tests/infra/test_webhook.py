"""The webhook answers 200 only after the update is stored, and 500 when it cannot be."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiohttp import web

from bot.webhook import SECRET_HEADER, add_webhook_route, set_webhook
from tests.infra.conftest import Control, Database, eventually

SECRET = "huiyin-webhook-secret_1"
PATH = "/telegram/webhook"


@pytest.fixture
async def webhook_url(db: Database) -> AsyncIterator[str]:
    """The bot's web server with the webhook route, on a free port."""
    app = web.Application()
    add_webhook_route(app, PATH, db.sessionmaker, secret_token=SECRET)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}{PATH}"
    await runner.cleanup()


async def test_telegram_gets_200_once_the_update_is_stored(
    bot: Bot, control: Control, db: Database, webhook_url: str
) -> None:
    assert await set_webhook(bot, webhook_url, secret_token=SECRET)
    citizen = await control.user()
    update_id = await control.send(citizen, "我家的低保被取消了")

    async def delivered() -> bool:
        return await control.pending_updates() == []

    await eventually(delivered)
    rows = await db.inbox()
    assert [(row.update_id, row.ordering_key) for row in rows] == [(update_id, citizen)]
    assert rows[0].payload["message"]["text"] == "我家的低保被取消了"
    stats = await control.get("/stats")
    assert (stats["webhook_deliveries"], stats["webhook_failures"]) == (1, 0)


async def test_telegram_gets_500_and_retries_while_storage_fails(
    bot: Bot, control: Control, db: Database, webhook_url: str
) -> None:
    await db.drop_inbox()
    await set_webhook(bot, webhook_url, secret_token=SECRET)
    citizen = await control.user()
    update_id = await control.send(citizen, "我要投诉")

    async def refused_twice() -> bool:
        return bool((await control.get("/stats"))["webhook_failures"] >= 2)

    await eventually(refused_twice)
    info = await bot.get_webhook_info()
    assert info.last_error_message is not None
    assert "500" in info.last_error_message
    assert await control.pending_updates() == [update_id]  # Telegram still holds it

    await db.restore_inbox()

    async def delivered() -> bool:
        return await control.pending_updates() == []

    await eventually(delivered)
    assert [row.update_id for row in await db.inbox()] == [update_id]


async def test_the_answer_follows_the_commit_and_replays_are_ignored(
    db: Database, webhook_url: str
) -> None:
    update = {
        "update_id": 42,
        "message": {
            "message_id": 1,
            "date": 0,
            "text": "您好",
            "from": {"id": 7_100_000_001, "is_bot": False, "first_name": "张三"},
            "chat": {"id": 7_100_000_001, "type": "private"},
        },
    }
    headers = {SECRET_HEADER: SECRET}
    async with aiohttp.ClientSession() as client:
        for _ in range(2):  # Telegram retries when it missed our answer
            async with client.post(webhook_url, json=update, headers=headers) as response:
                assert response.status == 200
                # The 200 arrived: the row is already committed.
                assert [row.update_id for row in await db.inbox()] == [42]


@pytest.mark.parametrize(
    ("secret", "body", "status"),
    [
        (None, {"update_id": 1}, 401),
        ("wrong-secret", {"update_id": 1}, 401),
        (SECRET, "not json", 400),
        (SECRET, {"message": {}}, 400),
    ],
)
async def test_requests_that_are_not_telegrams_are_refused(
    db: Database, webhook_url: str, secret: str | None, body: object, status: int
) -> None:
    headers = {SECRET_HEADER: secret} if secret else {}
    async with aiohttp.ClientSession() as client:
        kwargs = {"data": body} if isinstance(body, str) else {"json": body}
        async with client.post(webhook_url, headers=headers, **kwargs) as response:
            assert response.status == status
    assert await db.inbox() == []
