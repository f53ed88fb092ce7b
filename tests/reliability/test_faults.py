"""Telegram misbehaves: the sandbox answers 5xx (JSON and nginx's HTML 502), bursts of 429
with retry_after, and timeouts, drawn at random from a fixed seed, while the bot sends.
Every outgoing message is delivered, none twice, each chat's in order (checked by outbox id
in the transcript).

Two kinds of timeout, because Telegram's are ambiguous (bot/outbox.py):

* ``timeout``: the request is held past the client's timeout and dropped unprocessed
  (Telegram's front end never passed it on). A retry is the only copy: none twice holds.
* ``slow``: the request is processed, the answer comes after the client gave up. A retry is
  a second copy, and nothing can tell the two apart from the client's side: sendMessage has
  no idempotency key. :func:`test_a_late_answer_is_the_one_duplicate` shows that this, and
  only this, makes a duplicate, one per lost answer.

Short form (CI): SQLite, a few hundred messages, three citizens' intake conversations.
Long form (``--long``): SQLite and PostgreSQL, more messages, more faults, more citizens.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.engine import make_engine, make_sessionmaker
from bot.db.models import Base, Case, OutboxMessage
from bot.inbox import Backoff
from bot.outbox import OutboxSender, Outgoing, Rate, SendLimits, enqueue_many
from bot.sandbox import DEFAULT_TOKEN, SandboxServer, SandboxState
from bot.sandbox.limits import LimitsConfig
from tests.e2e.conftest import World, buttons, make_world
from tests.infra.conftest import Control as InfraControl

QUICK = Backoff(first=0.05, factor=2.0, maximum=0.4)
# The sandbox enforces no flood limits here: every 429 is an injected one.
UNLIMITED = SendLimits(overall=Rate(1000, 1), private_chat=Rate(1000, 1), group_chat=Rate(1000, 1))
# The client gives up after REQUEST_TIMEOUT s; a timeout fault holds the call a little longer,
# so the client sees its own timeout (as with Telegram), not a closed connection.
REQUEST_TIMEOUT = 2
HOLD = REQUEST_TIMEOUT + 0.5
SEED = 20260301
# How long a test waits for everything to settle before failing: a guard, not a target.
SETTLE_SECONDS = 300.0
OUTBOX_ID = re.compile(r"#(\d+)")


@dataclass(frozen=True)
class Form:
    """The sizes of one form of the suite."""

    private_chats: int
    groups: int
    per_chat: int
    rate: float  # chance that a calm method starts a burst of faults
    max_burst: int
    citizens: int


SHORT = Form(private_chats=8, groups=4, per_chat=20, rate=0.08, max_burst=3, citizens=3)
LONG = Form(private_chats=30, groups=10, per_chat=40, rate=0.15, max_burst=5, citizens=10)


@pytest.fixture
def form(long_form: bool) -> Form:
    return LONG if long_form else SHORT


def random_faults(form: Form, methods: list[str], **mix: float) -> dict[str, Any]:
    return {
        "rate": form.rate,
        "seed": SEED,
        "methods": methods,
        "mix": mix,
        "max_burst": form.max_burst,
        "retry_after": 1,
        "delay": HOLD,
    }


class Control(InfraControl):
    """The sandbox's control API (tests/infra's), with the whole transcript of a chat."""

    async def transcript(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat, deleted ones too (a deleted duplicate is one)."""
        messages = await self.get(f"/chats/{chat_id}/messages?include_deleted=1")
        return [m for m in messages if m["from_bot"]]


@dataclass
class Sandbox:
    server: SandboxServer
    state: SandboxState
    control: Control
    bot: Bot


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    state = SandboxState(DEFAULT_TOKEN)
    server = SandboxServer(state, limits=LimitsConfig(enabled=False))
    url = await server.start()
    bot = Bot(DEFAULT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))
    async with aiohttp.ClientSession() as http:
        yield Sandbox(server, state, Control(http, url), bot)
    await bot.session.close()
    await server.stop()


@pytest.fixture
async def sessionmaker(reliability_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(reliability_db)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def outbox(sessionmaker: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while not await condition():
        if loop.time() > deadline:
            pytest.fail(f"{what}: not within {SETTLE_SECONDS} s")
        await asyncio.sleep(0.1)


async def settled(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    # A count, not the rows: this runs in the sender's process every few tens of ms.
    pending = select(func.count()).where(OutboxMessage.status == "pending")
    async with sessionmaker() as session:
        return not await session.scalar(pending)


async def fill_outbox(
    sessionmaker: async_sessionmaker[AsyncSession], chats: list[int], per_chat: int
) -> None:
    """``per_chat`` messages to each chat, interleaved across chats; then each text is
    stamped with its own outbox id, the key the transcript is checked by."""
    messages = [Outgoing(chat, f"第{n}条", None) for n in range(per_chat) for chat in chats]
    async with sessionmaker() as session, session.begin():
        await enqueue_many(session, messages)
        for row in await session.scalars(select(OutboxMessage)):
            row.payload = {**row.payload, "text": f"#{row.id} {row.payload['text']}"}


async def run_sender(
    sessionmaker: async_sessionmaker[AsyncSession], bot: Bot, **options: Any
) -> OutboxSender:
    sender = OutboxSender(
        sessionmaker,
        bot,
        UNLIMITED,
        backoff=QUICK,
        poll_interval=0.05,
        request_timeout=REQUEST_TIMEOUT,
        **options,
    )
    task = asyncio.create_task(sender.run())
    try:
        await until(lambda: settled(sessionmaker), "the outbox drained")
    finally:
        sender.stop()
        await asyncio.wait_for(task, SETTLE_SECONDS)
    # Calls the sender gave up waiting for may still be held by the sandbox: let them land
    # (slow) or be dropped (timeout) before anyone reads a transcript.
    await asyncio.sleep(HOLD)
    return sender


def outbox_ids(transcript: list[dict[str, Any]]) -> list[int]:
    ids = []
    for message in transcript:
        found = OUTBOX_ID.match(message["text"] or "")
        assert found is not None, f"a bot message no outbox row accounts for: {message}"
        ids.append(int(found.group(1)))
    return ids


# The outbox against random faults ----------------------------------------------------------


async def test_every_message_once_and_in_order_through_faults(
    sandbox: Sandbox, sessionmaker: async_sessionmaker[AsyncSession], form: Form
) -> None:
    state = sandbox.state
    people = [state.add_user(f"市民{n}").id for n in range(form.private_chats)]
    groups = [state.add_group(f"第{n}科", members=people[:2]).id for n in range(form.groups)]
    chats = people + groups
    await fill_outbox(sessionmaker, chats, form.per_chat)
    await sandbox.control.call(
        "POST",
        "/faults/random",
        random_faults(form, ["sendMessage"], error=2, html=1, flood=2, timeout=1),
    )

    sender = await run_sender(sessionmaker, sandbox.bot)

    rows = await outbox(sessionmaker)
    assert len(rows) == len(chats) * form.per_chat
    assert [row.id for row in rows if row.status != "sent"] == []
    stats = await sandbox.control.call("GET", "/stats")
    faults = stats["faults"]
    # The seed fixes the faults by call number, whatever order the chats' calls come in:
    # every kind was met, and in bursts (more faults than bursts would give one by one).
    assert set(faults) == {"error", "html", "flood", "timeout"}, faults
    assert sum(faults.values()) > form.rate * len(rows)
    for chat in chats:
        transcript = await sandbox.control.transcript(chat)
        ids = outbox_ids(transcript)
        expected = [row.id for row in rows if row.chat_id == chat]
        assert ids == expected, f"chat {chat}: lost, doubled or out of order"
        # The message id each row recorded is the message that carries it.
        recorded = {row.id: row.result_message_id for row in rows if row.chat_id == chat}
        assert {i: m["message_id"] for i, m in zip(ids, transcript, strict=True)} == recorded
    # Each failed call was made again exactly once, and no call beyond: nothing doubled
    # at the sender's end either.
    assert stats["calls"]["sendMessage"] == len(rows) + sum(faults.values())
    assert sender.stats.sent == len(rows)
    assert sender.stats.too_many_requests == faults["flood"]
    print(f"\n{len(rows)} messages, {stats['calls']['sendMessage']} calls, faults {faults}")


async def test_a_late_answer_is_the_one_duplicate(
    sandbox: Sandbox, sessionmaker: async_sessionmaker[AsyncSession], form: Form
) -> None:
    """Slow calls processed after the client gave up (and unprocessed timeouts among them):
    each slow fault makes exactly one extra copy of the message it met, nothing else
    repeats, nothing is lost. This is the window bot/outbox.py documents; Telegram offers
    no way to close it (no idempotency key, no way to ask what was delivered)."""
    state = sandbox.state
    people = [state.add_user(f"市民{n}").id for n in range(form.private_chats // 2)]
    await fill_outbox(sessionmaker, people, form.per_chat // 2)
    # Every fault here costs the row an attempt: few and short bursts, so that no row
    # meets max_attempts of them (giving up is tested in tests/infra/test_outbox.py).
    faults = random_faults(form, ["sendMessage"], slow=1, timeout=1)
    await sandbox.control.call("POST", "/faults/random", {**faults, "rate": 0.08, "max_burst": 2})

    await run_sender(sessionmaker, sandbox.bot)

    rows = await outbox(sessionmaker)
    assert [row.id for row in rows if row.status != "sent"] == []
    faults = (await sandbox.control.call("GET", "/stats"))["faults"]
    assert faults.get("slow", 0) > 0 and faults.get("timeout", 0) > 0, faults
    copies: Counter[int] = Counter()
    for chat in people:
        ids = outbox_ids(await sandbox.control.transcript(chat))
        expected = [row.id for row in rows if row.chat_id == chat]
        # First copies in order; a late one lands wherever its processing ends, possibly
        # after messages queued behind it.
        assert list(dict.fromkeys(ids)) == expected
        copies.update(ids)
    assert set(copies) == {row.id for row in rows}  # none lost
    assert sum(copies.values()) - len(rows) == faults["slow"]  # one extra per late answer


async def test_an_outage_longer_than_the_attempts_loses_nothing(
    sandbox: Sandbox, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Ten failures in a row (more than max_attempts): a Telegram outage, not a bad message.
    The sender keeps trying within its window (bot/outbox.py RETRY_TRANSIENT_FOR) instead
    of giving the message up for good after six tries (31 s in production)."""
    citizen = sandbox.state.add_user("张某").id
    await fill_outbox(sessionmaker, [citizen], 2)
    for fault in (
        {"kind": "error", "status": 503, "count": 6},
        {"kind": "error", "status": 502, "html": True, "count": 2},
        {"kind": "timeout", "delay": 0.1, "count": 2},
    ):
        await sandbox.control.call("POST", "/faults", {**fault, "method": "sendMessage"})

    sender = await run_sender(sessionmaker, sandbox.bot, max_attempts=6)

    rows = await outbox(sessionmaker)
    assert [(row.status, row.attempts) for row in rows] == [("sent", 10), ("sent", 0)]
    assert outbox_ids(await sandbox.control.transcript(citizen)) == [row.id for row in rows]
    assert sender.stats.errors == 10


# The whole bot against random faults -------------------------------------------------------

# Every method the bot calls while people talk to it.
BOT_METHODS = [
    "getUpdates",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "answerCallbackQuery",
    "createForumTopic",
]
COMPLAINT = "旧州镇我家低保申请了三个月还没批下来，村里一直拖着"


async def said(
    world: World, chat_id: int, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The next bot message in the chat (after those seen) that satisfies ``predicate``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while True:
        for message in await world.messages(chat_id, world.seen.get(chat_id, 0)):
            world.seen[chat_id] = max(world.seen.get(chat_id, 0), message["message_id"])
            if message.get("from_bot") and predicate(message):
                return message
        if loop.time() > deadline:
            raise AssertionError(f"the bot said nothing matching in chat {chat_id}")
        await asyncio.sleep(0.05)


async def file_petition(world: World, citizen: int) -> str:
    """tests/e2e/test_flows.py's intake, for any citizen; the case number."""
    await world.send(citizen, COMPLAINT)
    understood = await said(world, citizen, lambda m: "✅ 确认" in buttons(m))
    await world.press(citizen, citizen, understood["message_id"], buttons(understood)["✅ 确认"])
    answers = iter(["张某", "13800000000", "请尽快审批我家的低保申请"])
    while True:
        message = await said(world, citizen, lambda m: bool(m["text"]))
        if "编号" in message["text"]:
            number = re.search(r"HY-[0-9A-Z-]+", message["text"])
            assert number is not None, message["text"]
            return number.group(0)[:17]
        answer = next(answers, None)
        if answer is None:
            pytest.fail(f"citizen {citizen}'s intake did not finish: {message['text']!r}")
        await world.send(citizen, answer)


async def test_conversations_complete_while_telegram_misbehaves(
    reliability_db: str, form: Form
) -> None:
    async with make_world(reliability_db) as world:
        # Quick retries and a short client timeout (the defaults are minutes, not seconds).
        world.huiyin.sender.backoff = QUICK
        world.huiyin.sender.request_timeout = REQUEST_TIMEOUT
        world.huiyin.bot.session.timeout = REQUEST_TIMEOUT
        assert world.huiyin.polling is not None
        world.huiyin.polling.backoff = QUICK
        control = Control(world.http, world.url)
        # Random faults on every method, and for certain: the first button answers and
        # the first topic meet a 5xx, a timeout and a 429.
        for kind in ("error", "timeout", "flood"):
            for method in ("answerCallbackQuery", "createForumTopic"):
                fault = {"kind": kind, "method": method, "delay": HOLD, "retry_after": 1}
                await control.call("POST", "/faults", fault)
        await control.call(
            "POST",
            "/faults/random",
            random_faults(form, BOT_METHODS, error=2, html=1, flood=2, timeout=1),
        )
        citizens = [await world.new_user(f"市民{n}") for n in range(form.citizens)]

        numbers = await asyncio.gather(*(file_petition(world, c) for c in citizens))

        await until(lambda: settled(world.huiyin.sessionmaker), "the outbox drained")
        stats = await control.call("GET", "/stats")
        await control.call("DELETE", "/faults")
        rows = await outbox(world.huiyin.sessionmaker)
        async with world.huiyin.sessionmaker() as session:
            cases = list(await session.scalars(select(Case)))
        assert world.sandbox is not None
        transcripts = {chat: await control.transcript(chat) for chat in list(world.sandbox.chats)}
        topics = Counter(
            (world.unit(case.unit_id)["chat_id"], case.thread_id)
            for case in cases
            if case.thread_id is not None
        )

    assert len(set(numbers)) == form.citizens
    assert sorted(case.number for case in cases) == sorted(numbers)
    assert [row.id for row in rows if row.status != "sent"] == []
    assert stats["faults_injected"] >= 6, stats
    # A button's answer is not retried (BestEffortCallbackAnswers): the three that failed
    # were simply not shown, and the presses took effect all the same.
    assert stats["calls"]["answerCallbackQuery"] >= 3, stats
    assert stats["calls"]["createForumTopic"] >= 3 + form.citizens, stats
    # Each bot message is one row's (by chat and the message id recorded on the row), or a
    # case's forum topic (the topic's id is its service message's): none unaccounted for,
    # none twice. Edits point at messages so accounted for.
    sent: Counter[tuple[int, int | None]] = Counter()
    edited: set[tuple[int, int | None]] = set()
    for row in rows:
        key = (row.chat_id, row.result_message_id)
        if row.method.startswith("send"):
            sent[key] += 1
        else:
            edited.add(key)
    assert all(message_id is not None for _, message_id in sent), "a send without its id"
    assert max((sent + topics).values()) == 1, "a message or topic made twice"
    in_transcript = {(chat, m["message_id"]) for chat, ms in transcripts.items() for m in ms}
    assert in_transcript == set(sent) | set(topics), "messages no row accounts for, or lost"
    assert edited <= in_transcript
    assert all(sum(1 for chat, _ in sent if chat == c) >= 5 for c in citizens)
    methods = Counter(row.method for row in rows)
    print(f"\n{len(rows)} outbox rows {dict(methods)}, faults {stats['faults']}")
