"""aiogram FSM storage in the ``fsm`` table: a half-finished intake survives a restart.

One row per conversation key (aiogram's :class:`DefaultKeyBuilder`), holding both the
state and the data; a conversation with neither (after ``FSMContext.clear()``) has no row,
so personal details collected during intake do not linger.

**Inside a database transaction, bind it.** On SQLite every transaction takes the write
lock when it begins (``BEGIN IMMEDIATE``, see ``engine.py``). A handler that has written
through its session and then calls ``state.update_data()`` would have the storage wait for
a lock that its own caller holds, until the busy timeout. So whoever opens the per-update
session binds it::

    with storage.use_session(session):
        await handler(event, data)

and the FSM reads and writes become part of that transaction: the conversation moves on
exactly when the update's other changes commit. Unbound, each call is its own short
transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import FsmRecord
from bot.db.repo_base import insert


class SqlStorage(BaseStorage):
    """FSM state and data in SQL (SQLite or PostgreSQL), through SQLAlchemy.

    Data must be JSON-serialisable, as with aiogram's ``RedisStorage``: store ISO strings
    or ``to_dict()`` results, not dates or objects.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        key_builder: KeyBuilder | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        # with_destiny: aiogram scenes keep their own state under another destiny; the
        # plain DefaultKeyBuilder() refuses such keys.
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        self._bound: ContextVar[AsyncSession | None] = ContextVar(
            f"sql_storage_session_{id(self)}", default=None
        )

    @contextmanager
    def use_session(self, session: AsyncSession) -> Iterator[None]:
        """Within this block (this task and the tasks it starts), use ``session``: reads and
        writes join its transaction and are committed or rolled back with it."""
        token = self._bound.set(session)
        try:
            yield
        finally:
            self._bound.reset(token)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self._transaction() as session:
            await self._write(session, self.key_builder.build(key), "state", value)

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._transaction() as session:
            state: str | None = await session.scalar(
                select(FsmRecord.state).where(FsmRecord.key == self.key_builder.build(key))
            )
        return state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            # The same check and error as aiogram's own storages.
            msg = f"Data must be a dict or dict-like object, got {type(data).__name__}"
            raise DataNotDictLikeError(msg)
        async with self._transaction() as session:
            await self._write(session, self.key_builder.build(key), "data", dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._transaction() as session:
            data: dict[str, Any] | None = await session.scalar(
                select(FsmRecord.data).where(FsmRecord.key == self.key_builder.build(key))
            )
        return dict(data) if data else {}

    async def close(self) -> None:
        """Nothing to release: the engine belongs to whoever made the sessionmaker."""

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        bound = self._bound.get()
        if bound is not None:
            yield bound
            return
        async with self._sessionmaker() as session, session.begin():
            yield session

    @staticmethod
    async def _write(session: AsyncSession, key: str, column: str, value: Any) -> None:
        """Set one column (the other keeps its value); drop the row once both are empty."""
        statement = insert(session, FsmRecord).values(
            key=key, **{column: value}, updated_at=dt.datetime.now(dt.UTC)
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    column: statement.excluded[column],
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )
        # The upsert holds the row's lock until commit, so this read is the current row.
        row = (
            await session.execute(
                select(FsmRecord.state, FsmRecord.data).where(FsmRecord.key == key)
            )
        ).one()
        if row.state is None and not row.data:
            await session.execute(delete(FsmRecord).where(FsmRecord.key == key))
