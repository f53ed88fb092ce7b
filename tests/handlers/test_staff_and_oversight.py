"""Staff in their group's topics, supervisors' and admins' commands, and the errors router."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message
from sqlalchemy import select

from bot.db import repo
from bot.db.models import OutboxMessage
from bot.db.records import CaseRecord
from bot.outbox import OutboxItem
from bot.topics import TopicKeeper
from tests.handlers.conftest import Harness
from tests.services.conftest import CHATS, DISCLOSURE, PETITION

OFFICE = CHATS["disclosure_office"]
STAFF = 201  # 王公开, disclosure office
LEGAL = 202  # 赵法制, legal section
CITIZEN = 101
TOPIC = 77


async def filed(harness: Harness, intake=DISCLOSURE) -> CaseRecord:  # type: ignore[no-untyped-def]
    async with harness.sessionmaker() as session:
        case = await harness.service.file_case(
            session, harness.people.citizen, intake, harness.now
        )
        # What the sender's hooks record once the topic and card exist.
        case = await repo.update_case(
            session, case.id, case.version, thread_id=TOPIC, card_message_id=500
        )
        await session.commit()
    return case


async def state_of(harness: Harness, case_id: int) -> str:
    async with harness.sessionmaker() as session:
        case = await repo.get_case(session, case_id)
    assert case is not None
    return case.state


async def test_accept_answer_with_reply_type_in_the_topic(harness: Harness) -> None:
    case = await filed(harness)
    await harness.press(STAFF, f"c:acc:{case.id}", chat_id=OFFICE, thread_id=TOPIC)
    assert await state_of(harness, case.id) == "accepted"
    edits = [r for r in await harness.outbox_to(OFFICE) if r["_method"] == "editMessageText"]
    assert edits
    assert edits[-1]["message_id"] == 500
    assert edits[-1]["_card_edit"] is True

    await harness.press(STAFF, f"c:ans:{case.id}", chat_id=OFFICE, thread_id=TOPIC)
    groups = (await harness.outbox_to(OFFICE))[-1]
    assert groups["_thread"] == TOPIC
    assert "第三十六条" in groups["text"]
    await harness.press(STAFF, f"rt:{case.id}:3", chat_id=OFFICE, thread_id=TOPIC)
    subtypes = (await harness.outbox_to(OFFICE))[-1]
    assert len(subtypes["reply_markup"]["inline_keyboard"]) == 8
    await harness.press(STAFF, f"rt:{case.id}:3.4", chat_id=OFFICE, thread_id=TOPIC)
    # A colleague typing in the same topic is not taken as the answer: prompts are per person.
    await harness.send(203, "路过", chat_id=OFFICE, thread_id=TOPIC)
    await harness.send(STAFF, "涉及第三方个人隐私，不予公开。", chat_id=OFFICE, thread_id=TOPIC)
    async with harness.sessionmaker() as session:
        answered = await repo.get_case(session, case.id)
    assert answered is not None
    assert (answered.state, answered.reply_type) == ("answered", "3.4")
    citizen = await harness.outbox_to(CITIZEN)
    assert "不予公开" in citizen[-2]["text"]
    assert "r:" in str(citizen[-1]["reply_markup"])


async def test_a_press_before_the_card_id_is_recorded_still_edits_the_card(
    harness: Harness,
) -> None:
    """Staff may press a button in the moment between Telegram showing the card and the
    sender recording its message id: the edit is aimed at the card when it is sent (the
    card, earlier in the same chat, is recorded by then), never dropped."""
    async with harness.sessionmaker() as session:
        case = await harness.service.file_case(
            session, harness.people.citizen, DISCLOSURE, harness.now
        )
        await session.commit()
    await harness.press(STAFF, f"c:acc:{case.id}", chat_id=OFFICE)
    async with harness.sessionmaker() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        edit = next(r for r in rows if r.method == "editMessageText" and r.chat_id == OFFICE)
        item = OutboxItem.of(edit)
    assert "message_id" not in item.payload
    keeper = TopicKeeper(harness.sessionmaker, harness.bot)
    assert await keeper.prepare(item) is None  # no card out yet: nothing to edit

    async with harness.sessionmaker() as session:  # the sender records the card
        fresh = await repo.get_case(session, case.id)
        assert fresh is not None
        await repo.update_case(session, case.id, fresh.version, card_message_id=500)
        await session.commit()
    aimed = await keeper.prepare(item)
    assert aimed is not None
    assert aimed.payload["message_id"] == 500
    assert aimed.build().model_dump()["message_id"] == 500


async def test_other_unit_and_forged_buttons_are_refused(harness: Harness) -> None:
    case = await filed(harness)
    await harness.press(LEGAL, f"c:acc:{case.id}", chat_id=OFFICE, thread_id=TOPIC)
    assert "不是该事项承办单位" in harness.alerts()[-1]
    await harness.press(LEGAL, f"c:sup:{case.id}", chat_id=OFFICE, thread_id=TOPIC)
    await harness.press(STAFF, "c:acc:999999", chat_id=OFFICE, thread_id=TOPIC)
    assert "没有找到" in harness.alerts()[-1]
    await harness.press(STAFF, "garbage", chat_id=OFFICE, thread_id=TOPIC)
    assert "失效" in harness.alerts()[-1]
    async with harness.sessionmaker() as session:
        events = await repo.events_of_case(session, case.id)
    assert [e.reason for e in events if e.action == "refused"] == ["accept", "sup"]
    assert await state_of(harness, case.id) == "routed"


async def test_supplement_extend_transfer_prompts(harness: Harness) -> None:
    case = await filed(harness, PETITION)
    xixiu, staff = CHATS["xixiu"], 204  # a group without topics: replies to the card
    await harness.press(staff, f"c:acc:{case.id}", chat_id=xixiu)
    await harness.press(staff, f"c:ext:{case.id}", chat_id=xixiu)
    await harness.send(staff, "需要实地核查", chat_id=xixiu)
    assert "负责人" in await harness.last_text(xixiu)
    await harness.send(staff, "李局长", chat_id=xixiu)
    assert "需要实地核查" in await harness.last_text(CITIZEN)
    await harness.press(staff, f"c:sup:{case.id}", chat_id=xixiu)
    await harness.send(staff, "请提供户口本照片", chat_id=xixiu)
    assert await state_of(harness, case.id) == "awaiting_supplement"
    assert "户口本" in await harness.last_text(CITIZEN)


async def test_transfer_then_the_new_unit_gets_the_card(harness: Harness) -> None:
    case = await filed(harness, PETITION)
    xixiu, staff = CHATS["xixiu"], 204
    await harness.press(staff, f"c:trf:{case.id}", chat_id=xixiu)
    choose = (await harness.outbox_to(xixiu))[-1]
    assert f"ct:{case.id}:legal" in str(choose["reply_markup"])
    await harness.press(staff, f"ct:{case.id}:legal", chat_id=xixiu)
    await harness.send(staff, "属于复议事项", chat_id=xixiu)
    card = (await harness.outbox_to(CHATS["legal"]))[-1]
    assert card["_card"] is True
    assert case.number in card["text"]


async def test_topic_messages_and_notes(harness: Harness) -> None:
    case = await filed(harness)
    await harness.send(STAFF, "请问您需要哪一年的数据？", chat_id=OFFICE, thread_id=TOPIC)
    assert "哪一年" in await harness.last_text(CITIZEN)
    await harness.send(STAFF, "/note 已电话沟通", chat_id=OFFICE, thread_id=TOPIC)
    assert "备注已记录" in await harness.last_text(OFFICE)
    before = len(await harness.outbox_to(CITIZEN))
    await harness.send(STAFF, "大家早上好", chat_id=OFFICE)  # the general chat: not relayed
    assert len(await harness.outbox_to(CITIZEN)) == before
    async with harness.sessionmaker() as session:
        actions = [e.action for e in await repo.events_of_case(session, case.id)]
    assert actions[-2:] == ["staff_message", "note"]


async def test_supervisor_commands(harness: Harness) -> None:
    case = await filed(harness, PETITION)
    await harness.send(301, "/overdue")
    assert "没有逾期" in await harness.last_text(301)
    await harness.send(301, "/duesoon 30")
    assert case.number in await harness.last_text(301)
    await harness.send(301, "/stats")
    assert "西秀区民政局：1 / 0" in await harness.last_text(301)
    await harness.send(301, f"/case {case.number}")
    detail = await harness.last_text(301)
    assert "办理记录" in detail
    assert "分办" in detail
    await harness.send(301, f"/urge {case.number} 请尽快受理")
    assert "已督办" in await harness.last_text(301)
    assert "请尽快受理" in await harness.last_text(CHATS["xixiu"])
    await harness.send(CITIZEN, f"/case {case.number}")  # not for citizens
    assert "办理记录" not in await harness.last_text(CITIZEN)


async def test_admin_invite_join_bind(harness: Harness) -> None:
    await harness.send(401, "/invite legal staff")
    invited = await harness.last_text(401)
    code = invited.split("<code>")[1].split("</code>")[0]
    await harness.send(555, f"/join {code}", chat_id=-7777)  # joining from a group is fine
    assert "欢迎" in await harness.last_text(-7777)
    await harness.send(401, "/bind charity", chat_id=-8888, thread_id=1)
    assert "慈善" in await harness.last_text(-8888)
    async with harness.sessionmaker() as session:
        unit = await repo.get_unit(session, "charity")
        newcomer = await repo.get_person_by_telegram(session, 555)
    assert unit is not None
    assert unit.chat_id == -8888
    assert newcomer is not None
    assert newcomer.unit_id == "legal"
    await harness.send(401, "/units")
    assert "charity" in await harness.last_text(401)
    await harness.send(401, "/whois 101")
    assert "张三" in await harness.last_text(401)
    await harness.send(CITIZEN, "/bind legal", chat_id=-9999)  # not an admin: ignored
    assert await harness.outbox_to(-9999) == []


async def test_errors_router_says_something_short(harness: Harness) -> None:
    boom = Router(name="boom")

    @boom.message()
    async def explode(message: Message) -> None:
        raise RuntimeError("secret internals")

    harness.dp.sub_routers.insert(0, boom)
    boom._parent_router = harness.dp
    try:
        await harness.send(CITIZEN, "hello")
    finally:
        harness.dp.sub_routers.remove(boom)
    text = await harness.last_text(CITIZEN)
    assert "出了点问题" in text
    assert "secret" not in text
