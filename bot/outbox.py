"""The outbox: every Bot API call that shows something to a person, sent by one sender.

:func:`enqueue` writes the call in the caller's transaction, so a message exists if and only
if the change it reports was committed. :class:`OutboxSender` claims due rows and makes the
calls within Telegram's flood limits (Bot FAQ: about 30 messages per second overall, one per
second in a chat, 20 per minute in a group), honours ``retry_after`` on a 429 (Bot API:
any method may answer it), retries 5xx and timeouts with backoff (for an hour at least:
an outage of Telegram is no reason to give a message up), and records the outcome.

Delivery is at-least-once: a message is never sent twice on purpose, but it can be in one
window. The row is marked ``sent`` in its own transaction right after Telegram answers; if
the process dies (or the database is unreachable) between that answer and the commit, the
row stays pending, its lease runs out, and the next claim sends it again. A timeout is the
same window seen from the network: Telegram may have delivered before the connection
dropped. What keeps the window small: the commit follows the answer at once (and is retried),
so it is one database round trip wide; the lease lets one sender hold a row at a time, so a
row is resent only after a crash or a lost lease, never by two senders racing; and
``dedupe_key`` makes a notification enqueued again by a replayed update or a double-tapped
button the same row, so the inbox's at-least-once handling adds no duplicates. Edits are
idempotent: "message is not modified" counts as done.

Timeouts, precisely (tests/reliability/test_faults.py shows both). A call that times out
was either never processed (lost before Telegram's front end passed it on): the retry is
the only copy; or processed with the answer lost or late: the retry is a second copy.
The client cannot tell them apart, and Telegram offers nothing to: sendMessage has no
idempotency key, and a bot cannot list what it sent. Not retrying would turn the second
case's duplicate into the first case's loss, so the sender retries: a message is delivered
at least once, twice exactly when an answer was lost after processing (a late copy can land
after messages queued behind it). A 429 is refused before sending, so safe to retry; a 5xx
from the front end (a 502/504 page) is in principle as ambiguous as a timeout.
``request_timeout`` (aiogram's 60 s by default) sets how late an answer may be before it
counts as lost: the longer, the rarer the second case.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import aiogram.methods
from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import AnswerCallbackQuery, Response
from aiogram.methods.base import TelegramMethod, TelegramType
from aiogram.types import ForumTopic
from aiolimiter import AsyncLimiter
from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.db.models import OutboxMessage
from bot.inbox import DATABASE_BACKOFF, Backoff, Sessionmaker, upsert_insert, utcnow
from bot.leases import keep_leases, write_outcome

log = logging.getLogger(__name__)

PENDING, SENT, FAILED = "pending", "sent", "failed"

# Methods whose ``text`` argument is a caption (Bot API: sendPhoto, sendDocument, …).
CAPTION_METHODS = frozenset(
    {
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendAudio",
        "sendAnimation",
        "sendVoice",
        "copyMessage",
        "editMessageCaption",
    }
)
# Telegram's descriptions of the 400s the sender treats specially.
THREAD_NOT_FOUND = "message thread not found"
NOT_MODIFIED = "message is not modified"
# Writes of an outcome are retried for half the lease (bot/leases.py write_outcome) before
# the lease is left to expire: each failure there is a possible duplicate (see the module
# docstring). Half a minute covers a database restart; three quick tries did not, and the
# message went out twice.
SEND_BACKOFF = Backoff(first=1.0, factor=2.0, maximum=60.0)
# Failures that say nothing about the message, only about Telegram's state right now: 5xx,
# timeouts and dropped connections, the front end's HTML error page.
TRANSIENT = (TelegramServerError, TelegramNetworkError, ClientDecodeError)
# A message failing only with those is retried for at least this long before it is given
# up: Telegram's outages last minutes, now and then most of an hour, and a message given
# up is never delivered. Six attempts alone would end after 31 s (1 + 2 + 4 + 8 + 16).
RETRY_TRANSIENT_FOR = 3600.0


def method_class(name: str) -> type[TelegramMethod[Any]]:
    """aiogram's class for a Bot API method name (``sendMessage`` → ``SendMessage``)."""
    candidate = getattr(aiogram.methods, name[:1].upper() + name[1:], None)
    if (
        not isinstance(candidate, type)
        or not issubclass(candidate, TelegramMethod)
        or candidate.__api_method__ != name
    ):
        raise ValueError(f"unknown Bot API method {name!r}")
    return candidate


def build_method(
    method: str, chat_id: int, thread_id: int | None, payload: dict[str, Any]
) -> TelegramMethod[Any]:
    """The aiogram method object for a row. pydantic checks names and types of the payload
    (raising ValidationError, a ValueError), not every Bot API rule: Telegram has the last
    word, and a 400 leaves the row failed with its description."""
    cls = method_class(method)
    # Keys starting with "_" are notes for the bot's own hooks (e.g. "_case_topic"), not
    # Bot API parameters.
    body = {k: v for k, v in payload.items() if not k.startswith("_")}
    if "chat_id" in cls.model_fields:
        body["chat_id"] = chat_id
    if thread_id is not None and "message_thread_id" in cls.model_fields:
        body["message_thread_id"] = thread_id
    return cls.model_validate(body)


def _to_utc(value: dt.datetime) -> dt.datetime:
    # SQLite keeps the wall-clock digits and drops the offset: store UTC only.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
    return value.astimezone(dt.UTC)


async def enqueue(
    session: AsyncSession,
    chat_id: int,
    text: str | None = None,
    *,
    method: str = "sendMessage",
    thread_id: int | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    case_id: int | None = None,
    not_before: dt.datetime | None = None,
) -> int | None:
    """Queue one Bot API call in the caller's transaction; its row id, or None when
    ``dedupe_key`` is already queued (or sent).

    ``payload`` holds the method's other arguments as JSON (file ids or URLs, never
    uploads); ``chat_id`` and ``thread_id`` are filled in when sending, so a row can be
    moved to a re-created topic. ``text`` is the caption for media methods. Raises
    ValueError for an unknown method or arguments the method does not accept.
    """
    message = Outgoing(chat_id, text, dedupe_key, method, thread_id, payload, case_id)
    row = message.row(utcnow(), not_before)
    # An unknown method or a malformed payload fails here, in the caller's transaction,
    # rather than later as a failed row nobody is waiting for.
    build_method(method, chat_id, thread_id, row["payload"])
    statement = (
        upsert_insert(session, OutboxMessage)
        .values(**row)
        .on_conflict_do_nothing(index_elements=[OutboxMessage.dedupe_key])
        .returning(OutboxMessage.id)
    )
    row_id: int | None = (await session.execute(statement)).scalar_one_or_none()
    return row_id


@dataclass(frozen=True)
class Outgoing:
    """One call for :func:`enqueue_many` (the arguments of :func:`enqueue`)."""

    chat_id: int
    text: str | None
    dedupe_key: str | None
    method: str = "sendMessage"
    thread_id: int | None = None
    payload: dict[str, Any] | None = None
    case_id: int | None = None

    def row(self, now: dt.datetime, not_before: dt.datetime | None) -> dict[str, Any]:
        body = dict(self.payload or {})
        if self.text is not None:
            body["caption" if self.method in CAPTION_METHODS else "text"] = self.text
        return {
            "dedupe_key": self.dedupe_key,
            "chat_id": self.chat_id,
            "thread_id": self.thread_id,
            "method": self.method,
            "payload": body,
            "case_id": self.case_id,
            "status": PENDING,
            "attempts": 0,
            "not_before": _to_utc(not_before) if not_before is not None else now,
            "created_at": now,
        }


async def enqueue_many(
    session: AsyncSession,
    messages: Sequence[Outgoing],
    *,
    not_before: dt.datetime | None = None,
) -> int:
    """Queue many calls in the caller's transaction, a few statements for all (the reminder
    scan writes thousands at once); keys already queued are skipped. Returns how many rows
    were written. Each method's first message is checked as :func:`enqueue` checks all."""
    now = utcnow()
    rows = [message.row(now, not_before) for message in messages]
    checked: set[str] = set()
    for row in rows:
        if row["method"] not in checked:
            build_method(row["method"], row["chat_id"], row["thread_id"], row["payload"])
            checked.add(row["method"])
    if not rows:
        return 0
    # One statement with many parameter sets: SQLAlchemy batches it into multi-row INSERTs
    # ("insertmanyvalues") compiled once, far cheaper than a statement built per batch.
    statement = (
        upsert_insert(session, OutboxMessage)
        .on_conflict_do_nothing(index_elements=[OutboxMessage.dedupe_key])
        .returning(OutboxMessage.id)
    )
    connection = await session.connection()
    return len((await connection.execute(statement, rows)).all())


@dataclass(frozen=True)
class Rate:
    """At most ``count`` calls per ``seconds`` (aiolimiter's leaky bucket).

    The bucket holds ``count``: a burst of ``count`` goes at once, and under a steady
    backlog up to ``2 * count - 1`` calls can fall within one ``seconds``-long window.
    ``Rate(1, seconds / count)`` never exceeds the rate in any window, at the price of
    spacing every call.
    """

    count: float
    seconds: float

    def limiter(self) -> AsyncLimiter:
        return AsyncLimiter(self.count, self.seconds)


@dataclass
class ChatLimiter:
    """One chat's :class:`Rate` as a leaky bucket that counts a call once it is answered.

    Telegram counts a message when it arrives. A limiter that counts calls as they start
    lets the network squeeze two into one period: the first may spend longer on the way
    (or waiting for the overall limit) than the second. A chat's calls go one at a time, so
    a call counted when answered (by then Telegram has counted it) keeps the next one a
    whole period behind it at Telegram's end too.
    """

    rate: Rate
    level: float = 0.0  # calls counted and not yet leaked out
    stamp: float = 0.0  # loop time ``level`` was last brought up to date
    in_flight: bool = False  # a call has been made and not yet counted

    def ready_at(self) -> float:
        """Loop time from which the next call keeps the rate."""
        excess = self.level + 1 - self.rate.count
        return self.stamp + max(0.0, excess) * self.rate.seconds / self.rate.count

    def idle(self, now: float) -> bool:
        """Nothing in flight and the bucket empty: forgetting the chat changes nothing."""
        drained = self.stamp + self.level * self.rate.seconds / self.rate.count
        return not self.in_flight and now >= drained

    def answered(self, now: float) -> None:
        """Count the call in flight (if any) as of ``now``, no earlier than its answer."""
        if not self.in_flight:
            return
        self.in_flight = False
        leaked = (now - self.stamp) * self.rate.count / self.rate.seconds
        self.level = max(0.0, self.level - leaked) + 1
        self.stamp = now


@dataclass(frozen=True)
class SendLimits:
    """Bot FAQ ("My bot is hitting limits"): no more than one message per second in a chat,
    no more than 20 messages per minute in a group, about 30 messages per second in all.

    The defaults keep each limit in every window as Telegram counts: on arrival, after a way
    that takes longer for some calls than for others. So a chat's period runs from the answer
    to its last call (:class:`ChatLimiter`; a group gets at most one message every 3 s), and
    overall, calls are spread out evenly (two may go together, which makes up for the timer
    firing late) and made only while fewer than :meth:`per_second` others are unanswered or
    were answered less than a second ago. Group chats are told apart by their negative ids
    (Bot API, Chat.id).
    """

    overall: Rate = Rate(2, 2 / 30)
    private_chat: Rate = Rate(1, 1.0)
    group_chat: Rate = Rate(1, 60 / 20)

    def per_second(self) -> int:
        """The overall rate as calls in any one second, the window Telegram counts in."""
        return max(1, math.floor(self.overall.count / self.overall.seconds + 1e-9))


@dataclass
class OutboxStats:
    """Counters for metrics (this process only)."""

    sent: int = 0
    retries: int = 0  # calls made again (after a 429, a 5xx/timeout, a re-created topic)
    too_many_requests: int = 0  # 429s answered by Telegram
    errors: int = 0  # other failed calls
    failed: int = 0  # messages given up on
    blocked: int = 0  # 403s: blocked by the user, kicked from the group, …


@dataclass(frozen=True)
class OutboxItem:
    """One claimed row, as the callbacks see it."""

    id: int
    chat_id: int
    thread_id: int | None
    method: str
    payload: dict[str, Any]
    case_id: int | None
    dedupe_key: str | None
    attempts: int

    @classmethod
    def of(cls, row: OutboxMessage) -> OutboxItem:
        return cls(
            id=row.id,
            chat_id=row.chat_id,
            thread_id=row.thread_id,
            method=row.method,
            payload=dict(row.payload),
            case_id=row.case_id,
            dedupe_key=row.dedupe_key,
            attempts=row.attempts,
        )

    def build(self) -> TelegramMethod[Any]:
        return build_method(self.method, self.chat_id, self.thread_id, self.payload)


OnBlocked = Callable[[int], Awaitable[None]]
# Gets the item whose topic is gone; returns the thread id to send to instead (after
# re-creating the topic), or None to give the message up.
OnThreadNotFound = Callable[[OutboxItem], Awaitable[int | None]]
# Runs inside the transaction that marks the row sent, e.g. to record a card's message id.
OnSent = Callable[[AsyncSession, OutboxItem, int | None], Awaitable[None]]
# Runs right before the first call for a row: returns the item as it should be sent (e.g.
# pointed at a forum topic created just now), or None to give the message up.
Prepare = Callable[[OutboxItem], Awaitable[OutboxItem | None]]


class OutboxSender:
    """Sends the outbox. ``run()`` works until ``stop()`` (then finishes the calls in flight)
    or cancellation (then their leases run out and another sender retakes them).

    Messages to one chat go one at a time, in row order; different chats concurrently, so
    a chat waiting out its limit or a 429 holds up no other chat.
    """

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        bot: Bot,
        limits: SendLimits = SendLimits(),
        *,
        on_blocked: OnBlocked | None = None,
        on_thread_not_found: OnThreadNotFound | None = None,
        on_sent: OnSent | None = None,
        prepare: Prepare | None = None,
        max_attempts: int = 6,
        retry_for: float = RETRY_TRANSIENT_FOR,
        backoff: Backoff = SEND_BACKOFF,
        lease: float = 60.0,
        max_in_flight: int = 256,
        poll_interval: float = 0.5,
        request_timeout: int | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.bot = bot
        self.limits = limits
        self.on_blocked = on_blocked
        self.on_thread_not_found = on_thread_not_found
        self.on_sent = on_sent
        self.prepare = prepare
        self.max_attempts = max_attempts
        self.retry_for = retry_for
        self.backoff = backoff
        self.lease = lease
        self.max_in_flight = max_in_flight
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout
        self.stats = OutboxStats()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._leased: set[int] = set()  # rows whose outcome is not yet written
        self._lease_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = False
        self._overall: AsyncLimiter | None = None
        self._queued_for_overall = 0  # tasks waiting in self._overall, first come first served
        self._arrivals: asyncio.Semaphore | None = None
        self._chat_limiters: dict[int, ChatLimiter] = {}
        self._paused_until: dict[int, float] = {}

    def wake(self) -> None:
        """Look for work now (e.g. after committing an enqueue)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        # aiolimiter binds a limiter to the loop it first runs on: fresh ones per run.
        self._overall = self.limits.overall.limiter()
        self._arrivals = asyncio.Semaphore(self.limits.per_second())
        self._chat_limiters.clear()
        heartbeat = asyncio.create_task(self._renew_leases(), name="outbox-leases")
        failures = 0
        try:
            while not self._stopping:
                self._wake.clear()
                free = self.max_in_flight - len(self._tasks)
                if free > 0:
                    try:
                        items = await self._claim(free)
                    except (SQLAlchemyError, OSError):
                        failures += 1
                        log.exception("outbox: claiming messages failed")
                        # The database's backoff (≤5 s), not the sending one (≤60 s).
                        await asyncio.sleep(DATABASE_BACKOFF.delay(failures))
                        continue
                    failures = 0
                    for item in items:
                        self._start(item)
                    self._forget_idle_chats()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            if self._tasks:
                await asyncio.wait(list(self._tasks.values()))
        finally:
            self._stopping = False  # stop() ends this run; a later run() starts afresh
            heartbeat.cancel()
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(heartbeat, *self._tasks.values(), return_exceptions=True)

    # Claiming ---------------------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[OutboxItem]:
        now = utcnow()

        def due(row: Any) -> ColumnElement[bool]:
            return and_(row.status == PENDING, row.not_before <= now)

        # A chat's messages go in order: only its oldest due message (its head) may be
        # taken; the next waits until that one is sent or given up, whichever worker holds
        # it. One grouped pass over the pending index finds every chat's head: the cost
        # grows with the backlog once per claim, not once per row of it.
        earlier = aliased(OutboxMessage, name="earlier")
        heads = select(func.min(earlier.id)).where(due(earlier)).group_by(earlier.chat_id)
        candidate = aliased(OutboxMessage, name="candidate")
        chosen = (
            select(candidate.id)
            .where(
                candidate.id.in_(heads),
                due(candidate),
                or_(candidate.lease_until.is_(None), candidate.lease_until <= now),
                # A row this sender still works on whose lease lapsed (renewals failing).
                candidate.id.not_in(list(self._tasks)),
            )
            .order_by(candidate.id)
            .limit(limit)
            # PostgreSQL: senders skip each other's rows; SQLite: BEGIN IMMEDIATE serialises.
            .with_for_update(skip_locked=True, of=candidate)
        )
        # Chosen and leased in one statement (one round trip, not a SELECT and an UPDATE).
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(chosen))
            .values(lease_until=now + dt.timedelta(seconds=self.lease))
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False)
        )
        async with self.sessionmaker() as session, session.begin():
            rows = (await session.execute(statement)).scalars().all()
            items = [OutboxItem.of(row) for row in rows]
        # RETURNING comes in no particular order; a chat's messages go in row order.
        return sorted(items, key=lambda item: item.id)

    def _start(self, item: OutboxItem) -> None:
        self._leased.add(item.id)
        task = asyncio.create_task(self._deliver(item), name=f"outbox-{item.id}")
        self._tasks[item.id] = task

        def finished(_: asyncio.Task[None]) -> None:
            self._tasks.pop(item.id, None)
            self._leased.discard(item.id)
            self._wake.set()  # the chat's next message may go now

        task.add_done_callback(finished)

    # Limits -----------------------------------------------------------------------------------

    def _chat_limiter(self, chat_id: int) -> ChatLimiter:
        known = self._chat_limiters.get(chat_id)
        if known is None:
            rate = self.limits.group_chat if chat_id < 0 else self.limits.private_chat
            known = self._chat_limiters[chat_id] = ChatLimiter(rate)
        return known

    def _forget_idle_chats(self) -> None:
        """Drop limiters of chats whose bucket is empty (they would allow a call now anyway)."""
        if len(self._chat_limiters) < 1000:
            return
        now = asyncio.get_running_loop().time()
        for chat_id, limiter in list(self._chat_limiters.items()):
            if limiter.idle(now) and chat_id not in self._paused_until:
                del self._chat_limiters[chat_id]

    async def _wait_for_turn(self, chat_id: int) -> None:
        """Wait until a call to the chat keeps every limit; :meth:`_call` makes it at once."""
        loop = asyncio.get_running_loop()
        assert self._overall is not None and self._arrivals is not None
        paused_until = self._paused_until.get(chat_id)
        if paused_until is not None:
            await asyncio.sleep(max(0.0, paused_until - loop.time()))
            self._paused_until.pop(chat_id, None)
        overall = self.limits.overall
        interval = overall.seconds / overall.count
        while True:
            # Join the overall queue (first come, first served) once the chats in it take as
            # long to pass as this chat still has to wait for its own limit: the two waits
            # overlap (a queue shorter than 3 s does not slow a group down), and a chat
            # waiting for its own limit holds up no other. The queue takes at least:
            passing = max(0.0, self._queued_for_overall + 1 - overall.count) * interval
            early = self._chat_limiter(chat_id).ready_at() - loop.time()
            if early > passing:
                await asyncio.sleep(early - passing)
                continue
            self._queued_for_overall += 1
            try:
                await self._overall.acquire()
            finally:
                self._queued_for_overall -= 1
            if loop.time() >= self._chat_limiter(chat_id).ready_at():
                break
            # The queue moved faster than it looked (a chat in it gave up): this turn goes
            # unused rather than early.
        await self._arrivals.acquire()  # given back a second after the answer
        # Looked up only now: an idle chat's limiter may have been forgotten (empty anew).
        self._chat_limiter(chat_id).in_flight = True

    async def _call(self, item: OutboxItem) -> Any:
        """Make the item's call after :meth:`_wait_for_turn`; count it once answered (or
        failed: Telegram may have counted it all the same)."""
        try:
            return await self.bot(item.build(), request_timeout=self.request_timeout)
        finally:
            loop = asyncio.get_running_loop()
            self._chat_limiter(item.chat_id).answered(loop.time())
            assert self._arrivals is not None
            loop.call_later(1.0, self._arrivals.release)

    # Sending ----------------------------------------------------------------------------------

    async def _deliver(self, item: OutboxItem) -> None:
        try:
            await self._send_until_done(item)
        except Exception as error:  # a bug or a broken row: visible as failed, not retried
            log.exception("outbox: sending message %s broke", item.id)
            await self._give_up(item, item.attempts, error)

    def _exhausted(self, attempts: int, error: Exception, failing_since: float) -> bool:
        """Give the message up after this failure? After ``max_attempts``, and for transient
        failures only once they have gone on for ``retry_for`` seconds as well."""
        if attempts < self.max_attempts:
            return False
        if not isinstance(error, TRANSIENT):
            return True
        return asyncio.get_running_loop().time() - failing_since >= self.retry_for

    async def _send_until_done(self, item: OutboxItem) -> None:
        attempts = item.attempts
        # Loop time of this delivery's first failure (a restart starts the window afresh).
        failing_since: float | None = None
        while self.prepare is not None:
            try:
                prepared = await self.prepare(item)
            except TelegramRetryAfter as error:
                self.stats.too_many_requests += 1
                await asyncio.sleep(error.retry_after)
                continue
            except Exception as error:  # e.g. creating the topic failed: try again later
                attempts += 1
                log.warning("outbox: preparing message %s failed: %s", item.id, error)
                if failing_since is None:
                    failing_since = asyncio.get_running_loop().time()
                if self._exhausted(attempts, error, failing_since):
                    await self._give_up(item, attempts, error)
                    return
                await self._write(item.id, attempts=attempts, error=_describe(error))
                await asyncio.sleep(self.backoff.delay(attempts))
                continue
            if prepared is None:
                await self._give_up(item, attempts, ValueError("given up by prepare()"))
                return
            if prepared.thread_id != item.thread_id:
                await self._write(item.id, thread_id=prepared.thread_id)
            item = prepared
            break
        while True:
            await self._wait_for_turn(item.chat_id)
            try:
                result = await self._call(item)
            except TelegramRetryAfter as error:
                # 429: this chat waits retry_after seconds; other chats carry on.
                self.stats.too_many_requests += 1
                self.stats.retries += 1
                log.info("outbox: 429 for chat %s, waiting %s s", item.chat_id, error.retry_after)
                self._paused_until[item.chat_id] = (
                    asyncio.get_running_loop().time() + error.retry_after
                )
                continue
            except TelegramBadRequest as error:
                if NOT_MODIFIED in error.message:
                    # The edit already happened, e.g. before a crash: nothing left to do.
                    await self._mark_sent(item, None)
                    return
                if THREAD_NOT_FOUND in error.message:
                    moved = await self._rethread(item)
                    if moved is not None:
                        self.stats.retries += 1
                        item = moved
                        continue
                await self._give_up(item, attempts, error)
                return
            except TelegramForbiddenError as error:
                # 403: blocked by the user, kicked from the group, never started: no retry
                # will get through until the person or the group changes something.
                self.stats.blocked += 1
                await self._give_up(item, attempts, error)
                await self._call_on_blocked(item.chat_id)
                return
            except TelegramUnauthorizedError as error:
                # A revoked token fails every message alike: wait, do not burn attempts.
                self.stats.errors += 1
                log.error("outbox: %s; pausing", _describe(error))
                await asyncio.sleep(self.backoff.maximum)
                continue
            except (TelegramEntityTooLarge, ValidationError) as error:
                await self._give_up(item, attempts, error)
                return
            except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as error:
                # 5xx, timeouts, the front end's HTML 502 page: worth another try.
                self.stats.errors += 1
                attempts += 1
                if failing_since is None:
                    failing_since = asyncio.get_running_loop().time()
                if self._exhausted(attempts, error, failing_since):
                    await self._give_up(item, attempts, error)
                    return
                self.stats.retries += 1
                await self._write(item.id, attempts=attempts, error=_describe(error))
                await asyncio.sleep(self.backoff.delay(attempts))
                continue
            except TelegramAPIError as error:  # anything else Telegram refuses
                await self._give_up(item, attempts, error)
                return
            await self._mark_sent(item, _result_id(result))
            return

    async def _rethread(self, item: OutboxItem) -> OutboxItem | None:
        """The topic is gone (deleted in the group): ask the bot for a new one."""
        if self.on_thread_not_found is None:
            return None
        try:
            thread_id = await self.on_thread_not_found(item)
        except Exception:  # a broken callback must not lose the message: it stays failed
            log.exception("outbox: on_thread_not_found failed for message %s", item.id)
            return None
        if thread_id is None or thread_id == item.thread_id:
            return None
        await self._write(item.id, thread_id=thread_id)
        return replace(item, thread_id=thread_id)

    async def _call_on_blocked(self, chat_id: int) -> None:
        if self.on_blocked is None:
            return
        try:
            await self.on_blocked(chat_id)
        except Exception:
            log.exception("outbox: on_blocked failed for chat %s", chat_id)

    # Recording --------------------------------------------------------------------------------

    async def _mark_sent(self, item: OutboxItem, message_id: int | None) -> None:
        # Right after Telegram's answer: the shorter this gap, the smaller the window in
        # which a crash makes the message go out twice.
        values = {
            "status": SENT,
            "sent_at": utcnow(),
            "result_message_id": message_id,
            "lease_until": None,
            "error": None,
        }
        self.stats.sent += 1
        await self._finish(item, values, message_id)

    async def _give_up(self, item: OutboxItem, attempts: int, error: BaseException) -> None:
        text = _describe(error)
        self.stats.failed += 1
        log.error(
            "outbox: message %s (%s to chat %s) failed: %s",
            item.id,
            item.method,
            item.chat_id,
            text,
        )
        values = {"status": FAILED, "attempts": attempts, "error": text, "lease_until": None}
        await self._finish(item, values, None)

    async def _finish(
        self, item: OutboxItem, values: dict[str, Any], message_id: int | None
    ) -> None:
        """Record a message's outcome (bot/leases.py ``write_outcome``). Given up, the row
        stays pending: its lease runs out and it is sent again (the at-least-once window)."""

        async def write() -> None:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == item.id).values(**values)
                )
                if self.on_sent is not None and values["status"] == SENT:
                    await self._call_on_sent(session, item, message_id)

        await write_outcome(
            write,
            item.id,
            self._leased,
            self._lease_lock,
            lease=self.lease,
            backoff=DATABASE_BACKOFF.delay,
            what=f"outbox: message {item.id}",
        )

    async def _call_on_sent(
        self, session: AsyncSession, item: OutboxItem, message_id: int | None
    ) -> None:
        # In a savepoint: a failing callback must not undo "sent", or the message would be
        # sent again when the lease runs out.
        try:
            async with session.begin_nested():
                await self.on_sent(session, item, message_id)  # type: ignore[misc]
        except SQLAlchemyError:
            raise
        except Exception:
            log.exception("outbox: on_sent failed for message %s", item.id)

    async def _write(self, row_id: int, **values: Any) -> None:
        try:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values)
                )
        except (SQLAlchemyError, OSError):
            log.exception("outbox: updating message %s failed", row_id)

    async def _renew_leases(self) -> None:
        """Keep the leases of the rows this worker holds alive (bot/leases.py)."""
        await keep_leases(
            self.sessionmaker, OutboxMessage.id, self._leased, self._lease_lock, self.lease
        )


# How long a handler waits for Telegram to take a callback query's answer (the press's
# transaction is open meanwhile).
CALLBACK_ANSWER_TIMEOUT = 5.0


class BestEffortCallbackAnswers(BaseRequestMiddleware):
    """A session middleware: answerCallbackQuery is best effort, never the press's undoing.

    The one call a handler makes itself rather than through the outbox: the answer only
    stops the button's spinner (or shows a short notice), it must come within seconds, and
    Telegram refuses it once the query is old (Bot API, answerCallbackQuery), so queueing
    it gains nothing. Without this, a 5xx, a 429 or a timeout on it (or "query is too old"
    when a stored update is handled again after a crash) raised out of the handler, rolled
    back the press it answered, and told the person an internal error happened. Now the
    failure is logged and the handler goes on as if Telegram had taken the answer.
    """

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if method.__api_method__ != AnswerCallbackQuery.__api_method__:
            return await make_request(bot, method)
        try:
            async with asyncio.timeout(CALLBACK_ANSWER_TIMEOUT):
                return await make_request(bot, method)
        except (TelegramAPIError, ClientDecodeError, TimeoutError) as error:
            log.warning(
                "callback query %s left unanswered: %s",
                getattr(method, "callback_query_id", "?"),
                _describe(error),
            )
            # What the session answers for this method (its result, despite the annotation).
            return cast(Response[TelegramType], True)


def _result_id(result: Any) -> int | None:
    """The message a call produced: a Message or MessageId, or a new topic's thread id."""
    if isinstance(result, ForumTopic):
        return result.message_thread_id
    message_id = getattr(result, "message_id", None)
    return message_id if isinstance(message_id, int) else None


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
