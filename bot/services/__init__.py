"""The domain operations (no aiogram here): :class:`CaseService` and its errors."""

from bot.services.citizen import CaseStatus, Understanding
from bot.services.errors import CaseNotFound, InvalidInput, NotAllowed, ServiceError, refuse
from bot.services.intake import AttachmentIn, Intake
from bot.services.oversight import CaseDetail, DueItem, UnitStats
from bot.services.service import CaseService

__all__ = [
    "AttachmentIn",
    "CaseDetail",
    "CaseNotFound",
    "CaseService",
    "CaseStatus",
    "DueItem",
    "Intake",
    "InvalidInput",
    "NotAllowed",
    "ServiceError",
    "Understanding",
    "UnitStats",
    "refuse",
]
