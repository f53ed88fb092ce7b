"""The citizen's conversation, fed as updates; assertions are on the outbox and the database."""

from __future__ import annotations

from bot.db import repo
from bot.services import buttons as b
from handlers.callbacks import (
    CaseAction,
    Confirm,
    MyCase,
    Pick,
    RateCase,
    ReplyTypePick,
    TransferTo,
)
from tests.handlers.conftest import Harness

CITIZEN = 101


def buttons(row: dict) -> list[str]:
    return [
        btn["callback_data"] for line in row["reply_markup"]["inline_keyboard"] for btn in line
    ]


def test_service_buttons_match_the_callback_factories() -> None:
    assert b.pack(b.CASE_ACTION, b.ACCEPT, 42) == CaseAction(action="acc", case_id=42).pack()
    assert b.pack(b.TRANSFER_TO, 42, "legal") == TransferTo(case_id=42, unit="legal").pack()
    assert b.pack(b.REPLY_TYPE, 42, "3.4") == ReplyTypePick(case_id=42, code="3.4").pack()
    assert b.pack(b.MY_CASE, b.WITHDRAW, 42) == MyCase(action="wd", case_id=42).pack()
    assert b.pack(b.RATE, 42, 5) == RateCase(case_id=42, score=5).pack()
    assert CaseAction.unpack("c:ans:42") == CaseAction(action="ans", case_id=42)
    longest = TransferTo(case_id=2**31 - 1, unit="social_assistance").pack()  # INTEGER max
    assert len(longest.encode()) <= 64


async def test_start_shows_privacy_notice_and_menu_once_per_update(harness: Harness) -> None:
    await harness.send(CITIZEN, "/start", update_id=7)
    await harness.send(CITIZEN, "/start", update_id=7)  # replayed after a crash: nothing twice
    (row,) = await harness.outbox_to(CITIZEN)
    assert "个人信息保护法" in row["text"]
    assert row["reply_markup"]["keyboard"][0][0]["text"] == "反映问题/投诉建议"
    await harness.send(CITIZEN, "/language")
    assert "English" in await harness.last_text(CITIZEN)


async def test_petition_intake_step_by_step(harness: Harness) -> None:
    await harness.send(CITIZEN, "我家低保申请交上去三个月了一直没人处理，旧州镇")
    understood = (await harness.outbox_to(CITIZEN))[-1]
    assert "西秀区民政局" in understood["text"]
    assert "2026-03-17" in understood["text"]
    assert Confirm(choice="yes").pack() in buttons(understood)
    await harness.press(CITIZEN, Confirm(choice="yes").pack())
    assert "姓名" in await harness.last_text(CITIZEN)
    await harness.send(CITIZEN, "张三")
    await harness.send(CITIZEN, "12345")
    assert "电话号码格式不对" in await harness.last_text(CITIZEN)
    await harness.send(CITIZEN, "138 0013 8000")
    assert "诉求" in await harness.last_text(CITIZEN)
    await harness.send(CITIZEN, "请尽快审核")
    receipt = await harness.last_text(CITIZEN)
    assert "HY-2026-" in receipt
    assert "2026-03-17" in receipt
    async with harness.sessionmaker() as session:
        (case,) = await repo.cases_of_citizen(session, harness.people.citizen.id)
        assert case.applicant == {"name": "张三", "contact": "13800138000"}
        assert case.unit_id == "xixiu"
    card = (await harness.outbox_to(CHATS_XIXIU))[-1]
    assert card["_card"] is True


CHATS_XIXIU = -1004


async def test_disclosure_from_the_menu_with_choices_and_id_check(harness: Harness) -> None:
    await harness.send(CITIZEN, "申请政府信息公开")
    await harness.send(CITIZEN, "申请公开2025年低保资金发放情况")
    understood = (await harness.outbox_to(CITIZEN))[-1]
    assert "政府信息公开申请" in understood["text"]
    await harness.press(CITIZEN, Confirm(choice="yes").pack())
    await harness.press(CITIZEN, Pick(value="natural_person").pack())
    await harness.send(CITIZEN, "张三")
    await harness.send(CITIZEN, "110105194912310021")
    assert "校验不通过" in await harness.last_text(CITIZEN)
    await harness.send(CITIZEN, "11010519491231002X")
    await harness.send(CITIZEN, "13800138000")
    await harness.send(CITIZEN, "2025年低保资金发放汇总表")
    await harness.press(CITIZEN, Pick(value="nonsense").pack())  # an old or forged button
    await harness.press(CITIZEN, Pick(value="electronic").pack())
    await harness.press(CITIZEN, Pick(value="email").pack())
    await harness.send(CITIZEN, "zhang@example.com")
    receipt = await harness.last_text(CITIZEN)
    assert "2026-03-30" in receipt  # 20 working days
    async with harness.sessionmaker() as session:
        (case,) = await repo.cases_of_citizen(session, harness.people.citizen.id)
    assert case.path == "disclosure"
    assert case.applicant["id_masked"] == "1101**********002X"
    assert case.details == {
        "information": "2025年低保资金发放汇总表",
        "form": "electronic",
        "delivery": "email",
    }
    assert case.applicant["email"] == "zhang@example.com"


async def test_change_path_and_dates_in_words(harness: Harness) -> None:
    await harness.send(CITIZEN, "民政局取消了我的低保")
    await harness.press(CITIZEN, Confirm(choice="change").pack())
    choose = (await harness.outbox_to(CITIZEN))[-1]
    assert "p:reconsideration" in buttons(choose)
    await harness.press(CITIZEN, "p:reconsideration")
    assert "行政复议" in await harness.last_text(CITIZEN)
    await harness.press(CITIZEN, Confirm(choice="yes").pack())
    for answer in ("张三", "13800138000", "取消低保的通知", "西秀区民政局", "明年"):
        await harness.send(CITIZEN, answer)
    assert "没看懂这个日期" in await harness.last_text(CITIZEN)
    await harness.send(CITIZEN, "2026年2月20日")
    receipt = await harness.last_text(CITIZEN)
    assert "2026-04-21" in receipt
    assert "西秀区人民政府" in receipt


async def test_status_my_cases_withdraw_and_rating(harness: Harness) -> None:
    await harness.send(CITIZEN, "/status HY-2026-AAAA-BBBB")
    assert "没有找到" in await harness.last_text(CITIZEN)
    await harness.send(CITIZEN, "/my")
    assert "还没有提交过" in await harness.last_text(CITIZEN)
    async with harness.sessionmaker() as session:
        from tests.services.conftest import PETITION

        case = await harness.service.file_case(
            session, harness.people.citizen, PETITION, harness.now
        )
        await session.commit()
    await harness.send(CITIZEN, f"/status {case.number}")
    status = (await harness.outbox_to(CITIZEN))[-1]
    assert "已分办" in status["text"]
    assert f"m:wd:{case.id}" in buttons(status)
    # Someone else pressing the citizen's button learns nothing.
    await harness.press(102, f"m:wd:{case.id}")
    assert "没有找到" in harness.alerts()[-1]
    await harness.press(CITIZEN, f"m:wd:{case.id}")
    async with harness.sessionmaker() as session:
        assert (await repo.get_case(session, case.id)).state == "withdrawn"  # type: ignore[union-attr]
    await harness.press(CITIZEN, RateCase(case_id=case.id, score=5).pack())
    assert "不能" in harness.alerts()[-1]  # a withdrawn item cannot be rated


async def test_supplement_via_my_button_with_a_photo(harness: Harness) -> None:
    from tests.services.conftest import DISCLOSURE

    async with harness.sessionmaker() as session:
        case = await harness.service.file_case(
            session, harness.people.citizen, DISCLOSURE, harness.now
        )
        await harness.service.accept(
            session, harness.people.disclosure_staff, case.id, harness.now
        )
        await harness.service.request_supplement(
            session, harness.people.disclosure_staff, case.id, "请写明年份", harness.now
        )
        await session.commit()
    await harness.press(CITIZEN, f"m:sup:{case.id}")
    photo = [{"file_id": "PHOTO", "file_unique_id": "u", "width": 1, "height": 1}]
    await harness.send(CITIZEN, None, photo=photo, caption="2025年的")
    async with harness.sessionmaker() as session:
        updated = await repo.get_case(session, case.id)
        files = await repo.attachments_of_case(session, case.id)
    assert updated is not None
    assert updated.state == "in_progress"
    assert [f.file_id for f in files] == ["PHOTO"]


async def test_free_text_can_go_to_an_open_case(harness: Harness) -> None:
    from tests.services.conftest import PETITION

    async with harness.sessionmaker() as session:
        case = await harness.service.file_case(
            session, harness.people.citizen, PETITION, harness.now
        )
        await session.commit()
    await harness.send(CITIZEN, "我又去问了一次，还是没人管")
    understood = (await harness.outbox_to(CITIZEN))[-1]
    assert f"rl:{case.id}" in buttons(understood)
    await harness.press(CITIZEN, f"rl:{case.id}")
    assert "已转给承办单位" in await harness.last_text(CITIZEN)
    assert "还是没人管" in await harness.last_text(CHATS_XIXIU)


async def test_unknown_commands_get_help_not_a_classification(harness: Harness) -> None:
    await harness.send(CITIZEN, "/overdue")  # a supervisor command from a citizen
    assert "/my" in await harness.last_text(CITIZEN)


async def test_a_stale_button_is_answered(harness: Harness) -> None:
    await harness.press(CITIZEN, Confirm(choice="yes").pack())  # no intake in progress
    assert "失效" in harness.alerts()[-1]
