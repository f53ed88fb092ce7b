"""SQLite with eight writer processes at once: no "database is locked", nothing lost.

tests/db/test_sqlite_concurrency.py has eight engines in one process; here they are eight
operating-system processes, as ``huiyin run --workers 8`` on the default database would
have, each making the writes of a handled update (inbox, person, case, event, a shared
row's read-modify-write, outbox) in one transaction. engine.py's BEGIN IMMEDIATE and busy
timeout make a writer wait for the lock at the start of its transaction instead of failing
half-way.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade_database
from bot.db.models import Case, CaseEvent, InboxUpdate, OutboxMessage
from tests.db.samples import NOW, UNITS
from tests.reliability.sqlite_writer import SHARED_CASE

WRITERS = 8
ROOT = Path(__file__).resolve().parents[2]


async def test_eight_writer_processes_never_see_database_is_locked(
    tmp_path: Path, long_form: bool
) -> None:
    transactions = 250 if long_form else 40
    url = f"sqlite+aiosqlite:///{tmp_path / 'writers.sqlite3'}"
    await upgrade_database(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await repo.sync_units(session, UNITS)
            citizen = await repo.get_or_create_person(session, 1, "李女士")
            shared = await repo.create_case(
                session,
                citizen_id=citizen.id,
                path="petition",
                topic="other",
                unit_id="assistance",
                state="received",
                text="…",
                received_at=NOW,
            )
        assert shared.id == SHARED_CASE

        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.reliability.sqlite_writer",
                "--database",
                url,
                "--writer",
                str(writer),
                "--transactions",
                str(transactions),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for writer in range(WRITERS)
        ]
        # Start-up (imports) takes a few seconds per process: all begin writing together.
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
            assert line.strip() == b"ready", line
        began = time.monotonic()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        results = []
        for process in processes:
            out, err = await asyncio.wait_for(process.communicate(), timeout=300)
            assert process.returncode == 0, err.decode()
            results.append(json.loads(out.decode().strip().splitlines()[-1]))

        print(f"{WRITERS} x {transactions} transactions in {time.monotonic() - began:.1f} s")
        errors = [error for result in results for error in result["errors"]]
        assert errors == [], errors
        assert all(result["done"] == transactions for result in results)
        # They did overlap: at one moment all eight were between their first and last write.
        assert max(r["began"] for r in results) < min(r["ended"] for r in results)

        total = WRITERS * transactions
        async with make_sessionmaker(engine)() as session:
            case = await repo.get_case(session, SHARED_CASE)
            assert case is not None
            assert case.hops == total  # no increment lost
            assert case.version == 1 + total
            assert await session.scalar(select(func.count()).select_from(Case)) == 1 + total
            assert await session.scalar(select(func.count()).select_from(CaseEvent)) == total
            assert await session.scalar(select(func.count()).select_from(InboxUpdate)) == total
            assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == total
            numbers = await session.scalars(select(Case.number))
            assert len(set(numbers)) == 1 + total  # tracking numbers stay unique
    finally:
        await engine.dispose()
