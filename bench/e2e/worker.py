"""The bot under test, in its own process so that its CPU time and memory are its own.

    python -m bench.e2e.worker --bot huiyin|echo

It imports everything first (aiogram and the handlers take most of a start-up) and prints
``imported``; the harness starts several at once and they wait, idle, for their turn: one
JSON line on stdin ``{"api", "token", "mode": "polling"|"webhook", "port", "database",
"profile"}``. Then it starts the bot, prints ``ready`` and runs until SIGTERM. With
``profile`` set, the run (from ready to SIGTERM) is under cProfile, dumped to that path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.outbox import Rate, SendLimits

# The sandbox runs without its flood limits here: the sender may go as fast as it can.
UNLIMITED = SendLimits(overall=Rate(5000, 1), private_chat=Rate(500, 1), group_chat=Rate(500, 1))
WEBHOOK_PATH = "/webhook"
# The echo bot's button, labelled like Huiyin's, so the citizens' script is the same.
CONFIRM = "✅ 确认"


def _preload(kind: str) -> None:
    """Import what the bot imports lazily, before the harness starts the clock."""
    import importlib

    if kind == "huiyin":
        for name in ("bot.app", "bot.ops", "bot.services", "bot.web", "handlers.citizen"):
            importlib.import_module(name)
        for name in ("handlers.admin", "handlers.staff", "handlers.supervisor"):
            importlib.import_module(name)


@contextlib.asynccontextmanager
async def huiyin_bot(config: dict[str, Any]) -> AsyncIterator[None]:
    from bot.app import Huiyin
    from bot.settings import Settings

    webhook = config["mode"] == "webhook"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=config["database"],
        telegram_api_url=config["api"],
        webhook_url=f"http://127.0.0.1:{config['port']}" if webhook else None,
        port=config["port"],
    )
    huiyin = await Huiyin.create(
        settings,
        token=config["token"],
        api_url=config["api"],
        limits=UNLIMITED,
        # One scan at start-up (nothing is due), none during the run.
        scan_interval=3600,
    )
    runner: web.AppRunner | None = None
    if webhook:
        app = web.Application()
        huiyin.add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", config["port"]).start()
    await huiyin.start()
    try:
        yield
    finally:
        await huiyin.stop()
        if runner is not None:
            await runner.cleanup()


def echo_router() -> Router:
    """The floor: one reply per update, no database, no state. A press gets what Huiyin's
    presses get: the callback answered and one message."""
    router = Router(name="echo")
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=CONFIRM, callback_data="confirm")]]
    )

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"回音：{message.text}", reply_markup=keyboard)

    @router.callback_query()
    async def pressed(query: CallbackQuery, bot: Bot) -> None:
        await query.answer()
        await bot.send_message(query.from_user.id, "回音：已确认")

    return router


@contextlib.asynccontextmanager
async def echo_bot(config: dict[str, Any]) -> AsyncIterator[None]:
    bot = Bot(
        config["token"], session=AiohttpSession(api=TelegramAPIServer.from_base(config["api"]))
    )
    dispatcher = Dispatcher()
    dispatcher.include_router(echo_router())
    if config["mode"] == "webhook":
        app = web.Application()
        SimpleRequestHandler(dispatcher=dispatcher, bot=bot).register(app, path=WEBHOOK_PATH)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", config["port"]).start()
        await bot.set_webhook(f"http://127.0.0.1:{config['port']}{WEBHOOK_PATH}")
        try:
            yield
        finally:
            await runner.cleanup()
            await bot.session.close()
        return
    await bot.delete_webhook()
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        yield
    finally:
        await dispatcher.stop_polling()
        await polling
        await bot.session.close()


async def serve(kind: str, config: dict[str, Any]) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    profiler = cProfile.Profile() if config.get("profile") else None
    running = huiyin_bot(config) if kind == "huiyin" else echo_bot(config)
    async with running:
        print("ready", dt.datetime.now(dt.UTC).isoformat(), flush=True)
        if profiler is not None:
            profiler.enable()
        await stop.wait()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(config["profile"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bot", choices=["huiyin", "echo"], required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="worker %(levelname)s %(message)s")
    _preload(args.bot)
    print("imported", flush=True)
    line = sys.stdin.readline()
    if line.strip():
        asyncio.run(serve(args.bot, json.loads(line)))


if __name__ == "__main__":
    main()
