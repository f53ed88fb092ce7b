"""A sandbox on 127.0.0.1:<free port>, an aiogram Bot pointed at it, and a control client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.sandbox import DEFAULT_TOKEN, RetryPolicy, SandboxServer


class Control:
    """A thin client of the control API that fails loudly on non-2xx answers."""

    def __init__(self, session: aiohttp.ClientSession, base: str):
        self.session = session
        self.base = f"{base}/sandbox/api"

    async def call(
        self, verb: str, path: str, body: dict[str, Any] | None = None, *, expect: int = 200
    ) -> Any:
        async with self.session.request(verb, f"{self.base}{path}", json=body) as response:
            payload = await response.json()
            assert response.status == expect, payload
            return payload

    async def post(
        self, path: str, body: dict[str, Any] | None = None, *, expect: int = 200
    ) -> Any:
        return await self.call("POST", path, body or {}, expect=expect)

    async def get(self, path: str, *, expect: int = 200) -> Any:
        return await self.call("GET", path, expect=expect)

    async def user(self, first_name: str = "张三", **extra: Any) -> int:
        created = await self.post("/users", {"first_name": first_name, **extra})
        return int(created["id"])

    async def forum(self, members: list[int], title: str = "社会救助科") -> int:
        created = await self.post("/groups", {"title": title, "forum": True, "members": members})
        return int(created["id"])


@pytest.fixture
async def server() -> AsyncIterator[SandboxServer]:
    sandbox = SandboxServer(port=0, webhook_retry=RetryPolicy(first_delay=0.05, max_delay=0.2))
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def bot(server: SandboxServer) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.url))
    telegram_bot = Bot(DEFAULT_TOKEN, session=session)
    yield telegram_bot
    await telegram_bot.session.close()


@pytest.fixture
async def control(server: SandboxServer) -> AsyncIterator[Control]:
    async with aiohttp.ClientSession() as session:
        yield Control(session, server.url)
