"""The Bot API surface, driven by a real aiogram Bot over HTTP."""

from __future__ import annotations

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramUnauthorizedError
from aiogram.types import BotCommand, BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.sandbox import SandboxServer
from bot.sandbox.files import placeholder_png
from tests.sandbox.conftest import Control


def keyboard(data: str) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text="受理", callback_data=data)
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


async def test_get_me_names_the_sandbox_bot(bot: Bot) -> None:
    me = await bot.get_me()

    assert me.id == bot.id
    assert me.is_bot
    assert me.username == "huiyin_sandbox_bot"


async def test_send_message_lands_in_the_transcript(bot: Bot, control: Control) -> None:
    citizen = await control.user()

    sent = await bot.send_message(citizen, "您的诉求已收到", reply_markup=keyboard("case:1"))

    assert sent.chat.id == citizen
    assert sent.from_user is not None
    assert sent.from_user.id == bot.id
    [line] = await control.get(f"/chats/{citizen}/messages")
    assert line["message_id"] == sent.message_id
    assert line["from_bot"] is True
    assert line["text"] == "您的诉求已收到"
    assert line["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "case:1"


async def test_html_parse_mode_gives_utf16_entities(bot: Bot, control: Control) -> None:
    citizen = await control.user()

    sent = await bot.send_message(
        citizen, "😀 <b>加粗</b> &amp; <a href='https://gov.cn'>链接</a>", parse_mode="HTML"
    )

    assert sent.text == "😀 加粗 & 链接"
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [
        ("bold", 3, 2),
        ("text_link", 8, 2),
    ]


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("<b>未闭合", "Can't find end tag"),
        ("<blink>x</blink>", "Unsupported start tag"),
        ("<b><i>x</b></i>", "Unmatched end tag"),
    ],
)
async def test_bad_html_is_refused_like_telegram(
    bot: Bot, control: Control, html: str, reason: str
) -> None:
    citizen = await control.user()

    with pytest.raises(TelegramBadRequest, match="can't parse entities") as caught:
        await bot.send_message(citizen, html, parse_mode="HTML")

    assert reason in caught.value.message


async def test_text_limits(bot: Bot, control: Control) -> None:
    citizen = await control.user()

    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(citizen, "字" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(citizen, "   ")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(citizen, "x", reply_markup=keyboard("d" * 65))
    photo = BufferedInputFile(placeholder_png(), "p.png")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(citizen, photo, caption="c" * 1025)
    assert await bot.send_message(citizen, "字" * 4096)


async def test_unknown_chat_is_not_found(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(123, "hello")


async def test_forum_topic_lifecycle(bot: Bot, control: Control) -> None:
    staff = await control.user("王科员")
    group = await control.forum([staff])

    topic = await bot.create_forum_topic(group, "工单 #17 低保")
    in_topic = await bot.send_message(group, "新工单", message_thread_id=topic.message_thread_id)
    assert in_topic.message_thread_id == topic.message_thread_id
    assert in_topic.is_topic_message
    await bot.edit_forum_topic(group, topic.message_thread_id, name="工单 #17 已受理")
    await bot.close_forum_topic(group, topic.message_thread_id)
    chat = await control.get(f"/chats/{group}")
    assert chat["topics"] == [
        {
            "message_thread_id": topic.message_thread_id,
            "name": "工单 #17 已受理",
            "icon_color": topic.icon_color,
            "closed": True,
        }
    ]

    await bot.delete_forum_topic(group, topic.message_thread_id)

    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(group, "还在吗", message_thread_id=topic.message_thread_id)
    left = await control.get(f"/chats/{group}/messages?thread={topic.message_thread_id}")
    assert left == []


async def test_topics_need_a_forum(bot: Bot, control: Control) -> None:
    staff = await control.user()
    plain = (await control.post("/groups", {"title": "普通群", "members": [staff]}))["id"]

    with pytest.raises(TelegramBadRequest, match="the chat is not a forum"):
        await bot.create_forum_topic(plain, "x")


async def test_edit_and_delete_apply_to_the_transcript(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    sent = await bot.send_message(citizen, "第一版", reply_markup=keyboard("a"))

    edited = await bot.edit_message_text("第二版", chat_id=citizen, message_id=sent.message_id)
    assert edited.text == "第二版"  # type: ignore[union-attr]
    assert edited.reply_markup is None  # type: ignore[union-attr]  # omitted markup → removed
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("第二版", chat_id=citizen, message_id=sent.message_id)
    await bot.edit_message_reply_markup(
        chat_id=citizen, message_id=sent.message_id, reply_markup=keyboard("b")
    )
    [line] = await control.get(f"/chats/{citizen}/messages")
    assert line["text"] == "第二版"
    assert [v["text"] for v in line["edits"]] == ["第一版", "第二版"]

    assert await bot.delete_message(citizen, sent.message_id)

    assert await control.get(f"/chats/{citizen}/messages") == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(citizen, sent.message_id)


async def test_photo_upload_file_id_reuse_and_download(
    bot: Bot, control: Control, server: SandboxServer
) -> None:
    citizen = await control.user()
    image = placeholder_png(64, 48)

    first = await bot.send_photo(citizen, BufferedInputFile(image, "scan.png"), caption="材料")
    biggest = first.photo[-1]  # type: ignore[index]
    again = await bot.send_photo(citizen, biggest.file_id)
    file = await bot.get_file(biggest.file_id)
    downloaded = await bot.download_file(file.file_path)  # type: ignore[arg-type]

    assert (biggest.width, biggest.height) == (64, 48)
    assert again.photo[-1].file_unique_id == biggest.file_unique_id  # type: ignore[index]
    assert downloaded is not None
    assert downloaded.read() == image
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(citizen, "no-such-file-id")


async def test_document_copy_and_forward(bot: Bot, control: Control) -> None:
    citizen = await control.user()
    staff = await control.user("王科员")
    group = await control.forum([staff])
    topic = await bot.create_forum_topic(group, "工单 #1")
    pdf = BufferedInputFile(b"%PDF-1.4 test", "申请书.pdf")

    doc = await bot.send_document(citizen, pdf, caption="申请书")
    copy = await bot.copy_message(
        group, citizen, doc.message_id, message_thread_id=topic.message_thread_id
    )
    forwarded = await bot.forward_message(
        group, citizen, doc.message_id, message_thread_id=topic.message_thread_id
    )

    assert doc.document is not None
    assert doc.document.mime_type == "application/pdf"
    assert forwarded.forward_origin is not None
    lines = await control.get(f"/chats/{group}/messages?thread={topic.message_thread_id}")
    copied = next(line for line in lines if line["message_id"] == copy.message_id)
    assert copied["document"]["file_name"] == "申请书.pdf"
    assert copied["caption"] == "申请书"


async def test_chat_and_member_lookups(bot: Bot, control: Control) -> None:
    staff = await control.user("王科员")
    outsider = await control.user("路人")
    group = await control.forum([staff])

    chat = await bot.get_chat(group)
    assert chat.is_forum
    assert chat.type == "supergroup"
    assert str(group).startswith("-100")
    assert (await bot.get_chat_member(group, staff)).status == "member"
    assert (await bot.get_chat_member(group, bot.id)).status == "administrator"
    assert (await bot.get_chat_member(group, outsider)).status == "left"


async def test_commands_round_trip(bot: Bot) -> None:
    commands = [
        BotCommand(command="start", description="开始"),
        BotCommand(command="status", description="查询进度"),
    ]

    assert await bot.set_my_commands(commands)

    stored = await bot.get_my_commands()
    assert [(c.command, c.description) for c in stored] == [
        ("start", "开始"),
        ("status", "查询进度"),
    ]


async def test_bad_token_and_unknown_method(server: SandboxServer, bot: Bot) -> None:
    url = f"{server.url}/bot{bot.token}/noSuchMethod"
    async with aiohttp.ClientSession() as http, http.post(url) as response:
        body = await response.json()
    assert response.status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found"}

    session = AiohttpSession(api=TelegramAPIServer.from_base(server.url))
    async with Bot("1:wrong", session=session) as stranger:
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()


@pytest.mark.parametrize("encoding", ["json", "form", "query"])
async def test_parameters_in_any_encoding(
    server: SandboxServer, bot: Bot, control: Control, encoding: str
) -> None:
    citizen = await control.user()
    url = f"{server.url}/bot{bot.token}/sendMessage"
    params = {
        "chat_id": str(citizen),
        "text": "你好",
        "reply_markup": '{"inline_keyboard": [[{"text": "a", "callback_data": "a"}]]}',
    }

    async with aiohttp.ClientSession() as http:
        if encoding == "json":
            request = http.post(url, json={**params, "chat_id": citizen})
        elif encoding == "form":
            request = http.post(url, data=params)
        else:
            request = http.get(url, params=params)
        async with request as response:
            body = await response.json()

    assert body["ok"] is True
    assert body["result"]["text"] == "你好"
    assert body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"


async def test_malformed_nested_value_is_a_bad_request(
    server: SandboxServer, bot: Bot, control: Control
) -> None:
    citizen = await control.user()
    body = {"chat_id": citizen, "text": "x", "reply_parameters": {"message_id": "abc"}}

    url = f"{server.url}/bot{bot.token}/sendMessage"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        answer = await response.json()

    assert response.status == 400
    assert answer["ok"] is False
    assert answer["description"].startswith("Bad Request:")
