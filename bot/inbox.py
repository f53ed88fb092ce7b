"""The inbox: every update is saved before Telegram is told it arrived, then handled from here.

Telegram keeps an update for 24 hours until it is confirmed — by a ``getUpdates`` call with a
higher offset, or by a 2xx answer to the webhook request (Bot API, "Getting updates").
aiogram's own loops confirm before the handlers run, so a crash loses what was confirmed; we
confirm only after :func:`store_updates` has committed, and :class:`InboxProcessor` hands the
saved updates to the dispatcher afterwards.

Guarantees:

* an update is stored once, whatever Telegram replays (``update_id`` is the primary key);
* the updates of one person (their ``ordering_key``) are handled one at a time, in
  ``update_id`` order; different people are handled concurrently;
* an update is never handled by two workers at once: a claim takes a lease, renewed while
  the handler runs; a crashed worker's claim is retaken when its lease runs out;
* a failing update is retried with backoff and finally left as ``failed`` with its error,
  and logged — never dropped. Handling is at-least-once, so handlers must be idempotent
  (a replayed update or a double-tapped button must create nothing twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, bindparam, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.db.models import InboxUpdate
from bot.leases import keep_leases, write_outcome

log = logging.getLogger(__name__)

NEW, DONE, FAILED = "new", "done", "failed"
Handler = Callable[[dict[str, Any]], Awaitable[Any]]
Sessionmaker = async_sessionmaker[AsyncSession]

# The error text kept on a row; a traceback's last lines are what a person needs.
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``first``, ``first * factor``, … capped at ``maximum`` seconds."""

    first: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failure (1-based)."""
        return float(min(self.maximum, self.first * self.factor ** max(0, attempt - 1)))


# A failed update waits 2 s, 6 s, 18 s, 54 s before its next attempts.
HANDLER_BACKOFF = Backoff(first=2.0, factor=3.0, maximum=300.0)
# While the database is unreachable (claiming or recording fails): retried often, so work
# resumes within seconds of the database coming back, however long it was away.
DATABASE_BACKOFF = Backoff(first=0.5, factor=2.0, maximum=5.0)


@dataclass
class InboxStats:
    """Counters for metrics (this process only)."""

    done: int = 0
    retries: int = 0  # failures that will be retried
    failed: int = 0  # updates given up on, left as ``failed``


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class InboxReceipt:
    """Whether an update's outcome is already written: bot/middlewares.py marks the row done
    in the handler's own transaction and says so here, and the processor then does not
    write it again in a transaction of its own (one statement and one commit per update)."""

    update_id: int
    recorded: bool = False


# The receipt of the update the current task handles. A context variable rather than an
# argument: ``handle`` takes the update as Telegram sent it (``Dispatcher.feed_raw_update``
# runs the middlewares in the caller's task), and an update fed without the processor (a
# test, a replay by hand) simply has none.
_receipt: ContextVar[InboxReceipt | None] = ContextVar("inbox_receipt", default=None)


def inbox_receipt(update_id: int) -> InboxReceipt | None:
    """The receipt of ``update_id`` if the inbox processor is handling it in this task."""
    receipt = _receipt.get()
    return receipt if receipt is not None and receipt.update_id == update_id else None


def upsert_insert(session: AsyncSession, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ``on_conflict_do_nothing`` on this backend (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def ordering_key(update: Mapping[str, Any]) -> int | None:
    """Whose update this is: the acting user's id, else the chat's id, else None.

    Messages, edits, button presses and membership changes carry ``from``; reactions and
    poll answers carry ``user``; channel posts have only a chat. Updates with neither (a
    poll's new state) need no ordering and get None: they are handled independently.
    """
    for kind, body in update.items():
        if kind == "update_id" or not isinstance(body, Mapping):
            continue
        for field in ("from", "user"):
            person = body.get(field)
            if isinstance(person, Mapping) and isinstance(person.get("id"), int):
                return int(person["id"])
        chat = body.get("chat")
        if not isinstance(chat, Mapping) and isinstance(body.get("message"), Mapping):
            chat = body["message"].get("chat")
        if isinstance(chat, Mapping) and isinstance(chat.get("id"), int):
            return int(chat["id"])
    return None


# What no database column takes: NUL (PostgreSQL's text and json types refuse U+0000, and
# the whole transaction with it) and lone surrogates (not encodable as UTF-8). Neither means
# anything in what people type; a client or an attacker can still put them in an update.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """``value`` (an update as Telegram sent it) with NUL removed and lone surrogates
    replaced (U+FFFD) in every string: names, texts, captions, callback data."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)
    if isinstance(value, Mapping):
        return {key: storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


async def store_updates(sessionmaker: Sessionmaker, updates: Sequence[Mapping[str, Any]]) -> int:
    """Save updates in one transaction; an ``update_id`` already stored is skipped.

    Returns how many were new. Only after this returns may they be confirmed to Telegram.
    """
    if not updates:
        return 0
    now = utcnow()
    rows = [
        {
            "update_id": int(item["update_id"]),
            "ordering_key": ordering_key(item),
            # Cleaned here, once, so the stored row and every handler see the same text.
            "payload": storable(item),
            "status": NEW,
            "attempts": 0,
            "received_at": now,
        }
        for item in updates
    ]
    async with sessionmaker() as session, session.begin():
        statement = (
            upsert_insert(session, InboxUpdate)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[InboxUpdate.update_id])
            .returning(InboxUpdate.update_id)
        )
        inserted = (await session.execute(statement)).scalars().all()
    return len(inserted)


async def retry_failed(sessionmaker: Sessionmaker, update_ids: Iterable[int] | None = None) -> int:
    """Queue failed updates again (after the cause is fixed), with a fresh attempt count.

    They are handled after whatever their person sent meanwhile: order cannot be restored.
    """
    statement = (
        update(InboxUpdate)
        .where(InboxUpdate.status == FAILED)
        .values(status=NEW, attempts=0, lease_until=None, processed_at=None)
    )
    if update_ids is not None:
        statement = statement.where(InboxUpdate.update_id.in_(list(update_ids)))
    async with sessionmaker() as session, session.begin():
        result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class _Claim:
    update_id: int
    ordering_key: int | None
    payload: dict[str, Any]
    attempts: int  # including this one


class InboxProcessor:
    """Hands stored updates to ``handle`` (e.g. ``lambda u: dp.feed_raw_update(bot, u)``).

    ``run()`` works until ``stop()`` (then finishes the handlers in flight) or cancellation
    (then abandons them: their leases run out and another worker retakes the updates).
    """

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        handle: Handler,
        *,
        concurrency: int = 16,
        max_attempts: int = 5,
        backoff: Backoff = HANDLER_BACKOFF,
        lease: float = 60.0,
        handler_timeout: float | None = 300.0,
        poll_interval: float = 1.0,
    ):
        if concurrency < 1 or max_attempts < 1 or lease <= 0:
            raise ValueError("concurrency, max_attempts and lease must be positive")
        self.sessionmaker = sessionmaker
        self.handle = handle
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.lease = lease
        # A hung handler would hold its person's queue (and its lease) forever.
        self.handler_timeout = handler_timeout
        self.poll_interval = poll_interval
        self.stats = InboxStats()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        # Claims whose outcome is not yet written; the heartbeat renews only these, under
        # the lock, so a renewal can never overwrite a retry time or a final "failed".
        self._leased: set[int] = set()
        self._lease_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = False
        self._claim_statement = self._build_claim()
        self._next_give_up = 0.0  # loop time of the next look for abandoned last attempts

    def wake(self) -> None:
        """Look for work now (call after storing updates) instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; ``run()`` returns once the handlers in flight are finished."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._renew_leases(), name="inbox-leases")
        failures = 0
        try:
            while not self._stopping:
                self._wake.clear()
                free = self.concurrency - len(self._tasks)
                if free > 0:
                    try:
                        claims = await self._claim(free)
                    except (SQLAlchemyError, OSError):
                        failures += 1
                        log.exception("inbox: claiming updates failed")
                        await asyncio.sleep(DATABASE_BACKOFF.delay(failures))
                        continue
                    failures = 0
                    for claim in claims:
                        self._start(claim)
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

    def _unfinished(self, row: Any) -> ColumnElement[bool]:
        """Still to be handled: new, or failed with attempts left. ``status <> 'done'``
        says it in the words of ix_inbox_unfinished's condition, so both PostgreSQL and
        SQLite (which matches a partial index's condition only literally) can use it."""
        return and_(
            row.status != DONE,
            or_(row.status == NEW, and_(row.status == FAILED, row.attempts < self.max_attempts)),
        )

    def _build_claim(self) -> Any:
        """The claim, one statement: take the lease on the oldest claimable updates and
        return them. Built once (``aliased`` and the clauses cost more than the execution
        of a cached statement); ``now``, ``lease_end``, ``running`` and ``limit`` are its
        parameters."""
        earlier = aliased(InboxUpdate, name="earlier")
        # Only the oldest unfinished update of each person may be taken: the next one waits
        # until it is done or given up, which keeps a person's updates in order across
        # workers. NULL keys never match, so key-less updates are independent.
        waits_for_earlier = exists().where(
            earlier.ordering_key == InboxUpdate.ordering_key,
            earlier.update_id < InboxUpdate.update_id,
            # _unfinished() in other words (the statuses are new, done and failed): with no
            # equality on status, PostgreSQL cannot AND ix_inbox_pending's bitmap of every
            # new row into each probe (3 s per claim over a fresh 10,000-row backlog); this
            # probe is ix_inbox_unfinished's alone.
            earlier.status != DONE,
            or_(earlier.status != FAILED, earlier.attempts < self.max_attempts),
        )
        claimable = (
            select(InboxUpdate.update_id)
            .where(
                self._unfinished(InboxUpdate),
                InboxUpdate.attempts < self.max_attempts,
                or_(
                    InboxUpdate.lease_until.is_(None),
                    InboxUpdate.lease_until <= bindparam("now"),
                ),
                # Still running here (a lease that ran out under a hung handler).
                InboxUpdate.update_id.not_in(bindparam("running", expanding=True)),
                ~waits_for_earlier,
            )
            .order_by(InboxUpdate.update_id)
            .limit(bindparam("limit", type_=Integer))
            # PostgreSQL: concurrent workers skip each other's rows instead of queueing on
            # them. SQLite ignores this; its BEGIN IMMEDIATE (bot/db/engine.py) serialises
            # the whole claim instead.
            .with_for_update(skip_locked=True, of=InboxUpdate)
        )
        # attempts counts starts, not failures: an update that kills the process is given
        # up after max_attempts crashes instead of crashing it forever.
        return (
            update(InboxUpdate)
            .where(InboxUpdate.update_id.in_(claimable.scalar_subquery()))
            .values(lease_until=bindparam("lease_end"), attempts=InboxUpdate.attempts + 1)
            .returning(
                InboxUpdate.update_id,
                InboxUpdate.ordering_key,
                InboxUpdate.payload,
                InboxUpdate.attempts,
            )
            .execution_options(synchronize_session=False)
        )

    async def _claim(self, limit: int) -> list[_Claim]:
        now = utcnow()
        loop = asyncio.get_running_loop()
        # A last attempt is abandoned only when its lease runs out: looking once per poll
        # interval is enough, not on every claim (a wake-up per stored batch and per
        # finished update, many a second under load).
        give_up = loop.time() >= self._next_give_up
        async with self.sessionmaker() as session, session.begin():
            if give_up:
                await self._give_up_abandoned(session, now)
            rows = (
                await session.execute(
                    self._claim_statement,
                    {
                        "now": now,
                        "lease_end": now + dt.timedelta(seconds=self.lease),
                        "running": list(self._tasks),
                        "limit": limit,
                    },
                )
            ).all()
        if give_up:
            self._next_give_up = loop.time() + self.poll_interval
        # RETURNING follows no order; the person's order is the claim's condition, and
        # starting the oldest first is what a reader of the logs expects.
        return sorted(
            (
                _Claim(row.update_id, row.ordering_key, dict(row.payload), row.attempts)
                for row in rows
            ),
            key=lambda claim: claim.update_id,
        )

    async def _give_up_abandoned(self, session: AsyncSession, now: dt.datetime) -> None:
        """Updates whose last allowed attempt died with its worker (the lease ran out)."""
        abandoned = (
            (
                await session.execute(
                    update(InboxUpdate)
                    .where(
                        InboxUpdate.status.in_([NEW, FAILED]),
                        InboxUpdate.attempts >= self.max_attempts,
                        InboxUpdate.lease_until.is_not(None),
                        InboxUpdate.lease_until <= now,
                    )
                    .values(
                        status=FAILED,
                        lease_until=None,
                        processed_at=now,
                        error="the worker handling the last attempt stopped (lease expired)",
                    )
                    .returning(InboxUpdate.update_id)
                )
            )
            .scalars()
            .all()
        )
        for update_id in abandoned:
            self.stats.failed += 1
            log.error("inbox: update %s given up: its last attempt's worker died", update_id)

    # Handling ---------------------------------------------------------------------------------

    def _start(self, claim: _Claim) -> None:
        self._leased.add(claim.update_id)
        task = asyncio.create_task(self._process(claim), name=f"inbox-{claim.update_id}")
        self._tasks[claim.update_id] = task

        def finished(_: asyncio.Task[None]) -> None:
            self._tasks.pop(claim.update_id, None)
            self._leased.discard(claim.update_id)
            self._wake.set()  # the person's next update may go now

        task.add_done_callback(finished)

    async def _process(self, claim: _Claim) -> None:
        receipt = InboxReceipt(claim.update_id)
        _receipt.set(receipt)  # this task's own context: seen by this update's middleware only
        try:
            async with asyncio.timeout(self.handler_timeout):
                await self.handle(claim.payload)
        except Exception as error:  # any handler failure is recorded, never lost
            await self._record_failure(claim, error)
        else:
            if receipt.recorded:
                # Done in the handler's transaction. A lease renewal in flight may still
                # stamp the row: harmless, a done row is never claimed.
                self._leased.discard(claim.update_id)
                self.stats.done += 1
                return
            await self._record(
                claim.update_id,
                status=DONE,
                error=None,
                lease_until=None,
                processed_at=utcnow(),
            )
            self.stats.done += 1

    async def _record_failure(self, claim: _Claim, error: Exception) -> None:
        text = _describe(error)
        if claim.attempts >= self.max_attempts:
            self.stats.failed += 1
            log.error(
                "inbox: update %s failed %d times, given up: %s",
                claim.update_id,
                claim.attempts,
                text,
            )
            await self._record(
                claim.update_id,
                status=FAILED,
                error=text,
                lease_until=None,
                processed_at=utcnow(),
            )
            return
        self.stats.retries += 1
        delay = self.backoff.delay(claim.attempts)
        log.warning(
            "inbox: update %s failed (attempt %d), retry in %.1f s: %s",
            claim.update_id,
            claim.attempts,
            delay,
            text,
        )
        # The lease doubles as the retry time: nobody takes the row before it.
        retry_at = utcnow() + dt.timedelta(seconds=delay)
        await self._record(claim.update_id, status=FAILED, error=text, lease_until=retry_at)

    async def _record(self, update_id: int, **values: Any) -> None:
        """Write an update's outcome (bot/leases.py ``write_outcome``: retried while the
        database is away, for half a lease). Given up, the lease runs out and the update is
        claimed again: a handled one is then skipped (bot/middlewares.py marks it done in the
        handler's transaction), a failed one retried."""

        async def write() -> None:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(InboxUpdate)
                    # Never over a "done": the handler's transaction may have committed it
                    # before the error (a connection lost in the commit's reply).
                    .where(InboxUpdate.update_id == update_id, InboxUpdate.status != DONE)
                    .values(**values)
                )

        await write_outcome(
            write,
            update_id,
            self._leased,
            self._lease_lock,
            lease=self.lease,
            backoff=DATABASE_BACKOFF.delay,
            what=f"inbox: update {update_id}",
        )

    async def _renew_leases(self) -> None:
        """Keep the leases of the rows this worker holds alive (bot/leases.py)."""
        await keep_leases(
            self.sessionmaker, InboxUpdate.update_id, self._leased, self._lease_lock, self.lease
        )


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError) and not str(error):
        return "TimeoutError: the handler took longer than handler_timeout"
    lines = traceback.format_exception(error)
    text = f"{type(error).__name__}: {error}\n" + "".join(lines[-6:])
    return text[-MAX_ERROR_CHARS:]
