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

Within a bound block the storage also keeps each record it has read, for the rest of the
transaction: an update costs one read of it however often the handler asks (aiogram's
``get_data()`` and ``update_data()`` each read the record again), and its writes go to the
row once, when the transaction commits (a ``before_commit`` hook, in that same
transaction), not once per ``set_state()``/``set_data()``. A rollback forgets both. A write
inside a savepoint that is rolled back is still written at commit: the handlers use no
savepoints around FSM calls.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
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
from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from bot.db.models import FsmRecord
from bot.db.repo_base import insert


@dataclass(frozen=True, slots=True)
class _Record:
    """A conversation's row as this transaction sees it (no row: both empty)."""

    state: str | None = None
    data: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        return self.state is None and not self.data


@dataclass(slots=True)
class _Scope:
    """A bound session, the records read through it and the columns written but not yet
    flushed, per key (see the module docstring)."""

    session: AsyncSession
    records: dict[str, _Record] = field(default_factory=dict)
    unwritten: dict[str, set[str]] = field(default_factory=dict)

    def forget(self) -> None:
        self.records.clear()
        self.unwritten.clear()


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
        self._bound: ContextVar[_Scope | None] = ContextVar(
            f"sql_storage_session_{id(self)}", default=None
        )
        # Where a session keeps its scope (Session.info), for the commit hook.
        self._info_key = f"sql_storage_scopes_{id(self)}"

    @contextmanager
    def use_session(self, session: AsyncSession) -> Iterator[None]:
        """Within this block (this task and the tasks it starts), use ``session``: reads and
        writes join its transaction and are committed or rolled back with it."""
        # One scope per session, however many blocks bind it: what one block wrote and has
        # not flushed yet is what the next one must read.
        scope = session.info.get(self._info_key)
        if scope is None:
            scope = session.info[self._info_key] = _Scope(session)
            event.listen(session.sync_session, "before_commit", self._flush)
            event.listen(session.sync_session, "after_commit", self._forget_all)
            event.listen(session.sync_session, "after_soft_rollback", self._forget)
        token = self._bound.set(scope)
        try:
            yield
        finally:
            self._bound.reset(token)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(self.key_builder.build(key), "state", value)

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._read(self.key_builder.build(key))).state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            # The same check and error as aiogram's own storages.
            msg = f"Data must be a dict or dict-like object, got {type(data).__name__}"
            raise DataNotDictLikeError(msg)
        await self._write(self.key_builder.build(key), "data", dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        # A deep copy, as a fresh read would give: the caller may change what it gets
        # (aiogram's update_data() does) without changing what the next call sees.
        data = (await self._read(self.key_builder.build(key))).data
        return copy.deepcopy(data) if data else {}

    async def close(self) -> None:
        """Nothing to release: the engine belongs to whoever made the sessionmaker."""

    async def _read(self, key: str) -> _Record:
        scope = self._bound.get()
        if scope is not None and key in scope.records:
            return scope.records[key]
        async with self._transaction(scope) as session:
            row = (
                await session.execute(
                    select(FsmRecord.state, FsmRecord.data).where(FsmRecord.key == key)
                )
            ).one_or_none()
        record = _Record() if row is None else _Record(row.state, row.data)
        if scope is not None:
            scope.records[key] = record
        return record

    async def _write(self, key: str, column: str, value: Any) -> None:
        scope = self._bound.get()
        if scope is None:
            async with self._transaction(None) as session:
                await session.run_sync(_write_now, key, {column: value})
            return
        known = await self._read(key)
        if getattr(known, column) == value or (column == "data" and not known.data and not value):
            return  # nothing changes (aiogram's clear() on a conversation with no row)
        # A copy: the caller keeps its dict and may change it.
        scope.records[key] = replace(known, **{column: copy.deepcopy(value)})
        scope.unwritten.setdefault(key, set()).add(column)

    @asynccontextmanager
    async def _transaction(self, scope: _Scope | None) -> AsyncIterator[AsyncSession]:
        if scope is not None:
            yield scope.session
            return
        async with self._sessionmaker() as session, session.begin():
            yield session

    def _flush(self, session: Session) -> None:
        """Write what was changed through this session, before the commit (also a
        savepoint's: then the writes are part of it)."""
        scope: _Scope = session.info[self._info_key]
        for key, columns in scope.unwritten.items():
            record = scope.records[key]
            _write_now(session, key, {column: getattr(record, column) for column in columns})
        scope.unwritten.clear()

    def _forget(self, session: Session, previous_transaction: SessionTransaction) -> None:
        if previous_transaction.parent is None:  # the transaction, not a savepoint
            self._forget_all(session)

    def _forget_all(self, session: Session) -> None:
        """The transaction has ended: the next one reads afresh (others may write between)."""
        session.info[self._info_key].forget()


def _write_now(session: Session, key: str, values: dict[str, Any]) -> None:
    """Set these columns (any other keeps its value); drop the row once both are empty."""
    if len(values) == 2 and values["state"] is None and not values["data"]:
        session.execute(delete(FsmRecord).where(FsmRecord.key == key))
        return
    statement = insert(session, FsmRecord).values(
        key=key, **values, updated_at=dt.datetime.now(dt.UTC)
    )
    row = session.execute(
        statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                **{column: statement.excluded[column] for column in values},
                "updated_at": statement.excluded.updated_at,
            },
        ).returning(FsmRecord.state, FsmRecord.data)
    ).one()
    # The upsert holds the row's lock until commit, so what it returns is the current row.
    if row.state is None and not row.data:
        session.execute(delete(FsmRecord).where(FsmRecord.key == key))
