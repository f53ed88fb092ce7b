"""Filing an item: the case, its deadlines, events, the receipt and the unit's card."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.services import AttachmentIn, CaseService, Intake, InvalidInput
from tests.services.conftest import (
    CHATS,
    DISCLOSURE,
    NOW,
    PETITION,
    RECONSIDERATION,
    People,
    sent_to,
)


def test_understand_previews_path_unit_and_first_deadline(service: CaseService) -> None:
    seen = service.understand("我想申请公开今年低保名单", now=NOW)
    assert (seen.path, seen.unit_id, seen.rule) == (
        "disclosure",
        "disclosure_office",
        "disclosure.reply",
    )
    # 20 working days after Monday 2 March 2026 (条例 Art 33): Monday 30 March.
    assert seen.due == dt.date(2026, 3, 30)
    chosen = service.understand("我想申请公开今年低保名单", now=NOW, path="petition")
    assert chosen.path == "petition"
    assert chosen.rule == "petition.acknowledge"
    assert chosen.confidence == 1.0
    assert chosen.to_dict() == type(chosen).from_dict(chosen.to_dict()).to_dict()


async def test_petition_receipt_card_deadline_and_events(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await service.file_case(session, people.citizen, PETITION, NOW)
    assert case.state == "routed"
    assert case.unit_id == "xixiu"
    assert case.district == "西秀区"
    assert case.applicant == {"name": "张三", "contact": "13800138000"}
    assert case.details == {"request": "请尽快审核我的低保申请"}
    deadlines = await repo.deadlines_of_case(session, case.id)
    assert [(d.rule, d.due) for d in deadlines] == [("petition.acknowledge", dt.date(2026, 3, 17))]
    events = await repo.events_of_case(session, case.id)
    assert [e.action for e in events] == ["receive", "route"]
    assert events[1].data["unit"] == "xixiu"

    (receipt,) = await sent_to(session, people.citizen.telegram_id)
    assert case.number in receipt["text"]
    assert "2026-03-17" in receipt["text"]
    assert receipt["_key"] == f"case:{case.id}:receipt"
    # 西秀区's group has no topics: the card is a plain message marked as the card.
    (card,) = await sent_to(session, CHATS["xixiu"])
    assert card["_card"] is True
    assert "_case_topic" not in card
    buttons = [b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert f"c:acc:{case.id}" in buttons
    assert f"c:ans:{case.id}" not in buttons


async def test_disclosure_masks_id_and_counts_working_days(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await service.file_case(session, people.citizen, DISCLOSURE, NOW)
    assert case.unit_id == "disclosure_office"
    assert case.applicant["id_masked"] == "1101**********002X"
    assert "id_number" not in case.applicant
    assert "11010519491231002X" not in str(case.applicant)
    assert case.requester_kind == "natural_person"
    rules = {d.rule: d.due for d in await repo.deadlines_of_case(session, case.id)}
    assert rules == {
        "disclosure.supplement_notice": dt.date(2026, 3, 11),  # 7 working days (Art 30)
        "disclosure.reply": dt.date(2026, 3, 30),  # 20 working days (Art 33)
    }
    (card,) = await sent_to(session, CHATS["disclosure_office"])
    assert card["_case_topic"] is True
    assert card["_card"] is True
    assert card["_thread"] is None  # the sender creates the topic
    assert "1101**********002X" in card["text"]


async def test_reconsideration_receipt_guides_to_the_competent_government(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await service.file_case(session, people.citizen, RECONSIDERATION, NOW)
    assert case.unit_id == "legal"
    rules = {d.rule: d.due for d in await repo.deadlines_of_case(session, case.id)}
    # 60 days from 20 February (行政复议法 Art 20): 21 April 2026.
    assert rules["reconsideration.application_window"] == dt.date(2026, 4, 21)
    (receipt,) = await sent_to(session, people.citizen.telegram_id)
    assert "安顺市西秀区人民政府" in receipt["text"]
    assert "2026-04-21" in receipt["text"]
    city = replace(RECONSIDERATION, answers={**RECONSIDERATION.answers, "body": "安顺市民政局"})
    await service.file_case(session, people.other_citizen, city, NOW)
    (receipt,) = await sent_to(session, people.other_citizen.telegram_id)
    assert "安顺市人民政府" in receipt["text"]


async def test_litigation_window_when_a_date_is_given(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    intake = Intake(
        path="litigation",
        topic="social_assistance",
        district=None,
        text="我已经起诉民政局，法院立案了",
        answers={
            "name": "张三",
            "contact": "13800138000",
            "stage": "filed",
            "court": "西秀区法院",
            "date_learned": "2026-01-10",
        },
    )
    case = await service.file_case(session, people.citizen, intake, NOW)
    rules = {d.rule: d.due for d in await repo.deadlines_of_case(session, case.id)}
    assert rules["litigation.filing_window"] == dt.date(2026, 7, 10)  # six months (Art 46)
    assert "litigation.guidance" in rules
    (receipt,) = await sent_to(session, people.citizen.telegram_id)
    assert "2026-07-10" in receipt["text"]


async def test_mediation_and_anonymous_petition(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    mediation = Intake(
        path="mediation",
        topic="elderly_care",
        district="西秀区",
        text="和养老院因为费用发生纠纷",
        answers={
            "name": "张三",
            "contact": "13800138000",
            "other_party": "某养老院",
            "request": "调解退费",
        },
    )
    case = await service.file_case(session, people.citizen, mediation, NOW)
    assert [d.rule for d in await repo.deadlines_of_case(session, case.id)] == ["mediation.accept"]
    anonymous = replace(PETITION, answers={"request": "举报"}, anonymous=True)
    case = await service.file_case(session, people.other_citizen, anonymous, NOW)
    assert case.anonymous
    assert case.applicant == {}
    # No reply duty for anonymous reports: no acknowledge deadline.
    assert await repo.deadlines_of_case(session, case.id) == []
    (receipt,) = await sent_to(session, people.other_citizen.telegram_id)
    assert "匿名" in receipt["text"]


async def test_attachments_are_stored_and_forwarded(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    photo = AttachmentIn(kind="photo", file_id="PHOTO1", caption="通知书")
    case = await service.file_case(
        session, people.citizen, replace(DISCLOSURE, attachments=(photo,)), NOW
    )
    (stored,) = await repo.attachments_of_case(session, case.id)
    assert stored.file_id == "PHOTO1"
    posts = await sent_to(session, CHATS["disclosure_office"])
    assert posts[-1]["_method"] == "sendPhoto"
    assert posts[-1]["photo"] == "PHOTO1"


async def test_unbound_unit_gets_its_cards_on_bind(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    intake = replace(PETITION, topic="elderly_care", district=None)
    case = await service.file_case(session, people.citizen, intake, NOW)
    assert case.unit_id == "elderly_care"  # no group bound yet: nothing posted
    assert await sent_to(session, -2001) == []
    await service.bind(session, people.admin, "elderly_care", -2001, True, NOW)
    (card,) = await sent_to(session, -2001)
    assert card["_card"] is True
    assert case.number in card["text"]


async def test_file_case_refuses_empty_text(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    with pytest.raises(InvalidInput):
        await service.file_case(session, people.citizen, replace(PETITION, text=" "), NOW)
