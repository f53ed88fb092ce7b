"""Bring the database to the newest schema; run on every start, before anything else.

The alembic scripts ship inside the package (``bot/db/migrations``), found from this file,
so the bot migrates the same way from any working directory and from an installed wheel.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, pool, text
from sqlalchemy.engine import Connection

from bot.db.engine import is_sqlite, make_engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant shared by every process of the bot: the key of the PostgreSQL advisory lock
# that makes concurrent starts migrate one after the other ("huiyin" in ASCII).
MIGRATION_LOCK_KEY = 0x6875_6979_696E


def alembic_config(url: str | None = None) -> Config:
    """An alembic ``Config`` without an ini file, pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        # ConfigParser interpolation: a literal % (e.g. in a password) must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade_database(url: str) -> None:
    """Apply every migration up to head; a database already at head is left untouched.

    The whole upgrade runs in one transaction (both backends have transactional DDL), so a
    failed migration leaves the previous schema, not half of the next one. Two processes
    starting at once take turns: on PostgreSQL through a transaction-level advisory lock,
    on SQLite through the write lock that ``BEGIN IMMEDIATE`` takes (see ``engine.py``);
    the second one then finds the schema at head and does nothing.
    """
    engine = make_engine(url, poolclass=pool.NullPool)
    sqlite = is_sqlite(url)
    if sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_foreign_keys_off)
    config = alembic_config(url)
    try:
        async with engine.begin() as connection:
            if not sqlite:
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            before, after = await connection.run_sync(_upgrade, config)
            if sqlite:
                # Fail (and so roll back) a migration that left a dangling reference.
                result = await connection.exec_driver_sql("PRAGMA foreign_key_check")
                if problems := result.fetchall():
                    raise RuntimeError(f"migration left broken foreign keys: {problems[:10]}")
    finally:
        await engine.dispose()
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)


def _upgrade(connection: Connection, config: Config) -> tuple[str | None, str | None]:
    before = MigrationContext.configure(connection).get_current_revision()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    return before, MigrationContext.configure(connection).get_current_revision()


def _sqlite_foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
    # Runs after engine.py's listener, which turned them on. Batch migrations rebuild a table
    # (create new, copy, drop old, rename); with foreign keys enforced, dropping a referenced
    # table would fail. SQLite's own ALTER procedure turns them off and checks afterwards.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()
