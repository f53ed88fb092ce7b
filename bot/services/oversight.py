"""Supervisors (法制/督查): what is overdue and due soon across all units, statistics per
unit, a case's full audit trail, and 督办. Admins: invites, joining, binding groups."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.db.records import (
    AttachmentRecord,
    CaseEventRecord,
    CaseRecord,
    DeadlineRecord,
    InviteExpired,
    InviteNotFound,
    InviteRecord,
    InviteUsed,
    PersonRecord,
    Role,
    UnitRecord,
)
from bot.services.base import ServiceBase
from bot.services.common import ANSWER_RULE, NOT_DUTIES, OPEN_STATES, esc
from bot.services.errors import CaseNotFound, NotAllowed, ServiceError, refuse
from bot.services.validate import parse_text
from routing.lifecycle import Action, State

log = logging.getLogger("huiyin.services")

OVERSIGHT_ROLES = frozenset({Role.SUPERVISOR.value, Role.HEAD.value, Role.ADMIN.value})


@dataclass(frozen=True)
class DueItem:
    case: CaseRecord
    deadline: DeadlineRecord


@dataclass(frozen=True)
class UnitStats:
    unit_id: str
    open: int
    overdue: int
    answered: int
    answered_on_time: int
    average_hops: float

    @property
    def on_time_percent(self) -> float | None:
        return None if self.answered == 0 else 100.0 * self.answered_on_time / self.answered


@dataclass(frozen=True)
class CaseDetail:
    case: CaseRecord
    events: list[CaseEventRecord]
    deadlines: list[DeadlineRecord]
    attachments: list[AttachmentRecord]
    people: dict[int, PersonRecord]


class OversightOps(ServiceBase):
    def _require(self, actor: PersonRecord, roles: frozenset[str], what: str) -> None:
        """Role check for commands that concern no single case (nothing to audit on a case:
        the refusal is logged)."""
        if actor.role not in roles:
            refuse("error.not_allowed", f"person {actor.id} (role {actor.role}) tried {what}")
            raise NotAllowed("error.not_allowed")

    # ------------------------------------------------------------------ supervisors

    async def duties_due_by(self, session: AsyncSession, day: dt.date) -> list[DueItem]:
        """Open duties (not the citizen's own time limits) of open items whose last day is
        ``day`` or earlier. No role check: callers scope it (the dashboard by unit)."""
        items = []
        cases: dict[int, CaseRecord | None] = {}
        for deadline in await repo.open_deadlines_due_by(session, day):
            if deadline.rule in NOT_DUTIES:
                continue
            if deadline.case_id not in cases:
                cases[deadline.case_id] = await repo.get_case(session, deadline.case_id)
            case = cases[deadline.case_id]
            if case is not None and State(case.state) in OPEN_STATES:
                items.append(DueItem(case, deadline))
        return items

    async def overdue(
        self, session: AsyncSession, actor: PersonRecord, now: dt.datetime
    ) -> list[DueItem]:
        """Open duties whose last day has passed (the last day itself is still in time)."""
        self._require(actor, OVERSIGHT_ROLES, "overdue")
        today = self.today(now)
        return [i for i in await self.duties_due_by(session, today) if i.deadline.due < today]

    async def due_soon(
        self, session: AsyncSession, actor: PersonRecord, days: int, now: dt.datetime
    ) -> list[DueItem]:
        """Open duties whose last day is today or within ``days`` calendar days."""
        self._require(actor, OVERSIGHT_ROLES, "due_soon")
        if not 0 <= days <= 60:
            raise ServiceError("supervisor.days_range")
        today = self.today(now)
        until = today + dt.timedelta(days=days)
        return [i for i in await self.duties_due_by(session, until) if i.deadline.due >= today]

    async def stats(
        self, session: AsyncSession, actor: PersonRecord, now: dt.datetime
    ) -> list[UnitStats]:
        """Per unit: open items, overdue items, the share answered within the period, and
        the average number of hops (a measure of 推诿)."""
        self._require(actor, OVERSIGHT_ROLES, "stats")
        today = self.today(now)
        overdue_ids = {
            i.case.id for i in await self.duties_due_by(session, today) if i.deadline.due < today
        }
        by_unit: dict[str, list[CaseRecord]] = defaultdict(list)
        for case in await repo.list_cases(session, limit=None):
            by_unit[case.unit_id].append(case)
        result = []
        for unit in await repo.list_units(session):
            cases = by_unit.get(unit.id, [])
            answered = [c for c in cases if c.answered_at is not None]
            on_time = 0
            for case in answered:
                deadlines = await repo.deadlines_of_case(session, case.id)
                rule = ANSWER_RULE[case.path]
                on_time += any(d.rule == rule and d.status == "met" for d in deadlines)
            result.append(
                UnitStats(
                    unit_id=unit.id,
                    open=sum(State(c.state) in OPEN_STATES for c in cases),
                    overdue=sum(c.id in overdue_ids for c in cases),
                    answered=len(answered),
                    answered_on_time=on_time,
                    average_hops=sum(c.hops for c in cases) / len(cases) if cases else 0.0,
                )
            )
        return result

    async def case_detail(
        self, session: AsyncSession, actor: PersonRecord, number: str
    ) -> CaseDetail:
        """The whole record: every event, every deadline with the days it skipped."""
        self._require(actor, OVERSIGHT_ROLES, "case_detail")
        case = await repo.get_case_by_number(session, number)
        if case is None:
            raise CaseNotFound()
        events = await repo.events_of_case(session, case.id)
        people: dict[int, PersonRecord] = {}
        for person_id in {e.actor_id for e in events if e.actor_id is not None}:
            person = await repo.get_person(session, person_id)
            if person is not None:
                people[person_id] = person
        return CaseDetail(
            case,
            events,
            await repo.deadlines_of_case(session, case.id),
            await repo.attachments_of_case(session, case.id),
            people,
        )

    async def urge(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        number: str,
        text: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """督办: posted to the unit's topic, recorded, and copied to the other supervisors."""
        self._require(actor, OVERSIGHT_ROLES, "urge")
        case = await repo.get_case_by_number(session, number)
        if case is None:
            raise CaseNotFound()
        text = parse_text(text, minimum=2)
        case, event = await self._transition(session, actor, case, Action.URGE, now, reason=text)
        who = esc(actor.display_name or actor.id)
        key = f"case:{case.id}:urge:{event.id}"
        await self._to_unit(
            session, case, self.texts.get("post.urged", "zh", who=who, text=esc(text)), key
        )
        for person in await repo.list_people(session, role=Role.SUPERVISOR.value):
            if person.id == actor.id:
                continue
            await self._to_person(
                session,
                person,
                self.texts.get(
                    "supervisor.urge_copy",
                    person.language,
                    who=who,
                    number=case.number,
                    unit=esc(self.unit_name(case.unit_id, person.language)),
                    text=esc(text),
                ),
                f"{key}:to:{person.id}",
                case_id=case.id,
            )
        return case

    # ------------------------------------------------------------------ admins

    async def invite(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        unit_id: str | None,
        role: str,
        now: dt.datetime,
    ) -> str:
        """A one-time code (valid ``invite_ttl``) giving its redeemer ``role`` in ``unit_id``."""
        self._require(actor, frozenset({Role.ADMIN.value}), "invite")
        if role not in (Role.STAFF, Role.SUPERVISOR, Role.HEAD, Role.ADMIN):
            raise ServiceError("admin.bad_role")
        if role == Role.STAFF:
            if unit_id is None or await repo.get_unit(session, unit_id) is None:
                raise ServiceError("admin.unknown_unit", unit=esc(unit_id or "—"))
        else:
            unit_id = None
        return await repo.create_invite(
            session,
            role=role,
            unit_id=unit_id,
            created_by=actor.id,
            ttl=self.invite_ttl,
            now=now,
        )

    async def join(
        self, session: AsyncSession, actor: PersonRecord, code: str, now: dt.datetime
    ) -> InviteRecord:
        """Redeem an invite code (from any chat)."""
        try:
            invite = await repo.redeem_invite(session, code, actor.id, now)
        except InviteNotFound:
            refuse("admin.invite_unknown", f"person {actor.id} tried an unknown invite code")
            raise ServiceError("admin.invite_unknown") from None
        except InviteExpired:
            raise ServiceError("admin.invite_expired") from None
        except InviteUsed:
            raise ServiceError("admin.invite_used") from None
        log.info("person %s joined as %s of %s", actor.id, invite.role, invite.unit_id)
        return invite

    async def bind(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        unit_id: str,
        chat_id: int,
        forum: bool,
        now: dt.datetime,
    ) -> UnitRecord:
        """Make this group the unit's; the unit's open items that never reached a group
        get their cards now (件件有着落: an unbound unit must not lose items)."""
        self._require(actor, frozenset({Role.ADMIN.value}), "bind")
        if await repo.get_unit(session, unit_id) is None:
            raise ServiceError("admin.unknown_unit", unit=esc(unit_id))
        try:
            unit = await repo.set_unit_chat(session, unit_id, chat_id, forum)
        except repo.ChatAlreadyBound as error:
            raise ServiceError("admin.chat_bound", unit=esc(error.unit_id)) from None
        for case in await repo.list_cases(session, unit_id=unit_id, limit=None):
            if State(case.state) in OPEN_STATES and case.card_message_id is None:
                await self._post_card(session, case)
        return unit

    async def units(
        self, session: AsyncSession, actor: PersonRecord
    ) -> list[tuple[UnitRecord, int]]:
        """The units with their number of staff."""
        self._require(actor, OVERSIGHT_ROLES, "units")
        staff = await repo.list_people(session, role=Role.STAFF.value)
        return [
            (unit, sum(p.unit_id == unit.id for p in staff))
            for unit in await repo.list_units(session)
        ]

    async def whois(
        self, session: AsyncSession, actor: PersonRecord, telegram_id: int
    ) -> PersonRecord:
        self._require(actor, frozenset({Role.ADMIN.value}), "whois")
        person = await repo.get_person_by_telegram(session, telegram_id)
        if person is None:
            raise ServiceError("admin.unknown_person")
        return person
