"""Two worker processes on PostgreSQL, 10,000 reminders due (3,000 in the short form), one
worker killed with SIGKILL midway: every reminder is a notification row exactly once, and
every one reaches its chat.

What can repeat, and only there: a message the killed sender had handed to Telegram whose
"sent" it had not yet committed (sendMessage has no idempotency key; bot/outbox.py). The
test takes those rows — pending, under the dead sender's lease — right after the kill, and
allows a second copy of exactly those in the transcript, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade_database
from bot.db.models import Case, DeadlineRow, Lease, Notification, OutboxMessage, Person, Unit
from bot.demo import seed_organisation
from bot.sandbox import DEFAULT_TOKEN, SandboxServer, SandboxState
from bot.sandbox.limits import LimitsConfig
from routing.config import load_config

SHANGHAI = ZoneInfo("Asia/Shanghai")
DUE = dt.date(2026, 3, 17)  # a Tuesday, a working day
NOW = dt.datetime(2026, 3, 17, 10, 0, tzinfo=SHANGHAI)
# Reminders due: the long form (``--long``) has 10,000, the short form (CI) 3,000.
CASES, SHORT_CASES = 10_000, 3_000
# The survivor sends about 100 messages a second here (two cores for the sandbox, two
# workers and PostgreSQL): 10,000 take under two minutes.
DRAIN_SECONDS = 300
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[SandboxServer, SandboxState]]:
    state = SandboxState(DEFAULT_TOKEN)
    server = SandboxServer(state, limits=LimitsConfig(enabled=False))
    await server.start()
    try:
        yield server, state
    finally:
        await server.stop()


async def seed(
    sessionmaker: async_sessionmaker[AsyncSession], state: SandboxState, cases_due: int
) -> dict[str, int]:
    """The demo units as plain groups, and ``cases_due`` cases whose 告知 deadline is due today,
    planned so that exactly one reminder ("due today") is due for each. Case number → chat."""
    await seed_organisation(state, load_config(), sessionmaker)
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Unit).values(forum=False))
        units = [(u.id, u.chat_id) for u in await session.scalars(select(Unit)) if u.chat_id]
        citizen = await session.scalar(select(Person.id).where(Person.role == "admin"))
        now = dt.datetime.now(dt.UTC)
        numbers: dict[str, int] = {}
        cases = []
        for index in range(cases_due):
            unit_id, chat_id = units[index % len(units)]
            number = f"HY-2026-{index:04d}-{secrets.token_hex(2).upper()}"
            numbers[number] = chat_id
            cases.append(
                {
                    "number": number,
                    "citizen_id": citizen,
                    "path": "petition",
                    "topic": "social_assistance",
                    "unit_id": unit_id,
                    "lead_unit_id": unit_id,
                    "state": "routed",
                    "hops": 0,
                    "text": "测试事项",
                    "summary": "测试事项",
                    "applicant": {},
                    "details": {},
                    "classification": {},
                    "anonymous": False,
                    "received_at": now,
                    "updated_at": now,
                    "version": 1,
                }
            )
        ids = (
            await session.scalars(
                insert(Case).returning(Case.id, sort_by_parameter_order=True), cases
            )
        ).all()
        # Computed the afternoon before: the plan's next step is "due today", 09:00.
        computed = dt.datetime(2026, 3, 16, 15, 0, tzinfo=SHANGHAI)
        await session.execute(
            insert(DeadlineRow),
            [
                {
                    "case_id": case_id,
                    "rule": "petition.acknowledge",
                    "start": dt.date(2026, 3, 2),
                    "due": DUE,
                    "provisional": False,
                    "status": "open",
                    "computation": {},
                    "calendar_version": "test",
                    "computed_at": computed,
                    "next_reminder_at": computed,
                    "reminder_step": None,
                }
                for case_id in ids
            ],
        )
    return numbers


async def count(sessionmaker: async_sessionmaker[AsyncSession], query: object) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(query) or 0)  # type: ignore[call-overload]


async def start_worker(database: str, api: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability.worker",
        "--database",
        database,
        "--api",
        api,
        "--token",
        DEFAULT_TOKEN,
        "--now",
        NOW.isoformat(),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    assert line.startswith(b"ready"), line
    return process


def reminders_in(state: SandboxState, numbers: dict[str, int]) -> Counter[str]:
    """How often each case's "due today" reminder is in its group's transcript."""
    seen: Counter[str] = Counter()
    for chat_id in set(numbers.values()):
        chat = state.chat(chat_id)
        assert chat is not None
        for message in state.transcript(chat):
            text = message.text or ""
            if text.startswith("⏰ 今天到期"):  # not the digests
                number = text.split("事项 ", 1)[1].split(" ", 1)[0]
                seen[number] += 1
    return seen


@pytest.mark.postgres
async def test_killing_a_worker_loses_and_doubles_no_reminder(
    pg_database: str, sandbox: tuple[SandboxServer, SandboxState], long_form: bool
) -> None:
    server, state = sandbox
    cases = CASES if long_form else SHORT_CASES
    kill_after = cases // 4  # notification rows written when one worker is killed
    await upgrade_database(pg_database)
    engine = make_engine(pg_database)
    sessionmaker = make_sessionmaker(engine)
    workers: list[asyncio.subprocess.Process] = []
    try:
        numbers = await seed(sessionmaker, state, cases)
        workers = list(
            await asyncio.gather(*(start_worker(pg_database, server.url) for _ in "ab"))
        )
        due_today = (
            select(func.count()).select_from(Notification).where(Notification.kind == "due_today")
        )
        for _ in range(1200):
            if await count(sessionmaker, due_today) >= kill_after:
                break
            await asyncio.sleep(0.05)
        # Kill the one that sends (holds the outbox lease): the harder case.
        async with sessionmaker() as session:
            holder = await session.scalar(select(Lease.holder).where(Lease.name == "outbox"))
        assert holder is not None
        victim = next(w for w in workers if f":{w.pid}:" in holder)
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        killed_at = await count(sessionmaker, due_today)
        left_to_send = await count(
            sessionmaker,
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.dedupe_key.like("remind:%")),
        )
        # What the dead sender held: possibly delivered, not recorded.
        async with sessionmaker() as session:
            in_doubt = set(
                await session.scalars(
                    select(OutboxMessage.case_id).where(
                        OutboxMessage.status == "pending",
                        OutboxMessage.lease_until > dt.datetime.now(dt.UTC),
                    )
                )
            )
        survivor = next(w for w in workers if w is not victim)

        pending = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == "pending")
        )
        give_up = asyncio.get_running_loop().time() + DRAIN_SECONDS
        while asyncio.get_running_loop().time() < give_up:
            if await count(sessionmaker, due_today) == cases and not await count(
                sessionmaker, pending
            ):
                break
            assert survivor.returncode is None, "the surviving worker died"
            await asyncio.sleep(0.2)

        # The kill fell while reminders were being written (usually) and, always, while
        # most were still to be sent: both halves are tested, not an idle worker.
        assert killed_at >= kill_after
        assert left_to_send + (cases - killed_at) >= cases // 2, "the kill came too late"
        # Zero duplicate notification rows (the unique key), zero lost.
        assert await count(sessionmaker, due_today) == cases
        reminder_rows = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.dedupe_key.like("remind:%"))
        )
        assert await count(sessionmaker, reminder_rows) == cases
        failed = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == "failed", OutboxMessage.dedupe_key.like("remind:%"))
        )
        assert await count(sessionmaker, failed) == 0
        seen = reminders_in(state, numbers)
        assert set(seen) == set(numbers), f"{len(set(numbers) - set(seen))} reminders lost"
        doubled = {number for number, times in seen.items() if times > 1}
        async with sessionmaker() as session:
            doubled_ids = set(
                await session.scalars(select(Case.id).where(Case.number.in_(doubled)))
            )
        assert doubled_ids <= in_doubt, "a message was sent twice outside the crash window"
        print(
            f"\nkilled at {killed_at} notifications, {left_to_send} unsent; "
            f"in doubt {len(in_doubt)}, "
            f"sent twice {len(doubled)}"
        )
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.wait(), 20)
            if worker.returncode is None:
                worker.kill()
        await engine.dispose()
