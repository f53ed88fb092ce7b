"""The SQL FSM storage: an intake conversation survives a restart."""

from __future__ import annotations

import pytest
from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.fsm import SqlStorage
from bot.db.models import FsmRecord

KEY = StorageKey(bot_id=1, chat_id=1001, user_id=1001)


class Intake(StatesGroup):
    description = State()
    contact = State()


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(FsmRecord)) or 0)


async def test_an_intake_survives_a_restart(database: str) -> None:
    engine = make_engine(database)
    storage = SqlStorage(make_sessionmaker(engine))
    context = FSMContext(storage, KEY)
    await context.set_state(Intake.description)
    await context.update_data(text="低保被取消", photos=["AgAD-1"])
    await context.update_data(district="西秀区")
    await storage.close()
    await engine.dispose()

    # A new process: new engine, new storage, same database.
    engine = make_engine(database)
    restarted = FSMContext(SqlStorage(make_sessionmaker(engine)), KEY)
    try:
        assert await restarted.get_state() == "Intake:description"
        assert await restarted.get_data() == {
            "text": "低保被取消",
            "photos": ["AgAD-1"],
            "district": "西秀区",
        }
        assert await restarted.get_value("district") == "西秀区"
    finally:
        await engine.dispose()


async def test_clear_leaves_nothing_behind(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    storage = SqlStorage(sessionmaker)
    context = FSMContext(storage, KEY)
    await context.set_state(Intake.contact)
    await context.set_data({"name": "张三", "id_number": "5204…"})
    assert await _rows(sessionmaker) == 1

    await context.clear()

    assert await context.get_state() is None
    assert await context.get_data() == {}
    assert await _rows(sessionmaker) == 0  # the personal details are gone, not blanked


async def test_state_and_data_are_independent(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    storage = SqlStorage(sessionmaker)
    await storage.set_data(KEY, {"a": 1})
    await storage.set_state(KEY, "Intake:contact")
    await storage.set_data(KEY, {})
    assert await storage.get_state(KEY) == "Intake:contact"
    assert await _rows(sessionmaker) == 1

    await storage.set_data(KEY, {"b": 2})
    await storage.set_state(KEY, None)
    assert await storage.get_data(KEY) == {"b": 2}
    assert await _rows(sessionmaker) == 1


async def test_keys_separate_users_chats_threads_and_destinies(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    storage = SqlStorage(sessionmaker)
    keys = [
        KEY,
        StorageKey(bot_id=1, chat_id=1001, user_id=1002),
        StorageKey(bot_id=1, chat_id=-100500, user_id=1001),
        StorageKey(bot_id=1, chat_id=-100500, user_id=1001, thread_id=7),
        StorageKey(bot_id=1, chat_id=1001, user_id=1001, destiny="scene"),
    ]
    for index, key in enumerate(keys):
        await storage.set_state(key, f"S:{index}")
    assert [await storage.get_state(key) for key in keys] == [f"S:{i}" for i in range(5)]
    assert await storage.get_state(StorageKey(bot_id=1, chat_id=9, user_id=9)) is None
    assert await storage.get_data(StorageKey(bot_id=1, chat_id=9, user_id=9)) == {}


async def test_data_must_be_a_dict(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(DataNotDictLikeError):
        await SqlStorage(sessionmaker).set_data(KEY, [("a", 1)])  # type: ignore[arg-type]


async def test_a_bound_session_makes_fsm_part_of_the_update(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A handler writes through its session, then moves the conversation on.

    On SQLite the session holds the write lock from its first statement: without binding,
    the storage would wait for it until the busy timeout.
    """
    storage = SqlStorage(sessionmaker)
    context = FSMContext(storage, KEY)

    async with sessionmaker() as session:
        with storage.use_session(session):
            await repo.get_or_create_person(session, 1001, "张三")  # takes the write lock
            await context.set_state(Intake.contact)
            await context.update_data(name="张三")
            assert await context.get_state() == "Intake:contact"
        await session.rollback()  # the update failed: the conversation did not move either

    assert await context.get_state() is None
    assert await _rows(sessionmaker) == 0

    async with sessionmaker() as session:
        with storage.use_session(session):
            await repo.get_or_create_person(session, 1001, "张三")
            await context.set_state(Intake.contact)
        await session.commit()

    assert await context.get_state() == "Intake:contact"


class _Statements:
    """The statements an engine runs, counted by their first word (SELECT, INSERT …)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.seen: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *args: object) -> None:
        self.seen.append(str(args[2]).split(None, 1)[0].upper())

    def of(self, kind: str) -> int:
        return self.seen.count(kind)

    @property
    def work(self) -> int:
        """Statements other than SQLite's own (BEGIN IMMEDIATE, a new connection's PRAGMAs)."""
        return sum(kind not in {"BEGIN", "PRAGMA"} for kind in self.seen)


async def test_within_an_update_the_record_is_read_once_and_written_once(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The handler's many get_data()/update_data()/set_state() cost one read and, at the
    commit, one write; a later update reads the row afresh."""
    storage = SqlStorage(sessionmaker)
    context = FSMContext(storage, KEY)
    await context.set_state(Intake.description)
    await context.set_data({"text": "低保被取消"})
    statements = _Statements(engine)

    async with sessionmaker() as session, session.begin():
        with storage.use_session(session):
            assert await context.get_state() == "Intake:description"
            assert await context.get_data() == {"text": "低保被取消"}
            await context.update_data(name="张某")
            data = await context.update_data(phone="13800000000")
            data["phone"] = "changed by the caller"  # not by the storage's memory
            await context.set_state(Intake.contact)
            assert await context.get_data() == {
                "text": "低保被取消",
                "name": "张某",
                "phone": "13800000000",
            }
            assert await context.get_state() == "Intake:contact"
        assert statements.work == 1  # the read; the writes wait for the commit

    assert statements.of("SELECT") == 1
    assert statements.of("INSERT") == 1  # state and data in one upsert
    assert statements.work == 2
    # Committed with the update, and read again by the next one.
    async with sessionmaker() as session, session.begin():
        with storage.use_session(session):
            assert await context.get_state() == "Intake:contact"
            assert (await context.get_data())["phone"] == "13800000000"
    assert statements.of("SELECT") == 2
    assert statements.work == 3  # nothing changed: nothing written


async def test_the_memory_ends_with_the_update(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """What another transaction committed in between is seen by the next update, and a
    clear() within an update leaves no row, as unbound."""
    storage = SqlStorage(sessionmaker)
    context = FSMContext(storage, KEY)
    await context.set_state(Intake.description)

    async with sessionmaker() as session, session.begin():
        with storage.use_session(session):
            assert await context.get_state() == "Intake:description"
    await storage.set_state(KEY, Intake.contact)  # another process, say

    async with sessionmaker() as session, session.begin():
        with storage.use_session(session):
            assert await context.get_state() == "Intake:contact"
            await context.update_data(name="张某")
            await context.clear()
            assert await context.get_state() is None
            assert await context.get_data() == {}
            await context.clear()  # nothing left to clear: no statement, no row
    assert await _rows(sessionmaker) == 0
    assert await context.get_state() is None

    # A rollback forgets what the update wrote and read, even on a session used again.
    async with sessionmaker() as session:
        with storage.use_session(session):
            await context.set_state(Intake.contact)
            await context.update_data(name="张某")
        await session.rollback()
        await session.commit()
        with storage.use_session(session):
            assert await context.get_state() is None
            await context.update_data(district="西秀区")
        await session.commit()
    assert await context.get_state() is None
    assert await context.get_data() == {"district": "西秀区"}
