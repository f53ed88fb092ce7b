"""Run the sandbox on its own: ``python -m bot.sandbox --port 8081 --unit id:名称 …``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from bot.sandbox.seed import seed_demo
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import DEFAULT_TOKEN, SandboxState

DEMO_UNITS = [("social-assistance", "社会救助科"), ("marriage-registry", "婚姻登记处")]


def _unit(raw: str) -> tuple[str, str]:
    unit_id, _, name = raw.partition(":")
    return unit_id, name or unit_id


async def _serve(args: argparse.Namespace) -> None:
    state = SandboxState(args.token)
    seed_demo(state, args.unit or DEMO_UNITS)
    server = SandboxServer(state, host=args.host, port=args.port)
    url = await server.start()
    logging.info("sandbox Bot API at %s (page at %s/, token %s)", url, url, args.token)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--unit", action="append", type=_unit, help="unit_id:unit name")
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
