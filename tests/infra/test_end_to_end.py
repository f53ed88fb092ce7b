"""All four edges with a real aiogram Dispatcher: poll → inbox → handlers → outbox → send."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.inbox import InboxProcessor
from bot.outbox import OutboxSender, Rate, SendLimits, enqueue
from bot.polling import LongPolling
from tests.infra.conftest import Control, Database, eventually, serving

FAST = SendLimits(overall=Rate(30, 1), private_chat=Rate(3, 1), group_chat=Rate(20, 60))
RATE_KEYBOARD = {"inline_keyboard": [[{"text": "满意", "callback_data": "rate:good"}]]}


async def acknowledge(message: Message, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    # The dedupe key makes a replayed update harmless: one acknowledgement per message.
    async with sessionmaker() as session, session.begin():
        await enqueue(
            session,
            message.chat.id,
            f"收到：{message.text}",
            payload={"reply_markup": RATE_KEYBOARD},
            dedupe_key=f"ack:{message.chat.id}:{message.message_id}",
        )


async def rate(query: CallbackQuery, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    assert query.message is not None
    async with sessionmaker() as session, session.begin():
        await enqueue(
            session,
            query.from_user.id,
            "感谢您的评价",
            dedupe_key=f"rated:{query.from_user.id}:{query.message.message_id}",
        )
    await query.answer()


def citizen_router() -> Router:
    # A router joins one dispatcher only; each test builds its own.
    router = Router(name=__name__)
    router.message.register(acknowledge, F.text)
    router.callback_query.register(rate, F.data == "rate:good")
    return router


async def test_a_message_and_a_double_tapped_button_are_each_answered_once(
    bot: Bot, control: Control, db: Database
) -> None:
    dispatcher = Dispatcher(sessionmaker=db.sessionmaker)
    dispatcher.include_router(citizen_router())

    async def feed(update: dict[str, Any]) -> None:
        await dispatcher.feed_raw_update(bot, update)

    processor = InboxProcessor(db.sessionmaker, feed, poll_interval=0.02)
    sender = OutboxSender(db.sessionmaker, bot, FAST, poll_interval=0.02)
    poller = LongPolling(bot, db.sessionmaker, timeout=1, on_stored=processor.wake)
    citizen = await control.user()

    async with serving(processor, sender, poller):
        await control.send(citizen, "我要反映问题")

        async def acknowledged() -> bool:
            return await control.texts(citizen) == ["收到：我要反映问题"]

        await eventually(acknowledged)
        [card] = await control.bot_messages(citizen)
        for _ in range(2):  # an impatient double tap: two updates
            await control.press(citizen, card["message_id"], "rate:good")

        async def all_handled_and_sent() -> bool:
            inbox, outbox = await db.inbox(), await db.outbox()
            return (
                len(inbox) == 3
                and all(row.status == "done" for row in inbox)
                and all(row.status == "sent" for row in outbox)
            )

        await eventually(all_handled_and_sent)

    assert await control.texts(citizen) == ["收到：我要反映问题", "感谢您的评价"]
    assert len(await db.outbox()) == 2
