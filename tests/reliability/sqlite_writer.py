"""One writer process for tests/reliability/test_sqlite_writers.py: the writes one bot
worker makes while handling a citizen's message, repeated, on a shared SQLite file.

    python -m tests.reliability.sqlite_writer --database URL --writer N --transactions T

Each transaction stores an update in the inbox, creates a person and a case with its event,
increments a shared case (read-modify-write) and queues a reply in the outbox: what one
handled update writes. It prints ``ready`` once imported and connected, and begins when a
line arrives on its standard input, so that all writers really overlap. Then it prints one
JSON line: what it wrote and every database error it met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from sqlalchemy.exc import OperationalError

from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.inbox import store_updates
from bot.outbox import enqueue
from tests.db.samples import NOW

SHARED_CASE = 1


async def write(url: str, writer: int, transactions: int) -> dict[str, object]:
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    errors: list[str] = []
    done = 0
    async with engine.connect():
        pass  # connected before the start, like a running worker
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    began = time.time()
    try:
        for step in range(transactions):
            update_id = 1_000_000 * (writer + 1) + step
            user_id = 10_000 * (writer + 1) + step
            try:
                await store_updates(
                    sessionmaker,
                    [{"update_id": update_id, "message": {"from": {"id": user_id}}}],
                )
                async with sessionmaker.begin() as session:
                    person = await repo.get_or_create_person(session, user_id, "张某")
                    case = await repo.create_case(
                        session,
                        citizen_id=person.id,
                        path="petition",
                        topic="other",
                        unit_id="assistance",
                        state="received",
                        text=f"writer {writer} step {step}",
                        received_at=NOW,
                    )
                    await repo.add_event(
                        session,
                        case.id,
                        actor_id=person.id,
                        actor_role="citizen",
                        action="submit",
                        data={"writer": writer, "step": step},
                    )
                    shared = await repo.get_case(session, SHARED_CASE)
                    assert shared is not None
                    await repo.update_case(
                        session, SHARED_CASE, shared.version, hops=shared.hops + 1
                    )
                    await enqueue(session, user_id, f"已收到 {case.number}")
                done += 1
            except OperationalError as error:
                errors.append(str(error.orig))
    finally:
        await engine.dispose()
    return {
        "writer": writer,
        "done": done,
        "errors": errors,
        "began": began,
        "ended": time.time(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--writer", type=int, required=True)
    parser.add_argument("--transactions", type=int, required=True)
    args = parser.parse_args()
    result = asyncio.run(write(args.database, args.writer, args.transactions))
    print(json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
