"""One forum topic per case in its unit's group, kept alive from the outbox sender.

Messages for a case's topic are queued with ``payload["_case_topic"] = True`` and whatever
``thread_id`` the case had then (possibly none). Right before sending, :meth:`prepare`
makes sure the topic exists — creating it on the first message of a case — and points the
message at it. When Telegram answers "message thread not found" (someone deleted the
topic), :meth:`on_thread_not_found` creates a new one and the card is posted again there:
routing never breaks on a deleted topic. In a group without topics the message replies to
the case's card instead.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.records import CaseRecord
from bot.outbox import OutboxItem

log = logging.getLogger(__name__)

CASE_TOPIC = "_case_topic"
CARD = "_card"
CARD_EDIT = "_card_edit"
TOPIC_NAME = "_topic_name"
# Forum topic names are 1–128 characters (Bot API, createForumTopic).
TOPIC_NAME_LIMIT = 128


class TopicKeeper:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bot: Bot,
        services: Any = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.bot = bot
        self.services = services

    async def prepare(self, item: OutboxItem) -> OutboxItem | None:
        """The item as it should be sent: in the case's topic (created if needed), a card
        edit aimed at the card's message."""
        if item.payload.get(CARD_EDIT) and item.case_id is not None:
            return await self._aim_card_edit(item)
        if not item.payload.get(CASE_TOPIC) or item.case_id is None:
            return item
        async with self.sessionmaker() as session, session.begin():
            case = await repo.get_case(session, item.case_id)
            unit = await repo.get_unit_by_chat(session, item.chat_id)
        if case is None:
            return item
        if unit is None or unit.id != case.unit_id:
            # A message for a group the case has left (queued before a transfer): it goes
            # to the topic it was meant for, and the case's new topic is not touched.
            return item
        if not unit.forum:
            return self._as_reply(item, case)
        thread_id = case.thread_id
        if thread_id is None:
            thread_id = await self._create_topic(case, item.chat_id, item.payload.get(TOPIC_NAME))
        return dataclasses.replace(item, thread_id=thread_id)

    async def _aim_card_edit(self, item: OutboxItem) -> OutboxItem | None:
        """The card's message id as recorded now (the card went out before this edit, the
        chat's messages being sent in order). None when there is no card to edit."""
        if "message_id" in item.payload:
            return item
        async with self.sessionmaker() as session, session.begin():
            case = await repo.get_case(session, item.case_id) if item.case_id else None
            unit = await repo.get_unit_by_chat(session, item.chat_id)
        if case is None or case.card_message_id is None or unit is None:
            log.info("outbox: no card to edit for message %s", item.id)
            return None
        if unit.id != case.unit_id:
            log.info("outbox: case %s has left chat %s: card edit dropped", case.id, item.chat_id)
            return None
        payload = {**item.payload, "message_id": case.card_message_id}
        return dataclasses.replace(item, payload=payload)

    async def on_thread_not_found(self, item: OutboxItem) -> int | None:
        if item.case_id is None:
            return None
        async with self.sessionmaker() as session, session.begin():
            case = await repo.get_case(session, item.case_id)
        if case is None:
            return None
        log.warning("topic of case %s is gone from chat %s: re-creating", case.id, item.chat_id)
        thread_id = await self._create_topic(
            case,
            item.chat_id,
            item.payload.get(TOPIC_NAME),
            repost_card=not item.payload.get(CARD),
        )
        return thread_id

    async def on_sent(
        self, session: AsyncSession, item: OutboxItem, message_id: int | None
    ) -> None:
        """Remember the card's message id: later changes edit it in place."""
        if item.payload.get(CARD) and item.case_id is not None and message_id is not None:
            case = await repo.get_case(session, item.case_id)
            if case is not None:
                await repo.update_case(session, case.id, case.version, card_message_id=message_id)

    async def _create_topic(
        self, case: CaseRecord, chat_id: int, name: str | None, *, repost_card: bool = False
    ) -> int:
        name = (name or f"{case.number} {case.summary}").strip()[:TOPIC_NAME_LIMIT]
        topic = await self.bot.create_forum_topic(chat_id=chat_id, name=name)
        async with self.sessionmaker() as session, session.begin():
            fresh = await repo.get_case(session, case.id)
            if fresh is not None:
                await repo.update_case(
                    session, fresh.id, fresh.version, thread_id=topic.message_thread_id
                )
                if repost_card and self.services is not None:
                    await self.services.repost_card(session, fresh.id, topic.message_thread_id)
        return topic.message_thread_id

    @staticmethod
    def _as_reply(item: OutboxItem, case: CaseRecord) -> OutboxItem:
        payload = dict(item.payload)
        # Services usually say where to reply already (reply_parameters); if not, the card.
        says_where = "reply_parameters" in payload or "reply_to_message_id" in payload
        if case.card_message_id is not None and not payload.get(CARD) and not says_where:
            payload["reply_parameters"] = {
                "message_id": case.card_message_id,
                "allow_sending_without_reply": True,
            }
        return dataclasses.replace(item, thread_id=None, payload=payload)
