"""Citizens filing a petition through the sandbox's control API, over real HTTP, patient
enough to outlive a bot that is killed and restarted under them.

A :class:`Citizen` never resends: after each step it waits for the bot (an update the bot
had not confirmed is delivered again by the Bot API; one it had confirmed must be handled).
Messages the bot sends twice (the outbox is at-least-once, bot/outbox.py) are recognised by
their text and buttons, counted in ``duplicates`` and otherwise ignored, so a repeated
question is not answered twice.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

CONFIRM = "✅ 确认"
RECEIPT = "编号"  # the receipt names the tracking number ("编号 HY-…")
# What a petition asks for after the confirmation, in order: name, phone, the request.
PETITION_ANSWERS = ("张某", "13800000000", "请尽快审批我家的低保申请")

Message = dict[str, Any]


def buttons(message: Message) -> dict[str, str]:
    """Inline buttons of a message: text → callback_data."""
    markup = message.get("reply_markup") or {}
    return {
        button["text"]: button.get("callback_data", "")
        for row in markup.get("inline_keyboard", [])
        for button in row
    }


def case_number(receipt: Message) -> str:
    """The tracking number in a receipt (HY-YYYY-NNNN-XXXX)."""
    word = str(next(w for w in receipt["text"].split() if w.startswith("HY-")))
    return word[:17]


class SandboxPeople:
    """People acting through the sandbox control API (bot/sandbox/README.md)."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http

    async def new_user(self, first_name: str, last_name: str = "") -> int:
        body = {"first_name": first_name, "last_name": last_name, "language_code": "zh-hans"}
        return int((await self._post("users", body))["id"])

    async def send(self, user_id: int, text: str) -> int:
        """A private message to the bot; its update_id."""
        body = {"user_id": user_id, "chat_id": user_id, "text": text}
        return int((await self._post("send", body))["update_id"])

    async def press(self, user_id: int, message_id: int, data: str) -> int:
        """A button press in the private chat, not waiting for the bot's answer; its update_id."""
        body = {
            "user_id": user_id,
            "chat_id": user_id,
            "message_id": message_id,
            "data": data,
            "timeout": 0,
        }
        return int((await self._post("press", body))["update_id"])

    async def messages(self, chat_id: int, after: int = 0) -> list[Message]:
        async with self.http.get(
            f"{self.url}/sandbox/api/chats/{chat_id}/messages", params={"after": after}
        ) as response:
            response.raise_for_status()
            return list(await response.json())

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(f"{self.url}/sandbox/api/{path}", json=body) as response:
            data = await response.json()
            assert response.status == 200, data
            return dict(data)


@dataclass
class Citizen:
    """One person with one matter to file; see the module docstring."""

    people: SandboxPeople
    user_id: int
    text: str
    answers: Sequence[str] = PETITION_ANSWERS
    rng: random.Random = field(default_factory=random.Random)
    think: float = 0.0  # up to this many seconds before each step (seeded by ``rng``)
    patience: float = 120.0  # seconds to wait for one answer of the bot before failing
    poll: float = 0.2
    update_ids: list[int] = field(default_factory=list)
    receipt: Message | None = None
    duplicates: int = 0
    _seen_id: int = 0
    _seen: set[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=set)

    @property
    def number(self) -> str:
        assert self.receipt is not None, f"citizen {self.user_id} got no receipt"
        return case_number(self.receipt)

    async def file(self) -> Message:
        """Describe the matter, confirm what the bot understood, answer its questions until
        the receipt comes; the receipt."""
        await self.say(self.text)
        understood = await self.bot_says(lambda m: CONFIRM in buttons(m))
        await self.pause()
        self.update_ids.append(
            await self.people.press(
                self.user_id, understood["message_id"], buttons(understood)[CONFIRM]
            )
        )
        answers = iter(self.answers)
        while True:
            message = await self.bot_says()
            if RECEIPT in message["text"]:
                self.receipt = message
                return message
            answer = next(answers, None)
            assert answer is not None, f"unexpected question: {message['text']!r}"
            await self.pause()
            await self.say(answer)

    async def say(self, text: str) -> None:
        self.update_ids.append(await self.people.send(self.user_id, text))

    async def pause(self) -> None:
        if self.think:
            await asyncio.sleep(self.rng.uniform(0, self.think))

    async def bot_says(self, predicate: Callable[[Message], bool] = lambda m: True) -> Message:
        """The next new message from the bot that satisfies ``predicate``; messages already
        seen with the same text and buttons are duplicates."""
        deadline = asyncio.get_running_loop().time() + self.patience
        while True:
            for message in await self.people.messages(self.user_id, self._seen_id):
                self._seen_id = max(self._seen_id, message["message_id"])
                if not message.get("from_bot"):
                    continue
                key = (message.get("text") or "", tuple(sorted(buttons(message).items())))
                if key in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(key)
                if predicate(message):
                    return message
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"citizen {self.user_id}: the bot said nothing new for {self.patience} s"
                )
            await asyncio.sleep(self.poll)
