"""Whole conversations through the sandbox over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot.db import repo
from bot.db.models import CaseEvent, InboxUpdate
from tests.e2e.conftest import World, buttons

XIXIU = "xixiu"


async def file_petition(world: World, text: str) -> dict[str, Any]:
    """The citizen writes, confirms what the bot understood, answers its questions; the receipt."""
    citizen = world.citizen
    await world.send(citizen, text)
    understood = await world.bot_says(citizen, lambda m: "✅ 确认" in buttons(m))
    assert "信访" in understood["text"]
    await world.press(citizen, citizen, understood["message_id"], buttons(understood)["✅ 确认"])
    answers = iter(["张某", "13800000000", "请尽快审批我家的低保申请"])
    while True:
        message = await world.bot_says(citizen)
        if "编号" in message["text"]:
            return message
        await world.send(citizen, next(answers))


async def card_of(world: World, unit: str) -> dict[str, Any]:
    """The newest case card (the message with the action buttons) in the unit's group."""
    chat = world.unit(unit)["chat_id"]
    return await world.bot_says(chat, lambda m: "签收" in buttons(m) or "办结" in buttons(m))


async def current(world: World, chat_id: int, message_id: int) -> dict[str, Any]:
    """A message as it is now (after edits)."""
    return next(m for m in await world.messages(chat_id) if m["message_id"] == message_id)


async def test_petition_from_complaint_to_rating(world: World) -> None:
    """Must show: a complaint filed as the demo citizen arrives as a topic in the right
    unit's group; staff claim and answer it there; the citizen rates it."""
    receipt = await file_petition(world, "旧州镇我家低保申请了三个月还没批下来，村里一直拖着")
    assert "西秀区民政局" in receipt["text"]
    number = next(w for w in receipt["text"].split() if w.startswith("HY-"))[:17]

    group = world.unit(XIXIU)["chat_id"]
    staff = world.unit(XIXIU)["staff_user_id"]
    card = await card_of(world, XIXIU)
    assert card["message_thread_id"] is not None  # its own forum topic
    assert number in card["text"]

    pressed = await world.press(staff, group, card["message_id"], buttons(card)["签收"])
    assert pressed["answer"]["text"]
    notice = await world.bot_says(world.citizen, lambda m: "受理" in m["text"])
    assert number in notice["text"]

    await world.bot_says(group, lambda m: m["message_id"] == card["message_id"] or True)
    card_now = await _wait_for_buttons(world, group, card["message_id"], "办结")
    await world.press(staff, group, card["message_id"], buttons(card_now)["办结"])
    await world.bot_says(group, lambda m: "答复" in m["text"])
    await world.send(
        staff,
        "经核查，您家的低保已审批通过，下月起发放。",
        chat_id=group,
        thread=card["message_thread_id"],
    )
    answer = await world.bot_says(world.citizen, lambda m: "审批通过" in m["text"])
    assert number in answer["text"]
    prompt = await world.bot_says(world.citizen, lambda m: "★★★★★" in buttons(m))
    await world.press(world.citizen, world.citizen, prompt["message_id"], buttons(prompt)["★★★★★"])
    await world.bot_says(world.citizen, lambda m: "感谢" in m["text"])
    await world.bot_says(world.citizen, lambda m: "评价意见" in m["text"])
    await world.send(world.citizen, "办得很快，谢谢西秀区民政局")
    await world.bot_says(world.citizen, lambda m: "已收到您的评价意见" in m["text"])
    await world.bot_says(group, lambda m: "办得很快" in (m["text"] or ""))

    async with world.huiyin.sessionmaker() as session:
        case = await repo.get_case_by_number(session, number)
        assert case is not None
        assert (case.state, case.rating, case.unit_id) == ("closed", 5, XIXIU)
        assert case.rating_comment == "办得很快，谢谢西秀区民政局"
        actions = [e.action for e in await repo.events_of_case(session, case.id)]
    assert actions[0] in {"receive", "route", "file"}
    assert {"accept", "answer", "rate", "rating_comment"} <= set(actions)


async def test_only_the_owning_unit_can_act(world: World) -> None:
    """A supervisor sits in every group but may not claim a ticket; nothing changes."""
    await file_petition(world, "旧州镇的低保一直没人管，拖了半年")
    group = world.unit(XIXIU)["chat_id"]
    card = await card_of(world, XIXIU)
    pressed = await world.press(world.supervisor, group, card["message_id"], buttons(card)["签收"])
    assert pressed["answer"]["text"]  # a short refusal, no traceback
    async with world.huiyin.sessionmaker() as session:
        cases = await repo.list_cases(session, unit_id=XIXIU)
        assert [c.state for c in cases] == ["routed"]
        refusals = await session.scalar(
            select(func.count()).select_from(CaseEvent).where(CaseEvent.action == "refused")
        )
    assert refusals == 1


async def test_forged_callback_data_is_refused(world: World) -> None:
    """An update with staff callback data from a citizen (a forged or replayed update, as
    a spoofed webhook could carry) changes nothing."""
    import asyncio

    from bot.inbox import store_updates

    await file_petition(world, "旧州镇低保的事，请帮帮忙")
    citizen = world.citizen
    last = (await world.messages(citizen))[-1]
    forged = {
        "update_id": 999_000_001,
        "callback_query": {
            "id": "forged-1",
            "from": {"id": citizen, "is_bot": False, "first_name": "张"},
            "chat_instance": "x",
            "data": "c:acc:1",
            "message": {
                "message_id": last["message_id"],
                "date": 0,
                "chat": {"id": citizen, "type": "private"},
                "text": "…",
            },
        },
    }
    await store_updates(world.huiyin.sessionmaker, [forged])
    world.huiyin.processor.wake()
    for _ in range(100):
        async with world.huiyin.sessionmaker() as session:
            row = await session.get(InboxUpdate, 999_000_001)
            if row is not None and row.status in {"done", "failed"}:
                break
        await asyncio.sleep(0.05)
    async with world.huiyin.sessionmaker() as session:
        case = await repo.get_case(session, 1)
    assert case is not None
    assert case.state == "routed"


async def test_a_guessed_number_reveals_nothing(world: World) -> None:
    stranger = await world.new_user("路人")
    receipt = await file_petition(world, "旧州镇低保审批太慢")
    number = next(w for w in receipt["text"].split() if w.startswith("HY-"))[:17]
    await world.send(stranger, f"/status {number}")
    reply = await world.bot_says(stranger)
    assert number not in reply["text"]
    assert "张某" not in reply["text"]


async def test_deleted_topic_is_recreated(world: World) -> None:
    """Someone deletes the case's topic; the next message for the unit re-creates it and
    the card is posted again there."""
    await file_petition(world, "旧州镇低保审批太慢，请督促")
    group = world.unit(XIXIU)["chat_id"]
    card = await card_of(world, XIXIU)
    old_thread = card["message_thread_id"]
    await world.huiyin.bot.delete_forum_topic(chat_id=group, message_thread_id=old_thread)
    # The citizen adds a message to the open item: it must reach the unit all the same.
    citizen = world.citizen
    await world.send(citizen, "补充一下：村里说材料不全，但我都交了")
    offer = await world.bot_says(
        citizen, lambda m: any(d.startswith("rl:") for d in buttons(m).values())
    )
    relay = next(d for d in buttons(offer).values() if d.startswith("rl:"))
    await world.press(citizen, citizen, offer["message_id"], relay)
    relayed = await world.bot_says(group, lambda m: "材料不全" in (m["text"] or ""))
    assert relayed["message_thread_id"] not in (None, old_thread)
    again = await world.bot_says(group, lambda m: bool(buttons(m)))
    assert again["message_thread_id"] == relayed["message_thread_id"]
    async with world.huiyin.sessionmaker() as session:
        case = await repo.get_case(session, 1)
    assert case is not None
    assert case.thread_id == relayed["message_thread_id"]


async def test_a_restart_in_the_middle_of_an_intake(world: World) -> None:
    """The conversation state lives in the database: after a restart the intake goes on."""
    citizen = world.citizen
    await world.send(citizen, "旧州镇我家低保被拖了很久")
    understood = await world.bot_says(citizen, lambda m: "✅ 确认" in buttons(m))
    await world.press(citizen, citizen, understood["message_id"], buttons(understood)["✅ 确认"])
    await world.bot_says(citizen, lambda m: "姓名" in m["text"])
    await world.restart()
    await world.send(citizen, "张某")
    asks_phone = await world.bot_says(citizen)
    assert "电话" in asks_phone["text"]


async def _wait_for_buttons(
    world: World, chat: int, message_id: int, label: str
) -> dict[str, Any]:
    import asyncio

    for _ in range(200):
        message = await current(world, chat, message_id)
        if label in buttons(message):
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"the card never offered {label}")


async def test_a_group_without_topics_works_with_replies(world: World) -> None:
    """A unit whose group has no topics: the card is a plain message and what follows
    about the case replies to it."""
    staff = world.unit(XIXIU)["staff_user_id"]
    group = await world._post(
        "groups", {"title": "西秀区民政局（普通群）", "forum": False, "members": [staff]}
    )
    async with world.huiyin.sessionmaker() as session, session.begin():
        await repo.set_unit_chat(session, XIXIU, None, forum=True)
        await repo.set_unit_chat(session, XIXIU, group["id"], forum=False)
    await file_petition(world, "旧州镇低保的事拖了很久，请督促")
    card = await world.bot_says(group["id"], lambda m: "签收" in buttons(m))
    assert card["message_thread_id"] is None
    await _card_recorded(world, case_id=1)
    await world.press(staff, group["id"], card["message_id"], buttons(card)["签收"])
    note = await world.bot_says(group["id"], lambda m: "签收" in (m["text"] or ""))
    assert note["reply_to_message_id"] == card["message_id"]


async def _card_recorded(world: World, case_id: int) -> None:
    """The sender records the card's message id just after Telegram answers; a person is
    never that fast, a test is."""
    import asyncio

    for _ in range(200):
        async with world.huiyin.sessionmaker() as session:
            case = await repo.get_case(session, case_id)
        if case is not None and case.card_message_id is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the card's message id was never recorded")


async def test_a_photo_from_staff_reaches_the_citizen(world: World) -> None:
    await file_petition(world, "旧州镇低保的事，请帮帮忙")
    group = world.unit(XIXIU)["chat_id"]
    staff = world.unit(XIXIU)["staff_user_id"]
    card = await card_of(world, XIXIU)
    await world._post(
        "send",
        {
            "user_id": staff,
            "chat_id": group,
            "message_thread_id": card["message_thread_id"],
            "photo": True,
            "caption": "审批通知书照片",
        },
    )
    photo = await world.bot_says(world.citizen, lambda m: bool(m.get("photo")))
    assert photo["caption"] == "审批通知书照片"
    async with world.huiyin.sessionmaker() as session:
        files = await repo.attachments_of_case(session, 1)
    assert [(f.kind, f.from_role) for f in files] == [("photo", "staff")]
