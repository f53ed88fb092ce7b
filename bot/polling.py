"""Long polling that stores updates before confirming them (aiogram's confirms first).

Telegram confirms every update below the ``offset`` of a ``getUpdates`` call (Bot API,
getUpdates), so the offset is the acknowledgement: it moves past a batch only after
:func:`bot.inbox.store_updates` has committed it. A crash before the commit leaves the batch
unconfirmed and Telegram sends it again; a crash after it leaves it stored, and the replay
on restart is ignored by ``update_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import TelegramMethod
from sqlalchemy.exc import SQLAlchemyError

from bot.inbox import DATABASE_BACKOFF, Backoff, Sessionmaker, store_updates

log = logging.getLogger(__name__)

# getUpdates returns at most 100 updates (Bot API, getUpdates "limit").
MAX_BATCH = 100
# The HTTP request must outlive the long poll itself.
REQUEST_SLACK_SECONDS = 10
POLL_BACKOFF = Backoff(first=1.0, factor=2.0, maximum=60.0)


class GetRawUpdates(TelegramMethod[list[dict[str, Any]]]):
    """getUpdates answering plain dicts: the inbox keeps updates exactly as Telegram sent
    them, and ``Dispatcher.feed_raw_update`` takes them as they are."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


class LongPolling:
    """``run()`` polls until ``stop()`` or cancellation; see the module docstring.

    ``on_stored`` is called after each stored batch (e.g. ``InboxProcessor.wake``).
    """

    def __init__(
        self,
        bot: Bot,
        sessionmaker: Sessionmaker,
        *,
        timeout: int = 30,
        limit: int = MAX_BATCH,
        allowed_updates: Sequence[str] | None = None,
        on_stored: Callable[[], None] | None = None,
        backoff: Backoff = POLL_BACKOFF,
    ):
        self.bot = bot
        self.sessionmaker = sessionmaker
        self.timeout = timeout
        self.limit = min(max(limit, 1), MAX_BATCH)
        self.allowed_updates = list(allowed_updates) if allowed_updates is not None else None
        self.on_stored = on_stored
        self.backoff = backoff
        # None: Telegram starts from the oldest unconfirmed update, which after a restart
        # is exactly what may not have been stored yet.
        self.offset: int | None = None
        self._stopping = False
        self._stopped = asyncio.Event()  # ends a backoff wait at once
        self._request: asyncio.Future[list[dict[str, Any]]] | None = None

    async def poll_once(self, *, wait: int | None = None) -> int:
        """One getUpdates (a long poll of ``wait`` seconds, default ``self.timeout``), stored;
        returns the number of updates received.

        Raises whatever the request or the store raised; then the offset has not moved.
        """
        method = GetRawUpdates(
            offset=self.offset,
            limit=self.limit,
            timeout=self.timeout if wait is None else wait,
            allowed_updates=self.allowed_updates,
        )
        request = asyncio.ensure_future(
            self.bot(method, request_timeout=(method.timeout or 0) + REQUEST_SLACK_SECONDS)
        )
        self._request = request
        try:
            updates = await request
        finally:
            self._request = None
        if not updates:
            return 0
        await store_updates(self.sessionmaker, updates)
        # Only now may they be confirmed: the next call's offset tells Telegram.
        self.offset = max(int(item["update_id"]) for item in updates) + 1
        if self.on_stored is not None:
            self.on_stored()
        return len(updates)

    def stop(self) -> None:
        """End ``run()``: a waiting long poll is abandoned; a batch being stored finishes."""
        self._stopping = True
        self._stopped.set()
        if self._request is not None:
            self._request.cancel()

    async def run(self) -> None:
        failures = 0
        self._stopped.clear()
        while not self._stopping:
            try:
                await self.poll_once()
                failures = 0
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if self._stopping and current is not None and not current.cancelling():
                    break  # stop() cancelled the long poll, not someone cancelling us
                raise
            except TelegramRetryAfter as error:
                # Any method may answer 429 (Bot API); getUpdates too.
                log.warning("polling: flood control, waiting %s s", error.retry_after)
                await self._pause(error.retry_after)
            except TelegramUnauthorizedError:
                raise  # a wrong token is not going to fix itself
            except (TelegramAPIError, ClientDecodeError, SQLAlchemyError, OSError) as error:
                # 5xx, timeouts, an HTML page from the front end, a 409 while a webhook is
                # set or another instance polls, a database that is down: nothing was
                # confirmed, so wait and ask again.
                failures += 1
                # The database's own, shorter backoff when storing failed (aiogram wraps
                # network errors to Telegram, so an OSError here is the database's): the
                # batch waits at Telegram, and the database is usually back within seconds.
                database = isinstance(error, SQLAlchemyError | OSError)
                backoff = DATABASE_BACKOFF if database else self.backoff
                delay = backoff.delay(failures)
                log.warning("polling: %s; retrying in %.1f s", _describe(error), delay)
                await self._pause(delay)
        self._stopping = False  # stop() ends this run; a later run() starts afresh
        await self._confirm()

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if ``stop()`` is called (a lost lease must not wait
        out a minute's backoff before the poller hands over)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def _confirm(self) -> None:
        """Tell Telegram what is stored, so a restart is not sent it again (a courtesy:
        the replay would be ignored anyway)."""
        if self.offset is None:
            return
        with contextlib.suppress(TelegramAPIError, ClientDecodeError, OSError):
            await self.bot(GetRawUpdates(offset=self.offset, limit=1, timeout=0))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
