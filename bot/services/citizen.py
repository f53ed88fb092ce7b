"""What citizens do: understand a message, file an item, talk to the unit, give a 补正,
withdraw, rate, ask for 复查, and look their items up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.db.records import CaseRecord, DeadlineRecord, PersonRecord
from bot.services import buttons as b
from bot.services.base import ServiceBase
from bot.services.common import ANSWER_RULE, FIRST_RULE, NOT_DUTIES, OPEN_STATES, clip, esc
from bot.services.errors import CaseNotFound, InvalidInput, ServiceError
from bot.services.guidance import government_of
from bot.services.intake import AttachmentIn, Intake
from bot.services.validate import parse_text
from bot.texts import Ref
from routing.config import PathCode, Topic
from routing.deadlines import restart_after_supplement
from routing.lifecycle import Action, State
from routing.router import canonical_district, route

SUMMARY_CHARS = 40


@dataclass(frozen=True)
class Understanding:
    """What the bot understood of a message, for the confirm screen: the path, the unit it
    would go to and the first statutory period with its last day if filed today."""

    path: str
    topic: str
    district: str | None
    confidence: float
    reasons: tuple[str, ...]
    unit_id: str
    route_explanation: str
    rule: str
    due: dt.date
    provisional: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON for the FSM data."""
        return {
            "path": self.path,
            "topic": self.topic,
            "district": self.district,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "unit_id": self.unit_id,
            "route_explanation": self.route_explanation,
            "rule": self.rule,
            "due": self.due.isoformat(),
            "provisional": self.provisional,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Understanding:
        return cls(
            path=data["path"],
            topic=data["topic"],
            district=data.get("district"),
            confidence=float(data.get("confidence", 0.0)),
            reasons=tuple(data.get("reasons", ())),
            unit_id=data["unit_id"],
            route_explanation=data.get("route_explanation", ""),
            rule=data["rule"],
            due=dt.date.fromisoformat(data["due"]),
            provisional=bool(data.get("provisional", False)),
        )


@dataclass(frozen=True)
class CaseStatus:
    case: CaseRecord
    deadlines: list[DeadlineRecord]

    @property
    def current(self) -> DeadlineRecord | None:
        duties = [d for d in self.deadlines if d.status == "open" and d.rule not in NOT_DUTIES]
        return min(duties, key=lambda d: d.due) if duties else None


class CitizenOps(ServiceBase):
    # ------------------------------------------------------------------ understanding

    def understand(
        self,
        text: str,
        *,
        now: dt.datetime,
        path: str | None = None,
        topic: str | None = None,
        district: str | None = None,
    ) -> Understanding:
        """Classify ``text`` (or take the path the citizen chose), route it and preview the
        first statutory period as if filed now. Pure: reads no database."""
        found = self.classifier.classify(text)
        chosen = PathCode(path) if path else found.path
        chosen_topic = Topic(topic) if topic else found.topic
        place = district if district is not None else found.district
        decision = route(self.config, chosen, chosen_topic, place)
        rule = FIRST_RULE[chosen]
        deadline = self.rules.due_date(rule, self.today(now), self.calendar)
        return Understanding(
            path=chosen.value,
            topic=chosen_topic.value,
            district=place,
            confidence=found.confidence if chosen == found.path else 1.0,
            reasons=found.reasons,
            unit_id=decision.unit,
            route_explanation=decision.explanation,
            rule=rule,
            due=deadline.due,
            provisional=deadline.provisional,
        )

    # ------------------------------------------------------------------ filing

    async def file_case(
        self, session: AsyncSession, citizen: PersonRecord, intake: Intake, now: dt.datetime
    ) -> CaseRecord:
        """File a complete application: the case (state ``routed``), its attachments and
        deadlines, the receipt with the tracking number to the citizen and the card to the
        unit's topic. Reconsideration and litigation receipts carry the guidance (the
        competent body and the window) at once; the ticket still goes to the legal section."""
        path = PathCode(intake.path)
        topic = Topic(intake.topic)
        district = canonical_district(self.config, intake.district)
        text = parse_text(intake.text, minimum=2)
        decision = route(self.config, path, topic, district)
        applicant, details = intake.split()
        anonymous = intake.anonymous and path is PathCode.PETITION
        requester_kind = applicant.pop("requester_kind", None)
        case = await repo.create_case(
            session,
            citizen_id=citizen.id,
            path=path.value,
            topic=topic.value,
            district=district,
            unit_id=decision.unit,
            state=State.RECEIVED.value,
            text=text,
            received_at=now,
            summary=clip(" ".join(text.split()), SUMMARY_CHARS),
            applicant=applicant,
            details=details,
            classification=dict(intake.classification),
            anonymous=anonymous,
            requester_kind=requester_kind if path is PathCode.DISCLOSURE else None,
        )
        await repo.add_event(
            session,
            case.id,
            actor_id=citizen.id,
            actor_role=citizen.role,
            action="receive",
            to_state=State.RECEIVED.value,
            data={"path_confirmed": intake.path_confirmed, "attachments": len(intake.attachments)},
            at=now,
        )
        case, _ = await self._transition(
            session,
            None,
            case,
            Action.ROUTE,
            now,
            reason=decision.explanation,
            data={"unit": decision.unit, "rule": str(decision.rule), "note": decision.note},
        )
        for item in intake.attachments:
            await self._save_attachment(session, case, item, "citizen")
        duties = await self._first_deadlines(session, case, now)
        await self._send_receipt(session, citizen, case, duties)
        await self._post_card(session, case)
        await self._forward_attachments(
            session, case, list(intake.attachments), f"case:{case.id}:intake"
        )
        return case

    async def _save_attachment(
        self, session: AsyncSession, case: CaseRecord, item: AttachmentIn, role: str
    ) -> None:
        await repo.add_attachment(
            session,
            case.id,
            kind=item.kind,
            file_id=item.file_id,
            file_unique_id=item.file_unique_id,
            file_name=item.file_name,
            mime_type=item.mime_type,
            size=item.size,
            caption=item.caption,
            from_role=role,
        )

    async def _first_deadlines(
        self, session: AsyncSession, case: CaseRecord, now: dt.datetime
    ) -> dict[str, DeadlineRecord]:
        """The periods that start on receipt (domain.md "The five paths")."""
        today = self.today(now)
        rules: list[tuple[str, dt.date]] = []
        if case.path == PathCode.PETITION and not case.anonymous:
            rules.append(("petition.acknowledge", today))  # Art 23; anonymous: no reply duty
        elif case.path == PathCode.DISCLOSURE:
            rules += [("disclosure.supplement_notice", today), ("disclosure.reply", today)]
        elif case.path == PathCode.MEDIATION:
            rules.append(("mediation.accept", today))
        elif case.path in (PathCode.RECONSIDERATION, PathCode.LITIGATION):
            rules.append((f"{case.path}.guidance", today))
            learned = case.details.get("date_learned")
            if learned:
                window = (
                    "reconsideration.application_window"  # 行政复议法 Art 20: 60 days
                    if case.path == PathCode.RECONSIDERATION
                    else "litigation.filing_window"  # 行政诉讼法 Art 46: six months
                )
                rules.append((window, dt.date.fromisoformat(learned)))
        stored: dict[str, DeadlineRecord] = {}
        for rule, start in rules:
            stored[rule] = await self._start_deadline(session, case, rule, start, now)
        return stored

    async def _send_receipt(
        self,
        session: AsyncSession,
        citizen: PersonRecord,
        case: CaseRecord,
        duties: dict[str, DeadlineRecord],
    ) -> None:
        lang = citizen.language
        t = self.texts
        parts = [
            t.get(
                "receipt.head",
                lang,
                number=case.number,
                path=Ref(f"path.{case.path}"),
                unit=esc(self.unit_name(case.unit_id, lang)),
            )
        ]
        first = duties.get(FIRST_RULE[case.path])
        if first is not None:
            parts.append(
                t.get(
                    f"receipt.due.{case.path}",
                    lang,
                    due=first.due.isoformat(),
                    basis=esc(first.deadline.basis.split("：")[0]),
                )
            )
        if case.anonymous:
            parts.append(t.get("receipt.anonymous", lang))
        if case.path == PathCode.RECONSIDERATION:
            window = duties.get("reconsideration.application_window")
            parts.append(
                t.get(
                    "receipt.guidance.reconsideration",
                    lang,
                    authority=esc(government_of(self.config, str(case.details.get("body", "")))),
                    window=window.due.isoformat()
                    if window
                    else t.get("receipt.guidance.window_unknown", lang),
                )
            )
        elif case.path == PathCode.LITIGATION:
            window = duties.get("litigation.filing_window")
            parts.append(
                t.get(
                    "receipt.guidance.litigation",
                    lang,
                    window=window.due.isoformat()
                    if window
                    else t.get("receipt.guidance.window_unknown", lang),
                )
            )
        parts.append(t.get("receipt.tail", lang, number=case.number))
        await self._to_person(
            session, citizen, "\n\n".join(parts), f"case:{case.id}:receipt", case_id=case.id
        )

    # ------------------------------------------------------------------ while it is open

    async def relay_to_unit(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        text: str,
        now: dt.datetime,
        attachments: tuple[AttachmentIn, ...] = (),
    ) -> CaseRecord:
        """A message from the citizen about an open item, posted in the unit's topic."""
        case = await self._case_of_citizen(session, actor, case_id, "relay_to_unit")
        if State(case.state) not in OPEN_STATES | {State.ANSWERED}:
            raise ServiceError("citizen.case_settled", number=case.number)
        if not text.strip() and not attachments:
            raise InvalidInput("invalid.too_short", minimum=1)
        event = await self._audit(
            session, actor, case, "citizen_message", now, reason=clip(text, 3000)
        )
        for item in attachments:
            await self._save_attachment(session, case, item, "citizen")
        key = f"case:{case.id}:from-citizen:{event.id}"
        if text.strip():
            await self._to_unit(
                session,
                case,
                self.texts.get("post.citizen_message", "zh", text=esc(clip(text, 3500))),
                key,
            )
        await self._forward_attachments(session, case, list(attachments), key)
        return case

    async def answer_supplement(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        text: str,
        now: dt.datetime,
        attachments: tuple[AttachmentIn, ...] = (),
    ) -> CaseRecord:
        """The 补正 the unit asked for. On the disclosure path the reply period counts again
        from the day the corrected application arrives (政府信息公开条例 Art 30)."""
        case = await self._case_of_citizen(session, actor, case_id, "answer_supplement")
        if not text.strip() and not attachments:
            raise InvalidInput("invalid.too_short", minimum=1)
        data: dict[str, Any] = {"attachments": len(attachments)}
        due: dt.date | None = None
        if case.path == PathCode.DISCLOSURE and case.state == State.AWAITING_SUPPLEMENT:
            reply = await self._open_deadline(session, case.id, "disclosure.reply")
            if reply is not None:
                restarted = restart_after_supplement(
                    reply.deadline, max(self.today(now), reply.deadline.start), self.calendar
                )
                due = (await self._store(session, case, restarted, now)).due
                data["reply_due"] = due.isoformat()
        case, event = await self._transition(
            session,
            actor,
            case,
            Action.SUPPLEMENT_RECEIVED,
            now,
            reason=clip(text, 3000),
            data=data,
        )
        for item in attachments:
            await self._save_attachment(session, case, item, "citizen")
        key = f"case:{case.id}:supplemented:{event.id}"
        await self._to_unit(
            session,
            case,
            self.texts.get("post.supplement_received", "zh", text=esc(clip(text, 3500))),
            key,
        )
        await self._forward_attachments(session, case, list(attachments), key)
        await self._refresh_card(session, case, event)
        if due is not None:
            await self._to_citizen(
                session,
                case,
                f"{key}:citizen",
                "citizen.supplement_thanks_restart",
                due=due.isoformat(),
            )
        else:
            await self._to_citizen(session, case, f"{key}:citizen", "citizen.supplement_thanks")
        return case

    async def withdraw(
        self, session: AsyncSession, actor: PersonRecord, case_id: int, now: dt.datetime
    ) -> CaseRecord:
        """The citizen takes the item back; its open periods no longer apply."""
        case = await self._case_of_citizen(session, actor, case_id, "withdraw")
        case, event = await self._transition(session, actor, case, Action.WITHDRAW, now)
        await self._void_deadlines(session, case.id, now, keep=frozenset())
        key = f"case:{case.id}:withdrawn"
        await self._to_unit(session, case, self.texts.get("post.withdrawn", "zh"), key)
        await self._refresh_card(session, case, event)
        await self._to_citizen(session, case, f"{key}:citizen", "citizen.withdrawn")
        return case

    async def rate(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        score: int,
        now: dt.datetime,
        comment: str | None = None,
    ) -> CaseRecord:
        """好差评: a score of 1–5 on an answered item closes it."""
        if not 1 <= score <= 5:
            raise InvalidInput("invalid.rating")
        case = await self._case_of_citizen(session, actor, case_id, "rate")
        comment = clip(comment.strip(), 1000) if comment and comment.strip() else None
        case, event = await self._transition(
            session,
            actor,
            case,
            Action.RATE,
            now,
            reason=comment,
            data={"score": score},
            rating=score,
            rating_comment=comment,
            closed_at=now,
        )
        key = f"case:{case.id}:rated"
        await self._to_unit(
            session,
            case,
            self.texts.get("post.rated", "zh", stars="★" * score, comment=esc(comment or "—")),
            key,
        )
        await self._refresh_card(session, case, event)
        await self._to_citizen(session, case, f"{key}:citizen", "citizen.rated", stars="★" * score)
        return case

    async def close_quietly(
        self, session: AsyncSession, case_id: int, now: dt.datetime, *, days: int = 15
    ) -> CaseRecord | None:
        """An answered item nobody reacted to for ``days`` closes by itself (domain.md
        "Lifecycle": closed, rated or after a quiet period; the scan in bot/reminders.py
        decides when). The citizen is told, with how long a 复查 can still be asked for;
        the unit sees it in the topic. None when the item is no longer answered."""
        case = await repo.get_case(session, case_id)
        if case is None or case.state != State.ANSWERED or case.answered_at is None:
            return None
        answered = self.today(case.answered_at)
        case, event = await self._transition(
            session,
            None,
            case,
            Action.QUIET_PERIOD_ENDED,
            now,
            reason=f"{days} quiet days after the answer",
            closed_at=now,
        )
        key = f"case:{case.id}:quiet-closed"
        await self._to_unit(
            session, case, self.texts.get("post.quiet_closed", "zh", days=days), key
        )
        await self._refresh_card(session, case, event)
        citizen = await repo.get_person(session, case.citizen_id)
        assert citizen is not None  # a foreign key
        if case.path == PathCode.PETITION:
            window = self.rules.due_date("petition.review_request", answered, self.calendar)
            remedy = self.texts.get(
                "citizen.quiet_closed_review", citizen.language, until=window.due.isoformat()
            )
        else:
            remedy = self.texts.get(f"remedy.{case.path}", citizen.language)
        await self._to_citizen(
            session,
            case,
            f"{key}:citizen",
            "citizen.quiet_closed",
            answered=answered.isoformat(),
            days=days,
            remedy=remedy,
        )
        return case

    async def comment_on_rating(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        comment: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """The sentence a citizen may add after rating (好差评 comes with a comment): kept
        on the item, audited, and passed on to the unit. Once per item."""
        case = await self._case_of_citizen(session, actor, case_id, "rate")
        text = clip(comment.strip(), 1000)
        if case.rating is None or case.rating_comment or not text:
            raise InvalidInput("invalid.rating")
        case = await repo.update_case(session, case.id, case.version, rating_comment=text)
        event = await self._audit(session, actor, case, "rating_comment", now, reason=text)
        await self._to_unit(
            session,
            case,
            self.texts.get("post.rating_comment", "zh", comment=esc(text)),
            f"case:{case.id}:rating-comment",
        )
        await self._refresh_card(session, case, event)
        await self._to_citizen(
            session,
            case,
            f"case:{case.id}:rating-comment:citizen",
            "citizen.rating_comment_thanks",
        )
        return case

    async def request_review(
        self,
        session: AsyncSession,
        actor: PersonRecord,
        case_id: int,
        reason: str,
        now: dt.datetime,
    ) -> CaseRecord:
        """复查 (信访工作条例 Art 35): within 30 days of receiving the written reply, decided in
        30 days. Only petitions have it; later requests are refused with the last day."""
        case = await self._case_of_citizen(session, actor, case_id, "request_review")
        if case.path != PathCode.PETITION:
            raise ServiceError("review.not_petition", path=Ref(f"path.{case.path}"))
        if case.answered_at is None:
            raise ServiceError(
                "error.illegal_transition",
                action=Ref("action.request_review"),
                state=Ref(f"state.{case.state}"),
            )
        answered = self.today(case.answered_at)
        window = self.rules.due_date("petition.review_request", answered, self.calendar)
        if self.today(now) > window.due:
            raise ServiceError("review.too_late", due=window.due.isoformat())
        reason = parse_text(reason, minimum=2)
        case, event = await self._transition(
            session, actor, case, Action.REQUEST_REVIEW, now, reason=reason
        )
        decision = await self._start_deadline(
            session, case, "petition.review_decision", self.today(now), now
        )
        key = f"case:{case.id}:review:{event.id}"
        await self._to_unit(
            session,
            case,
            self.texts.get(
                "post.review_requested",
                "zh",
                reason=esc(reason),
                due=decision.due.isoformat(),
            ),
            key,
        )
        await self._refresh_card(session, case, event)
        await self._to_citizen(
            session,
            case,
            f"{key}:citizen",
            "citizen.review_received",
            due=decision.due.isoformat(),
        )
        return case

    # ------------------------------------------------------------------ looking up

    async def my_cases(self, session: AsyncSession, actor: PersonRecord) -> list[CaseRecord]:
        return await repo.cases_of_citizen(session, actor.id)

    async def case_status(
        self, session: AsyncSession, actor: PersonRecord, number: str
    ) -> CaseStatus:
        """The citizen's own item by its number; any other number is "not found", the same
        text whether it exists or not (a number is not a key to someone else's matter)."""
        case = await repo.get_case_by_number(session, number)
        if case is None or case.citizen_id != actor.id:
            raise CaseNotFound()
        return CaseStatus(case, await repo.deadlines_of_case(session, case.id))

    async def own_case(
        self, session: AsyncSession, actor: PersonRecord, case_id: int
    ) -> CaseStatus:
        case = await self._case_of_citizen(session, actor, case_id, "view")
        return CaseStatus(case, await repo.deadlines_of_case(session, case.id))

    def citizen_actions(self, case: CaseRecord) -> list[str]:
        """The buttons a citizen sees under one of their items in /my."""
        state = State(case.state)
        actions = []
        if state is State.AWAITING_SUPPLEMENT:
            actions.append(b.GIVE_SUPPLEMENT)
        if state in OPEN_STATES:
            actions.append(b.MESSAGE)
        if state is State.ANSWERED:
            actions.append(b.RATE_CASE)
        if state in (State.ANSWERED, State.CLOSED) and case.path == PathCode.PETITION:
            actions.append(b.REVIEW)
        if state in OPEN_STATES and state is not State.REOPENED:
            actions.append(b.WITHDRAW)
        return actions


__all__ = ["ANSWER_RULE", "CaseStatus", "CitizenOps", "Understanding"]
