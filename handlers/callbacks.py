"""Callback data factories (aiogram ``CallbackData``), each well under Telegram's 64 bytes.

The first five match what :mod:`bot.services.buttons` packs by hand for the notifications the
service enqueues (case card, 补正 request, rating prompt); tests/handlers checks both agree.
"""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from bot.services import buttons as b

# A case id as the database stores it (INTEGER: 1 … 2³¹−1). Forged data with a bigger one
# would overflow the query; out of range, the data simply does not parse (a stale button).
CaseId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class CaseAction(CallbackData, prefix=b.CASE_ACTION):
    """Staff, on the case card: ``c:acc:42``."""

    action: str
    case_id: CaseId


class TransferTo(CallbackData, prefix=b.TRANSFER_TO):
    """Staff, the unit to transfer to: ``ct:42:social_assistance``."""

    case_id: CaseId
    unit: str


class ReplyTypePick(CallbackData, prefix=b.REPLY_TYPE):
    """Staff, the Art 36 reply type of a disclosure answer: ``rt:42:3.4`` (group ``rt:42:3``)."""

    case_id: CaseId
    code: str


class MyCase(CallbackData, prefix=b.MY_CASE):
    """Citizen, an action on one of their items: ``m:wd:42``."""

    action: str
    case_id: CaseId


class RateCase(CallbackData, prefix=b.RATE):
    """Citizen, a rating: ``r:42:5``."""

    case_id: CaseId
    score: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class Confirm(CallbackData, prefix="ok"):
    """Citizen, the confirm screen: ``ok:yes`` or ``ok:change``."""

    choice: str


class PathPick(CallbackData, prefix="p"):
    """Citizen, choosing the path themselves: ``p:disclosure``."""

    path: str


class Pick(CallbackData, prefix="pk"):
    """Citizen, an answer by button during intake: a choice code, ``skip`` or ``anon``."""

    value: str


class RelayTo(CallbackData, prefix="rl"):
    """Citizen, send the text just written to an open item instead: ``rl:42``."""

    case_id: CaseId
