"""SIGKILL the bot at random moments while citizens file petitions, restart it each time:
no confirmed update is lost, no case is filed twice, every citizen gets one receipt and can
go on talking to the bot afterwards (issue 6, part 3).

The bot runs in worker processes forked by a zygote (tests/reliability/worker.py): each
kill is a real SIGKILL of the process running the bot, and a restart costs a fork and
``Huiyin.create`` (about 1.5 s) instead of a fresh interpreter importing aiogram (6-11 s).
One worker runs at a time; the next starts right after the kill and takes over the dead
one's leases when they run out, as a real restart would. Leases are 1.5 s here (60 s for
rows and 15 s for leaders in production) so that a kill costs seconds, not minutes.

Citizens never resend: they wait for the bot. The short form (CI) files 8 petitions under
20 kills on SQLite with long polling. The long form (``--long``) files 30 under 20 kills,
on SQLite and PostgreSQL, by long polling and by webhook. The seed is printed
(``HUIYIN_KILL_SEED`` replays the choices; the timing of a kill cannot be replayed).

What may repeat, and is only counted: a message the killed sender had handed to the Bot
API but not yet recorded as sent (the outbox is at-least-once, bot/outbox.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import os
import random
import re
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade_database
from bot.db.models import Case, FsmRecord, InboxUpdate, Lease, OutboxMessage, Person
from bot.demo import seed_organisation
from bot.sandbox import DEFAULT_TOKEN, RetryPolicy, SandboxServer, SandboxState
from bot.sandbox.limits import LimitsConfig
from bot.sandbox.updates import FIRST_UPDATE_ID
from routing.config import load_config
from tests.e2e.conftest import make_world
from tests.reliability.intake import Citizen, SandboxPeople

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 17, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a working day
LEASE = 1.5  # the polling and outbox leader leases, and the inbox and outbox row leases
VILLAGES = "东关 西关 南街 北街 新桥 石板 大寨 杨柳 龙井 双堡 蔡官 轿子 鸡场 岩腊 黄腊 刘官"


@dataclass(frozen=True)
class Plan:
    citizens: int
    kills: int
    think: float  # a citizen's pause before each step: up to this many seconds
    spread: float  # citizens start within this many seconds of the first worker
    kill_after: float  # a worker is killed up to this long after it leads the polling


SHORT = Plan(citizens=8, kills=20, think=1.5, spread=40.0, kill_after=1.5)
LONG = Plan(citizens=30, kills=20, think=2.0, spread=45.0, kill_after=2.0)


class Zygote:
    """The forking worker parent (``python -m tests.reliability.worker --zygote``)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, database: str, api: str, *options: str) -> Zygote:
        """``options``: more worker options (``--webhook-port``, ``--redis-url``)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.reliability.worker",
            "--zygote",
            "--database",
            database,
            "--api",
            api,
            "--token",
            DEFAULT_TOKEN,
            "--now",
            NOW.isoformat(),
            "--lease",
            str(LEASE),
            "--row-lease",
            str(LEASE),
            *options,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        zygote = cls(process)
        assert (await zygote._line()).startswith("zygote")
        return zygote

    async def spawn(self) -> int:
        """A new worker, started; its pid."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"start\n")
        await self.process.stdin.drain()
        line = await self._line()
        assert line.startswith("ready"), line
        return int(line.split()[1])

    async def _line(self) -> str:
        assert self.process.stdout is not None
        return (await asyncio.wait_for(self.process.stdout.readline(), 120)).decode()

    async def close(self) -> None:
        """Stop the zygote; it SIGTERMs a worker still running."""
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 30)
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[SandboxServer, SandboxState]]:
    state = SandboxState(DEFAULT_TOKEN)
    # A webhook the bot does not answer (it is being restarted) is retried soon.
    server = SandboxServer(
        state, limits=LimitsConfig(enabled=False), webhook_retry=RetryPolicy(max_delay=0.5)
    )
    await server.start()
    try:
        yield server, state
    finally:
        await server.stop()


def confirmed(state: SandboxState) -> set[int]:
    """Updates the bot has confirmed (a getUpdates offset moved past them)."""
    created = range(FIRST_UPDATE_ID, FIRST_UPDATE_ID + state.updates.created)
    waiting = {update.update_id for update in state.updates.peek(len(created) + 1)}
    return set(created) - waiting


async def stored(sessionmaker: async_sessionmaker[AsyncSession], ids: set[int]) -> set[int]:
    async with sessionmaker() as session:
        return set(
            await session.scalars(
                select(InboxUpdate.update_id).where(InboxUpdate.update_id.in_(ids))
            )
        )


async def leads(
    sessionmaker: async_sessionmaker[AsyncSession], pid: int, leases: tuple[str, ...]
) -> bool:
    """Whether worker ``pid`` holds all of ``leases`` (bot/leader.py)."""
    async with sessionmaker() as session:
        holders = dict((await session.execute(select(Lease.name, Lease.holder))).all())
    return all(f":{pid}:" in holders.get(name, "") for name in leases)


async def lists_case(citizen: Citizen) -> None:
    """The citizen asks for their items (/my): the answer names their case."""
    number = citizen.number
    await citizen.say("/my")
    await citizen.bot_says(lambda message: number in message["text"])


@dataclass
class KillLog:
    kills: int = 0
    busy: int = 0  # kills that fell while updates were being handled
    in_flight: int = 0  # updates claimed and unfinished at the kills, in all
    confirmed: int = 0  # confirmed updates found in the inbox right after the last kill
    # Messages the dead sender had claimed and not recorded: (chat, text). These may be
    # delivered twice (bot/outbox.py); nothing else should be.
    in_doubt: set[tuple[int, str]] = field(default_factory=set)


async def in_flight(sessionmaker: async_sessionmaker[AsyncSession]) -> set[int]:
    """Updates claimed and not finished (after a kill: what the dead worker held)."""
    async with sessionmaker() as session:
        return set(
            await session.scalars(
                select(InboxUpdate.update_id).where(
                    InboxUpdate.status == "new", InboxUpdate.attempts > 0
                )
            )
        )


async def sends_in_doubt(sessionmaker: async_sessionmaker[AsyncSession]) -> set[tuple[int, str]]:
    """Right after a kill: the messages the dead sender had claimed (pending, leased)."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(OutboxMessage.chat_id, OutboxMessage.payload).where(
                OutboxMessage.status == "pending", OutboxMessage.lease_until.is_not(None)
            )
        )
        # As the chat shows it: HTML parse mode, tags gone (bot/sandbox/formatting.py).
        return {(chat_id, plain(str(payload.get("text")))) for chat_id, payload in rows}


def plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def repeated(state: SandboxState, chat_id: int) -> Counter[str]:
    """The bot's messages in a chat that arrived more than once: text → extra copies."""
    chat = state.chat(chat_id)
    assert chat is not None
    texts = Counter(
        m.text or "" for m in state.transcript(chat) if m.sender_id == state.bot.id and m.text
    )
    return Counter({text: times - 1 for text, times in texts.items() if times > 1})


async def caught_up(
    sessionmaker: async_sessionmaker[AsyncSession],
    pid: int,
    leases: tuple[str, ...],
    held: set[int],
) -> None:
    """Until worker ``pid`` holds ``leases`` and ``held`` are all handled (60 s at most)."""
    for _ in range(600):
        if await leads(sessionmaker, pid, leases) and not held & await in_flight(sessionmaker):
            return
        await asyncio.sleep(0.1)


async def kill_and_restart(
    zygote: Zygote,
    state: SandboxState,
    sessionmaker: async_sessionmaker[AsyncSession],
    plan: Plan,
    rng: random.Random,
    log: KillLog,
    leases: tuple[str, ...],
) -> None:
    """Start a worker, kill it at a random moment, ``plan.kills`` times; then start the
    last one, which is left running. After each kill, every update the dead worker
    confirmed must already be in the inbox. ``leases``: what a worker leads once it
    works (bot/leader.py)."""
    held: set[int] = set()
    for _ in range(plan.kills):
        pid = await zygote.spawn()
        # Mostly the new worker is killed once it has caught up with what the dead one
        # held, sometimes at once: kills faster than the bot recovers would test the
        # inbox's rule that an update whose handling was cut short max_attempts times is
        # given up (a poison update, bot/inbox.py) rather than recovery from a crash.
        if rng.random() < 0.8:
            await caught_up(sessionmaker, pid, leases, held)
        await asyncio.sleep(rng.uniform(0, plan.kill_after))
        os.kill(pid, signal.SIGKILL)
        log.kills += 1
        seen = confirmed(state)
        lost = seen - await stored(sessionmaker, seen)
        assert not lost, f"confirmed but not in the inbox after kill {log.kills}: {lost}"
        log.confirmed = len(seen)
        log.in_doubt |= await sends_in_doubt(sessionmaker)
        held = await in_flight(sessionmaker)
        log.busy += bool(held)
        log.in_flight += len(held)
    await zygote.spawn()


async def wait_until_handled(
    sessionmaker: async_sessionmaker[AsyncSession], state: SandboxState, within: float
) -> dict[int, str]:
    """Every update the sandbox created, confirmed and handled; else what is not, by status."""
    deadline = time.monotonic() + within
    while True:
        created = set(range(FIRST_UPDATE_ID, FIRST_UPDATE_ID + state.updates.created))
        async with sessionmaker() as session:
            result = await session.execute(select(InboxUpdate.update_id, InboxUpdate.status))
            rows: dict[int, str] = dict(result.all())
        unfinished = {i: rows.get(i, "missing") for i in created if rows.get(i) != "done"}
        if (not unfinished and confirmed(state) == created) or time.monotonic() > deadline:
            return unfinished
        await asyncio.sleep(0.2)


async def run_intake_under_kills(
    database: str,
    webhook_port: int | None,
    server: SandboxServer,
    state: SandboxState,
    plan: Plan,
    seed: int,
) -> None:
    """The test; ``webhook_port``: the workers take updates by webhook on it, else poll."""
    begun = time.monotonic()
    # The zygote's imports take the longest: under way while the database is prepared.
    options = ["--webhook-port", str(webhook_port)] if webhook_port else []
    starting = asyncio.create_task(Zygote.start(database, server.url, *options))
    engine = make_engine(database)
    sessionmaker = make_sessionmaker(engine)
    zygote: Zygote | None = None
    try:
        await upgrade_database(database)
        await seed_organisation(state, load_config(), sessionmaker)
        zygote = await starting
        prepared_for = time.monotonic() - begun
        leases = ("outbox",) if webhook_port else ("polling", "outbox")
        rng = random.Random(seed)
        villages = VILLAGES.split()
        async with aiohttp.ClientSession() as http:
            people = SandboxPeople(server.url, http)
            citizens = [
                Citizen(
                    people,
                    await people.new_user("居民", f"{index:02d}"),
                    f"{villages[index % len(villages)]}村{index + 1}组，我家低保申请了三个月"
                    f"还没批下来，村里一直拖着（第{index + 1}户）",
                    rng=random.Random(rng.random()),
                    think=plan.think,
                )
                for index in range(plan.citizens)
            ]

            async def file(citizen: Citizen) -> None:
                await asyncio.sleep(citizen.rng.uniform(0, plan.spread))
                await citizen.file()

            log = KillLog()
            started = time.monotonic()
            killer = asyncio.create_task(
                kill_and_restart(zygote, state, sessionmaker, plan, rng, log, leases)
            )
            filing = asyncio.gather(*(file(citizen) for citizen in citizens))
            try:
                # The killer first: a failed kill check must not wait for the citizens.
                await killer
                killed_for = time.monotonic() - started
                await filing
                filed_for = time.monotonic() - started
            finally:
                killer.cancel()
                filing.cancel()
                await asyncio.gather(killer, filing, return_exceptions=True)

            # After the last restart every conversation goes on: /my lists the case.
            await asyncio.gather(*(lists_case(citizen) for citizen in citizens))
            unfinished = await wait_until_handled(sessionmaker, state, within=60)
            continued_for = time.monotonic() - started - filed_for

        assert not unfinished, f"updates not handled: {unfinished}"
        async with sessionmaker() as session:
            cases = (
                await session.execute(
                    select(Person.telegram_id, Case.number, Case.text).join(
                        Person, Person.id == Case.citizen_id
                    )
                )
            ).all()
            result = await session.execute(select(FsmRecord.key, FsmRecord.state))
            states = [(key, fsm_state) for key, fsm_state in result]
        for citizen in citizens:
            theirs = [(number, text) for who, number, text in cases if who == citizen.user_id]
            assert theirs == [(citizen.number, citizen.text)], (citizen.user_id, theirs)
            # Filed and asked for their list: no half-finished step is left behind.
            left = [s for key, s in states if f":{citizen.user_id}:{citizen.user_id}:" in key]
            assert not any(left), (citizen.user_id, left)
        assert len(cases) == plan.citizens, "a case nobody filed"
        doubled = {
            (citizen.user_id, text): extra
            for citizen in citizens
            for text, extra in repeated(state, citizen.user_id).items()
        }
        unexplained = {key for key in doubled if key not in log.in_doubt}
        print(
            f"\nseed {seed}: zygote and database ready in {prepared_for:.1f} s; "
            f"{log.kills} kills in {killed_for:.1f} s, {log.busy} of them "
            f"while handling ({log.in_flight} updates cut short); all filed after "
            f"{filed_for:.1f} s, all went on in {continued_for:.1f} s more; "
            f"{len(cases)} cases, {state.updates.created} updates "
            f"({log.confirmed} confirmed by the last kill); {sum(doubled.values())} messages "
            f"to citizens repeated, {len(unexplained)} of them not in flight at a kill"
        )
    finally:
        if zygote is None:  # the preparation failed: stop the zygote all the same
            with contextlib.suppress(Exception):
                zygote = await starting
        prepared_for = time.monotonic() - begun
        if zygote is not None:
            await zygote.close()
        await engine.dispose()


@pytest.mark.parametrize("transport", ["polling", "webhook"])
async def test_sigkill_during_intake(
    reliability_db: str,
    transport: str,
    long_form: bool,
    sandbox: tuple[SandboxServer, SandboxState],
) -> None:
    """Citizens file petitions while the bot is SIGKILLed and restarted at random moments:
    every confirmed update handled, one case and one receipt per citizen, and every
    conversation answers afterwards. The short form: SQLite and long polling."""
    if transport == "webhook" and not long_form:
        pytest.skip("the short form polls; the long form (--long) takes webhooks too")
    seed = int(os.environ.get("HUIYIN_KILL_SEED") or random.SystemRandom().randrange(10**6))
    print(f"\nHUIYIN_KILL_SEED={seed}")
    server, state = sandbox
    port = free_port() if transport == "webhook" else None
    plan = LONG if long_form else SHORT
    await run_intake_under_kills(reliability_db, port, server, state, plan, seed)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_an_update_handled_before_is_not_handled_again(db_url: str) -> None:
    """What a kill between a handler's commit and the inbox's record of it would leave: the
    update handled again, on top of its own effects. The last answer of a petition, handled
    again, must not be read as a new complaint (the conversation has moved on); the
    replay changes nothing and sends nothing."""
    async with make_world(db_url) as world:
        citizen = Citizen(
            SandboxPeople(world.url, world.http), world.citizen, "旧州镇我家低保被拖了很久"
        )
        await citizen.file()
        last = citizen.update_ids[-1]
        sessionmaker = world.huiyin.sessionmaker

        async def snapshot() -> tuple[list[str | None], int, int]:
            async with sessionmaker() as session:
                states = list(await session.scalars(select(FsmRecord.state)))
                messages = await session.scalar(select(func.count()).select_from(OutboxMessage))
                cases = await session.scalar(select(func.count()).select_from(Case))
            return states, int(messages or 0), int(cases or 0)

        async with sessionmaker() as session:
            row = await session.get(InboxUpdate, last)
            assert row is not None and row.status == "done"
            payload = dict(row.payload)
        before = await snapshot()
        assert before[2] == 1
        await world.huiyin.processor.handle(payload)  # the dispatcher, as the inbox calls it
        assert await snapshot() == before
