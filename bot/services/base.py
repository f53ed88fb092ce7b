"""What every group of operations shares: the configuration, transitions with their audit
event, deadlines, authorization refusals and the notifications sent through the outbox."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, NoReturn, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.db.records import CaseEventRecord, CaseRecord, DeadlineRecord, PersonRecord, UnitRecord
from bot.outbox import enqueue
from bot.services import buttons as b
from bot.services.cards import card_keyboard, card_text
from bot.services.common import NOT_DUTIES, UNIT_LANGUAGE, clip, clip_html, esc
from bot.services.errors import CaseNotFound, NotAllowed, ServiceError, refuse
from bot.texts import Ref, Texts
from bot.topics import CARD, CARD_EDIT, CASE_TOPIC, TOPIC_NAME
from routing.calendar import WorkCalendar
from routing.classifier import Classifier
from routing.config import Config
from routing.deadlines import Deadline, DeadlineRules
from routing.lifecycle import Action, IllegalTransition, apply

log = logging.getLogger("huiyin.services")


class ServiceBase:
    """Configuration and shared helpers of :class:`bot.services.CaseService`."""

    def __init__(
        self,
        *,
        config: Config,
        classifier: Classifier,
        rules: DeadlineRules,
        calendar: WorkCalendar,
        texts: Texts,
        invite_ttl: dt.timedelta = dt.timedelta(hours=72),
    ) -> None:
        self.config = config
        self.classifier = classifier
        self.rules = rules
        self.calendar = calendar
        self.texts = texts
        self.invite_ttl = invite_ttl
        self.tz = ZoneInfo(config.units.organisation.timezone)

    # ------------------------------------------------------------------ time

    def today(self, now: dt.datetime) -> dt.date:
        """The bureau's calendar day: deadlines count in Asia/Shanghai, not UTC."""
        return now.astimezone(self.tz).date()

    # ------------------------------------------------------------------ units

    def unit_name(self, unit_id: str, lang: str = UNIT_LANGUAGE) -> str:
        try:
            spec = self.config.unit(unit_id)
        except KeyError:
            return unit_id
        return spec.name_en if lang == "en" and spec.name_en else spec.name

    # ------------------------------------------------------------------ lifecycle

    async def _transition(
        self,
        session: AsyncSession,
        actor: PersonRecord | None,
        case: CaseRecord,
        action: Action,
        now: dt.datetime,
        *,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> tuple[CaseRecord, CaseEventRecord]:
        """Apply ``action`` (routing.lifecycle), update the case (optimistic version) and
        append the audit event. An illegal action becomes a text the person can read."""
        try:
            target = apply(case.state, action, case.path)
        except IllegalTransition:
            raise ServiceError(
                "error.illegal_transition",
                action=Ref(f"action.{action.value}"),
                state=Ref(f"state.{case.state}"),
            ) from None
        if target.value != case.state:
            changes["state"] = target.value
        updated = case
        if changes:
            updated = await repo.update_case(session, case.id, case.version, **changes)
        event = await repo.add_event(
            session,
            case.id,
            actor_id=actor.id if actor else None,
            actor_role=actor.role if actor else "system",
            action=action.value,
            from_state=case.state,
            to_state=target.value,
            reason=reason,
            data=data,
            at=now,
        )
        return updated, event

    async def _audit(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case: CaseRecord,
        action: str,
        now: dt.datetime,
        *,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> CaseEventRecord:
        """An event that changes no state (a note, a message relayed, a refusal)."""
        return await repo.add_event(
            session,
            case.id,
            actor_id=actor.id,
            actor_role=actor.role,
            action=action,
            from_state=case.state,
            to_state=case.state,
            reason=reason,
            data=data,
            at=now,
        )

    async def _refuse(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case: CaseRecord,
        attempted: str,
        now: dt.datetime,
        key: str = "error.not_your_case",
    ) -> NoReturn:
        """Log and audit a refused attempt once, then raise :class:`NotAllowed`."""
        refuse(
            key,
            f"person {actor.id} (role {actor.role}, unit {actor.unit_id}) tried {attempted}"
            f" on case {case.id} (unit {case.unit_id})",
        )
        await self._audit(
            session,
            actor,
            case,
            "refused",
            now,
            reason=attempted,
            data={"attempted": attempted, "actor_unit": actor.unit_id},
        )
        raise NotAllowed(key)

    async def _case_for_staff(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        attempted: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """The case, if ``actor`` is staff of the unit that holds it (only they act on it)."""
        case = await repo.get_case(session, case_id)
        if case is None:
            refuse("error.case_not_found", f"person {actor.id} tried {attempted} on {case_id}")
            raise CaseNotFound()
        if actor.role != "staff" or actor.unit_id != case.unit_id:
            await self._refuse(session, actor, case, attempted, now)
        return case

    async def _case_of_citizen(
        self, session: AsyncSession, actor: PersonRecord, case_id: int, attempted: str
    ) -> CaseRecord:
        """The citizen's own case; anyone else's is "not found" (a number reveals nothing)."""
        case = await repo.get_case(session, case_id)
        if case is None or case.citizen_id != actor.id:
            whose = "of another citizen" if case is not None else "(no such case)"
            refuse(
                "error.case_not_found", f"person {actor.id} tried {attempted} on {case_id} {whose}"
            )
            raise CaseNotFound()
        return case

    # ------------------------------------------------------------------ deadlines

    async def _start_deadline(
        self, session: AsyncSession, case: CaseRecord, rule: str, start: dt.date, now: dt.datetime
    ) -> DeadlineRecord:
        deadline = self.rules.due_date(rule, start, self.calendar)
        return await self._store(session, case, deadline, now)

    async def _store(
        self, session: AsyncSession, case: CaseRecord, deadline: Deadline, now: dt.datetime
    ) -> DeadlineRecord:
        return await repo.upsert_deadline(
            session, case.id, deadline, self.calendar.data_version, now=now
        )

    async def _open_deadline(
        self, session: AsyncSession, case_id: int, rule: str
    ) -> DeadlineRecord | None:
        for record in await repo.deadlines_of_case(session, case_id):
            if record.rule == rule and record.status == "open":
                return record
        return None

    async def _settle_deadline(
        self, session: AsyncSession, case_id: int, rule: str, now: dt.datetime
    ) -> DeadlineRecord | None:
        """Mark an open deadline met (on or before its last day) or missed."""
        record = await self._open_deadline(session, case_id, rule)
        if record is None:
            return None
        status = "met" if self.today(now) <= record.due else "missed"
        return await repo.mark_deadline(session, case_id, rule, status, now)

    async def _void_deadlines(
        self, session: AsyncSession, case_id: int, now: dt.datetime, *, keep: frozenset[str]
    ) -> None:
        for record in await repo.deadlines_of_case(session, case_id):
            if record.status == "open" and record.rule not in keep:
                await repo.mark_deadline(session, case_id, record.rule, "void", now)

    async def _current_deadline(
        self, session: AsyncSession, case: CaseRecord
    ) -> DeadlineRecord | None:
        """The bureau's open duty on the case with the nearest last day."""
        duties = [
            d
            for d in await repo.deadlines_of_case(session, case.id)
            if d.status == "open" and d.rule not in NOT_DUTIES
        ]
        return min(duties, key=lambda d: d.due) if duties else None

    # ------------------------------------------------------------------ notifications

    async def _to_person(
        self,
        session: AsyncSession,
        person: PersonRecord,
        text: str,
        dedupe_key: str,
        *,
        case_id: int | None = None,
        keyboard: b.Keyboard | None = None,
    ) -> None:
        payload: dict[str, Any] = {"parse_mode": "HTML"}
        if keyboard:
            payload["reply_markup"] = keyboard
        # A private chat's id is the person's Telegram id.
        await enqueue(
            session,
            person.telegram_id,
            clip_html(text, 4096),
            payload=payload,
            dedupe_key=dedupe_key,
            case_id=case_id,
        )

    async def _to_citizen(
        self,
        session: AsyncSession,
        case: CaseRecord,
        dedupe_key: str,
        key: str,
        *,
        keyboard: b.Keyboard | None = None,
        unit_id: str | None = None,
        **fmt: Any,
    ) -> PersonRecord:
        """``unit_id``: fills ``{unit}`` with that unit's name in the citizen's language."""
        citizen = await repo.get_person(session, case.citizen_id)
        assert citizen is not None  # a foreign key
        if unit_id is not None:
            fmt["unit"] = esc(self.unit_name(unit_id, citizen.language))
        text = self.texts.get(key, citizen.language, number=case.number, **fmt)
        await self._to_person(
            session, citizen, text, dedupe_key, case_id=case.id, keyboard=keyboard
        )
        return citizen

    async def _to_unit(
        self,
        session: AsyncSession,
        case: CaseRecord,
        text: str,
        dedupe_key: str,
        *,
        card: bool = False,
        keyboard: b.Keyboard | None = None,
        method: str = "sendMessage",
        extra: Mapping[str, Any] | None = None,
        pinned: bool = False,
    ) -> bool:
        """Post in the case's topic of its unit's group (the topic is created by the sender
        when the case has none); in a group without topics, as a reply to the card.
        False when the unit has no group bound yet (its cards go out on /bind).

        ``pinned``: ``case`` is the item as it was at a unit it has just left; post in
        that unit's topic as it stands, without the sender's topic keeping (which follows
        the item's current unit and would open a new topic in the old group)."""
        unit = await repo.get_unit(session, case.unit_id)
        if unit is None or unit.chat_id is None:
            log.warning("case %s: unit %s has no group bound; not posted", case.id, case.unit_id)
            return False
        thread_id, payload = topic_message(
            case,
            unit,
            self.topic_name(case),
            card=card,
            keyboard=keyboard,
            extra=extra,
            pinned=pinned,
        )
        limit = 1024 if method != "sendMessage" else 4096  # captions are shorter (Bot API)
        await enqueue(
            session,
            unit.chat_id,
            clip_html(text, limit),
            method=method,
            thread_id=thread_id,
            payload=payload,
            dedupe_key=dedupe_key,
            case_id=case.id,
        )
        return True

    def topic_name(self, case: TopicCase) -> str:
        """Forum topic names are at most 128 characters (Bot API createForumTopic)."""
        path = self.texts.label("path", case.path, UNIT_LANGUAGE)
        return clip(f"{case.number} {path} {case.summary}", 128)

    async def _unit(self, session: AsyncSession, unit_id: str) -> UnitRecord | None:
        return await repo.get_unit(session, unit_id)

    # ------------------------------------------------------------------ the card

    async def _card(
        self, session: AsyncSession, case: CaseRecord
    ) -> tuple[str, b.Keyboard | None]:
        deadlines = await repo.deadlines_of_case(session, case.id)
        text = card_text(self.texts, case, self.unit_name(case.unit_id), deadlines, UNIT_LANGUAGE)
        return text, card_keyboard(self.texts, case, UNIT_LANGUAGE)

    async def _post_card(self, session: AsyncSession, case: CaseRecord) -> bool:
        """The card (the message with the action buttons) in the unit's new topic. One per
        unit the case reaches: the key carries the hop count."""
        text, keyboard = await self._card(session, case)
        return await self._to_unit(
            session,
            case,
            text,
            f"case:{case.id}:card:{case.hops}:{case.unit_id}",
            card=True,
            keyboard=keyboard,
        )

    async def repost_card(self, session: AsyncSession, case_id: int, thread_id: int) -> None:
        """The case's topic was deleted and made anew (bot/topics.py): post the card again
        there, so staff keep their buttons."""
        case = await repo.get_case(session, case_id)
        if case is None:
            return
        text, keyboard = await self._card(session, case)
        await self._to_unit(
            session,
            case,
            text,
            f"case:{case.id}:card-again:{thread_id}",
            card=True,
            keyboard=keyboard,
        )

    async def _refresh_card(
        self, session: AsyncSession, case: CaseRecord, event: CaseEventRecord
    ) -> None:
        """Edit the card after a change. The card's message id is looked up when the edit is
        sent (bot/topics.py): a chat's messages go in order, so an edit queued while the
        card is still on its way finds the id the sender recorded for it."""
        unit = await repo.get_unit(session, case.unit_id)
        if unit is None or unit.chat_id is None:
            return
        text, keyboard = await self._card(session, case)
        payload: dict[str, Any] = {"parse_mode": "HTML", CARD_EDIT: True}
        if case.card_message_id is not None:
            payload["message_id"] = case.card_message_id
        if keyboard:
            payload["reply_markup"] = keyboard  # no markup: Telegram removes the buttons
        await enqueue(
            session,
            unit.chat_id,
            clip_html(text, 4096),
            method="editMessageText",
            thread_id=case.thread_id,
            payload=payload,
            dedupe_key=f"case:{case.id}:card-edit:{event.id}",
            case_id=case.id,
        )

    async def _forward_attachments(
        self, session: AsyncSession, case: CaseRecord, attachments: list[Any], key: str
    ) -> None:
        """Photos and documents go to the topic by file id (valid for this bot)."""
        for index, item in enumerate(attachments):
            method, field = (
                ("sendPhoto", "photo") if item.kind == "photo" else ("sendDocument", "document")
            )
            await self._to_unit(
                session,
                case,
                # The citizen's own words, in an HTML caption: escaped (a "<" would make
                # Telegram refuse the photo, and the unit would never see the evidence).
                esc(clip(item.caption or "", 1024)),
                f"{key}:file:{index}",
                method=method,
                extra={field: item.file_id},
            )


class TopicCase(Protocol):
    """What placing a message about a case in its unit's group needs to know of it."""

    @property
    def number(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def thread_id(self) -> int | None: ...
    @property
    def card_message_id(self) -> int | None: ...


def topic_message(
    case: TopicCase,
    unit: UnitRecord,
    topic_name: str,
    *,
    card: bool = False,
    keyboard: b.Keyboard | None = None,
    extra: Mapping[str, Any] | None = None,
    pinned: bool = False,
) -> tuple[int | None, dict[str, Any]]:
    """The thread id and payload of a message about ``case`` in ``unit``'s group: in the
    case's topic (created by the sender when needed, see bot/topics.py), or in a group
    without topics as a reply to the card. ``pinned``: the topic as it stands, without the
    sender's topic keeping (for a unit the case has just left)."""
    payload: dict[str, Any] = {"parse_mode": "HTML", **(extra or {})}
    thread_id: int | None = None
    if unit.forum and pinned:
        thread_id = case.thread_id
    elif unit.forum:
        payload[CASE_TOPIC] = True
        payload[TOPIC_NAME] = topic_name
        thread_id = case.thread_id
    elif case.card_message_id is not None and not card:
        payload["reply_parameters"] = {
            "message_id": case.card_message_id,
            "allow_sending_without_reply": True,
        }
    if card:
        payload[CARD] = True
    if keyboard:
        payload["reply_markup"] = keyboard
    return thread_id, payload
