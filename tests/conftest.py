"""Shared fixtures: database URLs for both backends.

``db_url`` is parametrised over SQLite (a fresh file per test) and PostgreSQL (a fresh
database per test, dropped afterwards, so tests and parallel runs never collide). When
PostgreSQL is unreachable a normal run skips its half with the reason; a CI run
(``CI=true``) fails instead, because there it must be up.

``--long`` (or ``HUIYIN_LONG=1``) selects the long form of the reliability suite
(``tests/reliability/``): more kills, more faults, more examples. Without it the short form
runs, the one ``.ci/run`` runs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the long form of the reliability suite (tests/reliability/)",
    )


@pytest.fixture(scope="session")
def long_form(pytestconfig: pytest.Config) -> bool:
    """True for the long form of the reliability suite: ``--long`` or ``HUIYIN_LONG=1``."""
    return bool(pytestconfig.getoption("--long")) or os.environ.get("HUIYIN_LONG") == "1"


PG_ADMIN_DSN = os.environ.get("HUIYIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; its asyncpg SQLAlchemy URL."""
    name = f"huiyin_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, Exception) as exc:  # asyncpg raises its own errors and OSError
        reason = f"PostgreSQL at {PG_ADMIN_DSN} unreachable: {exc!r}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend (no tables yet: run the migrations)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'huiyin.sqlite3'}"
    url: str = request.getfixturevalue("pg_database")
    return url
