"""What the staff of the unit holding a ticket do with it, from their group's topic.

Only staff whose unit holds the case may act (``_case_for_staff``); anyone else pressing a
button or sending a command is refused, logged and audited once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.db.records import CaseEventRecord, CaseRecord, PersonRecord
from bot.outbox import enqueue
from bot.services import buttons as b
from bot.services.base import ServiceBase
from bot.services.cards import card_text, rating_keyboard
from bot.services.common import (
    ACCEPT_MEETS,
    ACCEPT_STARTS,
    ANSWER_RULE,
    EXTENSION_OF,
    NOT_DUTIES,
    clip,
    clip_html,
    esc,
)
from bot.services.errors import ServiceError
from bot.services.intake import AttachmentIn
from bot.services.reply_types import is_reply_type
from bot.services.validate import parse_text
from bot.texts import Ref
from routing.config import PathCode
from routing.deadlines import extend as extend_deadline
from routing.lifecycle import TERMINAL_STATES, Action, State
from routing.router import Assignment, HandoverError, UnknownUnit, hand_back, transfer

# Citizen windows stay on the ticket after the answer: they are the citizen's, not ours.
KEEP_AFTER_ANSWER = NOT_DUTIES - {"disclosure.supplement_notice"}


class StaffOps(ServiceBase):
    async def _staff_line(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case: CaseRecord,
        event: CaseEventRecord,
        key: str,
        **fmt: Any,
    ) -> None:
        """A short line in the topic saying who did what (the card itself is edited too)."""
        text = self.texts.get(key, "zh", who=esc(actor.display_name or actor.id), **fmt)
        await self._to_unit(session, case, text, f"case:{case.id}:line:{event.id}")
        await self._refresh_card(session, case, event)

    async def staff_case(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        attempted: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """The case if ``actor`` may act on it; used when a button only opens a prompt, so a
        member of another unit is refused (and audited) at the press, not after typing."""
        return await self._case_for_staff(session, actor, case_id, attempted, now)

    async def accept(
        self, session: AsyncSession, actor: PersonRecord, case_id: int, now: dt.datetime
    ) -> CaseRecord:
        """签收 → accepted; the citizen gets the 受理告知 with the period now running
        (信访工作条例 Art 23 and 34: the 60 days count from acceptance)."""
        case = await self._case_for_staff(session, actor, case_id, "accept", now)
        case, event = await self._transition(
            session, actor, case, Action.ACCEPT, now, accepted_at=now
        )
        if case.path in ACCEPT_MEETS:
            await self._settle_deadline(session, case.id, ACCEPT_MEETS[case.path], now)
        if case.path in ACCEPT_STARTS:
            await self._start_deadline(
                session, case, ACCEPT_STARTS[case.path], self.today(now), now
            )
        answer = await self._open_deadline(session, case.id, ANSWER_RULE[case.path])
        await self._staff_line(session, actor, case, event, "post.accepted")
        if not case.anonymous:
            await self._to_citizen(
                session,
                case,
                f"case:{case.id}:accepted",
                "citizen.accepted",
                unit_id=case.unit_id,
                due=answer.due.isoformat() if answer else "—",
            )
        return case

    async def start(
        self, session: AsyncSession, actor: PersonRecord, case_id: int, now: dt.datetime
    ) -> CaseRecord:
        """开始办理 (also takes up a 复查 request)."""
        case = await self._case_for_staff(session, actor, case_id, "start", now)
        case, event = await self._transition(session, actor, case, Action.START, now)
        await self._staff_line(session, actor, case, event, "post.started")
        return case

    async def request_supplement(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        text: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """补正: ask the citizen for what is missing. A disclosure request may be sent back for
        补正 once, within 7 working days (政府信息公开条例 Art 30, 一次性告知)."""
        case = await self._case_for_staff(session, actor, case_id, "request_supplement", now)
        text = parse_text(text, minimum=2)
        if case.path == PathCode.DISCLOSURE:
            events = await repo.events_of_case(session, case.id)
            if any(e.action == Action.REQUEST_SUPPLEMENT for e in events):
                raise ServiceError("staff.supplement_once")
        case, event = await self._transition(
            session, actor, case, Action.REQUEST_SUPPLEMENT, now, reason=text
        )
        if case.path == PathCode.DISCLOSURE:
            await self._settle_deadline(session, case.id, "disclosure.supplement_notice", now)
        await self._staff_line(session, actor, case, event, "post.supplement_requested")
        keyboard = b.inline(
            [
                [
                    b.button(
                        self.texts.get("citizen.button.supplement", "zh"),
                        b.pack(b.MY_CASE, b.GIVE_SUPPLEMENT, case.id),
                    )
                ]
            ]
        )
        await self._to_citizen(
            session,
            case,
            f"case:{case.id}:supplement:{event.id}",
            "citizen.supplement_needed."
            + ("disclosure" if case.path == PathCode.DISCLOSURE else "other"),
            keyboard=keyboard,
            text=esc(text),
        )
        return case

    async def extend(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        reason: str,
        approver: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """延期: the running period extended from its current last day, with a reason (told to
        the citizen) and the approving head (信访工作条例 Art 34: ≤ 30 days; 政府信息公开条例
        Art 33: ≤ 20 working days). Paths without an extendable period are refused."""
        case = await self._case_for_staff(session, actor, case_id, "extend", now)
        reason, approver = reason.strip(), approver.strip()
        if not reason or not approver:
            raise ServiceError("staff.extend_needs_reason")
        rule = ANSWER_RULE[case.path]
        current = await self._open_deadline(session, case.id, rule)
        if rule not in EXTENSION_OF or current is None:
            raise ServiceError("staff.extend_not_applicable", path=Ref(f"path.{case.path}"))
        try:
            extended = extend_deadline(
                current.deadline, self.rules[EXTENSION_OF[rule]], reason, approver, self.calendar
            )
        except ValueError:
            raise ServiceError("staff.extend_refused", due=current.due.isoformat()) from None
        case, event = await self._transition(
            session,
            actor,
            case,
            Action.EXTEND,
            now,
            reason=reason,
            data={
                "rule": rule,
                "approver": approver,
                "due_before": current.due.isoformat(),
                "due_after": extended.due.isoformat(),
            },
        )
        await self._store(session, case, extended, now)
        await self._staff_line(
            session, actor, case, event, "post.extended", due=extended.due.isoformat()
        )
        if not case.anonymous:
            await self._to_citizen(
                session,
                case,
                f"case:{case.id}:extended:{event.id}",
                "citizen.extended",
                reason=esc(reason),
                due=extended.due.isoformat(),
            )
        return case

    async def transfer(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        to_unit: str,
        reason: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """转办 to another responsible unit, with a reason; the hop is counted (推诿 is
        watched) and the first unit stays the lead (首接负责). The new unit gets the card."""
        case = await self._case_for_staff(session, actor, case_id, "transfer", now)
        assignment = Assignment(unit=case.unit_id, lead_unit=case.lead_unit_id)
        try:
            moved = transfer(assignment, to_unit, reason, self.config, at=now)
        except (HandoverError, UnknownUnit):
            raise ServiceError("staff.transfer_refused") from None
        return await self._hand_over(
            session, actor, case, Action.TRANSFER, moved.unit, reason.strip(), now
        )

    async def hand_back(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        reason: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """退回 to the fallback unit (兜底), which routes it again; a reason is required."""
        case = await self._case_for_staff(session, actor, case_id, "hand_back", now)
        assignment = Assignment(unit=case.unit_id, lead_unit=case.lead_unit_id)
        try:
            moved = hand_back(assignment, reason, self.config, at=now)
        except HandoverError:
            raise ServiceError("staff.hand_back_refused") from None
        return await self._hand_over(
            session, actor, case, Action.HAND_BACK, moved.unit, reason.strip(), now
        )

    async def _hand_over(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case: CaseRecord,
        action: Action,
        to_unit: str,
        reason: str,
        now: dt.datetime,
    ) -> CaseRecord:
        before = case
        # The topic and card belong to the old unit's group: the new unit gets its own.
        case, event = await self._transition(
            session,
            actor,
            case,
            action,
            now,
            reason=reason,
            data={"from_unit": before.unit_id, "to_unit": to_unit},
            unit_id=to_unit,
            hops=before.hops + 1,
            thread_id=None,
            card_message_id=None,
        )
        line = self.texts.get(
            f"post.{action.value}",
            "zh",
            who=esc(actor.display_name or actor.id),
            unit=esc(self.unit_name(to_unit)),
            reason=esc(reason),
        )
        await self._to_unit(session, before, line, f"case:{case.id}:line:{event.id}", pinned=True)
        await self._retire_card(session, before, case, event)
        await self._post_card(session, case)
        if not case.anonymous:
            await self._to_citizen(
                session,
                case,
                f"case:{case.id}:moved:{event.id}",
                "citizen.transferred",
                unit_id=to_unit,
            )
        return case

    async def _retire_card(
        self,
        session: AsyncSession,
        before: CaseRecord,
        after: CaseRecord,
        event: CaseEventRecord,
    ) -> None:
        """The old unit's card after a hand-over: where the item went, and no buttons (the
        old unit may no longer act; its card must not look as if it could)."""
        unit = await repo.get_unit(session, before.unit_id)
        if before.card_message_id is None or unit is None or unit.chat_id is None:
            return
        deadlines = await repo.deadlines_of_case(session, after.id)
        text = card_text(self.texts, after, self.unit_name(after.unit_id), deadlines, "zh")
        await enqueue(
            session,
            unit.chat_id,
            clip_html(text, 4096),
            method="editMessageText",
            thread_id=before.thread_id,
            payload={"parse_mode": "HTML", "message_id": before.card_message_id},
            dedupe_key=f"case:{after.id}:card-edit:{event.id}",
            case_id=after.id,
        )

    async def answer(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        text: str,
        now: dt.datetime,
        reply_type: str | None = None,
    ) -> CaseRecord:
        """办结: the written answer. A disclosure answer needs its 条例 Art 36 reply type (the
        annual report counts them). The citizen gets the answer, the rating prompt (好差评)
        and the remedy: 复查 within 30 days for a petition (信访工作条例 Art 35), 复议 or
        诉讼 for a disclosure reply (条例 Art 51)."""
        case = await self._case_for_staff(session, actor, case_id, "answer", now)
        text = parse_text(text, minimum=2)
        if case.path == PathCode.DISCLOSURE:
            if not is_reply_type(reply_type):
                raise ServiceError("staff.reply_type_required")
        else:
            reply_type = None
        case, event = await self._transition(
            session,
            actor,
            case,
            Action.ANSWER,
            now,
            reason=clip(text, 3000),
            data={"reply_type": reply_type},
            answer=text,
            reply_type=reply_type,
            answered_at=now,
        )
        await self._settle_deadline(session, case.id, ANSWER_RULE[case.path], now)
        await self._void_deadlines(session, case.id, now, keep=KEEP_AFTER_ANSWER)
        await self._staff_line(session, actor, case, event, "post.answered")
        if case.anonymous:
            return case
        lang_kind = Ref(f"reply_type.{reply_type}") if reply_type else Ref("answer.no_reply_type")
        await self._to_citizen(
            session,
            case,
            f"case:{case.id}:answered",
            "citizen.answered",
            unit_id=case.unit_id,
            kind=lang_kind,
            text=esc(clip(text, 3000)),
            remedy=Ref(f"remedy.{case.path}"),
        )
        await self._to_citizen(
            session,
            case,
            f"case:{case.id}:rating-prompt",
            "citizen.rate_prompt",
            keyboard=rating_keyboard(case.id),
        )
        return case

    async def note(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        text: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """An internal note: audited, never shown to the citizen."""
        case = await self._case_for_staff(session, actor, case_id, "note", now)
        await self._audit(session, actor, case, "note", now, reason=parse_text(text, minimum=1))
        return case

    async def relay_to_citizen(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        text: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """A plain message in the topic goes to the citizen (and into the audit log)."""
        case = await self._case_for_staff(session, actor, case_id, "relay_to_citizen", now)
        text = parse_text(text, minimum=1)
        if State(case.state) in TERMINAL_STATES:
            raise ServiceError("staff.case_settled", state=Ref(f"state.{case.state}"))
        if case.anonymous:
            raise ServiceError("staff.anonymous")
        event = await self._audit(session, actor, case, "staff_message", now, reason=text)
        await self._to_citizen(
            session,
            case,
            f"case:{case.id}:to-citizen:{event.id}",
            "citizen.message_from_unit",
            unit_id=case.unit_id,
            text=esc(clip(text, 3500)),
        )
        return case

    async def relay_file_to_citizen(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        attachment: AttachmentIn,
        now: dt.datetime,
    ) -> CaseRecord:
        """A photo or document posted in the topic goes to the citizen too (by file id,
        valid for this bot), is kept with the case and audited."""
        case = await self._case_for_staff(session, actor, case_id, "relay_to_citizen", now)
        if State(case.state) in TERMINAL_STATES:
            raise ServiceError("staff.case_settled", state=Ref(f"state.{case.state}"))
        if case.anonymous:
            raise ServiceError("staff.anonymous")
        stored = await repo.add_attachment(
            session,
            case.id,
            kind=attachment.kind,
            file_id=attachment.file_id,
            file_unique_id=attachment.file_unique_id,
            file_name=attachment.file_name,
            mime_type=attachment.mime_type,
            size=attachment.size,
            caption=attachment.caption,
            from_role=actor.role,
        )
        await self._audit(
            session, actor, case, "staff_file", now, data={"attachment_id": stored.id}
        )
        citizen = await repo.get_person(session, case.citizen_id)
        if citizen is not None and not citizen.blocked_bot:
            method, field = (
                ("sendPhoto", "photo")
                if attachment.kind == "photo"
                else ("sendDocument", "document")
            )
            await enqueue(
                session,
                citizen.telegram_id,
                # The bot's default parse mode is HTML (bot/app.py make_bot): escaped.
                esc(clip(attachment.caption or "", 1024)),
                method=method,
                payload={field: attachment.file_id},
                dedupe_key=f"case:{case.id}:file-to-citizen:{stored.id}",
                case_id=case.id,
            )
        return case

    async def case_in_topic(
        self, session: AsyncSession, chat_id: int, thread_id: int | None, reply_to: int | None
    ) -> CaseRecord | None:
        """The case whose topic (or, in a group without topics, whose card) a staff message
        belongs to; None for the group's general chat."""
        unit = await repo.get_unit_by_chat(session, chat_id)
        if unit is None:
            return None
        if thread_id is not None:
            return await repo.get_case_in_unit_chat(session, unit.id, thread_id=thread_id)
        return await repo.get_case_in_unit_chat(session, unit.id, card_message_id=reply_to)
