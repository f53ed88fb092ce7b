"""One bot worker process for the reliability tests: the real :class:`bot.app.Huiyin` on a
given database and Bot API server (the sandbox), with its clock set to a chosen moment and
running on from there, fast send limits, and short scan and lease intervals.

    python -m tests.reliability.worker --database URL --api URL --token T --now ISO

It prints ``ready <pid>`` once started and runs until SIGTERM (or SIGKILL, which is the
point of the test).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import time

from bot.app import Huiyin
from bot.outbox import Rate, SendLimits
from bot.settings import Settings

# The sandbox in these tests enforces no limits: the sender may go as fast as it can.
UNLIMITED = SendLimits(overall=Rate(2000, 1), private_chat=Rate(500, 1), group_chat=Rate(500, 1))


async def serve(args: argparse.Namespace) -> None:
    start, started = dt.datetime.fromisoformat(args.now), time.monotonic()

    def clock() -> dt.datetime:
        return start + dt.timedelta(seconds=time.monotonic() - started)

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=args.database, telegram_api_url=args.api
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
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await huiyin.start()
    print(f"ready {os.getpid()}", flush=True)
    try:
        await stop.wait()
    finally:
        await huiyin.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--now", required=True, help="ISO datetime with offset")
    parser.add_argument("--scan-interval", type=float, default=0.5)
    parser.add_argument("--lease", type=float, default=3.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(process)d %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
