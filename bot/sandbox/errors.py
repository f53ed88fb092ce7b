"""Bot API errors as Telegram words them, and the JSON envelope they travel in."""

from __future__ import annotations

from typing import Any


class BotApiError(Exception):
    """An error answer of the Bot API: HTTP status = `error_code`, like Telegram.

    aiogram maps the status to its exception classes (400 → TelegramBadRequest,
    403 → TelegramForbiddenError, 429 with `retry_after` → TelegramRetryAfter, …),
    so the status and the description must both match Telegram's.
    """

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None):
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {reason}")


def forbidden(reason: str) -> BotApiError:
    return BotApiError(403, f"Forbidden: {reason}")


def too_many_requests(retry_after: int) -> BotApiError:
    return BotApiError(
        429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
    )


UNAUTHORIZED = BotApiError(401, "Unauthorized")
NOT_FOUND = BotApiError(404, "Not Found")


class ControlError(Exception):
    """A refusal of the control API (not Telegram's: it speaks for the simulated people)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
