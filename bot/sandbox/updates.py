"""The bot's update queue, shared by getUpdates and webhook delivery."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Telegram keeps undelivered updates for 24 hours (Bot API, "Getting updates").
UPDATE_TTL_SECONDS = 24 * 60 * 60
# With allowed_updates empty or never set, these types are not sent (Bot API, getUpdates).
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
FIRST_UPDATE_ID = 100_000_001


@dataclass(frozen=True)
class QueuedUpdate:
    update_id: int
    kind: str
    payload: dict[str, Any]
    created: float

    def to_json(self) -> dict[str, Any]:
        return {"update_id": self.update_id, self.kind: self.payload}


class UpdateQueue:
    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._items: deque[QueuedUpdate] = deque()
        self._next_id = FIRST_UPDATE_ID
        self._changed = asyncio.Event()
        self.allowed_updates: frozenset[str] | None = None
        self.poll_generation = 0
        self.closing = False  # set on server shutdown so long polls return at once
        self.created = 0

    def push(self, kind: str, payload: dict[str, Any]) -> int | None:
        """Queue an update; None if allowed_updates filters it out.

        Like Telegram, the filter applies when an update is created, not when it is read.
        """
        if not self._wanted(kind):
            return None
        update = QueuedUpdate(self._next_id, kind, payload, self._clock())
        self._next_id += 1
        self._items.append(update)
        self.created += 1
        self.notify()
        return update.update_id

    def _wanted(self, kind: str) -> bool:
        if not self.allowed_updates:
            return kind not in OPT_IN_UPDATES
        return kind in self.allowed_updates

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Sleep until something is pushed (or notify() is called) or `seconds` pass."""
        changed = self._changed
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # races with the event being set, and the webhook task would then never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await changed.wait()

    def confirm(self, offset: int) -> None:
        """getUpdates offset: ids below it are confirmed; negative counts from the end."""
        if offset < 0:
            while len(self._items) > -offset:
                self._items.popleft()
            return
        while self._items and self._items[0].update_id < offset:
            self._items.popleft()

    def peek(self, limit: int) -> list[QueuedUpdate]:
        self._expire()
        return list(self._items)[:limit]

    def drop(self, update_id: int) -> None:
        self.confirm(update_id + 1)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        self._expire()
        return len(self._items)

    def _expire(self) -> None:
        horizon = self._clock() - UPDATE_TTL_SECONDS
        while self._items and self._items[0].created < horizon:
            self._items.popleft()
