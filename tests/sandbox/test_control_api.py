"""The control API end to end: people, groups, sending, pressing, transcripts, the page."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web

from bot.sandbox import DEFAULT_TOKEN, SandboxServer, create_app, seed_demo
from bot.sandbox.files import placeholder_png
from tests.sandbox.conftest import Control


async def test_users_and_groups(bot: Bot, control: Control) -> None:
    citizen = await control.user("张三", language_code="zh-hans")
    staff = await control.user("王科员")

    group = await control.post(
        "/groups", {"title": "社会救助科", "forum": True, "members": [staff]}
    )

    assert str(group["id"]).startswith("-100")
    assert group["is_forum"] is True
    users = {u["id"]: u for u in await control.get("/users")}
    assert users[citizen]["language_code"] == "zh-hans"
    updates = await bot.get_updates()
    added = updates[-1].my_chat_member
    assert added is not None
    assert added.chat.id == group["id"]
    assert added.new_chat_member.status == "administrator"


async def test_send_text_becomes_a_message_update(bot: Bot, control: Control) -> None:
    citizen = await control.user()

    sent = await control.post("/send", {"user_id": citizen, "chat_id": citizen, "text": "/start"})

    [update] = await bot.get_updates()
    assert update.update_id == sent["update_id"]
    message = update.message
    assert message is not None
    assert message.message_id == sent["message_id"]
    assert message.from_user is not None
    assert message.from_user.id == citizen
    assert message.chat.type == "private"
    assert [(e.type, e.offset, e.length) for e in message.entities or []] == [
        ("bot_command", 0, 6)
    ]


async def test_send_photo_and_document(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    image = placeholder_png(40, 30)

    await control.post(
        "/send",
        {
            "user_id": citizen,
            "caption": "身份证",
            "photo": {"base64": base64.b64encode(image).decode(), "filename": "id.png"},
        },
    )
    await control.post("/send", {"user_id": citizen, "document": True})

    photo_update, document_update = await bot.get_updates()
    photo = photo_update.message.photo[-1]  # type: ignore[union-attr,index]
    assert (photo.width, photo.height) == (40, 30)
    assert photo_update.message.caption == "身份证"  # type: ignore[union-attr]
    downloaded = await bot.download(photo.file_id)
    assert downloaded is not None
    assert downloaded.read() == image
    document = document_update.message.document  # type: ignore[union-attr]
    assert document is not None
    assert document.file_name == "placeholder.txt"


async def test_send_into_a_topic_and_reply(bot: Bot, control: Control) -> None:
    staff = await control.user("王科员")
    group = await control.forum([staff])
    topic = await bot.create_forum_topic(group, "工单 #3")
    asked = await bot.send_message(group, "请核实", message_thread_id=topic.message_thread_id)
    await bot.get_updates(offset=-1)  # skip the my_chat_member update

    reply = await control.post(
        "/send",
        {
            "user_id": staff,
            "chat_id": group,
            "text": "已核实",
            "reply_to_message_id": asked.message_id,
        },
    )

    [update] = await bot.get_updates(offset=reply["update_id"])
    message = update.message
    assert message is not None
    assert message.message_thread_id == topic.message_thread_id  # a reply stays in its topic
    assert message.reply_to_message is not None
    assert message.reply_to_message.message_id == asked.message_id


async def test_strangers_cannot_post_in_a_group(control: Control) -> None:
    staff = await control.user()
    outsider = await control.user()
    group = await control.forum([staff])

    refused = await control.post(
        "/send", {"user_id": outsider, "chat_id": group, "text": "x"}, expect=403
    )

    assert "not a member" in refused["error"]


async def test_press_returns_the_bots_answer(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="确认", callback_data="confirm:1")]]
    )
    offer = await bot.send_message(citizen, "确认提交？", reply_markup=markup)

    press = asyncio.create_task(
        control.post(
            "/press",
            {
                "user_id": citizen,
                "chat_id": citizen,
                "message_id": offer.message_id,
                "data": "confirm:1",
                "timeout": 5,
            },
        )
    )
    [update] = await bot.get_updates(timeout=5)
    query = update.callback_query
    assert query is not None
    assert query.data == "confirm:1"
    assert query.message is not None
    assert query.message.message_id == offer.message_id
    await bot.answer_callback_query(query.id, text="已提交")

    pressed = await press
    assert pressed["update_id"] == update.update_id
    assert pressed["answer"]["text"] == "已提交"
    assert pressed["answer"]["show_alert"] is False


async def test_press_without_answer_times_out_to_null(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="a", callback_data="a")]]
    )
    offer = await bot.send_message(citizen, "?", reply_markup=markup)

    pressed = await control.post(
        "/press",
        {
            "user_id": citizen,
            "chat_id": citizen,
            "message_id": offer.message_id,
            "data": "a",
            "timeout": 0.1,
        },
    )
    stale = await control.post(
        "/press",
        {"user_id": citizen, "chat_id": citizen, "message_id": offer.message_id, "data": "zzz"},
        expect=400,
    )

    assert pressed["answer"] is None
    assert "no button" in stale["error"]


async def test_messages_after_and_user_edits(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    first = await control.post("/send", {"user_id": citizen, "text": "一"})
    await bot.send_message(citizen, "二")
    await control.post("/send", {"user_id": citizen, "text": "三"})

    newer = await control.get(f"/chats/{citizen}/messages?after={first['message_id']}")
    edited = await control.post(
        "/edit",
        {
            "user_id": citizen,
            "chat_id": citizen,
            "message_id": first["message_id"],
            "text": "一（改）",
        },
    )

    assert [(m["text"], m["from_bot"]) for m in newer] == [("二", True), ("三", False)]
    updates = await bot.get_updates()
    assert updates[-1].update_id == edited["update_id"]
    assert updates[-1].edited_message is not None
    assert updates[-1].edited_message.text == "一（改）"


async def test_seed_demo_is_visible_in_state(server: SandboxServer, control: Control) -> None:
    demo = seed_demo(server.state, [("social", "社会救助科"), ("marriage", "婚姻登记处")])

    state = await control.get("/state")

    assert state["demo"] == demo
    assert [u["name"] for u in demo["units"]] == ["社会救助科", "婚姻登记处"]
    chats = {c["id"]: c for c in state["chats"]}
    for unit in demo["units"]:
        chat = chats[unit["chat_id"]]
        assert chat["is_forum"] is True
        members = {m["user_id"] for m in chat["members"]}
        assert {unit["staff_user_id"], demo["supervisor_id"], demo["admin_id"]} <= members
    sent = await control.post("/send", {"user_id": demo["citizen_id"], "text": "你好"})
    assert sent["chat_id"] == demo["citizen_id"]


async def test_the_page_is_served(server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/") as response:
            html = await response.text()
        async with http.get(f"{server.url}/static/app.js") as script:
            assert script.status == 200

    assert response.status == 200
    assert response.content_type == "text/html"
    assert "回音" in html


async def test_the_sandbox_mounts_under_a_prefix() -> None:
    root = web.Application()
    root.add_subapp("/tg", create_app())
    runner = web.AppRunner(root)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/tg"
    bot = Bot(DEFAULT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    try:
        me = await bot.get_me()
        async with aiohttp.ClientSession() as http, http.get(f"{base}/") as page:
            assert page.status == 200
    finally:
        await bot.session.close()
        await runner.cleanup()

    assert me.is_bot
