"""PostgreSQL restarted mid-run: the bot recovers by itself and loses nothing (issue 6).

A PRIVATE PostgreSQL cluster (initdb into a temp dir, its own port and socket dir) is
restarted under the running bot — the shared server at 127.0.0.1:5432 serves other tests
and is never touched. Citizens file petitions through the sandbox while the database goes
away: a fast shutdown, a crash (``-m immediate``), and a crash that stays down a few
seconds, during which someone else writes to the bot. Nobody restarts the bot. Afterwards:

* every conversation has reached its receipt, and no citizen was told "something went wrong";
* what was sent while the database was down stayed unconfirmed at the sandbox; every update
  the sandbox saw confirmed (getUpdates offset, or a webhook 2xx) is in the inbox, and every
  update is handled (``done``);
* exactly one case per citizen; every outbox row is ``sent``, and none went out twice;
* the log shows the outage (errors logged by the loops); no loop of the bot has ended, the
  reminder scan still runs; in webhook mode the bot answered 5xx while it could not store,
  and the sandbox retried.

Two focused tests: which errors count as "the database is away" (the errors handler
re-raises those for the inbox to retry), and a leader lease that survives a blink but not
an outage.

Short form (CI): polling through a fast restart and a crash down 3 s, webhook through a
crash down 2 s. Long form (``--long``): 24 citizens and six restarts of every kind, in both
modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from bot.app import Huiyin
from bot.db.engine import database_unavailable, make_engine, make_sessionmaker
from bot.db.migrate import upgrade_database
from bot.db.models import Case, InboxUpdate, Lease, OutboxMessage, Person
from bot.demo import seed_organisation
from bot.leader import LeaderLease, while_leader
from bot.sandbox import DEFAULT_TOKEN, RetryPolicy, SandboxServer, SandboxState
from bot.sandbox.limits import LimitsConfig
from bot.sandbox.updates import FIRST_UPDATE_ID
from bot.settings import Settings
from routing.config import DEFAULT_CONFIG_DIR
from tests.e2e.conftest import FAST, Clock, World, buttons

COMPLAINT = "旧州镇我家低保申请了三个月还没批下来，村里一直拖着"
ANSWERS = ("张某", "13800000000", "请尽快审批我家的低保申请")
INTERNAL_ERROR = "系统出了点问题"  # config/texts.yaml error.internal
# One conversation's wait for the bot: generous, an outage plus the loops' backoff fits.
REPLY_WITHIN = 90.0
LEASE_SECONDS = 3.0  # the leader leases (poller, sender): short, so outages outlast them


# ---------------------------------------------------------------------- the private cluster


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_binaries() -> Path | None:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass
class PrivateCluster:
    """A throwaway PostgreSQL cluster this test may stop, crash and start at will.

    initdb and postgres refuse to run as root: as root (CI) they run as ``postgres``."""

    bindir: Path
    root: Path
    port: int
    restarts: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _ctl(self, *args: str) -> list[str]:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            # A crash here is the server process's, never the machine's: what a commit wrote
            # is in the OS's cache and survives, so syncing it to disk only costs time. Not
            # synchronous_commit=off: a crash would lose acknowledged commits.
            "-c fsync=off -c full_page_writes=off"
        )
        return self._as_owner(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            *args,
        )

    @classmethod
    def create(cls, bindir: Path) -> PrivateCluster:
        import subprocess

        root = Path(tempfile.mkdtemp(prefix="huiyin-pg-"))
        root.chmod(0o755)  # the postgres user must reach its data dir and socket
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        cluster = cls(bindir, root, _free_port())
        subprocess.run(
            cluster._as_owner(
                str(bindir / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            cwd=root,
        )
        subprocess.run(cluster._ctl("-w", "start"), check=True, capture_output=True, cwd=root)
        return cluster

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def _run(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._ctl(*args),
            cwd=self.root,  # the postgres user may not enter the current directory
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode(errors="replace")

    async def restart(
        self,
        mode: str,
        *,
        down: float = 0.0,
        while_down: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Stop (``fast``: sessions terminated; ``immediate``: a crash, recovery at start),
        stay down ``down`` seconds (and until ``while_down()`` returns), start again;
        returns once the server accepts connections."""
        await self._run("-m", mode, "-w", "stop")
        await asyncio.gather(asyncio.sleep(down), while_down() if while_down else asyncio.sleep(0))
        await self._run("-w", "start")
        self.restarts += 1

    async def create_database(self) -> str:
        import asyncpg

        name = f"huiyin_{secrets.token_hex(4)}"
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres", timeout=10
        )
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)

    def destroy(self) -> None:
        import subprocess

        subprocess.run(self._ctl("-m", "immediate", "stop"), capture_output=True, cwd=self.root)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivateCluster]:
    bindir = _server_binaries()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        reason = "PostgreSQL server binaries (/usr/lib/postgresql/*/bin) or runuser missing"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = PrivateCluster.create(bindir)
    try:
        yield cluster
    finally:
        cluster.destroy()


# ---------------------------------------------------------------------- the bot and sandbox


@dataclass
class Run:
    world: World
    server: SandboxServer
    state: SandboxState
    # Every update id the sandbox dropped as confirmed (offset moved past it, or 2xx).
    confirmed: set[int] = field(default_factory=set)

    @property
    def huiyin(self) -> Huiyin:
        return self.world.huiyin


def _record_confirmations(state: SandboxState, confirmed: set[int]) -> None:
    """Note each update the queue lets go of as confirmed (drop() goes through confirm())."""
    queue = state.updates
    original = queue.confirm

    def confirm(offset: int) -> None:
        before = {update.update_id for update in queue.peek(10_000)}
        original(offset)
        confirmed.update(before - {update.update_id for update in queue.peek(10_000)})

    queue.confirm = confirm  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def running_bot(database_url: str, *, webhook: bool) -> AsyncIterator[Run]:
    state = SandboxState(DEFAULT_TOKEN)
    server = SandboxServer(
        state,
        limits=LimitsConfig(enabled=False),
        webhook_retry=RetryPolicy(first_delay=0.2, max_delay=1.0),
    )
    url = await server.start()
    port = _free_port()
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        config_dir=DEFAULT_CONFIG_DIR,
        webhook_url=f"http://127.0.0.1:{port}" if webhook else None,
        port=port,
    )
    clock = Clock(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC))  # a Monday, 10:00 Shanghai
    huiyin = await Huiyin.create(
        settings,
        token=state.token,
        api_url=url,
        clock=clock,
        limits=FAST,
        scan_interval=1.0,
        lease_seconds=LEASE_SECONDS,
    )
    demo = await seed_organisation(state, huiyin.config, huiyin.sessionmaker)
    runner: web.AppRunner | None = None
    if webhook:
        app = web.Application()
        huiyin.add_routes(app)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    confirmed: set[int] = set()
    _record_confirmations(state, confirmed)
    await huiyin.start()
    try:
        async with aiohttp.ClientSession() as http:
            world = World(url, demo, huiyin, http, clock, settings, state.token, sandbox=state)
            yield Run(world, server, state, confirmed)
    finally:
        await huiyin.stop()
        if runner is not None:
            await runner.cleanup()
        await server.stop()


# ---------------------------------------------------------------------- citizens


async def file_petition(world: World, citizen: int) -> dict[str, Any]:
    """Text → "✅ 确认" → name, phone, request → the receipt with its 编号."""
    await world.send(citizen, COMPLAINT)
    understood = await world.bot_says(
        citizen, lambda m: "✅ 确认" in buttons(m), within=REPLY_WITHIN
    )
    await world.press(citizen, citizen, understood["message_id"], buttons(understood)["✅ 确认"])
    answers = iter(ANSWERS)
    while True:
        message = await world.bot_says(citizen, within=REPLY_WITHIN)
        assert INTERNAL_ERROR not in message["text"], f"citizen {citizen}: {message['text']}"
        if "编号" in message["text"]:
            return message
        answer = next(answers, None)
        if answer is None:
            transcript = [(m["from_bot"], m["text"]) for m in await world.messages(citizen)]
            raise AssertionError(f"citizen {citizen}: no receipt: {transcript}")
        await world.send(citizen, answer)


async def updates_created(state: SandboxState, at_least: int) -> None:
    while True:
        if state.updates.created >= at_least:
            return
        await asyncio.sleep(0.02)


Outage = Callable[[Run, PrivateCluster], Awaitable[None]]


async def conversations_through(
    run: Run, cluster: PrivateCluster, citizens: int, outages: list[tuple[int, Outage]]
) -> list[int]:
    """``citizens`` people file petitions at once; each outage starts once the sandbox has
    created that many updates (so it falls mid-conversation). Returns the citizens."""
    people = [await run.world.new_user(f"测试市民{index}") for index in range(citizens)]
    base = run.state.updates.created
    conversations = asyncio.gather(*(file_petition(run.world, person) for person in people))
    try:
        for after, outage in outages:
            await asyncio.wait_for(updates_created(run.state, base + after), REPLY_WITHIN)
            await outage(run, cluster)
        receipts = await asyncio.wait_for(conversations, 3 * REPLY_WITHIN)
    finally:
        conversations.cancel()
        with contextlib.suppress(BaseException):
            await conversations
    assert all("编号" in receipt["text"] for receipt in receipts)
    return people


def fast_restart(run: Run, cluster: PrivateCluster) -> Awaitable[None]:
    return cluster.restart("fast")


def crash(run: Run, cluster: PrivateCluster) -> Awaitable[None]:
    return cluster.restart("immediate")


def crash_down(seconds: float) -> Outage:
    """A crash, and the server stays away ``seconds``; meanwhile someone writes to the bot,
    and what they wrote stays unconfirmed at the sandbox (nothing can store it)."""

    async def outage(run: Run, cluster: PrivateCluster) -> None:
        async def someone_writes() -> None:
            bystander = await run.world.new_user("路人甲")
            sent = await run.world.send(bystander, "/start")
            await asyncio.sleep(seconds / 2)  # the poller or the webhook has tried by now
            pending = {update.update_id for update in run.state.updates.peek(10_000)}
            assert sent["update_id"] in pending, "confirmed while the database was down"
            assert sent["update_id"] not in run.confirmed

        await cluster.restart("immediate", down=seconds, while_down=someone_writes)

    return outage


# ---------------------------------------------------------------------- checks


async def settled(run: Run) -> None:
    """Wait until the sandbox holds no update and the inbox and outbox nothing unfinished."""
    maker = run.huiyin.sessionmaker
    for _ in range(int(2 * REPLY_WITHIN / 0.2)):
        try:
            async with maker() as session:
                open_updates = await session.scalar(
                    select(func.count())
                    .select_from(InboxUpdate)
                    .where(InboxUpdate.status != "done")
                )
                open_messages = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status == "pending")
                )
        except Exception:  # the database may still be coming back
            open_updates = open_messages = -1
        if not len(run.state.updates) and open_updates == 0 and open_messages == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not settled: {open_updates} updates, {open_messages} messages open")


async def assert_nothing_lost(run: Run, people: list[int]) -> None:
    await settled(run)
    async with run.huiyin.sessionmaker() as session:
        inbox = dict(
            (await session.execute(select(InboxUpdate.update_id, InboxUpdate.status))).all()
        )
        cases = dict(
            (
                await session.execute(
                    select(Person.telegram_id, func.count(Case.id))
                    .join(Case, Case.citizen_id == Person.id)
                    .where(Person.telegram_id.in_(people))
                    .group_by(Person.telegram_id)
                )
            ).all()
        )
        outbox = dict(
            (
                await session.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                )
            ).all()
        )
        sends = dict(
            (
                await session.execute(
                    select(OutboxMessage.chat_id, func.count())
                    .where(OutboxMessage.chat_id.in_(people))
                    .where(OutboxMessage.method.like("send%"))
                    .group_by(OutboxMessage.chat_id)
                )
            ).all()
        )
    missing = run.confirmed - set(inbox)
    assert not missing, f"confirmed to the sandbox but not in the inbox: {sorted(missing)}"
    created = set(range(FIRST_UPDATE_ID, FIRST_UPDATE_ID + run.state.updates.created))
    assert created <= run.confirmed, "updates still unconfirmed"
    assert {status for update_id, status in inbox.items() if update_id in created} == {"done"}
    assert cases == dict.fromkeys(people, 1), f"cases per citizen: {cases}"
    assert set(outbox) == {"sent"}, f"outbox: {outbox}"
    # Nothing sent twice either: with the outcome written after the outage, not left to a
    # lease running out, each row is one message in the citizen's chat.
    for person in people:
        received = [m for m in await run.world.messages(person) if m.get("from_bot")]
        assert len(received) == sends[person], f"citizen {person}: {len(received)} messages"


def assert_recovered(run: Run, records: list[logging.LogRecord], *, webhook: bool) -> None:
    """The outage is in the log, from the loops that met it; none of them ended, nothing
    died unnoticed (an asyncio "exception was never retrieved", a scheduler job raising)."""
    assert all(not task.done() for task in run.huiyin.tasks), [
        task for task in run.huiyin.tasks if task.done()
    ]
    warned = [r for r in records if r.levelno >= logging.WARNING]
    died = [r for r in warned if r.name == "asyncio" or r.name.startswith("apscheduler")]
    assert not [r for r in died if r.levelno >= logging.ERROR], died
    assert not [r for r in warned if "the work broke" in r.getMessage()]
    loops = {"bot.inbox", "bot.outbox", "bot.leader", "bot.polling", "bot.app"}
    assert loops & {r.name for r in warned}, "the outage left no trace in the log"
    if webhook:
        # The bystander's update was posted while the database was down: answered 5xx.
        assert any(r.name == "bot.webhook" for r in warned)
        assert run.server.runtime.stats.webhook_failures > 0
    else:
        # The poller met the outage itself, or lost its lease to it and took it back.
        assert any(
            r.name == "bot.polling" or "lease polling: lost" in r.getMessage() for r in warned
        )
        assert any("lease polling: taken" in r.getMessage() for r in records)


# ---------------------------------------------------------------------- the tests


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_postgres_restarts_under_the_bot(
    mode: str,
    private_pg: PrivateCluster,
    long_form: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    webhook = mode == "webhook"
    citizens = 24 if long_form else 4
    # Each conversation is 5 updates; the outages fall at spread-out points of the run.
    total = 5 * citizens
    if long_form:
        kinds = [fast_restart, crash, crash_down(5.0), fast_restart, crash_down(2.0), crash]
        outages = [(total * (i + 1) // 7, kind) for i, kind in enumerate(kinds)]
    elif webhook:
        outages = [(total // 2, crash_down(2.0))]
    else:
        outages = [(total // 3, fast_restart), (2 * total // 3, crash_down(3.0))]
    database = await private_pg.create_database()
    restarts_before = private_pg.restarts
    async with running_bot(database, webhook=webhook) as run:
        people = await conversations_through(run, private_pg, citizens, outages)
        assert private_pg.restarts - restarts_before == len(outages)
        await assert_nothing_lost(run, people)
        assert_recovered(run, caplog.records, webhook=webhook)
        # The reminder scan is still scheduled, and scans (a failure here raises).
        assert run.huiyin.scheduler is not None and run.huiyin.scheduler.running
        assert run.huiyin.scheduler.get_job("reminder-scan") is not None
        await run.huiyin.scanner.scan()


async def test_what_counts_as_the_database_being_away(private_pg: PrivateCluster) -> None:
    """database_unavailable() (the errors handler re-raises these, for the inbox to retry)
    on the errors a restart really produces, and not on errors in the work itself."""
    database = await private_pg.create_database()
    engine = make_engine(database, pool_pre_ping=False, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id int PRIMARY KEY)"))
            await connection.execute(text("INSERT INTO t VALUES (1)"))
        own_errors = []
        for statement in ("INSERT INTO t VALUES (1)", "SELECT * FROM missing"):
            with pytest.raises(DBAPIError) as caught:
                async with engine.begin() as connection:
                    await connection.execute(text(statement))
            own_errors.append(caught.value)
        assert not any(database_unavailable(error) for error in own_errors)

        away = []

        async def use_while_down() -> None:
            for _ in range(2):  # the pooled connection, then a new one
                with pytest.raises((DBAPIError, OSError)) as caught:
                    async with engine.connect() as connection:
                        await connection.execute(text("SELECT 1"))
                away.append(caught.value)

        await private_pg.restart("immediate", while_down=use_while_down)
        assert all(database_unavailable(error) for error in away), away
        async with engine.connect() as connection:  # the pool replaced the dead connection
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_a_leader_keeps_its_work_through_a_blink_not_through_an_outage(
    private_pg: PrivateCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """while_leader(): a restart shorter than the lease leaves the work running (the lease
    is still ours: no one else may take it); an outage that outlasts it stops the work,
    and the work starts again once the lease is retaken."""
    database = await private_pg.create_database()
    await upgrade_database(database)
    engine = make_engine(database)
    sessionmaker = make_sessionmaker(engine)
    runs: dict[str, list[asyncio.Event]] = {"blink": [], "outage": []}

    def leader(name: str, ttl: float, stopping: asyncio.Event) -> asyncio.Task[None]:
        async def work() -> None:
            stopped = asyncio.Event()
            runs[name].append(stopped)
            await stopped.wait()

        def stop_work() -> None:
            runs[name][-1].set()

        lease = LeaderLease(sessionmaker, name, ttl=ttl)
        return asyncio.create_task(while_leader(lease, work, stop_work, stopping=stopping))

    async def started(name: str, times: int) -> None:
        for _ in range(600):
            if len(runs[name]) >= times:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{name}: started {len(runs[name])} times, not {times}")

    async def renewed(name: str) -> None:
        """Returns right after the lease's next renewal."""
        expires = select(Lease.expires_at).where(Lease.name == name)
        async with sessionmaker() as session:
            before = await session.scalar(expires)
        for _ in range(600):
            async with sessionmaker() as session:
                if await session.scalar(expires) != before:
                    return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{name}: not renewed")

    stopping = asyncio.Event()
    # "blink" renews every 3 s and keeps its work while 3 s of its lease are left: an
    # outage starting right after a renewal and lasting 3-6 s fails exactly one renewal.
    leaders = [leader("blink", 9.0, stopping), leader("outage", 1.5, stopping)]
    try:
        await started("blink", 1)
        await started("outage", 1)
        await renewed("blink")
        await private_pg.restart("immediate", down=3.0)
        await started("outage", 2)  # stopped while away, started again once back
        assert runs["outage"][0].is_set()
        await renewed("blink")
        assert "lease blink: renewing failed" in caplog.text
        assert len(runs["blink"]) == 1 and not runs["blink"][0].is_set()
    finally:
        stopping.set()
        await asyncio.gather(*leaders, return_exceptions=True)
        await engine.dispose()
