"""A whole citizen conversation on each path, through the sandbox over real HTTP.

Each test files one item the way a person would (menu or free text, the confirm screen,
every question of the path, wrong answers first where a person gets them wrong) and checks
what the person is told (the unit, the statutory deadline, the guidance) and that the card
lands in the right unit's group, in its own topic. The clock is Monday 2026-03-02, 10:00
in Shanghai; the expected dates are worked out by hand in the comments.
"""

from __future__ import annotations

import re
from typing import Any

from bot.db import repo
from bot.db.records import CaseRecord
from tests.e2e.conftest import World, buttons

NUMBER = re.compile(r"HY-\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")


# --------------------------------------------------------------------------- helpers


def id_check_character(first17: str) -> str:
    """GB 11643-1999 check character: weights 2^(17-i) mod 11, Σ mod 11 → "10X98765432"."""
    total = sum(int(digit) * (2 ** (17 - i) % 11) for i, digit in enumerate(first17))
    return "10X98765432"[total % 11]


def test_id_check_character_helper() -> None:
    # Published example of GB 11643-1999 (11010519491231002X) and a plain-digit one.
    assert id_check_character("11010519491231002") == "X"
    assert id_check_character("44052418800101001") == "4"


def number_in(message: dict[str, Any]) -> str:
    found = NUMBER.search(message.get("text") or "")
    assert found, message.get("text")
    return found.group(0)


async def next_says(world: World, chat: int, expect: str) -> dict[str, Any]:
    """The bot's very next message in ``chat``; it must contain ``expect``."""
    message = await world.bot_says(chat)
    assert expect in (message["text"] or ""), (expect, message["text"])
    return message


async def press(world: World, user: int, message: dict[str, Any], label: str) -> None:
    """Press the inline button labelled ``label`` under ``message`` in a private chat."""
    data = buttons(message)
    assert label in data, (label, list(data))
    pressed = await world.press(user, user, message["message_id"], data[label])
    assert pressed["update_id"]


async def describe_and_confirm(
    world: World, user: int, text: str, *, path: str, unit: str, confirm: str = "✅ 确认"
) -> dict[str, Any]:
    """Send the description; the confirm screen names the path and unit; confirm it."""
    await world.send(user, text)
    screen = await world.bot_says(user, lambda m: confirm in buttons(m))
    assert path in screen["text"], screen["text"]
    assert unit in screen["text"], screen["text"]
    await press(world, user, screen, confirm)
    return screen


async def answer(world: World, user: int, expect: str, reply: str) -> dict[str, Any]:
    """The next question contains ``expect``; answer it with ``reply``."""
    question = await next_says(world, user, expect)
    await world.send(user, reply)
    return question


async def pick(world: World, user: int, expect: str, label: str) -> dict[str, Any]:
    """The next question contains ``expect``; answer it with the button ``label``."""
    question = await next_says(world, user, expect)
    await press(world, user, question, label)
    return question


async def receipt_of(world: World, user: int) -> dict[str, Any]:
    receipt = await world.bot_says(user)
    assert "编号" in receipt["text"] or "Tracking number" in receipt["text"], receipt["text"]
    number_in(receipt)
    return receipt


async def card_in(world: World, unit: str, number: str) -> dict[str, Any]:
    """The case card (with its action buttons) in ``unit``'s group, in its own topic."""
    chat = world.unit(unit)["chat_id"]
    card = await world.bot_says(chat, lambda m: "签收" in buttons(m) and number in m["text"])
    assert card["message_thread_id"] is not None
    return card


async def case_of(world: World, number: str) -> CaseRecord:
    async with world.huiyin.sessionmaker() as session:
        case = await repo.get_case_by_number(session, number)
    assert case is not None
    return case


async def file_petition(world: World, user: int, text: str) -> str:
    """A plain petition with the usual answers; its number."""
    await world.send(user, text)
    screen = await world.bot_says(user, lambda m: "✅ 确认" in buttons(m))
    await press(world, user, screen, "✅ 确认")
    await answer(world, user, "姓名", "张三")
    await answer(world, user, "电话", "13800138000")
    await answer(world, user, "诉求", "请尽快处理")
    return number_in(await receipt_of(world, user))


async def file_disclosure(world: World, user: int) -> str:
    """A disclosure request by a natural person, delivered through the chat; its number."""
    first17 = "52040219900101001"
    await world.send(user, "我想申请公开2025年西秀区低保资金发放的名单和文件")
    screen = await world.bot_says(user, lambda m: "✅ 确认" in buttons(m))
    await press(world, user, screen, "✅ 确认")
    await pick(world, user, "个人还是单位", "自然人（个人）")
    await answer(world, user, "姓名", "张三")
    await answer(world, user, "身份证号码", first17 + id_check_character(first17))
    await answer(world, user, "联系电话", "13800138000")
    await answer(world, user, "所需政府信息", "2025年低保资金发放名单")
    await pick(world, user, "什么形式获取", "电子")
    await pick(world, user, "什么方式获取", "通过本对话发送")
    return number_in(await receipt_of(world, user))


# --------------------------------------------------------------------------- disclosure


async def test_disclosure_request_with_every_article_29_field(world: World) -> None:
    """Must show: from the menu, an applicant gives every Art 29 item; a wrong ID number and
    a wrong phone are explained and the same question taken again; the receipt names the
    disclosure office and the 20-working-day reply date; the card (ID masked) is in the
    office's group."""
    citizen = world.citizen
    first17 = "52040219900101001"
    good_id = first17 + id_check_character(first17)
    wrong_check = "X" if good_id[-1] != "X" else "0"
    bad_id = first17 + wrong_check

    await world.send(citizen, "申请政府信息公开")  # the menu button
    await next_says(world, citizen, "想申请公开的政府信息")
    await describe_and_confirm(
        world,
        citizen,
        "我想申请公开2025年西秀区低保资金发放的名单和文件",
        path="政府信息公开申请",
        unit="办公室（政府信息公开）",
    )
    await pick(world, citizen, "个人还是单位", "自然人（个人）")
    await answer(world, citizen, "姓名", "张三")
    await answer(world, citizen, "身份证号码", bad_id)
    error = await next_says(world, citizen, "校验不通过")
    assert "身份证号码" in error["text"]
    await world.send(citizen, "1234")
    await next_says(world, citizen, "应为18位")
    await world.send(citizen, good_id.lower())  # a lower-case x is fine too
    await answer(world, citizen, "联系电话", "1380013")
    await next_says(world, citizen, "电话号码格式不对")
    await world.send(citizen, "138 0013 8000")
    await answer(world, citizen, "所需政府信息", "2025年西秀区城乡低保资金发放名单及审批文件")
    await pick(world, citizen, "什么形式获取", "电子")
    await pick(world, citizen, "什么方式获取", "电子邮件")
    await answer(world, citizen, "电子邮箱", "zhangsan@example")
    await next_says(world, citizen, "邮箱格式不对")
    await world.send(citizen, "zhangsan@example.com")

    receipt = await receipt_of(world, citizen)
    number = number_in(receipt)
    assert "政府信息公开申请" in receipt["text"]
    assert "办公室（政府信息公开）" in receipt["text"]
    # 20 working days after Mon 2026-03-02 (the start day not counted): 4 + 5 + 5 + 5 in
    # the weeks to Fri 03-27, the 20th is Mon 2026-03-30.
    assert "2026-03-30" in receipt["text"]
    assert "工作日" in receipt["text"]

    card = await card_in(world, "disclosure_office", number)
    masked = good_id[:4] + "*" * 10 + good_id[-4:]
    assert masked in card["text"]
    assert "电子" in card["text"] and "2025年西秀区城乡低保资金" in card["text"]
    assert "zhangsan@example.com" in card["text"]  # staff must know where to send it
    group = world.unit("disclosure_office")["chat_id"]
    assert all(good_id not in (m["text"] or "") for m in await world.messages(group))

    case = await case_of(world, number)
    assert (case.path, case.unit_id, case.state) == ("disclosure", "disclosure_office", "routed")
    assert case.requester_kind == "natural_person"
    assert case.applicant["id_masked"] == masked
    assert good_id not in repr((case.applicant, case.details, case.text))
    assert case.details["form"] == "electronic" and case.details["delivery"] == "email"
    async with world.huiyin.sessionmaker() as session:
        deadlines = {
            d.rule: d.due.isoformat() for d in await repo.deadlines_of_case(session, case.id)
        }
    # 补正 notice at most 7 working days after receipt: Wed 2026-03-11.
    assert deadlines == {
        "disclosure.reply": "2026-03-30",
        "disclosure.supplement_notice": "2026-03-11",
    }


# --------------------------------------------------------------------------- mediation


async def test_mediation_of_a_care_home_deposit_in_pingba(world: World) -> None:
    """Must show: a dispute with a care home in 平坝区 goes to 平坝区民政局 (routing.yaml:
    petitions and mediation by district when the county handles the topic); the receipt
    gives the 5-working-day date to accept and start mediation."""
    citizen = world.citizen
    await world.send(citizen, "申请调解")
    await next_says(world, citizen, "纠纷情况")
    await describe_and_confirm(
        world,
        citizen,
        "平坝区一家养老院不退我母亲的押金，想请民政局调解",
        path="行政调解",
        unit="平坝区民政局",
    )
    await answer(world, citizen, "姓名", "李四")
    await answer(world, citizen, "电话", "0851-33221100")
    await answer(world, citizen, "哪一方", "平坝区某某养老院")
    await answer(world, citizen, "诉求", "退还押金五千元")
    receipt = await receipt_of(world, citizen)
    number = number_in(receipt)
    assert "行政调解" in receipt["text"] and "平坝区民政局" in receipt["text"]
    assert "2026-03-09" in receipt["text"]  # 5 working days after Mon 03-02: Mon 03-09

    card = await card_in(world, "pingba", number)
    assert "平坝区某某养老院" in card["text"] and "养老服务" in card["text"]
    case = await case_of(world, number)
    assert (case.path, case.topic, case.district, case.unit_id) == (
        "mediation",
        "elderly_care",
        "平坝区",
        "pingba",
    )


# --------------------------------------------------------------------------- reconsideration


async def _contest(world: World, body: str, learned: str) -> tuple[str, dict[str, Any]]:
    citizen = world.citizen
    await world.send(citizen, "对行政决定不服")
    await next_says(world, citizen, "不服的决定")
    await describe_and_confirm(
        world,
        citizen,
        "民政局取消了我家的低保，我不服，要求恢复",
        path="行政复议",
        unit="政策法规科",
    )
    await answer(world, citizen, "姓名", "王五")
    await answer(world, citizen, "电话", "13985001234")
    await answer(world, citizen, "哪一个决定", "取消我家最低生活保障待遇的通知")
    await answer(world, citizen, "哪个机关", body)
    await answer(world, citizen, "哪天", "2026年3月5日")  # later than today (03-02)
    await next_says(world, citizen, "还没到")
    await world.send(citizen, learned)
    receipt = await receipt_of(world, citizen)
    return number_in(receipt), receipt


async def test_reconsideration_of_a_county_act_names_the_county_government(world: World) -> None:
    """Must show: a cancelled 低保 by 西秀区民政局, learned on 2026年2月10日: the guidance names
    安顺市西秀区人民政府 (Art 24: the county government hears its departments' acts) and
    the 60-day window's end; the ticket goes to the legal section."""
    number, receipt = await _contest(world, "西秀区民政局", "2026年2月10日")
    text = receipt["text"]
    assert "复议指引" in text
    assert "安顺市西秀区人民政府" in text
    # 60 days after 02-10: 02-28 is day 18, 03-31 day 49, 04-11 day 60 — a Saturday, so
    # the window ends on Mon 2026-04-13 (民法典 Art 203).
    assert "2026-04-13" in text
    assert "政策法规科" in text
    assert "2026-03-09" in text  # the legal section's own 5 working days to call back

    card = await card_in(world, "legal", number)
    assert "取消我家最低生活保障待遇的通知" in card["text"]
    assert "2026-02-10" in card["text"]
    case = await case_of(world, number)
    assert (case.path, case.unit_id) == ("reconsideration", "legal")
    async with world.huiyin.sessionmaker() as session:
        window = next(
            d
            for d in await repo.deadlines_of_case(session, case.id)
            if d.rule == "reconsideration.application_window"
        )
    assert window.due.isoformat() == "2026-04-13"
    assert window.deadline.start.isoformat() == "2026-02-10"


async def test_reconsideration_of_a_city_act_with_a_short_date(world: World) -> None:
    """ "2/10" is February 10th of this year; an act of the city bureau goes to the city
    government (安顺市人民政府)."""
    number, receipt = await _contest(world, "安顺市民政局", "2/10")
    assert "安顺市人民政府" in receipt["text"]
    assert "西秀区人民政府" not in receipt["text"]
    assert "2026-04-13" in receipt["text"]
    await card_in(world, "legal", number)


# --------------------------------------------------------------------------- litigation


async def test_litigation_already_in_court_gets_the_judicial_route(world: World) -> None:
    """Must show: someone already suing is not handled as a petition (诉访分离): the guidance
    gives the judicial route and the 6-month limit; the ticket goes to the legal section."""
    citizen = world.citizen
    await describe_and_confirm(
        world,
        citizen,
        "我已经起诉了民政局，法院正在审理，想问问怎么办",
        path="涉法涉诉",
        unit="政策法规科",
    )
    await answer(world, citizen, "姓名", "赵六")
    await answer(world, citizen, "电话", "13800138000")
    await pick(world, citizen, "哪个阶段", "已立案、正在审理")
    await answer(world, citizen, "法院", "西秀区人民法院")
    await answer(world, citizen, "哪天", "2026-01-15")
    receipt = await receipt_of(world, citizen)
    number = number_in(receipt)
    text = receipt["text"]
    assert "诉访分离" in text and "司法途径" in text
    assert "6个月" in text and "15日" in text
    assert "2026-07-15" in text  # six months after 01-15: Wed 2026-07-15
    assert "政策法规科" in text

    card = await card_in(world, "legal", number)
    assert "西秀区人民法院" in card["text"]
    assert "已立案、正在审理" in card["text"]
    case = await case_of(world, number)
    assert (case.path, case.unit_id) == ("litigation", "legal")


async def test_litigation_without_a_date_says_the_window_is_unknown(world: World) -> None:
    citizen = world.citizen
    await describe_and_confirm(
        world,
        citizen,
        "法院已经判决了，现在执行中，我想了解怎么办",
        path="涉法涉诉",
        unit="政策法规科",
    )
    await answer(world, citizen, "姓名", "赵六")
    await answer(world, citizen, "电话", "13800138000")
    await pick(world, citizen, "哪个阶段", "执行中")
    await answer(world, citizen, "法院", "不清楚")
    await pick(world, citizen, "哪天", "跳过")
    receipt = await receipt_of(world, citizen)
    assert "请尽快确认您知道该决定的日期" in receipt["text"]
    await card_in(world, "legal", number_in(receipt))


# --------------------------------------------------------------------------- another path


async def test_choosing_another_path(world: World) -> None:
    """Must show: the citizen disagrees with the bot's reading ("换一个类别"), picks mediation
    and gets mediation's questions, receipt and unit."""
    citizen = world.citizen
    await world.send(citizen, "旧州镇养老院服务太差，护工态度恶劣，我要投诉")
    screen = await world.bot_says(citizen, lambda m: "换一个类别" in buttons(m))
    assert "信访" in screen["text"]  # the bot reads a complaint
    await press(world, citizen, screen, "换一个类别")
    choose = await next_says(world, citizen, "请选择最符合您情况的类别")
    assert {"行政调解", "政府信息公开申请", "涉法涉诉"} <= set(buttons(choose))
    await press(world, citizen, choose, "行政调解")
    again = await next_says(world, citizen, "行政调解")
    assert "西秀区民政局" in again["text"]  # 旧州镇 is in 西秀区, which handles elderly care
    assert "2026-03-09" in again["text"]
    await press(world, citizen, again, "✅ 确认")
    await answer(world, citizen, "姓名", "张三")
    await answer(world, citizen, "电话", "13800138000")
    await answer(world, citizen, "哪一方", "旧州镇某养老院")
    await answer(world, citizen, "诉求", "请养老院改进服务并道歉")
    receipt = await receipt_of(world, citizen)
    number = number_in(receipt)
    assert "行政调解" in receipt["text"] and "西秀区民政局" in receipt["text"]
    await card_in(world, "xixiu", number)
    case = await case_of(world, number)
    assert case.path == "mediation"
    async with world.huiyin.sessionmaker() as session:
        first = (await repo.events_of_case(session, case.id))[0]
    assert first.data["path_confirmed"] is False  # the citizen chose, not the classifier


# --------------------------------------------------------------------------- attachments


async def test_photo_and_document_reach_the_case_and_the_topic(world: World) -> None:
    """Must show: a photo sent before any words, and a document sent in the middle of the
    questions, are both kept on the case and posted in the unit's topic."""
    citizen = world.citizen
    await world._post("send", {"user_id": citizen, "chat_id": citizen, "photo": True})
    await next_says(world, citizen, "照片/文件已收到")
    await describe_and_confirm(
        world,
        citizen,
        "旧州镇我家低保申请了三个月还没批下来，照片是申请回执",
        path="信访",
        unit="西秀区民政局",
    )
    await answer(world, citizen, "姓名", "张三")
    await next_says(world, citizen, "电话")
    await world._post(
        "send",
        {"user_id": citizen, "chat_id": citizen, "document": True, "caption": "村委会证明"},
    )
    saved = await world.bot_says(citizen)
    assert "已收到" in saved["text"], saved["text"]
    await world.send(citizen, "13800138000")
    await answer(world, citizen, "诉求", "请尽快审批")
    receipt = await receipt_of(world, citizen)
    number = number_in(receipt)

    card = await card_in(world, "xixiu", number)
    group = world.unit("xixiu")["chat_id"]
    photo = await world.bot_says(group, lambda m: bool(m.get("photo")))
    document = await world.bot_says(group, lambda m: bool(m.get("document")))
    assert photo["message_thread_id"] == card["message_thread_id"]
    assert document["message_thread_id"] == card["message_thread_id"]
    assert document["caption"] == "村委会证明"

    case = await case_of(world, number)
    async with world.huiyin.sessionmaker() as session:
        kinds = sorted(a.kind for a in await repo.attachments_of_case(session, case.id))
    assert kinds == ["document", "photo"]


async def test_a_photo_with_a_caption_is_a_description(world: World) -> None:
    citizen = world.citizen
    await world._post(
        "send",
        {
            "user_id": citizen,
            "chat_id": citizen,
            "photo": True,
            "caption": "旧州镇低保申请三个月没有批，这是回执",
        },
    )
    screen = await world.bot_says(citizen, lambda m: "✅ 确认" in buttons(m))
    assert "西秀区民政局" in screen["text"]


# --------------------------------------------------------------------------- English


async def test_language_switches_to_english(world: World) -> None:
    """Must show: /language turns the citizen's conversation to English (confirm screen,
    questions, errors, receipt, unit names); the unit's card stays Chinese; /language again
    turns it back."""
    citizen = world.citizen
    await world.send(citizen, "/language")
    await next_says(world, citizen, "Language set to English.")
    chat = await world.http.get(f"{world.url}/sandbox/api/chats/{citizen}")
    keyboard = (await chat.json())["reply_keyboard"]
    assert "Report a problem / complaint" in repr(keyboard)

    await describe_and_confirm(
        world,
        citizen,
        "旧州镇我家低保申请了三个月还没批下来",
        path="Petition",
        unit="Xixiu District Civil Affairs Bureau",
        confirm="✅ Confirm",
    )
    await answer(world, citizen, "your name", "Zhang San")
    await answer(world, citizen, "phone number", "12345")
    await next_says(world, citizen, "does not look right")
    await world.send(citizen, "13800138000")
    await answer(world, citizen, "your request", "Please approve it soon")
    receipt = await receipt_of(world, citizen)
    assert "Tracking number" in receipt["text"]
    assert "Xixiu District Civil Affairs Bureau" in receipt["text"]
    assert "by 2026-03-17" in receipt["text"]  # 15 days after 03-02
    card = await card_in(world, "xixiu", number_in(receipt))
    assert "信访" in card["text"]
    # What the unit does reaches the citizen in English, with the unit's English name.
    group, staff = world.unit("xixiu")["chat_id"], world.unit("xixiu")["staff_user_id"]
    await world.press(staff, group, card["message_id"], buttons(card)["签收"])
    notice = await world.bot_says(citizen)
    assert "[Notice of acceptance]" in notice["text"], notice["text"]
    assert "accepted by Xixiu District Civil Affairs Bureau" in notice["text"]
    await world.send(staff, "材料已收到。", chat_id=group, thread=card["message_thread_id"])
    relayed = await world.bot_says(citizen)
    assert "[Xixiu District Civil Affairs Bureau] About matter" in relayed["text"]

    await world.send(citizen, "/language")
    await next_says(world, citizen, "已切换为中文")


async def test_an_english_telegram_gets_english_from_the_start(world: World) -> None:
    person = await world.new_user("Alice", language_code="en")
    await world.send(person, "/start")
    start = await next_says(world, person, "Huiyin")
    assert "Personal Information Protection Law" in start["text"]
