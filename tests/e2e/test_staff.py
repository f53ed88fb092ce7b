"""Staff at work: every action from the case card in the unit's topic, through the sandbox.

What staff do in their group must reach the citizen exactly as the law has it (受理告知,
补正, 延期 with its reason, 转办, the answer with its reply type) — and what is internal (a
/note) must not. Every action leaves its row in the audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bot.db import repo
from bot.db.records import CaseRecord
from tests.e2e.conftest import World, buttons
from tests.e2e.test_paths import file_disclosure, file_petition, press

XIXIU = "xixiu"


class Desk:
    """One unit's group, seen by its staff member, around one case card."""

    def __init__(self, world: World, unit: str, card: dict[str, Any]) -> None:
        self.world = world
        self.unit = unit
        self.chat = int(world.unit(unit)["chat_id"])
        self.staff = int(world.unit(unit)["staff_user_id"])
        self.card_id = int(card["message_id"])
        self.thread = int(card["message_thread_id"])

    @classmethod
    async def of(cls, world: World, unit: str, number: str) -> Desk:
        chat = world.unit(unit)["chat_id"]
        card = await world.bot_says(chat, lambda m: bool(buttons(m)) and number in m["text"])
        assert card["message_thread_id"] is not None
        return cls(world, unit, card)

    async def card(
        self, until: Callable[[dict[str, Any]], bool] = lambda m: True
    ) -> dict[str, Any]:
        """The card as it is now, once ``until`` holds (edits reach it asynchronously)."""
        for _ in range(200):
            messages = await self.world.messages(self.chat)
            card = next(m for m in messages if m["message_id"] == self.card_id)
            if until(card):
                return card
            await asyncio.sleep(0.05)
        raise AssertionError(f"the card never got there: {card['text']}")

    async def press(self, label: str, *, who: int | None = None) -> dict[str, Any]:
        """Press ``label`` on the card as soon as it offers it; the callback answer."""
        card = await self.card(lambda m: label in buttons(m))
        pressed = await self.world.press(
            who or self.staff, self.chat, self.card_id, buttons(card)[label]
        )
        return dict(pressed)

    async def says(self, predicate: Callable[[str], bool]) -> dict[str, Any]:
        """The bot's next matching message in this case's topic."""
        message = await self.world.bot_says(
            self.chat, lambda m: predicate(m["text"] or m.get("caption") or "")
        )
        assert message["message_thread_id"] == self.thread, message
        return message

    async def write(self, text: str) -> None:
        await self.world.send(self.staff, text, chat_id=self.chat, thread=self.thread)

    async def choose(self, prompt: dict[str, Any], label: str) -> None:
        """Press a button under a prompt the bot posted in the topic."""
        data = buttons(prompt)
        assert label in data, (label, list(data))
        await self.world.press(self.staff, self.chat, prompt["message_id"], data[label])


async def case_of(world: World, number: str) -> CaseRecord:
    async with world.huiyin.sessionmaker() as session:
        case = await repo.get_case_by_number(session, number)
    assert case is not None
    return case


async def actions_of(world: World, number: str) -> list[str]:
    case = await case_of(world, number)
    async with world.huiyin.sessionmaker() as session:
        return [e.action for e in await repo.events_of_case(session, case.id)]


async def topics_in(world: World, chat: int) -> int:
    async with world.http.get(f"{world.url}/sandbox/api/chats/{chat}") as response:
        return len((await response.json())["topics"])


async def petition(
    world: World, text: str = "旧州镇我家低保申请了三个月还没批下来"
) -> tuple[str, Desk]:
    number = await file_petition(world, world.citizen, text)
    return number, await Desk.of(world, XIXIU, number)


# --------------------------------------------------------------------------- 签收, 开始办理, talk


async def test_accept_start_relay_and_internal_note(world: World) -> None:
    """Must show: 签收 sends the 受理告知 with the 60-day date; 开始办理 moves the card on; a
    plain message in the topic reaches the citizen; a /note does not."""
    citizen = world.citizen
    number, desk = await petition(world)

    answer = await desk.press("签收")
    assert answer["answer"]["text"] == "已签收"
    notice = await world.bot_says(citizen)
    assert "受理告知" in notice["text"] and number in notice["text"]
    assert "西秀区民政局" in notice["text"]
    # 60 days after 03-02 is Fri 05-01, 劳动节 (05-01 to 05-05): Wed 2026-05-06.
    assert "2026-05-06" in notice["text"]
    await desk.says(lambda t: "已签收" in t)
    card = await desk.card(lambda m: "开始办理" in buttons(m))
    assert "已受理" in card["text"] and "2026-05-06" in card["text"]
    assert "签收" not in buttons(card)

    await desk.press("开始办理")
    await desk.says(lambda t: "开始办理" in t)
    card = await desk.card(lambda m: "办理中" in m["text"])
    assert "开始办理" not in buttons(card)

    await desk.write("/note 已电话联系村委会，本周内核实")
    noted = await desk.says(lambda t: "备注已记录" in t)
    assert noted["message_thread_id"] == desk.thread
    await desk.write("您好，我们已联系旧州镇核实您家的情况。")
    relayed = await world.bot_says(citizen)
    # The very next thing the citizen gets is the message, not the note.
    assert "已联系旧州镇核实" in relayed["text"] and number in relayed["text"]
    assert "西秀区民政局" in relayed["text"]
    transcript = " ".join(m["text"] or "" for m in await world.messages(citizen))
    assert "村委会" not in transcript

    case = await case_of(world, number)
    assert case.state == "in_progress"
    async with world.huiyin.sessionmaker() as session:
        events = await repo.events_of_case(session, case.id)
    staff = {e.action: e for e in events if e.actor_role == "staff"}
    assert list(staff) == ["accept", "start", "note", "staff_message"]
    assert staff["note"].reason == "已电话联系村委会，本周内核实"
    assert staff["staff_message"].reason == "您好，我们已联系旧州镇核实您家的情况。"
    assert staff["accept"].to_state == "accepted" and staff["start"].to_state == "in_progress"


# --------------------------------------------------------------------------- 补正


async def test_supplement_round_trip_restarts_the_disclosure_clock(world: World) -> None:
    """Must show: staff ask for a 补正 in the topic; the citizen gets it with a button,
    answers two days later with words and a photo; the topic sees both; the reply period
    starts again from that day (政府信息公开条例 Art 30); a second 补正 is refused."""
    citizen = world.citizen
    number = await file_disclosure(world, citizen)
    desk = await Desk.of(world, "disclosure_office", number)
    await desk.press("签收")
    await world.bot_says(citizen, lambda m: "受理告知" in m["text"])

    await desk.press("补正")
    await desk.says(lambda t: "需要群众补正的内容" in t)
    await desk.write("请写明所需名单的具体乡镇和月份。")
    await desk.says(lambda t: "已发出补正通知" in t)
    notice = await world.bot_says(citizen, lambda m: "补正通知" in m["text"])
    assert "请写明所需名单的具体乡镇和月份" in notice["text"] and number in notice["text"]
    assert "重新计算" in notice["text"]
    await desk.card(lambda m: "待补正" in m["text"])

    world.advance(days=2)  # Wednesday 2026-03-04
    await press(world, citizen, notice, "补正/补充材料")
    await world.bot_says(citizen, lambda m: "请发送需要补充的内容" in m["text"])
    await world._post(
        "send",
        {
            "user_id": citizen,
            "chat_id": citizen,
            "photo": True,
            "caption": "旧州镇，2025年1月至6月",
        },
    )
    thanks = await world.bot_says(citizen)
    # 20 working days after Wed 03-04: Wed 2026-04-01.
    assert "重新计算" in thanks["text"] and "2026-04-01" in thanks["text"]
    supplied = await desk.says(lambda t: "群众已补正" in t)
    assert "2025年1月至6月" in supplied["text"]
    photo = await world.bot_says(desk.chat, lambda m: bool(m.get("photo")))
    assert photo["message_thread_id"] == desk.thread
    card = await desk.card(lambda m: "办理中" in m["text"])
    assert "2026-04-01" in card["text"]

    await desk.press("补正")
    await desk.says(lambda t: "需要群众补正的内容" in t)
    await desk.write("再补充一下身份证复印件")
    refused = await desk.says(lambda t: "一次性告知补正" in t)
    assert "第三十条" in refused["text"]

    case = await case_of(world, number)
    assert case.state == "in_progress"
    actions = await actions_of(world, number)
    assert actions.count("request_supplement") == 1
    assert "supplement_received" in actions
    async with world.huiyin.sessionmaker() as session:
        reply = next(
            d
            for d in await repo.deadlines_of_case(session, case.id)
            if d.rule == "disclosure.reply"
        )
        attachments = await repo.attachments_of_case(session, case.id)
    assert reply.due.isoformat() == "2026-04-01"
    assert [a.kind for a in attachments] == ["photo"]


# --------------------------------------------------------------------------- 延期


async def test_extension_with_reason_and_approver(world: World) -> None:
    """Must show: 延期 asks for the reason, then the approving head; the citizen is told the
    new date and the reason (信访工作条例 Art 34); the audit keeps the approver."""
    citizen = world.citizen
    number, desk = await petition(world)
    await desk.press("签收")
    await world.bot_says(citizen, lambda m: "受理告知" in m["text"])

    await desk.press("延期")
    await desk.says(lambda t: "延期理由" in t)
    await desk.write("需要到县里调取历年审批档案")
    await desk.says(lambda t: "批准延期的负责人" in t)
    await desk.write("王局长")
    told = await world.bot_says(citizen, lambda m: "延期告知" in m["text"])
    # 30 more days from Wed 05-06: Fri 2026-06-05.
    assert "2026-06-05" in told["text"]
    assert "需要到县里调取历年审批档案" in told["text"]
    assert "王局长" not in told["text"]  # the approver is internal
    line = await desk.says(lambda t: "已延期" in t)
    assert "2026-06-05" in line["text"]
    await desk.card(lambda m: "2026-06-05" in m["text"])

    case = await case_of(world, number)
    async with world.huiyin.sessionmaker() as session:
        extend = next(
            e for e in await repo.events_of_case(session, case.id) if e.action == "extend"
        )
    assert extend.reason == "需要到县里调取历年审批档案"
    assert extend.data["approver"] == "王局长"
    assert (extend.data["due_before"], extend.data["due_after"]) == ("2026-05-06", "2026-06-05")

    # The cap is reached: a second extension is refused, and nothing changes.
    await desk.press("延期")
    await desk.says(lambda t: "延期理由" in t)
    await desk.write("还需要更多时间")
    await desk.says(lambda t: "批准延期的负责人" in t)
    await desk.write("王局长")
    await desk.says(lambda t: "法定延长上限" in t)
    assert (await actions_of(world, number)).count("extend") == 1


# --------------------------------------------------------------------------- 转办, 退回


async def test_transfer_to_another_unit(world: World) -> None:
    """Must show: 转办 to another unit with a reason puts the card in that unit's group (its
    own topic), counts the hop, keeps the first unit as lead, tells the citizen; the old
    unit can no longer act and the new one can."""
    citizen = world.citizen
    number, desk = await petition(world)
    old_accept = buttons(await desk.card())["签收"]

    await desk.press("转办")
    choose = await desk.says(lambda t: "转办给哪个单位" in t)
    assert XIXIU not in buttons(choose).values()
    await desk.choose(choose, "社会救助科")
    await desk.says(lambda t: "转办给社会救助科的理由" in t)
    await desk.write("涉及市级统筹的特困供养资金，请市局办理")
    line = await desk.says(lambda t: "已转办至社会救助科" in t)
    assert "市级统筹" in line["text"]
    # The old card says where the item went and offers nothing any more.
    await desk.card(lambda m: not buttons(m) and "承办：社会救助科（转办 1 次）" in m["text"])
    told = await world.bot_says(citizen, lambda m: "转由" in m["text"])
    assert "社会救助科" in told["text"] and number in told["text"]

    new = await Desk.of(world, "social_assistance", number)
    card = await new.card()
    assert "转办 1 次" in card["text"] and "社会救助科" in card["text"]

    case = await case_of(world, number)
    assert (case.unit_id, case.lead_unit_id, case.hops) == ("social_assistance", XIXIU, 1)
    # The sender records the card's id just after Telegram answers: a test can be faster.
    for _ in range(100):
        if case.card_message_id is not None:
            break
        await asyncio.sleep(0.02)
        case = await case_of(world, number)
    assert (case.thread_id, case.card_message_id) == (new.thread, new.card_id)
    assert await topics_in(world, desk.chat) == 1  # no stray topic opened in the old group

    # The old unit's button (an old client still showing it) no longer works; the new one's do.
    refused = await world._post(
        "press",
        {
            "user_id": desk.staff,
            "chat_id": desk.chat,
            "message_id": desk.card_id,
            "data": old_accept,
            "force": True,
        },
    )
    assert refused["answer"]["show_alert"]
    assert (await case_of(world, number)).state == "routed"
    await new.press("签收")
    notice = await world.bot_says(citizen, lambda m: "受理告知" in m["text"])
    assert "社会救助科" in notice["text"]

    async with world.huiyin.sessionmaker() as session:
        events = await repo.events_of_case(session, case.id)
    transfer = next(e for e in events if e.action == "transfer")
    assert transfer.reason == "涉及市级统筹的特困供养资金，请市局办理"
    assert transfer.data == {"from_unit": XIXIU, "to_unit": "social_assistance"}
    assert [e.action for e in events[-2:]] == ["refused", "accept"]


async def test_hand_back_to_the_fallback_unit(world: World) -> None:
    """Must show: 退回 with a reason sends the item to the fallback unit (兜底); the hop is
    counted; the fallback unit itself cannot hand it back again."""
    number, desk = await petition(world)
    await desk.press("退回")
    await desk.says(lambda t: "退回的理由" in t)
    await desk.write("申请人户籍不在本区，不属本局职责")
    await desk.says(lambda t: "已退回" in t and "办公室（信访接待）" in t)

    desk_general = await Desk.of(world, "general_desk", number)
    card = await desk_general.card()
    assert "转办 1 次" in card["text"]
    case = await case_of(world, number)
    assert (case.unit_id, case.hops, case.lead_unit_id) == ("general_desk", 1, XIXIU)
    assert case.thread_id == desk_general.thread
    assert await topics_in(world, desk.chat) == 1

    await desk_general.press("退回")
    await desk_general.says(lambda t: "退回的理由" in t)
    await desk_general.write("也不归我们")
    await desk_general.says(lambda t: "兜底单位不能退回给自己" in t)
    case = await case_of(world, number)
    assert (case.unit_id, case.hops) == ("general_desk", 1)
    actions = await actions_of(world, number)
    assert actions.count("hand_back") == 1


# --------------------------------------------------------------------------- 办结


async def test_disclosure_answer_with_the_article_36_reply_type(world: World) -> None:
    """Must show: 办结 on a disclosure request asks for the Art 36 reply type (group, then the
    exact case); the citizen's reply names it and the remedy (复议 / 诉讼); the type is
    stored for the annual report and the reply period is met."""
    citizen = world.citizen
    number = await file_disclosure(world, citizen)
    desk = await Desk.of(world, "disclosure_office", number)
    await desk.press("签收")
    await world.bot_says(citizen, lambda m: "受理告知" in m["text"])

    await desk.press("办结")
    groups = await desk.says(lambda t: "答复类型" in t)
    assert {"予以公开", "部分公开", "不予公开", "无法提供", "不予处理", "其他处理"} == set(
        buttons(groups)
    )
    await desk.choose(groups, "不予公开")
    cases = await desk.says(lambda t: "具体情形" in t)
    assert len(buttons(cases)) == 8
    await desk.choose(cases, "不予公开·保护第三方合法权益")
    await desk.says(lambda t: "请回复答复内容" in t)
    await desk.write("该名单含第三方个人隐私，经征求意见不同意公开。")
    reply = await world.bot_says(citizen, lambda m: "【答复】" in m["text"])
    assert "不予公开·保护第三方合法权益" in reply["text"]
    assert "第三方个人隐私" in reply["text"]
    assert "行政复议" in reply["text"] and "行政诉讼" in reply["text"]
    rating = await world.bot_says(citizen, lambda m: "★★★★★" in buttons(m))
    assert number in rating["text"]
    await desk.says(lambda t: "已办结答复" in t)
    card = await desk.card(lambda m: "已答复" in m["text"])
    assert not buttons(card)

    case = await case_of(world, number)
    assert (case.state, case.reply_type) == ("answered", "3.4")
    async with world.huiyin.sessionmaker() as session:
        deadlines = {d.rule: d.status for d in await repo.deadlines_of_case(session, case.id)}
        answered = next(
            e for e in await repo.events_of_case(session, case.id) if e.action == "answer"
        )
    assert deadlines["disclosure.reply"] == "met"
    assert answered.data == {"reply_type": "3.4"}


async def test_a_message_in_the_general_chat_goes_nowhere(world: World) -> None:
    """Staff chatting in the group's General topic is not relayed to any citizen."""
    number, desk = await petition(world)
    await world.send(desk.staff, "大家下午开会", chat_id=desk.chat)
    await desk.write("您好，材料已收到。")
    relayed = await world.bot_says(world.citizen, lambda m: "材料已收到" in m["text"])
    assert number in relayed["text"]
    transcript = " ".join(m["text"] or "" for m in await world.messages(world.citizen))
    assert "开会" not in transcript
    assert (await actions_of(world, number)).count("staff_message") == 1
