"""A real aiogram Dispatcher polling the sandbox: the whole loop, end to end."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from tests.sandbox.conftest import Control


def echo_router() -> Router:
    router = Router(name="echo")

    @router.message(F.text)
    async def echo(message: Message) -> None:
        button = InlineKeyboardButton(text="再说一次", callback_data="again")
        await message.answer(
            f"回音：{message.text}", reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]])
        )

    @router.callback_query(F.data == "again")
    async def again(query: CallbackQuery) -> None:
        await query.answer("好的")

    return router


async def wait_for_reply(control: Control, chat_id: int, after: int) -> dict[str, Any]:
    for _ in range(100):
        replies = [
            m
            for m in await control.get(f"/chats/{chat_id}/messages?after={after}")
            if m["from_bot"]
        ]
        if replies:
            reply: dict[str, Any] = replies[0]
            return reply
        await asyncio.sleep(0.05)
    raise AssertionError("the bot did not answer")


async def test_echo_bot_answers_and_acknowledges_presses(bot: Bot, control: Control) -> None:
    dispatcher = Dispatcher()
    dispatcher.include_router(echo_router())
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, polling_timeout=1, close_bot_session=False
        )
    )
    try:
        citizen = await control.user()
        sent = await control.post("/send", {"user_id": citizen, "text": "你好"})
        reply = await wait_for_reply(control, citizen, sent["message_id"])
        pressed = await control.post(
            "/press",
            {
                "user_id": citizen,
                "chat_id": citizen,
                "message_id": reply["message_id"],
                "data": "again",
                "timeout": 5,
            },
        )
    finally:
        await dispatcher.stop_polling()
        await polling

    assert reply["text"] == "回音：你好"
    assert pressed["answer"]["text"] == "好的"
