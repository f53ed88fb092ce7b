"""``huiyin run``: start the bot.

Without ``HUIYIN_BOT_TOKEN`` it starts the sandbox Bot API server with a demo organisation
(one forum group per unit of the config, a demo citizen, staff, a supervisor and an admin),
runs the bot against it on a fresh SQLite file and prints the URL to open in a browser.
With a token it talks to Telegram: long polling, or a webhook when ``HUIYIN_WEBHOOK_URL``
is set (served on ``HUIYIN_HOST:HUIYIN_PORT``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

log = logging.getLogger("huiyin")

SANDBOX_DATABASE = Path("var") / "sandbox-demo.sqlite3"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="start the bot (the sandbox with a demo organisation when no token is set)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="address to listen on (default HUIYIN_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default HUIYIN_PORT or 8080)")
    parser.add_argument("--config", metavar="DIR", help="config folder (default config/)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bot.settings import Settings

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.config:
        overrides["config_dir"] = Path(args.config)
    settings = Settings(**overrides)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return 0


async def serve(settings: Any, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or cancellation)."""
    from aiohttp import web

    from bot.app import Huiyin

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    web_app = web.Application()
    if settings.sandbox:
        huiyin, url = await _start_sandbox(settings, web_app)
    else:
        token = settings.bot_token.get_secret_value()
        huiyin = await Huiyin.create(settings, token=token, api_url=settings.telegram_api_url)
        url = f"http://{settings.host}:{settings.port}/"
    huiyin.add_routes(web_app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    # The sandbox (when used) answers on this very server: start talking only now.
    await huiyin.start()
    if settings.sandbox:
        print(f"Huiyin is running on the sandbox. Open {url} in a browser.", flush=True)
        print("回音已在沙盒中运行，请用浏览器打开上面的地址。", flush=True)
    else:
        print(f"Huiyin is running ({'webhook' if settings.webhook_url else 'polling'}).")
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await huiyin.stop()
        await runner.cleanup()


async def _start_sandbox(settings: Any, web_app: Any) -> tuple[Any, str]:
    """The sandbox Bot API server shares the web app (and its port) with the bot."""
    from bot.app import Huiyin
    from bot.demo import seed_organisation
    from bot.sandbox import DEFAULT_TOKEN, SandboxState, create_app

    if "HUIYIN_DATABASE_URL" not in os.environ:
        # The sandbox forgets its chats when it stops: start the demo's database afresh too.
        _fresh_sqlite(SANDBOX_DATABASE)
        settings = settings.model_copy(
            update={"database_url": f"sqlite+aiosqlite:///{SANDBOX_DATABASE}"}
        )
    base = f"http://{settings.host}:{settings.port}"
    state = SandboxState(DEFAULT_TOKEN)
    web_app.add_subapp("/tg/", create_app(state))
    # create() migrates the database and loads the config; nothing talks to the Bot API
    # before start(), so the demo can be seeded in between.
    huiyin = await Huiyin.create(settings, token=state.token, api_url=f"{base}/tg")
    await seed_organisation(state, huiyin.config, huiyin.sessionmaker)
    web_app.router.add_get("/", _redirect_to("/tg/"))
    return huiyin, f"{base}/tg/"


def _fresh_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _redirect_to(location: str) -> Any:
    from aiohttp import web

    async def handler(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(location)

    return handler
