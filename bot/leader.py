"""Named leases in the database: work that one process of several must do alone.

The outbox sender is one: Telegram's flood limits (30 messages/s, 1/s per chat, 20/min per
group) count per bot, not per process, so the senders of two workers would each keep their
own pace and together break it. On SQLite the reminder scan is another (SQLite has no
``SKIP LOCKED``; a second scanner waits). A lease is taken when it is free or has run out,
renewed while held, and released on a clean stop so a standby takes over at once; after a
crash it takes over when the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Lease
from bot.inbox import upsert_insert

log = logging.getLogger(__name__)


def process_name() -> str:
    """Who holds a lease: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLease:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        name: str,
        *,
        holder: str | None = None,
        ttl: float = 15.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.name = name
        self.holder = holder or process_name()
        self.ttl = ttl

    async def acquire(self) -> bool:
        """Take or renew the lease; True while this process holds it."""
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(seconds=self.ttl)
        async with self.sessionmaker() as session, session.begin():
            values = upsert_insert(session, Lease).values(
                name=self.name, holder=self.holder, expires_at=expires
            )
            statement = values.on_conflict_do_update(
                index_elements=[Lease.name],
                set_={"holder": self.holder, "expires_at": expires},
                where=(Lease.holder == self.holder) | (Lease.expires_at < now),
            ).returning(Lease.holder)
            holder = (await session.execute(statement)).scalar_one_or_none()
        return holder == self.holder

    async def release(self) -> None:
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder)
            )


async def while_leader(
    lease: LeaderLease,
    work: Callable[[], Coroutine[Any, Any, None]],
    stop_work: Callable[[], None],
    *,
    stopping: asyncio.Event,
) -> None:
    """Run ``work()`` whenever this process holds ``lease``, until ``stopping`` is set.

    The lease is renewed every third of its time. A renewal that fails (the database is
    restarting) does not stop the work while the lease is surely still ours; once fewer
    than a third of its time is left — the database was away for two renewals — or
    another process holds it, ``stop_work()`` is called and ``work`` awaited before trying
    again, so two processes never do the work at once for longer than one renewal
    interval. On stop the lease is released for a standby to take at once.
    """
    loop = asyncio.get_running_loop()
    task: asyncio.Task[None] | None = None
    held_until = 0.0  # loop time until which the lease is ours whatever happens meanwhile
    try:
        while not stopping.is_set():
            asked = loop.time()  # before the request: the lease runs from later than this
            try:
                leader = await lease.acquire()
            except (SQLAlchemyError, OSError):
                log.exception("lease %s: renewing failed", lease.name)
                leader = task is not None and loop.time() < held_until - lease.ttl / 3
            else:
                if leader:
                    held_until = asked + lease.ttl
            if leader and task is None:
                log.info("lease %s: taken by %s", lease.name, lease.holder)
                task = asyncio.create_task(work(), name=f"leader-{lease.name}")
            elif not leader and task is not None:
                log.warning("lease %s: lost by %s; stopping", lease.name, lease.holder)
                stop_work()
                await asyncio.gather(task, return_exceptions=True)
                task = None
            if task is not None and task.done():
                # The work ended on its own (a bug): it starts again on the next turn.
                if not task.cancelled() and (error := task.exception()) is not None:
                    log.error("lease %s: the work broke", lease.name, exc_info=error)
                task = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), lease.ttl / 3)
    finally:
        if task is not None:
            stop_work()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(SQLAlchemyError, OSError):
            await lease.release()
