"""The alembic environment, for both ways migrations run.

- ``bot.db.migrate.upgrade_database`` (every start) hands in an open connection through
  ``config.attributes["connection"]``, already inside the transaction that holds its lock.
- The alembic CLI (``alembic -c bot/db/alembic.ini …``, for writing revisions) gets no
  connection: this file opens an async engine on ``sqlalchemy.url`` or, when unset, on the
  configured ``HUIYIN_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from bot.db.engine import make_engine
from bot.db.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("connection") is None:
    # Only the CLI configures logging; the bot has its own.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from bot.settings import Settings  # the one place that reads the environment

    return Settings().database_url


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        # SQLite cannot ALTER columns or constraints: autogenerate writes batch operations,
        # which rebuild the table there and are plain ALTERs on PostgreSQL.
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = make_engine(_database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
