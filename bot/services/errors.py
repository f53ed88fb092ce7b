"""What a domain operation refuses, as a text key the person can be shown.

Handlers catch :class:`ServiceError` and reply with ``texts.get(error.key, lang, **error.fmt)``;
they never show an exception's ``str()``. :class:`NotAllowed` is raised *after* the refusal
was written to the audit log in the caller's session, so the caller commits (a handler that
catches it returns normally and the middleware commits): a refusal is audited exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


class ServiceError(Exception):
    """A request the service will not carry out; ``key`` names the text to show."""

    def __init__(self, key: str, **fmt: object) -> None:
        super().__init__(key)
        self.key = key
        self.fmt = fmt


class NotAllowed(ServiceError):
    """The person may not do this (not their unit's ticket, not their role)."""


class CaseNotFound(ServiceError):
    """No such case *for this person*: a guessed or someone else's number gets the same text."""

    def __init__(self) -> None:
        super().__init__("error.case_not_found")


class InvalidInput(ServiceError):
    """Input that does not pass validation (a phone number, an ID number, a date …)."""


# --------------------------------------------------------------------------- refusals
#
# A *refused* update is one the bot does not act on: content it cannot read (a sticker, a
# location), a chat it does not serve (an unknown group, a channel), an edit, a forged,
# stale or unauthorised button, input that fails validation, a command the person may not
# use, an update type no handler takes. Each is one record on ``huiyin.refused`` (the reason,
# usually the key of the text the person was shown, and who tried what), and the person gets
# a short answer where there is someone to answer. An update that *fails* is not a refusal:
# the errors handler logs it on ``huiyin.errors``.

refusal_log = logging.getLogger("huiyin.refused")
# Someone tried what their role does not allow (a forged or borrowed button, another unit's
# case): worth a warning. Every other refusal is ordinary (a sticker, a typo) and logs INFO.
AUTHORISATION = frozenset({"error.not_your_case", "error.not_allowed"})


def refusal_level(reason: str) -> int:
    return logging.WARNING if reason in AUTHORISATION else logging.INFO


@dataclass
class Refusal:
    """The refusal of the update being handled, if any (the first reason given wins: it is
    the one closest to the cause, e.g. the service's, with who tried what on which case)."""

    reason: str | None = None
    detail: str = ""


_current: ContextVar[Refusal | None] = ContextVar("huiyin_refusal", default=None)


def refuse(reason: str, detail: str = "") -> None:
    """Record that the update being handled is refused, and why.

    Within :func:`refusal_scope` (the per-update middleware, bot/middlewares.py) only the
    first call counts, and the middleware logs one line once the update's transaction has
    committed: a refusal that several layers notice (the service, then the handler) is
    logged once. Outside an update (the scheduler, the dashboard) the line is logged now.
    """
    current = _current.get()
    if current is None:
        refusal_log.log(
            refusal_level(reason), "refused: %s%s", reason, f" ({detail})" if detail else ""
        )
    elif current.reason is None:
        current.reason, current.detail = reason, detail


@contextmanager
def refusal_scope() -> Iterator[Refusal]:
    """The refusal slot of one update (handlers run in the middleware's task and context)."""
    refusal = Refusal()
    token = _current.set(refusal)
    try:
        yield refusal
    finally:
        _current.reset(token)
