"""Leases on claimed rows (inbox updates, outbox messages): while a worker holds a row it
keeps pushing ``lease_until`` forward; if the worker dies, the lease runs out and another
worker takes the row. One loop serves both tables."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)


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
