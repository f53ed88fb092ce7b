"""What simulated people do: write, edit, press buttons. Each action becomes an update.

These are the client side of Telegram, so their refusals are the sandbox's own
(ControlError), not Bot API errors.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from bot.sandbox.errors import ControlError
from bot.sandbox.files import guess_mime, placeholder_document, placeholder_png
from bot.sandbox.formatting import utf16_len
from bot.sandbox.models import SandboxChat, SandboxUser, StoredFile, StoredMessage
from bot.sandbox.shapes import user_json
from bot.sandbox.state import CallbackWaiter, SandboxState

# Clients mark every /command (optionally /command@bot) as a bot_command entity.
_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


@dataclass(frozen=True)
class Outgoing:
    """One message a person sends: text, or a photo/document with an optional caption."""

    text: str | None = None
    photo: dict[str, Any] | bool | None = None
    document: dict[str, Any] | bool | None = None
    caption: str | None = None
    thread_id: int | None = None
    reply_to_message_id: int | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Outgoing:
        return cls(
            text=body.get("text"),
            photo=body.get("photo"),
            document=body.get("document"),
            caption=body.get("caption"),
            thread_id=_opt_int(body.get("message_thread_id")),
            reply_to_message_id=_opt_int(body.get("reply_to_message_id")),
        )


def _opt_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def person(state: SandboxState, user_id: Any) -> SandboxUser:
    user = state.users.get(int(user_id)) if user_id is not None else None
    if user is None or user.is_bot:
        raise ControlError(404, f"user {user_id} not found")
    return user


def chat_of(state: SandboxState, user: SandboxUser, chat_id: Any) -> SandboxChat:
    """The chat a person acts in; they must be in it (a private chat is with the bot)."""
    chat = state.chat(int(chat_id if chat_id is not None else user.id))
    if chat is None:
        raise ControlError(404, f"chat {chat_id} not found")
    if chat.type == "private" and chat.id != user.id:
        raise ControlError(403, "a private chat belongs to its user")
    if chat.is_group and chat.members.get(user.id) not in ("creator", "administrator", "member"):
        raise ControlError(403, f"user {user.id} is not a member of chat {chat.id}")
    return chat


def send(
    state: SandboxState, user: SandboxUser, chat: SandboxChat, out: Outgoing
) -> tuple[StoredMessage, int | None]:
    thread_id = _thread(chat, user, out)
    content = _content(state, out)
    if chat.type == "private":
        # Writing to a bot starts it, and unblocks it if it was blocked ("Restart").
        user.started_bot = True
        state.set_blocked(user, False)
    message = state.post(chat, user.id, thread_id=thread_id, **content)
    return message, state.updates.push("message", state.message_json(message))


def _thread(chat: SandboxChat, user: SandboxUser, out: Outgoing) -> int | None:
    thread_id = out.thread_id
    if out.reply_to_message_id is not None:
        target = chat.messages.get(out.reply_to_message_id)
        if target is None or target.deleted:
            raise ControlError(400, "message to be replied not found")
        thread_id = thread_id or target.thread_id
    if thread_id is None:
        return None
    topic = chat.topics.get(thread_id)
    if topic is None:
        raise ControlError(400, "message thread not found")
    if topic.closed and chat.members.get(user.id) not in ("creator", "administrator"):
        raise ControlError(403, "the topic is closed")  # only admins write in closed topics
    return thread_id


def _content(state: SandboxState, out: Outgoing) -> dict[str, Any]:
    content: dict[str, Any] = {"reply_to_message_id": out.reply_to_message_id}
    if out.photo:
        content["photo"] = _file(state, out.photo, "photo")
    elif out.document:
        content["document"] = _file(state, out.document, "document")
    elif out.text is not None and out.text.strip():
        content.update(text=out.text, entities=command_entities(out.text))
        return content
    else:
        raise ControlError(400, "give text, photo or document")
    if out.caption:
        content.update(caption=out.caption, caption_entities=command_entities(out.caption))
    return content


def _file(state: SandboxState, spec: dict[str, Any] | bool, kind: str) -> StoredFile:
    """A file given as {"base64", "filename"?, "mime_type"?} or `true` for a placeholder."""
    if not isinstance(spec, dict) or not spec.get("base64"):
        if kind == "photo":
            return state.store_file("photo", placeholder_png(), file_name="placeholder.png")
        name, content = placeholder_document()
        return state.store_file("document", content, file_name=name, mime_type="text/plain")
    try:
        content = base64.b64decode(str(spec["base64"]).split(",")[-1], validate=True)
    except (binascii.Error, ValueError):
        raise ControlError(400, f"{kind}.base64 is not valid base64") from None
    name = str(spec.get("filename") or ("photo.jpg" if kind == "photo" else "file.bin"))
    if kind == "photo":
        return state.store_file("photo", content, file_name=name)
    mime = str(spec.get("mime_type") or guess_mime(name))
    return state.store_file("document", content, file_name=name, mime_type=mime)


def command_entities(text: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group(0)),
        }
        for m in _COMMAND.finditer(text)
    ]


def edit(
    state: SandboxState, user: SandboxUser, chat: SandboxChat, message_id: int, text: str
) -> int | None:
    message = state.message(chat, message_id)
    if message is None:
        raise ControlError(404, f"message {message_id} not found")
    if message.sender_id != user.id:
        raise ControlError(403, "people can edit only their own messages")
    if not text.strip():
        raise ControlError(400, "text is empty")
    if message.text is not None:
        state.edit(chat, message, text=text, entities=command_entities(text))
    else:
        state.edit(chat, message, caption=text, caption_entities=command_entities(text))
    return state.updates.push("edited_message", state.message_json(message))


def press(
    state: SandboxState,
    user: SandboxUser,
    chat: SandboxChat,
    message_id: int,
    data: str,
    *,
    force: bool = False,
) -> tuple[CallbackWaiter, int | None]:
    message = state.message(chat, message_id)
    if message is None:
        raise ControlError(404, f"message {message_id} not found")
    if not force and data not in _callback_data(message):
        raise ControlError(400, "the message has no button with this callback_data")
    waiter = state.new_callback(user.id, chat.id, message_id, data)
    payload = {
        "id": waiter.record.id,
        "from": user_json(user),
        "message": state.message_json(message),
        # chat_instance identifies the chat the message was sent to, stably.
        "chat_instance": str((chat.id * 2_654_435_761) % 2**62),
        "data": data,
    }
    return waiter, state.updates.push("callback_query", payload)


def _callback_data(message: StoredMessage) -> set[str]:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return {str(b["callback_data"]) for row in rows for b in row if "callback_data" in b}
