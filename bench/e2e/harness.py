"""The harness: the sandbox in this process, the bot in a worker process, citizens over HTTP.

A *closed-loop* run: N citizens at once, each filing petitions the way a person does
(describe → the bot's "✅ 确认" → press → name, phone, request → the receipt with "编号"),
each step sent over real HTTP to the sandbox's control API and the next one only after the
bot's reply. A step's latency runs from just before its HTTP request to the moment the bot's
first message in that chat reaches the sandbox: :class:`TimedSandbox` takes that time as the
message is stored, in this process, so no transcript polling adds to it.

A *backlog* run: citizens × messages updates are queued in the sandbox before the bot starts;
it is timed from the bot's "ready" to its last reply, and each citizen's replies must come
back in the order of their messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.sandbox import DEFAULT_TOKEN, LimitsConfig, SandboxServer, SandboxState
from bot.sandbox.models import SandboxChat, StoredMessage

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_DSN = os.environ.get("HUIYIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# Worker start-up is mostly imports: 6-11 s alone, far more when a dozen start at once.
START_TIMEOUT = 180.0

DESCRIPTION = "旧州镇我家低保申请了三个月还没批下来，村里一直拖着"
ANSWERS = ("张某", "13800000000", "请尽快审批我家的低保申请")
CONFIRM = "✅ 确认"
ORDER_BROKEN = "replies out of order"


@dataclass(frozen=True)
class Spec:
    """One bot configuration: huiyin or echo, polling or webhook, and Huiyin's database."""

    bot: str
    mode: str
    database: str  # "sqlite", "postgres", or "-" for the echo bot

    @property
    def name(self) -> str:
        parts = [self.bot, self.mode] + ([self.database] if self.database != "-" else [])
        return "-".join(parts)


@dataclass
class Row:
    """One measured run: a line of the table."""

    spec: Spec
    kind: str  # "closed" (citizens in a closed loop) or "backlog"
    citizens: int
    updates: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per step
    peak_rss_mb: float = 0.0
    bot_cpu_seconds: float = 0.0  # the bot process's user + system time during the run
    conversations: int = 0  # started
    completed: int = 0  # ended as they should (a receipt; every backlog reply in order)
    problems: list[str] = field(default_factory=list)
    out_of_order: int | None = None  # backlog: citizens whose replies came back out of order
    ratio: float | None = None  # updates/s over the echo bot's in the same mode and load

    @property
    def cpu_ms_per_update(self) -> float | None:
        return self.bot_cpu_seconds / self.updates * 1000 if self.updates else None

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, fraction: float) -> float | None:
        """Nearest-rank percentile of the step latencies, in milliseconds."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000


class TimedSandbox(SandboxState):
    """The sandbox's state, told the moment the bot's message to a private chat is stored:
    the reply's time is taken here, not by polling the transcript over HTTP."""

    def __init__(self) -> None:
        super().__init__(DEFAULT_TOKEN)
        self.waiting: dict[int, asyncio.Future[tuple[float, StoredMessage]]] = {}
        self.replies: Counter[int] = Counter()
        self.last_reply_at = 0.0

    def post(self, chat: SandboxChat, sender_id: int, **content: Any) -> StoredMessage:
        message = super().post(chat, sender_id, **content)
        if sender_id == self.bot.id and chat.type == "private":
            at = time.perf_counter()
            self.replies[chat.id] += 1
            self.last_reply_at = at
            future = self.waiting.pop(chat.id, None)
            if future is not None and not future.done():
                future.set_result((at, message))
        return message


def button_data(message: StoredMessage, label: str) -> str | None:
    for row in (message.reply_markup or {}).get("inline_keyboard", []):
        for button in row:
            if button.get("text") == label:
                return str(button.get("callback_data", ""))
    return None


# --------------------------------------------------------------------------- the worker


class Worker:
    """The bot's process (bench/e2e/worker.py): spawned early, started when its turn comes."""

    def __init__(self, spec: Spec, process: asyncio.subprocess.Process) -> None:
        self.spec = spec
        self.process = process

    @classmethod
    async def spawn(cls, spec: Spec) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.e2e.worker",
            "--bot",
            spec.bot,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(spec, process)

    async def _expect(self, word: bytes) -> None:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT)
        if not line.startswith(word):
            raise RuntimeError(f"worker {self.spec.name}: expected {word!r}, got {line!r}")

    async def imported(self) -> None:
        await self._expect(b"imported")

    async def start(self, config: dict[str, Any]) -> None:
        import json

        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(config).encode() + b"\n")
        await self.process.stdin.drain()
        await self._expect(b"ready")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (/proc/<pid>/stat, fields 14 and 15)."""
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return 0.0

    def peak_rss_mb(self) -> float:
        """VmHWM: the process's peak resident set so far (getrusage would need it ended)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


# --------------------------------------------------------------------------- databases


async def _pg_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def fresh_database(kind: str, folder: Path) -> AsyncIterator[str]:
    """A new empty database for one run (dropped afterwards); its SQLAlchemy URL."""
    name = f"huiyin_bench_e2e_{os.getpid()}_{secrets.token_hex(3)}"
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / (name + '.sqlite3')}"
        return
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def seed(state: SandboxState, database: str) -> None:
    """The demo organisation (a forum group per unit) in the sandbox and the database."""
    from bot.db.engine import make_engine, make_sessionmaker
    from bot.db.migrate import upgrade_database
    from bot.demo import seed_organisation
    from routing.config import load_config

    await upgrade_database(database)
    engine = make_engine(database)
    try:
        await seed_organisation(state, load_config(), make_sessionmaker(engine))
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- citizens


@dataclass
class Citizen:
    """One simulated person: acts over HTTP, waits for the bot's reply after each step."""

    user_id: int
    url: str
    http: aiohttp.ClientSession
    state: TimedSandbox
    timeout: float
    latencies: list[float] = field(default_factory=list)

    async def step(self, path: str, body: dict[str, Any]) -> StoredMessage:
        future = asyncio.get_running_loop().create_future()
        self.state.waiting[self.user_id] = future
        started = time.perf_counter()
        async with self.http.post(f"{self.url}/sandbox/api/{path}", json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"{path}: HTTP {response.status}: {await response.text()}")
            await response.read()
        at, message = await asyncio.wait_for(future, self.timeout)
        self.latencies.append(at - started)
        return message

    async def say(self, text: str) -> StoredMessage:
        return await self.step("send", {"user_id": self.user_id, "text": text})

    async def press(self, message: StoredMessage, data: str) -> StoredMessage:
        body = {
            "user_id": self.user_id,
            "chat_id": self.user_id,
            "message_id": message.message_id,
            "data": data,
            "timeout": 0,  # the reply to wait for is the bot's next message
        }
        return await self.step("press", body)

    async def file_petition(self, is_receipt: Callable[[str], bool]) -> str | None:
        """One whole intake; None when it ended with a receipt, else what went wrong."""
        understood = await self.say(DESCRIPTION)
        data = button_data(understood, CONFIRM)
        if data is None:
            return f"no {CONFIRM} button in {understood.text!r}"
        reply = await self.press(understood, data)
        for answer in ANSWERS:
            reply = await self.say(answer)
            if is_receipt(reply.text or ""):
                return None
        return f"no receipt; last reply {reply.text!r}"


def receipt_check(bot: str) -> Callable[[str], bool]:
    if bot == "huiyin":
        return lambda text: "编号" in text
    return lambda text: text == f"回音：{ANSWERS[-1]}"


async def closed_loop(
    spec: Spec,
    server: SandboxServer,
    state: TimedSandbox,
    *,
    citizens: int,
    rounds: int,
    within: float,
) -> Row:
    """``citizens`` people at once, each filing ``rounds`` petitions one after another."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        people = [
            Citizen(
                state.add_user(f"张{i}", language_code="zh-hans").id,
                server.url,
                http,
                state,
                within,
            )
            for i in range(citizens)
        ]
        is_receipt = receipt_check(spec.bot)
        problems: list[str] = []
        completed = 0

        async def live(person: Citizen) -> None:
            nonlocal completed
            for _ in range(rounds):
                try:
                    problem = await person.file_petition(is_receipt)
                except (TimeoutError, RuntimeError, aiohttp.ClientError) as error:
                    problem = f"{type(error).__name__}: {error}"
                if problem is not None:
                    problems.append(problem)
                    return
                completed += 1

        started = time.perf_counter()
        await asyncio.gather(*(live(person) for person in people))
        seconds = max(state.last_reply_at, started) - started
    latencies = [value for person in people for value in person.latencies]
    return Row(
        spec,
        "closed",
        citizens,
        updates=len(latencies),
        seconds=seconds,
        latencies=latencies,
        conversations=citizens * rounds,
        completed=completed,
        problems=problems,
    )


@dataclass
class Backlog:
    """The queued updates: per citizen, the update ids and texts in the order sent."""

    sent: dict[int, list[tuple[int, str]]]

    @property
    def updates(self) -> int:
        return sum(len(items) for items in self.sent.values())


def queue_backlog(state: TimedSandbox, citizens: int, messages: int) -> Backlog:
    """citizens × messages updates in the sandbox's queue, before any bot reads them (the
    sandbox's own people.send, as POST /sandbox/api/send does: 10,000 HTTP calls would only
    time this harness)."""
    from bot.sandbox import people

    sent: dict[int, list[tuple[int, str]]] = {}
    for i in range(citizens):
        user = state.add_user(f"李{i}", language_code="zh-hans")
        chat = state.chat(user.id)
        assert chat is not None
        sent[user.id] = []
        for k in range(messages):
            text = f"{DESCRIPTION}，第{k + 1}次反映"
            _, update_id = people.send(state, user, chat, people.Outgoing(text=text))
            assert update_id is not None
            sent[user.id].append((update_id, text))
    return Backlog(sent)


async def drain(state: TimedSandbox, backlog: Backlog, ready_at: float, within: float) -> float:
    """Wait until every citizen has a reply per message; the seconds from ready to the last."""
    deadline = time.perf_counter() + within
    expected = {chat: len(items) for chat, items in backlog.sent.items()}
    while any(state.replies[chat] < count for chat, count in expected.items()):
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.05)
    return max(0.0, state.last_reply_at - ready_at)


async def huiyin_order(database: str, backlog: Backlog) -> list[str]:
    """Each citizen's replies, in the order they reached the chat, answer their updates in
    the order sent: the outbox's dedupe key names the update (handlers/reply.py)."""
    from sqlalchemy import select

    from bot.db.engine import make_engine
    from bot.db.models import OutboxMessage

    engine = make_engine(database)
    query = select(
        OutboxMessage.chat_id, OutboxMessage.dedupe_key, OutboxMessage.result_message_id
    ).where(OutboxMessage.status == "sent", OutboxMessage.chat_id.in_(list(backlog.sent)))
    try:
        # The sender marks a message sent just after the sandbox stored it: a moment later.
        for _ in range(100):
            async with engine.connect() as connection:
                rows = (await connection.execute(query)).all()
            if len(rows) >= backlog.updates:
                break
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    replied: dict[int, list[tuple[int, int]]] = {chat: [] for chat in backlog.sent}
    for chat_id, key, message_id in rows:
        if key and key.startswith("u"):
            replied[chat_id].append((message_id or 0, int(key[1:].split(":", 1)[0])))
    return [
        problem
        for chat, items in backlog.sent.items()
        if (
            problem := order_problem(
                chat,
                [update_id for _, update_id in sorted(replied[chat])],
                [update_id for update_id, _ in items],
            )
        )
    ]


def order_problem(chat: int, answered: list[Any], sent: list[Any]) -> str | None:
    """What is wrong with one chat's replies, if anything: some missing (the drain ran out
    of time) or out of order."""
    if answered == sent:
        return None
    if sorted(answered, key=sent.index) == answered and set(answered) < set(sent):
        return f"chat {chat}: {len(sent) - len(answered)} of {len(sent)} not answered in time"
    return f"chat {chat}: {ORDER_BROKEN}"


def echo_order(state: TimedSandbox, backlog: Backlog) -> list[str]:
    """The echo bot quotes each message: its replies must come back in the order sent."""
    problems = []
    for chat_id, items in backlog.sent.items():
        chat = state.chat(chat_id)
        assert chat is not None
        said = [m.text for m in state.transcript(chat) if m.sender_id == state.bot.id]
        problem = order_problem(chat_id, said, [f"回音：{text}" for _, text in items])
        if problem:
            problems.append(problem)
    return problems


# --------------------------------------------------------------------------- one spec


@dataclass
class Plan:
    loads: list[int]  # citizens in each closed-loop run, one after another on one bot
    rounds: int
    backlog_citizens: int
    backlog_messages: int
    timeout: float
    profile: bool
    profile_dir: Path | None = None


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def run_spec(
    spec: Spec,
    worker: Worker,
    plan: Plan,
    folder: Path,
    say: Callable[[str], None] = print,
) -> list[Row]:
    """Start the sandbox, a fresh database and the bot; drain the backlog if there is one
    (queued before the bot starts, so it runs first and its peak RSS is its own), then run
    the closed loops one after another on the same bot."""
    state = TimedSandbox()
    server = SandboxServer(state, limits=LimitsConfig(enabled=False))
    await server.start()
    database = spec.database if spec.database != "-" else "sqlite"
    profile = (plan.profile_dir or folder) / f"{spec.name}.prof" if plan.profile else None
    rows: list[Row] = []
    try:
        async with fresh_database(database, folder) as url:
            if spec.bot == "huiyin":
                await seed(state, url)
            queued = (
                queue_backlog(state, plan.backlog_citizens, plan.backlog_messages)
                if plan.backlog_citizens
                else None
            )
            config = {
                "api": server.url,
                "token": state.token,
                "mode": spec.mode,
                "port": _free_port(),
                "database": url,
                "profile": str(profile) if profile else None,
            }
            await worker.start(config)
            ready_at = time.perf_counter()
            cpu = worker.cpu_seconds()
            if queued is not None:
                say(f"  draining {queued.updates} queued updates")
                seconds = await drain(
                    state, queued, ready_at, within=max(60.0, queued.updates / 5)
                )
                row = Row(
                    spec,
                    "backlog",
                    len(queued.sent),
                    updates=queued.updates,
                    seconds=seconds,
                    conversations=len(queued.sent),
                    peak_rss_mb=worker.peak_rss_mb(),
                    bot_cpu_seconds=worker.cpu_seconds() - cpu,
                )
                problems = (
                    await huiyin_order(url, queued)
                    if spec.bot == "huiyin"
                    else echo_order(state, queued)
                )
                row.out_of_order = sum(ORDER_BROKEN in problem for problem in problems)
                if spec.bot == "echo":
                    # The floor promises no order: aiogram runs each update as its own task.
                    problems = [problem for problem in problems if ORDER_BROKEN not in problem]
                row.problems = problems
                row.completed = len(queued.sent) - len(problems)
                rows.append(row)
                cpu = worker.cpu_seconds()
            for citizens in plan.loads:
                say(f"  {citizens} citizens × {plan.rounds} petition(s)")
                row = await closed_loop(
                    spec, server, state, citizens=citizens, rounds=plan.rounds, within=plan.timeout
                )
                row.peak_rss_mb = worker.peak_rss_mb()
                row.bot_cpu_seconds, cpu = worker.cpu_seconds() - cpu, worker.cpu_seconds()
                rows.append(row)
            await worker.stop()
    finally:
        await worker.stop()
        await server.stop()
    if profile is not None and profile.exists():
        print_profile(spec.name, profile)
    return rows


def _package(filename: str) -> str:
    """Which library (or which of our packages) a profiled function belongs to."""
    if filename == "~":
        return "builtins (C: sockets, epoll, …)"
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].split(".")[0]
    if ROOT in path.parents:
        return path.relative_to(ROOT).parts[0] + "/"
    return "python stdlib (asyncio, …)"


def profile_by_package(stats: Any) -> list[tuple[str, float]]:
    """Own time (tottime) summed per package: where the CPU actually goes."""
    totals: Counter[str] = Counter()
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():
        package = _package(filename)
        if package.startswith("builtins") and "poll" in name:
            package = "idle (epoll wait)"
        totals[package] += tottime
    return [(package, float(seconds)) for package, seconds in totals.most_common()]


def print_profile(title: str, path: Path) -> None:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    print(f"\n=== cProfile of the bot process, {title} ===")
    total = sum(seconds for _, seconds in profile_by_package(stats)) or 1.0
    print("own time by package (s, % of the profiled run):")
    for package, seconds in profile_by_package(stats)[:12]:
        print(f"  {seconds:8.2f}  {seconds / total:6.1%}  {package}")
    stats.strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    # pstats' preamble is a dozen lines of nothing useful; keep the tables.
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


async def run_all(specs: list[Spec], plan: Plan, *, say: Callable[[str], None]) -> list[Row]:
    """Spawn every bot process at once (their imports overlap; then they wait, idle, for
    their turn), then run the specs one by one."""
    workers = [await Worker.spawn(spec) for spec in specs]
    rows: list[Row] = []
    try:
        await asyncio.gather(*(worker.imported() for worker in workers))
        say(f"{len(workers)} bot processes imported")
        with tempfile.TemporaryDirectory(prefix="huiyin-e2e-") as folder:
            for spec, worker in zip(specs, workers, strict=True):
                say(f"running {spec.name}")
                rows += await run_spec(spec, worker, plan, Path(folder), say)
    finally:
        for worker in workers:
            await worker.stop()
    return rows
