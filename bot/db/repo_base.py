"""What every repository module shares: rows → records, UTC handling, upserts, codes."""

from __future__ import annotations

import copy
import datetime as dt
import secrets
import unicodedata
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

# No 0/O, 1/I/L: codes are read aloud on the phone and typed from paper (31 symbols).
UNAMBIGUOUS_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def to_utc(value: dt.datetime) -> dt.datetime:
    """A datetime on its way in: aware, converted to UTC.

    SQLite stores the wall-clock digits and drops the offset, so a Shanghai time stored as
    is would come back eight hours off; and comparisons there are textual, so every stored
    value must be in the same zone.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
    return value.astimezone(dt.UTC)


def from_db(value: dt.datetime) -> dt.datetime:
    """A datetime on its way out: SQLite gives naive UTC, PostgreSQL aware UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def to_record(record_type: type[R], row: object) -> R:
    """Copy the record's fields from an ORM row (or any object with those attributes)."""
    values: dict[str, Any] = {}
    for field in fields(record_type):
        value = getattr(row, field.name)
        if isinstance(value, dt.datetime):
            value = from_db(value)
        elif isinstance(value, dict | list):
            # JSON columns are not change-tracked: a shared dict edited through a record would
            # silently diverge from the database.
            value = copy.deepcopy(value)
        values[field.name] = value
    return record_type(**values)


def insert(session: AsyncSession | Session, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ``on_conflict_do_update`` / ``_do_nothing`` on this backend.

    Upserts are one statement, so two workers inserting the same key both succeed instead
    of one failing on the unique constraint.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"no upsert for the {dialect} backend")


def random_code(length: int) -> str:
    """``length`` symbols of :data:`UNAMBIGUOUS_ALPHABET` from the OS's secure source."""
    return "".join(secrets.choice(UNAMBIGUOUS_ALPHABET) for _ in range(length))


def normalise_code(code: str) -> str:
    """What a person typed → letters and digits only, upper case.

    NFKC first: a Chinese input method types full-width ``ＨＹ－２０２６`` as often as not.
    """
    return "".join(ch for ch in unicodedata.normalize("NFKC", code) if ch.isalnum()).upper()
