"""Staff and citizen operations on a filed item, and every refusal."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.db.records import CaseRecord
from bot.services import CaseNotFound, CaseService, InvalidInput, NotAllowed, ServiceError
from tests.services.conftest import CHATS, DISCLOSURE, NOW, PETITION, People, sent_to

LATER = NOW + dt.timedelta(days=1)


async def petition(service: CaseService, session: AsyncSession, people: People) -> CaseRecord:
    return await service.file_case(session, people.citizen, PETITION, NOW)


async def test_accept_sends_notice_and_starts_the_60_days(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await petition(service, session, people)
    case = await service.accept(session, people.xixiu_staff, case.id, LATER)
    assert case.state == "accepted"
    assert case.accepted_at is not None
    deadlines = {d.rule: d for d in await repo.deadlines_of_case(session, case.id)}
    assert deadlines["petition.acknowledge"].status == "met"
    # 60 days from 3 March (信访工作条例 Art 34) is 2 May, in the Labour Day holiday → 6 May.
    assert deadlines["petition.respond"].due == dt.date(2026, 5, 6)
    notice = (await sent_to(session, people.citizen.telegram_id))[-1]
    assert notice["_key"] == f"case:{case.id}:accepted"
    assert "2026-05-06" in notice["text"]
    said = [r for r in await sent_to(session, CHATS["xixiu"]) if r["_method"] == "sendMessage"]
    assert "签收" in said[-1]["text"]


async def test_other_units_and_citizens_are_refused_and_audited(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await petition(service, session, people)
    for actor in (people.legal_staff, people.supervisor, people.admin, people.citizen):
        with pytest.raises(NotAllowed) as refused:
            await service.accept(session, actor, case.id, NOW)
        assert refused.value.key == "error.not_your_case"
    refusals = [e for e in await repo.events_of_case(session, case.id) if e.action == "refused"]
    assert len(refusals) == 4
    assert refusals[0].data["attempted"] == "accept"
    assert (await repo.get_case(session, case.id)).state == "routed"  # type: ignore[union-attr]
    refused_ops = [
        service.start(session, people.legal_staff, case.id, NOW),
        service.request_supplement(session, people.legal_staff, case.id, "补充", NOW),
        service.extend(session, people.legal_staff, case.id, "复杂", "局长", NOW),
        service.transfer(session, people.legal_staff, case.id, "legal", "不归我", NOW),
        service.hand_back(session, people.legal_staff, case.id, "不归我", NOW),
        service.answer(session, people.legal_staff, case.id, "答复", NOW),
        service.note(session, people.legal_staff, case.id, "备注", NOW),
        service.relay_to_citizen(session, people.legal_staff, case.id, "你好", NOW),
        service.staff_case(session, people.legal_staff, case.id, "sup", NOW),
    ]
    for operation in refused_ops:
        with pytest.raises(NotAllowed):
            await operation
    with pytest.raises(CaseNotFound):
        await service.accept(session, people.xixiu_staff, 999_999, NOW)


async def test_illegal_transition_is_a_readable_refusal(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await petition(service, session, people)
    with pytest.raises(ServiceError) as error:
        await service.answer(session, people.xixiu_staff, case.id, "答复内容", NOW)
    assert error.value.key == "error.illegal_transition"
    text = service.texts.get(error.value.key, "zh", **error.value.fmt)
    assert "已分办" in text
    assert "答复" in text


async def test_answer_rating_and_review(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await petition(service, session, people)
    await service.accept(session, people.xixiu_staff, case.id, NOW)
    await service.start(session, people.xixiu_staff, case.id, NOW)
    case = await service.answer(session, people.xixiu_staff, case.id, "已审核，符合条件", LATER)
    assert case.state == "answered"
    assert case.answer == "已审核，符合条件"
    deadlines = {d.rule: d.status for d in await repo.deadlines_of_case(session, case.id)}
    assert deadlines["petition.respond"] == "met"
    to_citizen = await sent_to(session, people.citizen.telegram_id)
    answered, prompt = to_citizen[-2:]
    assert "已审核，符合条件" in answered["text"]
    assert "复查" in answered["text"]
    stars = [b["callback_data"] for row in prompt["reply_markup"]["inline_keyboard"] for b in row]
    assert stars == [f"r:{case.id}:{n}" for n in range(1, 6)]

    with pytest.raises(InvalidInput):
        await service.rate(session, people.citizen, case.id, 6, LATER)
    with pytest.raises(CaseNotFound):  # someone else's item
        await service.rate(session, people.other_citizen, case.id, 1, LATER)
    case = await service.rate(session, people.citizen, case.id, 4, LATER, comment="还行")
    assert (case.state, case.rating, case.rating_comment) == ("closed", 4, "还行")

    # 复查 within 30 days of the answer (信访工作条例 Art 35) …
    late = LATER + dt.timedelta(days=40)
    with pytest.raises(ServiceError) as too_late:
        await service.request_review(session, people.citizen, case.id, "不服", late)
    assert too_late.value.key == "review.too_late"
    case = await service.request_review(session, people.citizen, case.id, "不服处理意见", LATER)
    assert case.state == "reopened"
    rules = {d.rule: d.due for d in await repo.deadlines_of_case(session, case.id)}
    assert rules["petition.review_decision"] == dt.date(2026, 4, 2)


async def test_review_only_for_petitions(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await service.file_case(session, people.citizen, DISCLOSURE, NOW)
    await service.accept(session, people.disclosure_staff, case.id, NOW)
    await service.answer(session, people.disclosure_staff, case.id, "予以公开，见附件", NOW, "1")
    with pytest.raises(ServiceError) as error:
        await service.request_review(session, people.citizen, case.id, "不服", NOW)
    assert error.value.key == "review.not_petition"


async def test_disclosure_answer_needs_an_art_36_reply_type(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await service.file_case(session, people.citizen, DISCLOSURE, NOW)
    await service.accept(session, people.disclosure_staff, case.id, NOW)
    for bad in (None, "3", "9.9"):
        with pytest.raises(ServiceError) as error:
            await service.answer(session, people.disclosure_staff, case.id, "不予公开", NOW, bad)
        assert error.value.key == "staff.reply_type_required"
    case = await service.answer(
        session, people.disclosure_staff, case.id, "涉及第三方个人信息", NOW, "3.4"
    )
    assert case.reply_type == "3.4"
    answered = (await sent_to(session, people.citizen.telegram_id))[-2]
    assert "保护第三方合法权益" in answered["text"]
    assert "行政复议" in answered["text"]


async def test_disclosure_supplement_once_and_restart(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await service.file_case(session, people.citizen, DISCLOSURE, NOW)
    await service.accept(session, people.disclosure_staff, case.id, NOW)
    case = await service.request_supplement(
        session, people.disclosure_staff, case.id, "请写明文号", NOW
    )
    assert case.state == "awaiting_supplement"
    notice = (await sent_to(session, people.citizen.telegram_id))[-1]
    assert "第三十条" in notice["text"]
    assert notice["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"m:sup:{case.id}"
    # The corrected application arrives on Monday 9 March: 20 working days again (Art 30).
    arrived = dt.datetime(2026, 3, 9, 2, 0, tzinfo=dt.UTC)
    case = await service.answer_supplement(session, people.citizen, case.id, "文号X", arrived)
    assert case.state == "in_progress"
    reply = {d.rule: d for d in await repo.deadlines_of_case(session, case.id)}["disclosure.reply"]
    assert reply.due == dt.date(2026, 4, 7)  # 20 working days after 9 March, Qingming skipped
    thanks = (await sent_to(session, people.citizen.telegram_id))[-1]
    assert "2026-04-07" in thanks["text"]
    with pytest.raises(ServiceError) as once:
        await service.request_supplement(session, people.disclosure_staff, case.id, "再补", NOW)
    assert once.value.key == "staff.supplement_once"


async def test_extend_needs_reason_and_respects_the_cap(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await petition(service, session, people)
    with pytest.raises(ServiceError):  # not accepted yet: no 60-day period to extend
        await service.extend(session, people.xixiu_staff, case.id, "复杂", "局长", NOW)
    await service.accept(session, people.xixiu_staff, case.id, NOW)
    with pytest.raises(ServiceError) as missing:
        await service.extend(session, people.xixiu_staff, case.id, "复杂", " ", NOW)
    assert missing.value.key == "staff.extend_needs_reason"
    await service.extend(session, people.xixiu_staff, case.id, "需实地核查", "李局长", NOW)
    respond = {d.rule: d for d in await repo.deadlines_of_case(session, case.id)}
    assert respond["petition.respond"].due == dt.date(2026, 6, 5)  # 6 May + 30 days
    told = (await sent_to(session, people.citizen.telegram_id))[-1]
    assert "需实地核查" in told["text"]
    assert "2026-06-05" in told["text"]
    with pytest.raises(ServiceError) as cap:  # Art 34: no more than 30 days in all
        await service.extend(session, people.xixiu_staff, case.id, "还要查", "李局长", NOW)
    assert cap.value.key == "staff.extend_refused"


async def test_transfer_and_hand_back_count_hops(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await petition(service, session, people)
    with pytest.raises(ServiceError):
        await service.transfer(session, people.xixiu_staff, case.id, "legal", " ", NOW)
    with pytest.raises(ServiceError):
        await service.transfer(session, people.xixiu_staff, case.id, "nowhere", "原因", NOW)
    case = await service.transfer(session, people.xixiu_staff, case.id, "legal", "涉及复议", NOW)
    assert (case.unit_id, case.lead_unit_id, case.hops) == ("legal", "xixiu", 1)
    assert case.thread_id is None
    assert case.card_message_id is None
    assert any("↪️" in p["text"] for p in await sent_to(session, CHATS["xixiu"]))
    card = (await sent_to(session, CHATS["legal"]))[-1]
    assert card["_card"] is True
    with pytest.raises(NotAllowed):  # the old unit no longer holds it
        await service.accept(session, people.xixiu_staff, case.id, NOW)
    case = await service.hand_back(session, people.legal_staff, case.id, "非复议事项", NOW)
    assert (case.unit_id, case.hops) == ("general_desk", 2)
    with pytest.raises(ServiceError) as own:
        await service.hand_back(session, people.desk_staff, case.id, "不归我", NOW)
    assert own.value.key == "staff.hand_back_refused"


async def test_note_and_messages_both_ways(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await service.file_case(session, people.citizen, DISCLOSURE, NOW)
    await service.note(session, people.disclosure_staff, case.id, "已电话联系", NOW)
    await service.relay_to_citizen(
        session, people.disclosure_staff, case.id, "请问您要哪一年的？", NOW
    )
    await service.relay_to_unit(session, people.citizen, case.id, "2025年的", NOW)
    actions = [e.action for e in await repo.events_of_case(session, case.id)]
    assert actions[-3:] == ["note", "staff_message", "citizen_message"]
    to_citizen = (await sent_to(session, people.citizen.telegram_id))[-1]
    assert "请问您要哪一年的？" in to_citizen["text"]
    posted = (await sent_to(session, CHATS["disclosure_office"]))[-1]
    assert "2025年的" in posted["text"]
    assert posted["_case_topic"] is True
    assert not any(
        "已电话联系" in p.get("text", "")
        for p in await sent_to(session, people.citizen.telegram_id)
    )
    with pytest.raises(CaseNotFound):
        await service.relay_to_unit(session, people.other_citizen, case.id, "冒充", NOW)


async def test_withdraw_voids_deadlines(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await petition(service, session, people)
    with pytest.raises(CaseNotFound):
        await service.withdraw(session, people.other_citizen, case.id, NOW)
    case = await service.withdraw(session, people.citizen, case.id, NOW)
    assert case.state == "withdrawn"
    assert {d.status for d in await repo.deadlines_of_case(session, case.id)} == {"void"}
    with pytest.raises(ServiceError):
        await service.withdraw(session, people.citizen, case.id, NOW)
    with pytest.raises(ServiceError):
        await service.relay_to_unit(session, people.citizen, case.id, "还在吗", NOW)


async def test_case_status_reveals_nothing_to_others(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    case = await petition(service, session, people)
    status = await service.case_status(
        session, people.citizen, case.number.lower().replace("-", " ")
    )
    assert status.case.id == case.id
    assert status.current is not None
    assert status.current.rule == "petition.acknowledge"
    for number in (case.number, "HY-2026-AAAA-BBBB", "nonsense"):
        with pytest.raises(CaseNotFound) as error:
            await service.case_status(session, people.other_citizen, number)
        assert error.value.key == "error.case_not_found"
    assert [c.id for c in await service.my_cases(session, people.citizen)] == [case.id]
    assert await service.my_cases(session, people.other_citizen) == []


async def test_anonymous_items_get_no_messages(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    anonymous = replace(PETITION, answers={"request": "举报"}, anonymous=True)
    case = await service.file_case(session, people.citizen, anonymous, NOW)
    await service.accept(session, people.xixiu_staff, case.id, NOW)
    with pytest.raises(ServiceError) as error:
        await service.relay_to_citizen(session, people.xixiu_staff, case.id, "您好", NOW)
    assert error.value.key == "staff.anonymous"
    keys = [p["_key"] for p in await sent_to(session, people.citizen.telegram_id)]
    assert keys == [f"case:{case.id}:receipt"]
