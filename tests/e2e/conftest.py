"""End-to-end harness: the sandbox Bot API server and the whole bot, over real HTTP.

``world`` starts the sandbox with the demo organisation (one forum group per unit of
``config/``), the bot against it (inbox, dispatcher, outbox) on the ``db_url`` database,
and hands the tests a :class:`World` that acts as people through the control API.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from bot.app import Huiyin
from bot.demo import seed_organisation
from bot.outbox import Rate, SendLimits
from bot.sandbox import DEFAULT_TOKEN, SandboxServer, SandboxState
from bot.sandbox.limits import LimitsConfig
from bot.settings import Settings
from routing.config import DEFAULT_CONFIG_DIR

FAST = SendLimits(overall=Rate(100, 1), private_chat=Rate(50, 1), group_chat=Rate(50, 1))


class Clock:
    """The bot's clock in the tests: fixed, moved on only by :meth:`World.advance`."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class World:
    url: str
    demo: dict[str, Any]
    huiyin: Huiyin
    http: aiohttp.ClientSession
    clock: Clock
    settings: Settings
    token: str
    seen: dict[int, int] = field(default_factory=dict)
    sandbox: SandboxState | None = None

    def add_to_group(self, user_id: int, chat_id: int) -> None:
        """Someone is added to a group (as an admin does in Telegram; no control endpoint)."""
        assert self.sandbox is not None
        self.sandbox.chats[chat_id].members[user_id] = "member"

    def advance(self, *, days: float = 0, hours: float = 0) -> dt.datetime:
        """Move the bot's clock on (updates handled from now on see the new time)."""
        self.clock.now += dt.timedelta(days=days, hours=hours)
        return self.clock.now

    async def restart(self) -> None:
        """Stop the bot and start a new one on the same database and sandbox."""
        await self.huiyin.stop()
        self.huiyin = await start_bot(self.settings, self.token, self.url, self.clock)

    # ------------------------------------------------------------------ people

    @property
    def citizen(self) -> int:
        return int(self.demo["citizen_id"])

    @property
    def supervisor(self) -> int:
        return int(self.demo["supervisor_id"])

    @property
    def admin(self) -> int:
        return int(self.demo["admin_id"])

    def unit(self, unit_id: str) -> dict[str, Any]:
        return next(u for u in self.demo["units"] if u["id"] == unit_id)

    async def new_user(self, first_name: str, language_code: str = "zh-hans") -> int:
        data = await self._post(
            "users", {"first_name": first_name, "language_code": language_code}
        )
        return int(data["id"])

    # ------------------------------------------------------------------ acting

    async def send(
        self, user_id: int, text: str, *, chat_id: int | None = None, thread: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": user_id, "chat_id": chat_id or user_id, "text": text}
        if thread is not None:
            body["message_thread_id"] = thread
        return await self._post("send", body)

    async def press(
        self, user_id: int, chat_id: int, message_id: int, data: str
    ) -> dict[str, Any]:
        body = {"user_id": user_id, "chat_id": chat_id, "message_id": message_id, "data": data}
        return await self._post("press", body)

    async def messages(self, chat_id: int, after: int = 0) -> list[dict[str, Any]]:
        async with self.http.get(
            f"{self.url}/sandbox/api/chats/{chat_id}/messages", params={"after": after}
        ) as response:
            response.raise_for_status()
            data = await response.json()
        return list(data["messages"] if isinstance(data, dict) else data)

    async def bot_says(
        self,
        chat_id: int,
        predicate: Callable[[dict[str, Any]], bool] = lambda m: True,
        *,
        within: float = 10.0,
    ) -> dict[str, Any]:
        """The next message from the bot in ``chat_id`` (after those already seen) that
        satisfies ``predicate``; fails after ``within`` seconds."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for message in await self.messages(chat_id, self.seen.get(chat_id, 0)):
                self.seen[chat_id] = max(self.seen.get(chat_id, 0), message["message_id"])
                if message.get("from_bot") and predicate(message):
                    return message
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the bot said nothing matching in chat {chat_id}")
            await asyncio.sleep(0.05)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(f"{self.url}/sandbox/api/{path}", json=body) as response:
            data = await response.json()
            assert response.status == 200, data
            return dict(data)


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """Inline buttons of a message: text → callback_data."""
    markup = message.get("reply_markup") or {}
    return {
        button["text"]: button.get("callback_data", "")
        for row in markup.get("inline_keyboard", [])
        for button in row
    }


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    async with make_world(db_url) as world:
        yield world


@contextlib.asynccontextmanager
async def make_world(db_url: str, *, redis_url: str | None = None) -> AsyncIterator[World]:
    """The sandbox with the demo organisation and the bot on ``db_url`` (and Redis for FSM
    state and event isolation, when given)."""
    state = SandboxState(DEFAULT_TOKEN)
    server = SandboxServer(state, limits=LimitsConfig(enabled=False))
    url = await server.start()
    clock = Clock(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC))  # a Monday, 10:00 in Shanghai
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=db_url, config_dir=DEFAULT_CONFIG_DIR, redis_url=redis_url
    )
    huiyin = await Huiyin.create(
        settings, token=state.token, api_url=url, clock=clock, limits=FAST
    )
    demo = await seed_organisation(state, huiyin.config, huiyin.sessionmaker)
    await huiyin.start()
    async with aiohttp.ClientSession() as http:
        world = World(url, demo, huiyin, http, clock, settings, state.token, sandbox=state)
        try:
            yield world
        finally:
            await world.huiyin.stop()
            await server.stop()


async def start_bot(
    settings: Settings, token: str, url: str, clock: Callable[[], dt.datetime]
) -> Huiyin:
    huiyin = await Huiyin.create(settings, token=token, api_url=url, clock=clock, limits=FAST)
    await huiyin.start()
    return huiyin
