"""A migrated database on each backend, an engine on it, and a little organisation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade_database
from tests.db.samples import UNITS


@pytest.fixture
async def database(db_url: str) -> str:
    await upgrade_database(db_url)
    return db_url


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
async def citizen(session: AsyncSession) -> repo.PersonRecord:
    """Three units and one citizen, committed."""
    await repo.sync_units(session, UNITS)
    person = await repo.get_or_create_person(session, 1001, "张三")
    await session.commit()
    return person
