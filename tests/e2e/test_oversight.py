"""Supervisors and admins, in their private chats with the bot, through the sandbox.

The clock starts on Monday 2026-03-02 (10:00 in Shanghai); ``world.advance`` moves it on.
A petition filed then must say whether it is accepted by Tue 03-17 (15 days); a mediation
request must be accepted by Mon 03-09 (5 working days, 03-07/08 a weekend).
"""

from __future__ import annotations

import re
from typing import Any

from bot.db import repo
from tests.e2e.conftest import World, buttons
from tests.e2e.test_paths import answer, file_petition, number_in, press, receipt_of
from tests.e2e.test_staff import Desk, actions_of, case_of

PETITION = "旧州镇我家低保申请了三个月还没批下来"


async def file_mediation(world: World) -> str:
    citizen = world.citizen
    await world.send(citizen, "平坝区一家养老院不退我母亲的押金，想请民政局调解")
    screen = await world.bot_says(citizen, lambda m: "✅ 确认" in buttons(m))
    await press(world, citizen, screen, "✅ 确认")
    await answer(world, citizen, "姓名", "李四")
    await answer(world, citizen, "电话", "13800138000")
    await answer(world, citizen, "哪一方", "平坝区某某养老院")
    await answer(world, citizen, "诉求", "退还押金")
    return number_in(await receipt_of(world, citizen))


async def ask(world: World, user: int, command: str) -> dict[str, Any]:
    """``user`` sends ``command`` in their private chat; the bot's answer."""
    await world.send(user, command)
    return await world.bot_says(user)


# --------------------------------------------------------------------------- due and overdue


async def test_overdue_and_due_soon_follow_the_clock(world: World) -> None:
    """Must show: /duesoon lists what falls due within the days asked, /overdue what has
    passed its last day (the last day itself is still in time), both moving with the clock;
    meeting the duty takes an item off the overdue list."""
    supervisor = world.supervisor
    petition = await file_petition(world, world.citizen, PETITION)
    mediation = await file_mediation(world)

    reply = await ask(world, supervisor, "/overdue")
    assert reply["text"] == "目前没有逾期事项。"
    soon = await ask(world, supervisor, "/duesoon 7")
    assert "7 日内到期 1 件" in soon["text"]
    assert mediation in soon["text"] and petition not in soon["text"]
    assert "平坝区民政局" in soon["text"] and "受理并启动调解：2026-03-09" in soon["text"]
    both = await ask(world, supervisor, "/duesoon 15")
    assert "15 日内到期 2 件" in both["text"] and petition in both["text"]
    bad = await ask(world, supervisor, "/duesoon 99")
    assert "0–60" in bad["text"]
    bad = await ask(world, supervisor, "/duesoon 明天")
    assert "0–60" in bad["text"]

    world.advance(days=7)  # Mon 03-09: the mediation's last day, still in time
    assert (await ask(world, supervisor, "/overdue"))["text"] == "目前没有逾期事项。"
    world.advance(days=1)  # Tue 03-10
    late = await ask(world, supervisor, "/overdue")
    assert "已逾期 1 件" in late["text"]
    assert mediation in late["text"] and "平坝区民政局" in late["text"]
    assert petition not in late["text"]

    world.advance(days=8)  # Wed 03-18: the petition's 15 days are over too
    late = await ask(world, supervisor, "/overdue")
    assert "已逾期 2 件" in late["text"] and petition in late["text"]
    stats = await ask(world, supervisor, "/stats")
    assert "西秀区民政局：1 / 1 / — / 0.0" in stats["text"]
    assert "平坝区民政局：1 / 1 / — / 0.0" in stats["text"]
    assert "社会救助科：0 / 0 / — / 0.0" in stats["text"]

    # 平坝 accepts (late): the acceptance duty is settled as missed, off the overdue list;
    # the month to conclude now runs from today.
    desk = await Desk.of(world, "pingba", mediation)
    await desk.press("签收")
    await world.bot_says(world.citizen, lambda m: "受理告知" in m["text"])
    late = await ask(world, supervisor, "/overdue")
    assert "已逾期 1 件" in late["text"]
    assert mediation not in late["text"] and petition in late["text"]
    case = await case_of(world, mediation)
    async with world.huiyin.sessionmaker() as session:
        deadlines = {d.rule: d for d in await repo.deadlines_of_case(session, case.id)}
    assert deadlines["mediation.accept"].status == "missed"
    # 30 days after Wed 03-18: Fri 2026-04-17.
    assert deadlines["mediation.conclude"].due.isoformat() == "2026-04-17"


# --------------------------------------------------------------------------- a case's record


async def test_case_shows_the_audit_trail_and_skipped_days(world: World) -> None:
    """Must show: /case NUMBER gives the supervisor every event (who, role, what, why) and
    every deadline with the days it skipped."""
    supervisor = world.supervisor
    mediation = await file_mediation(world)
    desk = await Desk.of(world, "pingba", mediation)
    await desk.press("签收")
    await desk.write("/note 已约双方周三面谈")
    await desk.says(lambda t: "备注已记录" in t)

    detail = await ask(world, supervisor, f"/case {mediation}")
    text = detail["text"]
    assert mediation in text and "行政调解" in text and "养老服务" in text
    assert "承办：平坝区民政局" in text and "首办：平坝区民政局" in text
    lines = text.split("\n")
    received = next(line for line in lines if "（群众）收到" in line)
    assert received.startswith("2026-03-02 10:00 张 三")
    assert any("（系统）分办 → 已分办" in line for line in lines)
    assert any("（工作人员）受理 → 已受理" in line for line in lines)
    note = next(line for line in lines if "内部备注" in line)
    assert "已约双方周三面谈" in note
    # The accept period skipped the weekend; the month to conclude runs from acceptance.
    assert "受理并启动调解：2026-03-09（按期完成）" in text
    assert "跳过：2026-03-07（周末）、2026-03-08（周末）" in text
    assert "调解结束：2026-04-01（进行中）" in text

    missing = await ask(world, supervisor, "/case HY-2026-AAAA-BBBB")
    assert "没有找到" in missing["text"]


# --------------------------------------------------------------------------- 督办


async def test_urge_reaches_the_unit_topic_and_is_audited(world: World) -> None:
    """Must show: /urge NUMBER text is posted in the case's topic of the unit, confirmed to
    the supervisor, copied to the other supervisors, and recorded."""
    supervisor = world.supervisor
    petition = await file_petition(world, world.citizen, PETITION)
    desk = await Desk.of(world, "xixiu", petition)

    # A second supervisor, by invitation: they get a copy of the urge.
    invited = await ask(world, world.admin, "/invite supervisor")
    code = re.search(r"/join (\S+)", invited["text"])
    assert code, invited["text"]
    colleague = await world.new_user("周", language_code="zh-hans")
    joined = await ask(world, colleague, f"/join {code.group(1)}")
    assert "督查人员" in joined["text"]

    usage = await ask(world, supervisor, f"/urge {petition}")
    assert "用法" in usage["text"]
    done = await ask(world, supervisor, f"/urge {petition} 群众反映强烈，请三日内答复")
    assert done["text"] == f"已督办事项 {petition}。"
    urged = await desk.says(lambda t: "【督办】" in t)
    assert "李 督查" in urged["text"] and "请三日内答复" in urged["text"]
    copy = await world.bot_says(colleague, lambda m: "督办了事项" in m["text"])
    assert petition in copy["text"] and "西秀区民政局" in copy["text"]

    case = await case_of(world, petition)
    async with world.huiyin.sessionmaker() as session:
        urge = next(e for e in await repo.events_of_case(session, case.id) if e.action == "urge")
        person = await repo.get_person(session, urge.actor_id or 0)
    assert urge.reason == "群众反映强烈，请三日内答复"
    assert (urge.actor_role, urge.from_state, urge.to_state) == ("supervisor", "routed", "routed")
    assert person is not None and person.telegram_id == supervisor
    detail = await ask(world, supervisor, f"/case {petition}")
    assert "督办" in detail["text"] and "请三日内答复" in detail["text"]


# --------------------------------------------------------------------------- who may


async def test_a_citizen_gets_nothing_privileged(world: World) -> None:
    """Must show: a citizen (or staff member) typing the supervisors' commands gets the help
    text; no list, no record, no urge."""
    citizen = world.citizen
    petition = await file_petition(world, citizen, PETITION)
    desk = await Desk.of(world, "xixiu", petition)
    world.advance(days=30)
    for command in ("/overdue", "/duesoon 60", "/stats", f"/case {petition}"):
        reply = await ask(world, citizen, command)
        assert "请直接写下您要反映的问题" in reply["text"], (command, reply["text"])
        assert "逾期" not in reply["text"] and "办理记录" not in reply["text"]
    await ask(world, citizen, f"/urge {petition} 快点办")
    staff = desk.staff
    reply = await ask(world, staff, "/overdue")
    assert petition not in reply["text"] and "已逾期" not in reply["text"]
    reply = await ask(world, citizen, "/invite xixiu staff")
    assert "邀请码" not in reply["text"]

    assert "urge" not in await actions_of(world, petition)
    await desk.write("/note 核对")  # the next thing in the topic is the note's receipt
    await desk.says(lambda t: "备注已记录" in t)
    topic = [m for m in await world.messages(desk.chat) if m["message_thread_id"] == desk.thread]
    assert not any("督办" in (m["text"] or "") for m in topic)


async def test_invite_and_join_make_a_new_colleague_staff(world: World) -> None:
    """Must show: an admin's /invite xixiu staff gives a one-time code; the new colleague
    (refused before) can act on the unit's cards after /join; the code works once, and not
    after it expires."""
    petition = await file_petition(world, world.citizen, PETITION)
    desk = await Desk.of(world, "xixiu", petition)
    newcomer = await world.new_user("孙", language_code="zh-hans")
    world.add_to_group(newcomer, desk.chat)

    refused = await desk.press("签收", who=newcomer)
    assert refused["answer"]["show_alert"]
    assert (await case_of(world, petition)).state == "routed"

    invited = await ask(world, world.admin, "/invite xixiu staff")
    assert "工作人员" in invited["text"] and "西秀区民政局" in invited["text"]
    code = re.search(r"/join (\S+)", invited["text"])
    assert code, invited["text"]
    joined = await ask(world, newcomer, f"/join {code.group(1)}")
    assert joined["text"] == "欢迎！您已加入，身份：工作人员，单位：西秀区民政局。"

    accepted = await desk.press("签收", who=newcomer)
    assert accepted["answer"]["text"] == "已签收"
    await world.bot_says(world.citizen, lambda m: "受理告知" in m["text"])
    await desk.says(lambda t: "孙 已签收" in t)
    case = await case_of(world, petition)
    async with world.huiyin.sessionmaker() as session:
        events = await repo.events_of_case(session, case.id)
        person = await repo.get_person_by_telegram(session, newcomer)
    assert person is not None and (person.role, person.unit_id) == ("staff", "xixiu")
    accept = next(e for e in events if e.action == "accept")
    assert accept.actor_id == person.id
    assert [e.action for e in events].count("refused") == 1

    # Used once; another code expires after 72 hours.
    stranger = await world.new_user("钱")
    again = await ask(world, stranger, f"/join {code.group(1)}")
    assert "已被使用" in again["text"]
    second = re.search(r"/join (\S+)", (await ask(world, world.admin, "/invite xixiu"))["text"])
    assert second
    world.advance(hours=73)
    late = await ask(world, stranger, f"/join {second.group(1)}")
    assert "已过期" in late["text"]
    wrong = await ask(world, stranger, "/join NOPE1234")
    assert "不正确" in wrong["text"]
    unknown = await ask(world, world.admin, "/invite nowhere staff")
    assert "没有 id 为 nowhere 的单位" in unknown["text"]
