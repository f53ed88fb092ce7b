"""Fuzzing updates (issue 6, part 3): generated and hostile updates through the production path
never escape as exceptions, each refused update is logged exactly once, and what is refused
leaves the domain tables as they were.

The path is production's: an update (a JSON dict, as Telegram sends it) is stored in the inbox
(``store_updates``), an :class:`InboxProcessor` claims it and hands it to the dispatcher of
``bot.app.build_dispatcher`` (every router, the ``UpdateContext`` middleware, SQL FSM), and
replies land in the outbox. Only the bot's HTTP session is fake: it records the calls (the
handlers make one directly, answerCallbackQuery) and answers ``True``.

What the test calls a *refusal* is the product's (defined in bot/services/errors.py, logged
by bot/middlewares.py): an update the bot does not act on (unreadable content, a chat it
does not serve, an edit, a forged, stale or unauthorised button, input that fails
validation, a command the person may not use, an update no handler takes). Each is one
record on the ``huiyin.refused`` logger, written once the update's transaction has committed,
and the person gets a short answer where there is someone to answer. An update that reaches
the last resort (``huiyin.errors``) is a bug, whatever it was.

Per update the test asserts: nothing on ``huiyin.errors`` and the inbox row done; at most one
refusal record, exactly one for the kinds that must be refused (a sticker, an edit, a channel
post, a press in a unit group by someone who is not staff …); every queued text valid
Telegram HTML within 4096 characters (1024 for a caption); every button press answered
exactly once, with words when refused; a refused message in a private chat answered.

And for a refused update, the domain tables as they were: ``units``, ``invites``, ``cases``,
``deadlines``, ``notifications``, ``attachments``, ``case_events``; ``people``'s role, unit,
language and blocked flag; and the conversation (``fsm``) as it was or cleared, never moved
on (an intake in progress survives a sticker; a refusal may end a step that cannot go on).
Bookkeeping a refusal may write: the inbox row (done), the polite reply in the outbox, the
sender's ``people`` row (created as a citizen on first contact, as every update does) and
at most one ``refused`` case event when the service refused an action the person's role does
not allow (the audit log records refused attempts: bot/services/base.py ``_refuse``).

One database per test function (not per example): the examples share it, so later examples
meet the state earlier ones left (an intake half done, a case accepted, a prompt armed). The
short form (CI) runs 120 examples on SQLite, derandomized; ``--long`` runs 1,500 on SQLite
and on PostgreSQL from a random seed it prints (``HUIYIN_FUZZ_SEED`` replays one).
``test_known_hostile_updates`` keeps the updates that broke the bot before its fixes, on
both backends in both forms.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import build_dispatcher
from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.fsm import SqlStorage
from bot.db.migrate import upgrade_database
from bot.db.models import (
    Attachment,
    Case,
    CaseEvent,
    DeadlineRow,
    FsmRecord,
    InboxUpdate,
    Invite,
    Notification,
    OutboxMessage,
    Person,
    Unit,
)
from bot.inbox import DONE, FAILED, InboxProcessor, store_updates
from bot.sandbox.errors import BotApiError
from bot.sandbox.formatting import parse_html
from bot.sandbox.registry import MAX_CAPTION, MAX_TEXT
from bot.services import buttons as b
from bot.settings import Settings
from routing.config import load_config
from tests.handlers.conftest import FakeSession
from tests.services.conftest import DISCLOSURE, PETITION, RECONSIDERATION, Intake

NOW = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)  # Monday 09:30 in Anshun: office hours
TOKEN = "42:FUZZ"

# Unit groups (forum supergroups except xixiu's plain group) and the people the bot knows.
CHATS = {"disclosure_office": -1001, "legal": -1002, "general_desk": -1003, "xixiu": -1004}
CITIZEN, OTHER_CITIZEN = 101, 102
STAFF = {"disclosure_office": 201, "legal": 202, "general_desk": 203, "xixiu": 204}
SUPERVISOR, ADMIN = 301, 401
STRANGER = 999  # never seen before the first example that uses it
KNOWN_USERS = [CITIZEN, OTHER_CITIZEN, *STAFF.values(), SUPERVISOR, ADMIN, STRANGER]
UNKNOWN_GROUP, CHANNEL = -1009, -1008

REFUSED_LOG, ERRORS_LOG = "huiyin.refused", "huiyin.errors"

DOMAIN = (Unit, Invite, Case, DeadlineRow, Notification, Attachment, CaseEvent)
CLEARED = (None, {})  # an FSM row with no state and no data, or none at all
# Columns that change on any write, even one that writes the same values.
VOLATILE = {"updated_at"}


class Records(logging.Handler):
    """The records of the refusal and last-resort loggers, per example."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == name]


@contextlib.contextmanager
def capturing() -> Iterator[Records]:
    records = Records()
    loggers = [logging.getLogger(REFUSED_LOG), logging.getLogger(ERRORS_LOG)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(records)
        logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(records)
            logger.setLevel(level)


# --------------------------------------------------------------------------- the world


@dataclass
class Outcome:
    status: str
    refusals: list[str]
    errors: list[str]
    domain_before: dict[str, Any]
    domain_after: dict[str, Any]
    people_before: dict[int, tuple[Any, ...]]
    people_after: dict[int, tuple[Any, ...]]
    fsm_before: dict[str, tuple[Any, ...]]
    fsm_after: dict[str, tuple[Any, ...]]
    refused_events: int  # "refused" audit events this update added
    queued: list[OutboxMessage]  # what this update put in the outbox
    calls: list[TelegramMethod[Any]]  # what the handlers called directly


@dataclass
class Snapshot:
    domain: dict[str, Any]
    people: dict[int, tuple[Any, ...]]
    fsm: dict[str, tuple[Any, ...]]
    refused_events: int


@dataclass
class World:
    """One database, one dispatcher, one inbox processor: shared by a test's examples."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    dispatcher: Dispatcher
    bot: Bot
    fake: FakeSession
    processor: InboxProcessor
    task: asyncio.Task[None]
    cases: dict[str, int]  # "disclosure" / "petition" / "reconsideration" → case id
    topics: dict[int, tuple[int, int]]  # case id → (group chat id, topic)
    handled: dict[int, asyncio.Event]
    update_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    message_ids: Iterator[int] = field(default_factory=lambda: itertools.count(10_000))

    async def snapshot(self) -> Snapshot:
        domain: dict[str, Any] = {}
        async with self.sessionmaker() as session:
            for model in DOMAIN:
                columns = [c for c in model.__table__.columns if c.name not in VOLATILE]
                query = select(*columns)
                if model is CaseEvent:
                    query = query.where(CaseEvent.action != "refused")
                rows = (await session.execute(query)).all()
                domain[model.__tablename__] = sorted(map(repr, (tuple(r) for r in rows)))
            people = {
                row.telegram_id: (row.role, row.unit_id, row.language, row.blocked_bot)
                for row in (await session.execute(select(Person))).scalars()
            }
            fsm = {
                row.key: (row.state, row.data)
                for row in (await session.execute(select(FsmRecord))).scalars()
            }
            refused = len(
                (
                    await session.execute(
                        select(CaseEvent.id).where(CaseEvent.action == "refused")
                    )
                ).all()
            )
        return Snapshot(domain, people, fsm, refused)

    async def deliver(self, payload: dict[str, Any]) -> Outcome:
        """Store one update as the poller would, let the processor handle it, compare."""
        before = await self.snapshot()
        last_outbox = await self.last_outbox_id()
        calls = len(self.fake.calls)
        with capturing() as records:
            assert await store_updates(self.sessionmaker, [payload]) == 1
            self.processor.wake()
            status = await self._finished(payload["update_id"])
        after = await self.snapshot()
        return Outcome(
            status,
            [r.getMessage() for r in records.of(REFUSED_LOG)],
            [r.getMessage() for r in records.of(ERRORS_LOG)],
            before.domain,
            after.domain,
            before.people,
            after.people,
            before.fsm,
            after.fsm,
            after.refused_events - before.refused_events,
            await self.outbox_since(last_outbox),
            self.fake.calls[calls:],
        )

    async def _finished(self, update_id: int) -> str:
        # The handler has returned (its refusal, if any, is logged by then; the row may be
        # marked done earlier, in the update's own transaction), then the row's outcome.
        await self.handled.setdefault(update_id, asyncio.Event()).wait()
        for _ in range(2000):
            async with self.sessionmaker() as session:
                status = await session.scalar(
                    select(InboxUpdate.status).where(InboxUpdate.update_id == update_id)
                )
            if status in (DONE, FAILED):
                return str(status)
            await asyncio.sleep(0.01)
        raise AssertionError(f"update {update_id} was not handled")

    async def outbox_since(self, outbox_id: int) -> list[OutboxMessage]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.id > outbox_id)
                .order_by(OutboxMessage.id)
            )
            return list(rows)

    async def last_outbox_id(self) -> int:
        async with self.sessionmaker() as session:
            last = await session.scalar(select(func.max(OutboxMessage.id)))
        return int(last or 0)

    async def bound(self, chat_id: int) -> bool:
        """Whether a group serves a unit now (an admin's /bind may have made it one)."""
        async with self.sessionmaker() as session:
            return await repo.get_unit_by_chat(session, chat_id) is not None

    async def buttons(self) -> list[tuple[int, int | None, str]]:
        """The inline buttons the bot has sent so far: (chat, topic, callback_data)."""
        found: list[tuple[int, int | None, str]] = []
        for row in await self.outbox_since(0):
            markup = row.payload.get("reply_markup") or {}
            for line in markup.get("inline_keyboard", []):
                for button in line:
                    if "callback_data" in button:
                        found.append((row.chat_id, row.thread_id, button["callback_data"]))
        return sorted(set(found), key=str)


async def build_world(database_url: str) -> World:
    config = load_config()
    await upgrade_database(database_url)
    engine = make_engine(database_url)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        await repo.sync_units(session, config.units.units)
        for unit_id, chat_id in CHATS.items():
            await repo.set_unit_chat(session, unit_id, chat_id, forum=unit_id != "xixiu")
        for unit_id, telegram_id in STAFF.items():
            person = await repo.get_or_create_person(session, telegram_id, f"工作人员{unit_id}")
            await repo.set_role(session, person.id, "staff", unit_id)
        for telegram_id, role in ((SUPERVISOR, "supervisor"), (ADMIN, "admin")):
            person = await repo.get_or_create_person(session, telegram_id, f"{role}某")
            await repo.set_role(session, person.id, role, None)
        await repo.get_or_create_person(session, CITIZEN, "张某")
        await repo.get_or_create_person(session, OTHER_CITIZEN, "李某")
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    storage = SqlStorage(sessionmaker)
    dispatcher = build_dispatcher(
        config=config,
        sessionmaker=sessionmaker,
        settings=settings,
        storage=storage,
        clock=lambda: NOW,
    )
    services = dispatcher["services"]
    cases: dict[str, int] = {}
    topics: dict[int, tuple[int, int]] = {}
    filings: list[tuple[str, int, Intake]] = [
        ("disclosure", CITIZEN, DISCLOSURE),
        ("petition", CITIZEN, PETITION),
        ("reconsideration", OTHER_CITIZEN, RECONSIDERATION),
    ]
    async with sessionmaker() as session, session.begin():
        for n, (name, telegram_id, intake) in enumerate(filings):
            citizen = await repo.get_person_by_telegram(session, telegram_id)
            assert citizen is not None
            case = await services.file_case(session, citizen, intake, NOW)
            # What the sender's hooks record once the topic and card exist.
            case = await repo.update_case(
                session, case.id, case.version, thread_id=70 + n, card_message_id=500 + n
            )
            cases[name] = case.id
            topics[case.id] = (CHATS[case.unit_id], 70 + n)
    fake = FakeSession()
    bot = Bot(TOKEN, session=fake)

    handled: dict[int, asyncio.Event] = {}

    async def handle(update: dict[str, Any]) -> None:
        try:
            await dispatcher.feed_raw_update(bot, update)  # bot/app.py's handle
        finally:
            handled.setdefault(update["update_id"], asyncio.Event()).set()

    # One attempt: an update that raises is left "failed" at once, where the test sees it.
    processor = InboxProcessor(sessionmaker, handle, max_attempts=1, poll_interval=0.05)
    task = asyncio.create_task(processor.run())
    return World(
        engine, sessionmaker, dispatcher, bot, fake, processor, task, cases, topics, handled
    )


async def close_world(world: World) -> None:
    world.processor.stop()
    await world.task
    await world.dispatcher.fsm.close()
    # The handlers' routers are module-level; free them for the next test's dispatcher.
    for router in world.dispatcher.sub_routers:
        router._parent_router = None
    world.dispatcher.sub_routers.clear()
    await world.engine.dispose()


# --------------------------------------------------------------------------- strategies

# Characters people (and attackers) send: any unicode but surrogates (JSON cannot carry a
# lone one), with the troublesome ones made likely.
HOSTILE_CHARS = [
    "\x00",
    "\x07",
    "\x1b",
    "\u200b",  # zero-width space
    "\u200c",
    "\u200d",
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u202a",
    "\u202e",  # right-to-left override
    "\u2066",
    "\u2069",
    "\ufeff",
    "\ufffd",
    "\U0001f600",
    "<",
    ">",
    "&",
    "<b>",
    "</code>",
    "{",
    "}",
    "{number}",
    "%s",
    "'",
    '"',
    "\\",
    "\n",
    "\r\n",
    "\t",
    " ",
    "HY-2026-",
    "低保",
    "西秀区",
    "13800000000",
]
texts_any = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
texts_hostile = st.lists(st.one_of(st.sampled_from(HOSTILE_CHARS), texts_any), max_size=12).map(
    "".join
)
texts_huge = st.builds(
    lambda unit, n: (unit * (100_000 // max(1, len(unit)) + 1))[:n],
    st.sampled_from(["字", "a", "\u200f", "我家低保没批下来", "\x00", "🙂"]),
    st.sampled_from([4097, 30_000, 100_000]),
)
some_text = st.one_of(texts_any, texts_hostile, texts_huge)

COMMANDS = [
    "/start",
    "/help",
    "/cancel",
    "/status",
    "/my",
    "/skip",
    "/language",
    "/note",
    "/overdue",
    "/duesoon",
    "/stats",
    "/case",
    "/urge",
    "/join",
    "/bind",
    "/invite",
    "/units",
    "/whois",
    "/dashboard",
    "/nonsense",
    "/start@huiyin_bot",
    "/",
]
junk_args = st.one_of(
    st.just(""),
    texts_hostile,
    st.sampled_from(
        [
            "HY-2026-0000-0000",
            "-1",
            "0",
            "99999999999999999999999",
            "1e9",
            "legal staff",
            "nowhere admin",
            "supervisor",
            "disclosure_office",
            "3",
            "400",
        ]
    ),
)
commands = st.builds(
    lambda command, args: f"{command} {args}" if args else command,
    st.sampled_from(COMMANDS),
    junk_args,
)


def user(telegram_id: int, *, is_bot: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": telegram_id, "is_bot": is_bot, "first_name": f"u{telegram_id}"}
    if telegram_id == ADMIN:
        body["language_code"] = "en"
    return body


users = st.sampled_from(KNOWN_USERS)
any_user = st.one_of(users, st.integers(1, 2**40))

# Content that is not text: what the bot cannot read.
PHOTO_SIZE = {"file_id": "AgAD", "file_unique_id": "u1", "width": 90, "height": 90}
UNSUPPORTED = {
    "sticker": {
        "sticker": {
            "file_id": "CAAD",
            "file_unique_id": "s1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    },
    "location": {"location": {"latitude": 26.25, "longitude": 105.93}},
    "contact": {"contact": {"phone_number": "13800000000", "first_name": "张某"}},
    "voice": {"voice": {"file_id": "AwAD", "file_unique_id": "v1", "duration": 3}},
    "dice": {"dice": {"emoji": "🎲", "value": 3}},
    "venue": {
        "venue": {
            "location": {"latitude": 26.25, "longitude": 105.93},
            "title": "民政局",
            "address": "西秀区",
        }
    },
    "empty_photo": {"photo": []},  # a photo without any size (no file)
    "nothing": {},  # no text, no content at all
}
SUPPORTED = {
    "photo": {"photo": [PHOTO_SIZE]},
    "document": {"document": {"file_id": "BQAD", "file_unique_id": "d1", "file_name": "证明.pdf"}},
}


@dataclass
class Example:
    """One update and what it must come to: "refused", "accepted" or "any" (then: if it is
    refused, it changed nothing)."""

    label: str
    payload: dict[str, Any]
    expect: str = "any"
    twice: bool = False  # deliver a second time, as a new update: a replayed press

    def __repr__(self) -> str:  # hypothesis prints the falsifying example
        body = repr(self.payload)
        return f"Example({self.label!r}, expect={self.expect}, {body[:600]})"


def message(
    chat: dict[str, Any], sender: dict[str, Any] | None, content: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"message_id": 1, "date": int(NOW.timestamp()), "chat": chat}
    if sender is not None:
        body["from"] = sender
    body.update(content)
    body.update(extra)
    return body


def private_chat(telegram_id: int) -> dict[str, Any]:
    return {"id": telegram_id, "type": "private", "first_name": f"u{telegram_id}"}


def group_chat(chat_id: int, *, forum: bool = True) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "type": "supergroup", "title": "群"}
    if forum:
        chat["is_forum"] = True
    return chat


@st.composite
def private_messages(draw: st.DrawFn) -> Example:
    """Text, commands, photos and unreadable content in someone's private chat."""
    telegram_id = draw(any_user)
    kind = draw(st.sampled_from(["text", "command", "unsupported", "supported"]))
    expect = "any"
    if kind == "text":
        content: dict[str, Any] = {"text": draw(some_text)}
    elif kind == "command":
        content = {"text": draw(commands)}
    elif kind == "unsupported":
        name = draw(st.sampled_from(sorted(UNSUPPORTED)))
        content = dict(UNSUPPORTED[name])
        if draw(st.booleans()):
            content["caption"] = draw(texts_hostile)
        expect = "refused"
        kind = name
    else:
        content = dict(SUPPORTED[draw(st.sampled_from(sorted(SUPPORTED)))])
        content["caption"] = draw(st.one_of(st.none(), texts_hostile))
        if content["caption"] is None:
            del content["caption"]
    # Missing optional fields: no sender at all, or a chat with nothing but id and type.
    sender: dict[str, Any] | None = user(telegram_id)
    chat = private_chat(telegram_id)
    if draw(st.integers(0, 9)) == 0:
        sender, expect = None, "refused"
    if draw(st.booleans()):
        chat = {"id": telegram_id, "type": "private"}
    return Example(f"private {kind}", {"message": message(chat, sender, content)}, expect)


@st.composite
def group_messages(draw: st.DrawFn, world: World) -> Example:
    """Messages in the unit groups (in a case's topic or not), in groups the bot does not
    know, and in a channel."""
    where = draw(st.sampled_from(["unit", "topic", "unknown_group", "channel"]))
    telegram_id = draw(any_user)
    text = draw(st.one_of(some_text, commands))
    content: dict[str, Any] = (
        {"text": text}
        if draw(st.integers(0, 3))
        else dict(UNSUPPORTED[draw(st.sampled_from(sorted(UNSUPPORTED)))])
    )
    sender: dict[str, Any] | None = user(telegram_id)
    if draw(st.integers(0, 9)) == 0:
        sender = user(1087968824, is_bot=True)  # GroupAnonymousBot: an anonymous admin
    expect = "any"
    extra: dict[str, Any] = {}
    if where == "channel":
        chat = {"id": CHANNEL, "type": "channel", "title": "频道"}
        return Example(
            "channel_post", {"channel_post": message(chat, None, {"text": text})}, "refused"
        )
    if where == "unknown_group":
        chat = group_chat(UNKNOWN_GROUP)
        # /join works from any chat and an admin may /bind a new group: those are not
        # refusals by kind; anything else there is.
        if not str(content.get("text", "")).startswith(("/join", "/bind")):
            expect = "refused"
    elif where == "unit":
        chat_id = draw(st.sampled_from(sorted(CHATS.values())))
        chat = group_chat(chat_id, forum=chat_id != CHATS["xixiu"])
    else:
        case_id = draw(st.sampled_from(sorted(world.topics)))
        chat_id, thread = world.topics[case_id]
        chat = group_chat(chat_id)
        extra = {"message_thread_id": thread, "is_topic_message": True}
    if sender is not None and sender["is_bot"]:
        expect = "refused"
    return Example(f"group {where}", {"message": message(chat, sender, content, **extra)}, expect)


@st.composite
def edited_messages(draw: st.DrawFn, world: World) -> Example:
    telegram_id = draw(users)
    if draw(st.booleans()):
        chat = private_chat(telegram_id)
        extra: dict[str, Any] = {}
    else:
        case_id = draw(st.sampled_from(sorted(world.topics)))
        chat_id, thread = world.topics[case_id]
        chat = group_chat(chat_id)
        extra = {"message_thread_id": thread, "is_topic_message": True}
    body = message(
        chat, user(telegram_id), {"text": draw(some_text)}, edit_date=int(NOW.timestamp()), **extra
    )
    kind = draw(st.sampled_from(["edited_message", "edited_channel_post"]))
    if kind == "edited_channel_post":
        body["chat"] = {"id": CHANNEL, "type": "channel", "title": "频道"}
        del body["from"]
    return Example(kind, {kind: body}, "refused")


def forged_data(world: World) -> st.SearchStrategy[str]:
    case_ids = st.one_of(
        st.sampled_from(sorted(world.cases.values())),
        st.sampled_from([0, -1, 12345, 2**31, 2**63, 10**30]),
    )
    codes = st.one_of(
        st.sampled_from(["acc", "start", "sup", "ext", "trf", "hb", "ans", "wd", "rate"]),
        st.sampled_from(["rev", "msg", "st", "x", "", "3", "3.4", "9.9", "legal", "nowhere"]),
        texts_hostile,
    )
    structured = st.builds(
        lambda prefix, a, c: f"{prefix}:{a}:{c}",
        st.sampled_from(
            [b.CASE_ACTION, b.MY_CASE, b.RATE, b.TRANSFER_TO, b.REPLY_TYPE, "ok", "p", "pk", "rl"]
        ),
        st.one_of(codes, case_ids.map(str)),
        st.one_of(codes, case_ids.map(str)),
    )
    short = st.builds(
        lambda prefix, value: f"{prefix}:{value}",
        st.sampled_from(["ok", "p", "pk", "rl"]),
        st.one_of(codes, case_ids.map(str)),
    )
    return st.one_of(structured, short, texts_hostile, st.text(min_size=65, max_size=300))


@st.composite
def callback_queries(draw: st.DrawFn, world: World) -> Example:
    """Presses with forged data, in any chat, by anyone; sometimes without a message."""
    telegram_id = draw(any_user)
    data = draw(forged_data(world))
    where = draw(st.sampled_from(["private", "topic", "unit", "unknown_group", "inline"]))
    query: dict[str, Any] = {
        "id": str(draw(st.integers(1, 10**9))),
        "from": user(telegram_id),
        "chat_instance": "ci",
        "data": data,
    }
    if where == "private":
        chat = private_chat(telegram_id)
        query["message"] = message(chat, user(42, is_bot=True), {"text": "card"})
    elif where == "inline":
        query["inline_message_id"] = "inline-1"
        if draw(st.booleans()):
            del query["data"]
            query["game_short_name"] = "game"
    else:
        if where == "topic":
            case_id = draw(st.sampled_from(sorted(world.topics)))
            chat_id, thread = world.topics[case_id]
            extra: dict[str, Any] = {"message_thread_id": thread, "is_topic_message": True}
        else:
            chat_id = (
                UNKNOWN_GROUP
                if where == "unknown_group"
                else draw(st.sampled_from(sorted(CHATS.values())))
            )
            extra = {}
        query["message"] = message(
            group_chat(chat_id), user(42, is_bot=True), {"text": "card"}, **extra
        )
    # Data no factory parses, or a press outside any chat the bot works in, is refused; a
    # well-formed press may be legitimate (a staff member accepting their own unit's case).
    expect = "refused" if where in ("inline", "unknown_group") else "any"
    if telegram_id not in STAFF.values() and where in ("topic", "unit"):
        expect = "refused"  # not staff: no button in a unit group is theirs
    return Example(f"callback {where}", {"callback_query": query}, expect)


@st.composite
def other_updates(draw: st.DrawFn) -> Example:
    """Update types the bot has no handler for."""
    telegram_id = draw(users)
    kind = draw(st.sampled_from(["my_chat_member", "message_reaction"]))
    chat = group_chat(UNKNOWN_GROUP)
    if kind == "my_chat_member":
        body: dict[str, Any] = {
            "chat": chat,
            "from": user(telegram_id),
            "date": int(NOW.timestamp()),
            "old_chat_member": {"status": "left", "user": user(42, is_bot=True)},
            "new_chat_member": {"status": "member", "user": user(42, is_bot=True)},
        }
    else:
        body = {
            "chat": chat,
            "message_id": 5,
            "user": user(telegram_id),
            "date": int(NOW.timestamp()),
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": "👍"}],
        }
    return Example(kind, {kind: body}, "refused")


# Answers that move a conversation on: an intake's fields, a staff prompt's reason, an answer.
PLAUSIBLE = [
    "旧州镇我家低保申请了三个月还没批下来",
    "申请公开2025年本市城乡低保资金发放情况",
    "张某",
    "13800000000",
    "0851-33221100",
    "11010519491231002X",
    "zhang@example.com",
    "2026-02-20",
    "昨天",
    "请尽快审核我的低保申请",
    "取消最低生活保障的通知",
    "西秀区民政局",
    "需要补充户口本复印件",
    "涉及第三方，需征求意见",
    "局领导张某批准",
    "经核查，已按规定办理。",
    "/skip",
    "/cancel",
]


@st.composite
def conversations(draw: st.DrawFn, world: World) -> Example:
    """Someone answering what the bot asked: a citizen in their chat, staff in their case's
    topic; plausible words, sometimes with hostile ones around them."""
    words = draw(st.sampled_from(PLAUSIBLE))
    dress = draw(st.integers(0, 7))
    if dress in (0, 1):
        words = draw(texts_hostile) + words + draw(texts_hostile)
    elif dress == 2:  # far past Telegram's 4096, and past any field's limit
        words = (words + "<b>&amp;") * draw(st.sampled_from([300, 3000]))
    if draw(st.booleans()):
        telegram_id = draw(st.sampled_from([CITIZEN, OTHER_CITIZEN]))
        body = message(private_chat(telegram_id), user(telegram_id), {"text": words})
    else:
        case_id = draw(st.sampled_from(sorted(world.topics)))
        chat_id, thread = world.topics[case_id]
        body = message(
            group_chat(chat_id),
            user(STAFF[UNIT_OF_CHAT[chat_id]]),
            {"text": words},
            message_thread_id=thread,
            is_topic_message=True,
        )
    return Example("conversation", {"message": body})


UNIT_OF_CHAT = {chat_id: unit_id for unit_id, chat_id in CHATS.items()}


@st.composite
def button_presses(
    draw: st.DrawFn, world: World, buttons: list[tuple[int, int | None, str]]
) -> Example:
    """A real button the bot sent (a case card, /my, a rating prompt, an intake question),
    pressed by the person it was for or by someone else, once or twice (a double tap, or a
    replay after the case moved on)."""
    # An index, not sampled_from: the list grows as examples run, and hypothesis needs the
    # same draws to mean the same choices.
    chat_id, thread, data = buttons[draw(st.integers(0, 2**16)) % len(buttons)]
    owner = chat_id if chat_id > 0 else STAFF[UNIT_OF_CHAT[chat_id]]
    presser = draw(st.one_of(st.just(owner), users))
    if chat_id > 0:
        # A private message's chat is the presser's own (someone else's card cannot be in it).
        chat = private_chat(presser)
        extra: dict[str, Any] = {}
    else:
        chat = group_chat(chat_id, forum=thread is not None)
        extra = {"message_thread_id": thread, "is_topic_message": True} if thread else {}
    query = {
        "id": str(draw(st.integers(1, 10**9))),
        "from": user(presser),
        "chat_instance": "ci",
        "data": data,
        "message": message(chat, user(42, is_bot=True), {"text": "card"}, **extra),
    }
    expect = "refused" if chat_id < 0 and presser not in STAFF.values() else "any"
    return Example("button", {"callback_query": query}, expect, twice=draw(st.booleans()))


def updates(
    world: World, buttons: list[tuple[int, int | None, str]]
) -> st.SearchStrategy[Example]:
    assert buttons, "the cards filed in build_world have buttons"
    return st.one_of(
        private_messages(),
        group_messages(world),
        edited_messages(world),
        callback_queries(world),
        other_updates(),
        button_presses(world, buttons),
        button_presses(world, buttons),
        conversations(world),
        conversations(world),
    )


# --------------------------------------------------------------------------- the checks


def check(example: Example, outcome: Outcome) -> None:
    """The invariants of one delivered update."""
    assert outcome.errors == [], f"{example!r} reached the last resort: {outcome.errors}"
    assert outcome.status == DONE, f"{example!r} left the inbox {outcome.status}"
    assert len(outcome.refusals) <= 1, f"{example!r} refused {len(outcome.refusals)} times"
    refused = bool(outcome.refusals)
    check_replies(example, outcome, refused)
    if example.expect == "refused":
        assert refused, f"{example!r} was not refused"
    if example.expect == "accepted":
        assert not refused, f"{example!r} was refused: {outcome.refusals}"
    if not refused:
        return
    assert outcome.refused_events <= 1, f"{example!r}: {outcome.refused_events} audit events"
    for table, rows in outcome.domain_before.items():
        assert outcome.domain_after[table] == rows, f"{example!r} (refused) changed {table}"
    for telegram_id, before in outcome.people_before.items():
        assert outcome.people_after[telegram_id] == before, f"{example!r} changed a person"
    for telegram_id in outcome.people_after.keys() - outcome.people_before.keys():
        assert outcome.people_after[telegram_id][:2] == ("citizen", None)
    # A conversation step survives a refusal, or is cleared: a refusal may end a step that
    # cannot go on (a 补正 for an item no longer waiting for one), never advance one.
    for key in outcome.fsm_before.keys() | outcome.fsm_after.keys():
        after = outcome.fsm_after.get(key, CLEARED)
        assert after in (outcome.fsm_before.get(key, CLEARED), CLEARED), (
            f"{example!r} (refused) moved the conversation {key}: {after}"
        )


def check_replies(example: Example, outcome: Outcome, refused: bool) -> None:
    """What reaches people: valid Telegram HTML within Telegram's limits, a button's spinner
    stopped exactly once, and a refused person in a private chat told why."""
    for row in outcome.queued:
        body = row.payload
        for name, limit in (("text", MAX_TEXT), ("caption", MAX_CAPTION)):
            if body.get(name) is None:
                continue
            source = str(body[name])
            try:
                # No parse_mode: the bot's default applies, HTML (bot/app.py make_bot).
                html_mode = body.get("parse_mode", "HTML") == "HTML"
                plain, _ = parse_html(source) if html_mode else (source, [])
            except BotApiError as error:
                raise AssertionError(
                    f"{example!r} queued bad HTML ({error}): {source!r}"
                ) from None
            assert len(plain) <= limit, f"{example!r} queued a {name} of {len(plain)} chars"
            assert name == "caption" or plain.strip(), f"{example!r} queued an empty text"
    query = example.payload.get("callback_query")
    if query is not None:
        answers = [c for c in outcome.calls if isinstance(c, AnswerCallbackQuery)]
        assert len(answers) == 1, f"{example!r}: {len(answers)} answers to the press"
        if refused:
            assert answers[0].text, f"{example!r}: a refused press with no word why"
    private = example.payload.get("message") or example.payload.get("edited_message")
    if refused and private and private["chat"]["type"] == "private" and "from" in private:
        assert any(row.chat_id == private["chat"]["id"] for row in outcome.queued), (
            f"{example!r} was refused without a word"
        )


def next_update(world: World, example: Example) -> dict[str, Any]:
    """The example's payload with fresh update and message ids (Telegram's are unique)."""
    payload: dict[str, Any] = {"update_id": next(world.update_ids)}
    for kind, body in example.payload.items():
        body = dict(body)
        if "message_id" in body and kind != "message_reaction":
            body["message_id"] = next(world.message_ids)
        payload[kind] = body
    return payload


# --------------------------------------------------------------------------- the tests


def run_examples(database_url: str, examples: int, random_seed: int | None) -> None:
    """``examples`` generated updates against one world; derandomized without a seed."""
    with asyncio.Runner() as runner:
        world = runner.run(build_world(database_url))
        try:

            @seed(random_seed)
            @settings(
                max_examples=examples,
                deadline=None,  # a loaded CI machine is slow, not wrong
                derandomize=random_seed is None,
                database=None,
                # No shrinking: the examples share a database, so a replay meets another
                # state; the falsifying example is reported as it was drawn.
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(st.data())
            def fuzz(data: st.DataObject) -> None:
                buttons = runner.run(world.buttons())
                example = data.draw(updates(world, buttons))
                if "unknown_group" in example.label and runner.run(world.bound(UNKNOWN_GROUP)):
                    example.expect = "any"  # an earlier example's /bind made it a unit's group
                for _ in range(2 if example.twice else 1):
                    outcome = runner.run(world.deliver(next_update(world, example)))
                    check(example, outcome)

            fuzz()
        finally:
            runner.run(close_world(world))


def test_generated_updates(reliability_db: str, long_form: bool) -> None:
    if not long_form:
        run_examples(reliability_db, 120, None)
        return
    random_seed = int(os.environ.get("HUIYIN_FUZZ_SEED") or random.randrange(2**32))
    print(f"fuzz seed {random_seed}: HUIYIN_FUZZ_SEED={random_seed} runs the same updates")
    run_examples(reliability_db, 1500, random_seed)


def press(telegram_id: int, data: str, chat: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "callback_query": {
            "id": "7",
            "from": user(telegram_id),
            "chat_instance": "ci",
            "data": data,
            "message": message(chat, user(42, is_bot=True), {"text": "card"}, **extra),
        }
    }


async def known_hostile_updates(world: World) -> None:
    """The updates that broke the bot, or slipped past the refusal log, before the fixes."""
    disclosure = world.cases["disclosure"]
    office, topic = world.topics[disclosure]
    in_topic = {"message_thread_id": topic, "is_topic_message": True}

    async def expect(payload: dict[str, Any], outcome: str, reason: str = "") -> Outcome:
        example = Example(reason or outcome, payload, outcome)
        result = await world.deliver(next_update(world, example))
        check(example, result)
        if reason:
            assert reason in result.refusals[0], result.refusals
        return result

    # No person behind the update: every handler's ``actor`` was missing (TypeError in the
    # supervisor filter or the handler, on huiyin.errors).
    await expect({"message": message(private_chat(CITIZEN), None, {"text": "你好"})}, "refused")
    anonymous = user(1087968824, is_bot=True)  # GroupAnonymousBot
    await expect(
        {"message": message(group_chat(office), anonymous, {"text": "已阅"}, **in_topic)},
        "refused",
        "no_sender",
    )
    # Case ids beyond the database's integers: OverflowError (SQLite) or DataError (asyncpg).
    for data in (f"c:acc:{2**63}", f"ct:{10**30}:legal", f"rt:{2**31}:3"):
        await expect(
            press(STAFF["disclosure_office"], data, group_chat(office), **in_topic),
            "refused",
            "error.bad_button",
        )
    for data in (f"m:wd:{10**30}", f"r:{2**40}:5", f"r:{disclosure}:{2**70}"):
        await expect(press(CITIZEN, data, private_chat(CITIZEN)), "refused", "error.bad_button")
    # /whois with a number no Telegram id has, or with digits int() does not read.
    for argument in ("99999999999999999999999", "²", "٣"):
        await expect(
            {"message": message(private_chat(ADMIN), user(ADMIN), {"text": f"/whois {argument}"})},
            "refused",
            "admin.whois_usage",
        )
    # A group the bot does not serve: staff's router took its messages silently.
    quiet = await expect(
        {"message": message(group_chat(UNKNOWN_GROUP), user(CITIZEN), {"text": "大家好"})},
        "refused",
        "not_served",
    )
    assert quiet.queued == []
    # Another unit's staff on this card: refused by the service, audited once, logged once.
    result = await expect(
        press(STAFF["legal"], f"c:acc:{disclosure}", group_chat(office), **in_topic),
        "refused",
        "error.not_your_case",
    )
    assert result.refused_events == 1
    # A sticker in the middle of an intake: it was taken as the answer; now the step stays.
    await expect(
        {
            "message": message(
                private_chat(OTHER_CITIZEN), user(OTHER_CITIZEN), {"text": PLAUSIBLE[0]}
            )
        },
        "accepted",
    )
    await expect(press(OTHER_CITIZEN, "ok:yes", private_chat(OTHER_CITIZEN)), "accepted")
    sticker = await expect(
        {
            "message": message(
                private_chat(OTHER_CITIZEN), user(OTHER_CITIZEN), UNSUPPORTED["sticker"]
            )
        },
        "refused",
        "error.unsupported_content",
    )
    assert sticker.fsm_after == sticker.fsm_before
    assert any(state == "IntakeForm:field" for state, _ in sticker.fsm_after.values())
    # The card's 签收 pressed twice: the second press (a replay after the case moved on)
    # is refused and changes nothing.
    accept = press(
        STAFF["disclosure_office"], f"c:acc:{disclosure}", group_chat(office), **in_topic
    )
    await expect(accept, "accepted")
    await expect(accept, "refused", "error.illegal_transition")
    # NUL, which PostgreSQL's text columns refuse (the whole update failed, every retry),
    # in a staff member's message to the citizen and in a person's name; a lone surrogate.
    relayed = await expect(
        {
            "message": message(
                group_chat(office),
                user(STAFF["disclosure_office"]),
                {"text": "材料已收到\x00，正在办理\ud800"},
                **in_topic,
            )
        },
        "accepted",
    )
    (to_citizen,) = [row for row in relayed.queued if row.chat_id == CITIZEN]
    assert "材料已收到，正在办理\ufffd" in to_citizen.payload["text"]
    nul_name = {**user(777), "first_name": "张\x00某"}
    await expect({"message": message(private_chat(777), nul_name, {"text": "/start"})}, "accepted")
    # The citizen's and the staff's own words in HTML messages: a caption sent raw with the
    # bot's default parse mode (HTML) made Telegram refuse the photo; an escaped text cut
    # blindly at 4096 characters could end inside "&lt;" or before its closing tag.
    citizen_chat = private_chat(CITIZEN)
    for content in (
        {"photo": [PHOTO_SIZE], "caption": "</code>证据<b>"},
        {"text": "<&>" * 1200},
    ):
        await expect(press(CITIZEN, f"m:msg:{disclosure}", citizen_chat), "accepted")
        relayed = await expect(
            {"message": message(citizen_chat, user(CITIZEN), content)}, "accepted"
        )
        assert any(row.chat_id == office for row in relayed.queued)
    staff_file = {"photo": [PHOTO_SIZE], "caption": "<i>答复书"}
    sent = await expect(
        {
            "message": message(
                group_chat(office), user(STAFF["disclosure_office"]), staff_file, **in_topic
            )
        },
        "accepted",
    )
    assert [row.payload["caption"] for row in sent.queued] == ["&lt;i&gt;答复书"]
    # An edit, in a citizen's chat: told to send a new message.
    edited = message(private_chat(CITIZEN), user(CITIZEN), {"text": "改一下"}, edit_date=1)
    await expect({"edited_message": edited}, "refused", "error.edited")


def test_known_hostile_updates(db_url: str) -> None:
    """On both backends, short form too: some of these failed on PostgreSQL only."""
    with asyncio.Runner() as runner:
        world = runner.run(build_world(db_url))
        try:
            runner.run(known_hostile_updates(world))
        finally:
            runner.run(close_world(world))
