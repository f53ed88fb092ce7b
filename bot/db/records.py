"""What the repositories hand out: frozen dataclasses (never ORM rows), and their errors.

Datetimes are timezone-aware UTC; deadline dates are plain dates in the bureau's time zone.
JSON fields are private copies: changing one changes nothing in the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from routing.deadlines import Deadline


class Role(StrEnum):
    """What a person may do (domain.md "Who uses it")."""

    CITIZEN = "citizen"
    STAFF = "staff"  # answers the tickets of one unit
    SUPERVISOR = "supervisor"  # 法制/督查: sees and urges across all units
    HEAD = "head"  # 局领导: told of level-3 escalations; sees what supervisors see
    ADMIN = "admin"


class DeadlineStatus(StrEnum):
    OPEN = "open"
    MET = "met"
    MISSED = "missed"
    VOID = "void"  # no longer applies (e.g. the item was diverted or withdrawn)


@dataclass(frozen=True, slots=True)
class UnitRecord:
    id: str
    name: str
    name_en: str
    kind: str
    chat_id: int | None
    forum: bool
    active: bool


@dataclass(frozen=True, slots=True)
class PersonRecord:
    id: int
    telegram_id: int
    display_name: str
    language: str
    role: str
    unit_id: str | None
    blocked_bot: bool
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class InviteRecord:
    code: str
    role: str
    unit_id: str | None
    created_by: int
    created_at: dt.datetime
    expires_at: dt.datetime
    used_by: int | None
    used_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class CaseRecord:
    id: int
    number: str
    citizen_id: int
    path: str
    topic: str
    district: str | None
    unit_id: str
    lead_unit_id: str
    state: str
    hops: int
    text: str
    summary: str
    applicant: dict[str, Any]
    details: dict[str, Any]
    classification: dict[str, Any]
    anonymous: bool
    requester_kind: str | None
    reply_type: str | None
    answer: str | None
    rating: int | None
    rating_comment: str | None
    thread_id: int | None
    card_message_id: int | None
    received_at: dt.datetime
    accepted_at: dt.datetime | None
    answered_at: dt.datetime | None
    closed_at: dt.datetime | None
    updated_at: dt.datetime
    # Pass back to update_case: the update succeeds only if nobody changed the case since.
    version: int


@dataclass(frozen=True, slots=True)
class CaseEventRecord:
    id: int
    case_id: int
    at: dt.datetime
    actor_id: int | None
    actor_role: str
    action: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeadlineRecord:
    id: int
    case_id: int
    rule: str
    start: dt.date
    due: dt.date
    provisional: bool
    status: str
    computation: dict[str, Any]
    calendar_version: str
    computed_at: dt.datetime
    met_at: dt.datetime | None

    @property
    def deadline(self) -> Deadline:
        """The stored computation as a :class:`routing.deadlines.Deadline` again."""
        return Deadline.from_dict(self.computation)


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    id: int
    case_id: int
    kind: str
    file_id: str
    file_unique_id: str
    file_name: str | None
    mime_type: str | None
    size: int | None
    caption: str | None
    from_role: str
    created_at: dt.datetime


# --------------------------------------------------------------------------- errors


class RepositoryError(Exception):
    """Base of the errors below: each is a situation the caller should answer, not a bug."""


class NotFound(RepositoryError, LookupError):
    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"no {kind} {key!r}")
        self.kind = kind
        self.key = key


class ConcurrentUpdate(RepositoryError):
    """The case changed since the caller read it: reload, decide again, retry."""

    def __init__(self, case_id: int, expected_version: int, actual_version: int | None) -> None:
        actual = "unknown" if actual_version is None else str(actual_version)
        super().__init__(
            f"case {case_id} was changed by someone else "
            f"(expected version {expected_version}, found {actual})"
        )
        self.case_id = case_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class ChatAlreadyBound(RepositoryError):
    """A Telegram group serves one unit; unbind it from the other unit first."""

    def __init__(self, chat_id: int, unit_id: str) -> None:
        super().__init__(f"chat {chat_id} already belongs to unit {unit_id}")
        self.chat_id = chat_id
        self.unit_id = unit_id


class InviteError(RepositoryError):
    """An invite code that cannot be redeemed; the subclass says why."""

    def __init__(self, code: str, why: str) -> None:
        super().__init__(f"invite {code}: {why}")
        self.code = code


class InviteNotFound(InviteError):
    def __init__(self, code: str) -> None:
        super().__init__(code, "no such code")


class InviteExpired(InviteError):
    def __init__(self, code: str, expired_at: dt.datetime) -> None:
        super().__init__(code, f"expired at {expired_at.isoformat()}")
        self.expired_at = expired_at


class InviteUsed(InviteError):
    def __init__(self, code: str, used_at: dt.datetime | None) -> None:
        when = used_at.isoformat() if used_at else "earlier"
        super().__init__(code, f"already used ({when})")
        self.used_at = used_at
