"""What a domain operation refuses, as a text key the person can be shown.

Handlers catch :class:`ServiceError` and reply with ``texts.get(error.key, lang, **error.fmt)``;
they never show an exception's ``str()``. :class:`NotAllowed` is raised *after* the refusal
was written to the audit log in the caller's session, so the caller commits (a handler that
catches it returns normally and the middleware commits): a refusal is audited exactly once.
"""

from __future__ import annotations


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
