"""Callback data and keyboards, as plain JSON, for the notifications the service enqueues.

The service layer has no aiogram (it runs in the scheduler and CLI too), so the buttons it
puts on a case card or a rating prompt are packed here by hand. The format is aiogram's
``CallbackData.pack()`` — ``prefix:field:field`` — and ``handlers/callbacks.py`` declares the
same factories to parse them; a test keeps the two in step. Telegram limits callback_data to
64 bytes: every format here is a short prefix, a short code and an integer id.
"""

from __future__ import annotations

from typing import Any

CASE_ACTION = "c"  # staff, on the case card: c:<action>:<case_id>
TRANSFER_TO = "ct"  # staff, choosing the unit to transfer to: ct:<case_id>:<unit_id>
REPLY_TYPE = "rt"  # staff, the Art 36 reply type of a disclosure answer: rt:<case_id>:<code>
MY_CASE = "m"  # citizen, a case in /my: m:<action>:<case_id>
RATE = "r"  # citizen, a rating: r:<case_id>:<score>

# Staff actions on the card. Short codes: they travel in every callback.
ACCEPT, START, SUPPLEMENT, EXTEND, TRANSFER, HAND_BACK, ANSWER = (
    "acc",
    "start",
    "sup",
    "ext",
    "trf",
    "hb",
    "ans",
)
# Citizen actions in /my.
WITHDRAW, GIVE_SUPPLEMENT, RATE_CASE, REVIEW, MESSAGE, STATUS = (
    "wd",
    "sup",
    "rate",
    "rev",
    "msg",
    "st",
)

Keyboard = dict[str, Any]


def pack(prefix: str, *parts: object) -> str:
    data = ":".join([prefix, *(str(part) for part in parts)])
    assert len(data.encode()) <= 64, data  # Bot API: callback_data is 1–64 bytes
    return data


def button(text: str, data: str) -> dict[str, str]:
    return {"text": text, "callback_data": data}


def inline(rows: list[list[dict[str, str]]]) -> Keyboard:
    """An InlineKeyboardMarkup as JSON (what the outbox stores)."""
    return {"inline_keyboard": [row for row in rows if row]}


def rows_of(buttons: list[dict[str, str]], width: int) -> list[list[dict[str, str]]]:
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]
