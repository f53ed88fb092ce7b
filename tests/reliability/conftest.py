"""The reliability suite's database: SQLite in both forms, PostgreSQL in the long form."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def reliability_db(request: pytest.FixtureRequest, tmp_path: Path, long_form: bool) -> str:
    """A fresh database: a SQLite file in both forms; a PostgreSQL database in the long form
    only (``--long``), skipped in the short form before it is made, so CI stays quick."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'huiyin.sqlite3'}"
    if not long_form:
        pytest.skip("the short form runs on SQLite; the long form (--long) on PostgreSQL too")
    url: str = request.getfixturevalue("pg_database")
    return url
