"""The case card in the unit's topic: what the item is, where it stands, what is due, and
the buttons for what may be done now (routing.lifecycle decides which)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.db.records import CaseRecord, DeadlineRecord
from bot.services import buttons as b
from bot.services.common import CARD_TEXT_LIMIT, NOT_DUTIES, clip, esc
from bot.texts import Texts
from routing.lifecycle import Action, allowed_actions

# Card buttons in display order: (lifecycle action, callback code, text key).
CARD_ACTIONS = (
    (Action.ACCEPT, b.ACCEPT, "staff.button.accept"),
    (Action.START, b.START, "staff.button.start"),
    (Action.REQUEST_SUPPLEMENT, b.SUPPLEMENT, "staff.button.supplement"),
    (Action.EXTEND, b.EXTEND, "staff.button.extend"),
    (Action.TRANSFER, b.TRANSFER, "staff.button.transfer"),
    (Action.HAND_BACK, b.HAND_BACK, "staff.button.hand_back"),
    (Action.ANSWER, b.ANSWER, "staff.button.answer"),
)


def deadline_line(texts: Texts, deadline: DeadlineRecord, lang: str) -> str:
    provisional = texts.get("deadline.provisional", lang) if deadline.provisional else ""
    return texts.get(
        "deadline.line",
        lang,
        rule=texts.label("rule", deadline.rule, lang),
        due=deadline.due.isoformat(),
        status=texts.label("deadline_status", deadline.status, lang),
        provisional=provisional,
    )


def card_text(
    texts: Texts,
    case: CaseRecord,
    unit_name: str,
    deadlines: Sequence[DeadlineRecord],
    lang: str,
) -> str:
    applicant = case.applicant
    if case.anonymous:
        who = texts.get("card.anonymous", lang)
    else:
        who = " · ".join(
            esc(applicant[k])
            # Where a disclosure reply is to be posted or emailed (条例 Art 29 (三)) too.
            for k in ("name", "contact", "id_masked", "credit_code", "address", "email")
            if applicant.get(k)
        )
    details = "\n".join(
        f"{texts.label('field', key, lang)}：{esc(texts.label(f'choice.{key}', str(value), lang))}"
        for key, value in case.details.items()
        if value is not None
    )
    if case.requester_kind:
        details += "\n" + texts.get(
            "card.requester_kind",
            lang,
            kind=texts.label("choice.requester_kind", case.requester_kind, lang),
        )
    due = "\n".join(
        deadline_line(texts, d, lang)
        for d in deadlines
        if d.status == "open" or d.rule not in NOT_DUTIES
    )
    return texts.get(
        "card.text",
        lang,
        number=case.number,
        path=texts.label("path", case.path, lang),
        topic=texts.label("topic", case.topic, lang),
        district=esc(case.district or "—"),
        state=texts.label("state", case.state, lang),
        unit=esc(unit_name),
        hops=case.hops,
        applicant=who or "—",
        details=details.strip() or "—",
        deadlines=due or "—",
        text=esc(clip(case.text, CARD_TEXT_LIMIT)),
    )


def card_keyboard(texts: Texts, case: CaseRecord, lang: str) -> b.Keyboard | None:
    """The buttons for the actions legal in the case's state; none once it is settled."""
    allowed = allowed_actions(case.state)
    row = [
        b.button(texts.get(key, lang), b.pack(b.CASE_ACTION, code, case.id))
        for action, code, key in CARD_ACTIONS
        if action in allowed
    ]
    if not row:
        return None
    return b.inline(b.rows_of(row, 3))


def rating_keyboard(case_id: int) -> b.Keyboard:
    stars = [b.button("★" * score, b.pack(b.RATE, case_id, score)) for score in range(1, 6)]
    return b.inline([stars[:3], stars[3:]])
