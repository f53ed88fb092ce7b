"""The domain operations in one object, constructed once and passed to every handler."""

from __future__ import annotations

from bot.services.citizen import CitizenOps
from bot.services.oversight import OversightOps
from bot.services.staff import StaffOps


class CaseService(CitizenOps, StaffOps, OversightOps):
    """Every operation is ``async def op(session, actor, …, now)``: it checks that ``actor``
    may do it (raising :class:`~bot.services.errors.NotAllowed`, audited), applies the
    lifecycle (an illegal step becomes a :class:`~bot.services.errors.ServiceError`),
    writes the audit event, updates the case under its version, stores deadlines and
    enqueues the notifications — all in the caller's transaction; nothing commits here.
    """
