"""Eight writers on one SQLite file never see "database is locked".

engine.py begins every transaction with BEGIN IMMEDIATE and sets a busy timeout, so a
writer waits for the lock at the start of its transaction instead of failing half-way.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade_database
from tests.db.samples import NOW, UNITS

WRITERS = 8
TRANSACTIONS = 50


async def test_eight_writers_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'busy.sqlite3'}"
    await upgrade_database(url)
    setup = make_engine(url)
    async with make_sessionmaker(setup).begin() as session:
        await repo.sync_units(session, UNITS)
        citizen = await repo.get_or_create_person(session, 1, "张三")
        case = await repo.create_case(
            session,
            citizen_id=citizen.id,
            path="petition",
            topic="other",
            unit_id="assistance",
            state="received",
            text="…",
            received_at=NOW,
        )
    await setup.dispose()

    async def writer(number: int) -> None:
        # Its own engine: its own connection, as a separate worker process would have.
        engine = make_engine(url)
        sessionmaker = make_sessionmaker(engine)
        try:
            for step in range(TRANSACTIONS):
                async with sessionmaker.begin() as session:
                    # Read-modify-write of one shared row: the read is inside the lock, so
                    # the version check always passes and no increment is lost.
                    current = await repo.get_case(session, case.id)
                    assert current is not None
                    await repo.update_case(
                        session, case.id, current.version, hops=current.hops + 1
                    )
                    await repo.add_event(
                        session,
                        case.id,
                        actor_id=None,
                        actor_role="system",
                        action="urge",
                        data={"writer": number, "step": step},
                    )
                    await repo.get_or_create_person(session, 1000 * (number + 1) + step)
        finally:
            await engine.dispose()

    await asyncio.gather(*(writer(number) for number in range(WRITERS)))

    check = make_engine(url)
    try:
        async with make_sessionmaker(check)() as session:
            final = await repo.get_case(session, case.id)
            events = await repo.events_of_case(session, case.id)
            people = await repo.list_people(session)
    finally:
        await check.dispose()
    assert final is not None
    assert final.hops == WRITERS * TRANSACTIONS
    assert final.version == 1 + WRITERS * TRANSACTIONS
    assert len(events) == WRITERS * TRANSACTIONS
    assert len(people) == 1 + WRITERS * TRANSACTIONS
