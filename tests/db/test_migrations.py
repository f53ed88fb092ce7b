"""The migrations build exactly the schema of models.py, once, from anywhere, on both backends."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from bot.db.engine import make_engine
from bot.db.migrate import alembic_config, head_revision, upgrade_database
from bot.db.models import Base

ROOT = Path(__file__).resolve().parents[2]


async def _run(url: str, work: Any) -> Any:
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    return {
        table: (
            [column["name"] for column in inspector.get_columns(table)],
            sorted(index["name"] or "" for index in inspector.get_indexes(table)),
            sorted(str(fk["name"]) for fk in inspector.get_foreign_keys(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_upgrade_creates_every_table_of_the_models(db_url: str) -> None:
    await upgrade_database(db_url)

    schema = await _run(db_url, _schema)
    assert set(Base.metadata.tables) | {"alembic_version"} == set(schema)
    for name, table in Base.metadata.tables.items():
        assert schema[name][0] == [column.name for column in table.columns]
    assert await _run(db_url, _revision) == head_revision()


async def test_upgrading_twice_changes_nothing(db_url: str) -> None:
    await upgrade_database(db_url)
    await _run(
        db_url,
        lambda c: c.execute(
            text(
                "INSERT INTO units (id, name, name_en, kind, forum, active) "
                "VALUES ('u', '单位', 'Unit', 'section', true, true)"
            )
        ),
    )
    before = await _run(db_url, _schema)

    await upgrade_database(db_url)

    assert await _run(db_url, _schema) == before
    assert await _run(db_url, lambda c: c.execute(text("SELECT id FROM units")).all()) == [("u",)]


async def test_migrations_and_models_do_not_drift(db_url: str) -> None:
    """What `alembic check` does: autogenerate against the migrated database finds nothing."""
    await upgrade_database(db_url)

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    assert await _run(db_url, differences) == []


async def test_constraints_have_their_conventional_names(db_url: str) -> None:
    # A later batch migration on SQLite can only drop a constraint it can name.
    await upgrade_database(db_url)

    def names(connection: Connection) -> tuple[list[Any], list[Any]]:
        inspector = inspect(connection)
        return (
            [fk["name"] for fk in inspector.get_foreign_keys("cases")],
            [uq["name"] for uq in inspector.get_unique_constraints("cases")],
        )

    foreign_keys, uniques = await _run(db_url, names)
    assert sorted(foreign_keys) == [
        "fk_cases_citizen_id_people",
        "fk_cases_lead_unit_id_units",
        "fk_cases_unit_id_units",
    ]
    assert uniques == ["uq_cases_number"]


async def test_downgrade_to_nothing_and_up_again(db_url: str) -> None:
    await upgrade_database(db_url)

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    await _run(db_url, downgrade)
    assert set(await _run(db_url, _schema)) == {"alembic_version"}

    await upgrade_database(db_url)
    assert await _run(db_url, _revision) == head_revision()


async def test_works_from_any_directory_and_creates_the_sqlite_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    url = "sqlite+aiosqlite:///var/deep/huiyin.sqlite3"  # relative: under the working dir

    await upgrade_database(url)

    assert (elsewhere / "var" / "deep" / "huiyin.sqlite3").is_file()
    assert await _run(url, _revision) == head_revision()


async def test_two_processes_starting_at_once_both_succeed(db_url: str, tmp_path: Path) -> None:
    script = (
        "import asyncio, sys; from bot.db.migrate import upgrade_database; "
        "asyncio.run(upgrade_database(sys.argv[1]))"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            db_url,
            cwd=tmp_path,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = await asyncio.gather(*(process.communicate() for process in processes))

    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
    assert await _run(db_url, _revision) == head_revision()
