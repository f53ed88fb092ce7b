"""Leases on claimed rows (inbox updates, outbox messages): while a worker holds a row it
keeps pushing ``lease_until`` forward; if the worker dies, the lease runs out and another
worker takes the row. One loop serves both tables, and one writer of outcomes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

# How long an outcome is retried while the database is away, as a share of the row's lease:
# the row is renewed meanwhile, so nobody takes it; past that, the lease runs out.
RECORD_FOR_LEASE_SHARE = 0.5


async def write_outcome(
    write: Callable[[], Awaitable[None]],
    row_id: int,
    held: set[int],
    lock: asyncio.Lock,
    *,
    lease: float,
    backoff: Callable[[int], float],
    what: str,
) -> bool:
    """Run ``write`` (the row's outcome, in its own transaction), retrying while the database
    is away for half a lease; whether it was written. Given up, the row's lease runs out and
    it is claimed again.

    The row leaves ``held`` before each try, under ``lock``: the lock only waits out a
    renewal in flight, never the write (held across the write, it let one outcome at a time
    be written in the whole process: bench/e2e measured it). While it waits to try again the
    row is back in ``held``, so it is renewed."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + lease * RECORD_FOR_LEASE_SHARE
    attempt = 0
    while True:
        attempt += 1
        async with lock:
            held.discard(row_id)
        try:
            await write()
            return True
        except (SQLAlchemyError, OSError):
            log.exception("%s: recording the outcome failed (try %d)", what, attempt)
            delay = backoff(attempt)
            if loop.time() + delay > give_up_at:
                return False
            async with lock:
                held.add(row_id)
            await asyncio.sleep(delay)


async def keep_leases(
    sessionmaker: async_sessionmaker[AsyncSession],
    key: Any,
    held: set[int],
    lock: asyncio.Lock,
    lease: float,
) -> None:
    """Forever (until cancelled): every third of ``lease`` seconds, extend the lease of the
    rows whose ``key`` (a primary-key column of a table with ``lease_until``) is in
    ``held``. Under ``lock``, so a renewal never overwrites an outcome being written."""
    table = key.class_
    while True:
        await asyncio.sleep(lease / 3)
        try:
            async with lock:
                rows = list(held)
                if not rows:
                    continue
                async with sessionmaker() as session, session.begin():
                    await session.execute(
                        update(table)
                        .where(key.in_(rows))
                        .values(lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lease))
                    )
        except (SQLAlchemyError, OSError):
            log.exception("renewing leases on %s failed", table.__tablename__)
