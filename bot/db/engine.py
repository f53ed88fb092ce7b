"""Engines and sessions for SQLite (embedded default) and PostgreSQL (several workers).

SQLite: WAL so readers never block the writer, a busy timeout so a second writer waits
instead of failing, and ``BEGIN IMMEDIATE`` so a transaction takes the write lock when it
starts — never half-way, which is where "database is locked" comes from.

PostgreSQL: a restart or crash of the server must cost the bot a few failed transactions,
never a broken pool. Every error that means "this connection is finished" invalidates it
(see :func:`_invalidate_broken_connections`), so the next checkout connects afresh.
Connections are not pinged before use (``pool_pre_ping``): a ping is a round trip per
checkout, about five per update (bench/e2e), to spare the first transaction on each dead
connection after a restart, and every loop retries a transaction that failed because the
database was away (tests/reliability/test_pg_restart.py, short and long, pass without it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# SQLSTATE classes of a connection that is gone or going (PostgreSQL, Appendix A): 08
# connection exception; 57P01-57P03 admin/crash shutdown, cannot connect now.
_DISCONNECT_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; creates the folder of a SQLite file when missing."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", False)  # see the module docstring
    if "poolclass" not in kwargs:
        # Keep every connection the inbox and outbox use at once (up to 15, as before):
        # with the default 5 kept and 10 overflow, a busy minute opened and closed a new
        # PostgreSQL connection (a backend fork) every few updates (bench/e2e's profile).
        kwargs.setdefault("pool_size", 15)
        kwargs.setdefault("max_overflow", 0)
    engine = create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine, "handle_error", _invalidate_broken_connections)
    return engine


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached right now (down, restarting,
    the connection dropped), so the same work is worth trying again shortly — as opposed to
    an error in the work itself."""
    if isinstance(error, OSError | exc.TimeoutError | exc.OperationalError | exc.InterfaceError):
        return True  # OSError: refused, reset (asyncpg raises it unwrapped on connect)
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or _sqlstate(error.orig).startswith(
            _DISCONNECT_SQLSTATES
        )
    return False


def _invalidate_broken_connections(context: ExceptionContext) -> None:
    """Throw away a connection asyncpg has given up on, not only a closed one.

    SQLAlchemy's asyncpg dialect counts an error as a disconnect only when the connection
    is already closed. Around a server restart asyncpg also raises while the socket still
    looks open: ``InternalClientError`` ("cannot switch to state …; another operation is in
    progress": the protocol lost track when the server went away mid-operation), or a
    shutdown SQLSTATE. Returned to the pool, such a connection would fail every transaction
    that gets it; invalidated, the pool replaces it.
    """
    original = context.original_exception
    if context.is_disconnect or original is None:
        return
    broken = any(type(error).__name__ == "InternalClientError" for error in _chain(original))
    if broken or _sqlstate(original).startswith(_DISCONNECT_SQLSTATES):
        context.is_disconnect = True


def _chain(error: BaseException | None) -> list[BaseException]:
    """The error and its causes (asyncpg's, under the DBAPI adapter's)."""
    errors: list[BaseException] = []
    while error is not None and len(errors) < 10:
        errors.append(error)
        error = error.__cause__
    return errors


def _sqlstate(error: BaseException | None) -> str:
    for cause in _chain(error):
        code = getattr(cause, "sqlstate", None)
        if isinstance(code, str):
            return code
    return ""


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
