"""One bot worker process for the reliability tests: the real :class:`bot.app.Huiyin` on a
given database and Bot API server (the sandbox), with its clock set to a chosen moment and
running on from there, fast send limits, and short scan and lease intervals.

    python -m tests.reliability.worker --database URL --api URL --token T --now ISO

With ``--webhook-port`` it takes updates by webhook on that port instead of long polling.
It prints ``ready <pid>`` once started and runs until SIGTERM (or SIGKILL, which is the
point of the test).

With ``--zygote`` it starts no bot itself: it imports everything a worker needs (6-11 s of
aiogram, SQLAlchemy and the handlers), then forks a fresh worker for each ``start`` line on
its stdin, which prints ``ready <pid>`` as above. A test that kills and restarts the bot
many times pays the imports once; each kill is still a real SIGKILL of the process that
runs the bot. The fork happens before any event loop or thread exists in the zygote, so
each child starts as clean as a new interpreter would. Closing its stdin stops the zygote
(and SIGTERMs a worker still running).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import sys
import time

from aiohttp import web

from bot.app import Huiyin
from bot.outbox import Rate, SendLimits
from bot.settings import Settings

# The sandbox in these tests enforces no limits: the sender may go as fast as it can.
UNLIMITED = SendLimits(overall=Rate(2000, 1), private_chat=Rate(500, 1), group_chat=Rate(500, 1))


async def serve(args: argparse.Namespace) -> None:
    start, started = dt.datetime.fromisoformat(args.now), time.monotonic()

    def clock() -> dt.datetime:
        return start + dt.timedelta(seconds=time.monotonic() - started)

    port = args.webhook_port
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=args.database,
        telegram_api_url=args.api,
        webhook_url=f"http://127.0.0.1:{port}" if port else None,
        redis_url=args.redis_url,
    )
    huiyin = await Huiyin.create(
        settings,
        token=args.token,
        api_url=args.api,
        clock=clock,
        limits=UNLIMITED,
        scan_interval=args.scan_interval,
        lease_seconds=args.lease,
    )
    if args.row_lease is not None:
        # A claimed update or message of a killed worker waits this long to be retaken
        # (the product's 60 s would make each kill a minute's pause).
        huiyin.processor.lease = huiyin.sender.lease = args.row_lease
    runner: web.AppRunner | None = None
    if port:
        # Webhook mode: the sandbox posts updates here (stored before the 200).
        app = web.Application()
        huiyin.add_routes(app)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await huiyin.start()
    print(f"ready {os.getpid()}", flush=True)
    try:
        await stop.wait()
    finally:
        await huiyin.stop()
        if runner is not None:
            await runner.cleanup()


def preload() -> None:
    """Import what ``Huiyin.create`` and the first updates import lazily, so a forked
    worker finds it loaded."""
    import aiosqlite  # noqa: F401
    import asyncpg  # noqa: F401

    import bot.ops
    import bot.services
    import bot.web  # noqa: F401
    import handlers.admin
    import handlers.citizen
    import handlers.dashboard
    import handlers.errors
    import handlers.staff
    import handlers.supervisor  # noqa: F401
    from bot.texts import Texts
    from routing.classifier import Classifier
    from routing.config import load_config

    # What loading the config and classifying first import (YAML, the matchers).
    config = load_config()
    Classifier.from_config(config).classify("旧州镇低保申请三个月没有批下来")
    Texts.load()


def zygote(args: argparse.Namespace) -> None:
    """Fork a worker for each ``start`` line on stdin; see the module docstring."""
    preload()
    print(f"zygote {os.getpid()}", flush=True)
    children: set[int] = set()
    for line in sys.stdin:
        for pid in list(children):  # reap the killed ones
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    children.discard(pid)
        if line.strip() != "start":
            continue
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # The child must not read the zygote's commands.
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.close(devnull)
                asyncio.run(serve(args))
                code = 0
            except BaseException:
                logging.exception("worker failed")
                print(f"failed {os.getpid()}", flush=True)  # the waiting test fails at once
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.add(pid)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--now", required=True, help="ISO datetime with offset")
    parser.add_argument("--scan-interval", type=float, default=0.5)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument(
        "--row-lease", type=float, default=None, help="inbox and outbox row lease (seconds)"
    )
    parser.add_argument(
        "--webhook-port", type=int, default=None, help="webhook mode, serving on this port"
    )
    parser.add_argument("--redis-url", default=None, help="FSM state in Redis")
    parser.add_argument("--zygote", action="store_true", help="fork a worker per 'start' line")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(process)d %(levelname)s %(message)s")
    if args.zygote:
        zygote(args)
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
