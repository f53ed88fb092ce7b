"""Fixtures for the durable edges: a database with the schema, the sandbox Bot API on a free
port, an aiogram Bot pointed at it, and a client for the sandbox's control API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db.engine import make_engine, make_sessionmaker
from bot.db.models import Base, InboxUpdate, OutboxMessage
from bot.sandbox import DEFAULT_TOKEN, RetryPolicy, SandboxServer

# Tests wait for outcomes by polling; this bounds a wait that would otherwise hang.
WAIT_SECONDS = 15.0


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def inbox(self) -> list[InboxUpdate]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(select(InboxUpdate).order_by(InboxUpdate.update_id))
            return list(rows)

    async def outbox(self) -> list[OutboxMessage]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            return list(rows)

    async def drop_inbox(self) -> None:
        """Break storage the way a lost table or database breaks it."""
        async with self.engine.begin() as connection:
            await connection.run_sync(Base.metadata.tables["inbox"].drop)

    async def restore_inbox(self) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(Base.metadata.tables["inbox"].create)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    engine = make_engine(db_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield Database(engine, make_sessionmaker(engine))
    await engine.dispose()


class Control:
    """The sandbox's control API (people act, tests inspect); fails loudly on non-2xx."""

    def __init__(self, session: aiohttp.ClientSession, base: str):
        self.session = session
        self.base = f"{base}/sandbox/api"

    async def call(self, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.session.request(verb, f"{self.base}{path}", json=body) as response:
            payload = await response.json()
            assert response.status == 200, payload
            return payload

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.call("POST", path, body or {})

    async def user(self, first_name: str = "张三") -> int:
        return int((await self.post("/users", {"first_name": first_name}))["id"])

    async def forum(self, members: list[int], title: str = "社会救助科") -> int:
        body = {"title": title, "forum": True, "members": members}
        return int((await self.post("/groups", body))["id"])

    async def send(self, user_id: int, text: str) -> int:
        """The person writes to the bot; returns the update's id."""
        sent = await self.post("/send", {"user_id": user_id, "text": text})
        return int(sent["update_id"])

    async def press(self, user_id: int, message_id: int, data: str) -> int:
        """The person taps an inline button (not waiting for the answer); the update's id."""
        body = {"user_id": user_id, "message_id": message_id, "data": data, "timeout": 0}
        return int((await self.post("/press", body))["update_id"])

    async def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        messages = await self.get(f"/chats/{chat_id}/messages")
        return [m for m in messages if m["from_bot"]]

    async def pending_updates(self) -> list[int]:
        """Update ids Telegram still holds (not yet confirmed by the bot)."""
        return [int(item["update_id"]) for item in await self.get("/updates")]

    async def texts(self, chat_id: int, thread: int | None = None) -> list[str]:
        query = f"?thread={thread}" if thread is not None else ""
        messages = await self.get(f"/chats/{chat_id}/messages{query}")
        return [m["text"] for m in messages if m["from_bot"] and m["text"] is not None]


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(port=0, webhook_retry=RetryPolicy(first_delay=0.05, max_delay=0.2))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(sandbox: SandboxServer) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(sandbox.url))
    telegram_bot = Bot(DEFAULT_TOKEN, session=session)
    yield telegram_bot
    await telegram_bot.session.close()


@pytest.fixture
async def control(sandbox: SandboxServer) -> AsyncIterator[Control]:
    async with aiohttp.ClientSession() as session:
        yield Control(session, sandbox.url)


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = WAIT_SECONDS
) -> None:
    """Wait until ``condition()`` holds; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


class Worker(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


@contextlib.asynccontextmanager
async def serving(*workers: Worker) -> AsyncIterator[None]:
    """Run worker loops (processors, senders, pollers) for the block, then stop them."""
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        yield
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT_SECONDS)
