"""Webhook mode: the sandbox posts updates to the bot's web server, which stores them in the
inbox before answering 200; the conversation works exactly as with long polling."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.app import Huiyin
from bot.demo import seed_organisation
from bot.sandbox import DEFAULT_TOKEN, SandboxServer, SandboxState
from bot.sandbox.limits import LimitsConfig
from bot.settings import Settings
from routing.config import DEFAULT_CONFIG_DIR
from tests.e2e.conftest import FAST, World, buttons


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def webhook_world(db_url: str) -> AsyncIterator[World]:
    state = SandboxState(DEFAULT_TOKEN)
    server = SandboxServer(state, limits=LimitsConfig(enabled=False))
    url = await server.start()
    port = _free_port()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=db_url,
        config_dir=DEFAULT_CONFIG_DIR,
        webhook_url=f"http://127.0.0.1:{port}",
        port=port,
    )

    def clock() -> dt.datetime:
        return dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)

    huiyin = await Huiyin.create(
        settings, token=state.token, api_url=url, clock=clock, limits=FAST
    )
    demo = await seed_organisation(state, huiyin.config, huiyin.sessionmaker)
    app = web.Application()
    huiyin.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await huiyin.start()
    async with aiohttp.ClientSession() as http:
        world = World(url, demo, huiyin, http, clock, settings, state.token)
        try:
            yield world
        finally:
            await huiyin.stop()
            await runner.cleanup()
            await server.stop()


async def test_a_conversation_over_the_webhook(webhook_world: World) -> None:
    world = webhook_world
    async with world.http.post(f"{world.url}/bot{world.token}/getWebhookInfo") as response:
        info = (await response.json())["result"]
    assert info["url"].endswith("/telegram/webhook")
    await world.send(world.citizen, "旧州镇我家低保申请了三个月还没批下来")
    understood = await world.bot_says(world.citizen, lambda m: "✅ 确认" in buttons(m))
    assert "西秀区民政局" in understood["text"]
