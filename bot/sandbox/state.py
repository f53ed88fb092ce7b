"""Everything the sandbox remembers, in memory: people, chats, messages, topics, files,
updates and callback queries. Mutations bump the chat's revision for the page."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.files import image_mime, image_size, suffix_for
from bot.sandbox.models import (
    CallbackRecord,
    ChatType,
    FileKind,
    ForumTopicRecord,
    MemberStatus,
    MessageVersion,
    SandboxChat,
    SandboxUser,
    StoredFile,
    StoredMessage,
)
from bot.sandbox.shapes import chat_json, member_json, message_json, user_json
from bot.sandbox.updates import UpdateQueue

DEFAULT_TOKEN = "7000000001:SANDBOX-huiyin-local-token"
# User ids above 2**31 on purpose: real Telegram ids no longer fit in 32 bits.
FIRST_USER_ID = 7_100_000_001
# Supergroup ids are -100 followed by the channel id (Bot API, Chat.id).
FIRST_SUPERGROUP_ID = -1_002_000_000_001
FIRST_BASIC_GROUP_ID = -4_000_000_001
# The default forum topic colour (Bot API, createForumTopic icon_color).
DEFAULT_TOPIC_COLOR = 0x6FB9F0
TOPIC_COLORS = frozenset({0x6FB9F0, 0xFFD67E, 0xCB86DB, 0x8EEE98, 0xFF93B2, 0xFB6F5F})


@dataclass
class WebhookConfig:
    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class CallbackWaiter:
    record: CallbackRecord
    answered: asyncio.Event = field(default_factory=asyncio.Event)


class SandboxState:
    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "huiyin_sandbox_bot",
        bot_name: str = "回音 Huiyin",
        clock: Callable[[], float] = time.time,
    ):
        self.token = token
        self.clock = clock
        self.bot = SandboxUser(
            id=int(token.split(":", 1)[0]),
            first_name=bot_name,
            username=bot_username,
            is_bot=True,
        )
        self.users: dict[int, SandboxUser] = {self.bot.id: self.bot}
        self.chats: dict[int, SandboxChat] = {}
        self.files: dict[str, StoredFile] = {}
        self.callbacks: dict[str, CallbackWaiter] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.webhook = WebhookConfig()
        self.updates = UpdateQueue(clock)
        self.demo: dict[str, Any] | None = None
        self._user_ids = itertools.count(FIRST_USER_ID)
        self._supergroup_ids = itertools.count(-FIRST_SUPERGROUP_ID)
        self._group_ids = itertools.count(-FIRST_BASIC_GROUP_ID)
        self._file_numbers = itertools.count(1)
        self._callback_ids = itertools.count(4_000_000_000_000_000_001)

    def now(self) -> int:
        return int(self.clock())

    # People and chats -------------------------------------------------------------------

    def add_user(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        started_bot: bool = True,
    ) -> SandboxUser:
        user = SandboxUser(
            id=next(self._user_ids),
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            started_bot=started_bot,
        )
        self.users[user.id] = user
        self.chat(user.id)  # the private chat with the bot, listed from the start
        return user

    def add_group(
        self,
        title: str,
        *,
        forum: bool = False,
        members: Iterable[int] = (),
        admins: Iterable[int] = (),
        chat_type: ChatType = "supergroup",
    ) -> SandboxChat:
        # Forums exist only in supergroups (Bot API, Chat.is_forum).
        if forum:
            chat_type = "supergroup"
        number = next(self._supergroup_ids if chat_type == "supergroup" else self._group_ids)
        chat = SandboxChat(id=-number, type=chat_type, title=title, is_forum=forum)
        statuses: dict[int, MemberStatus] = dict.fromkeys(members, "member")
        statuses.update(dict.fromkeys(admins, "administrator"))
        for user_id in statuses:
            self.require_user(user_id)
        chat.members = statuses
        chat.members[self.bot.id] = "administrator"
        self.chats[chat.id] = chat
        # A chat opens with its creation service message, so real topics never get id 1
        # (Telegram's own id for the General topic).
        creator = next(iter(statuses), self.bot.id)
        created = "supergroup_chat_created" if chat_type == "supergroup" else "group_chat_created"
        self.post(chat, creator, service={created: True})
        self._announce_bot_membership(chat, old="left", new="administrator")
        return chat

    def require_user(self, user_id: int) -> SandboxUser:
        user = self.users.get(user_id)
        if user is None:
            raise KeyError(f"user {user_id} not found")
        return user

    def chat(self, chat_id: int) -> SandboxChat | None:
        """A chat by id; a private chat springs into being for any known person."""
        chat = self.chats.get(chat_id)
        if chat is None and chat_id in self.users and chat_id != self.bot.id:
            chat = SandboxChat(id=chat_id, type="private")
            chat.members = {chat_id: "member", self.bot.id: "member"}
            self.chats[chat_id] = chat
        return chat

    def set_blocked(self, user: SandboxUser, blocked: bool) -> None:
        if user.blocked_bot == blocked:
            return
        user.blocked_bot = blocked
        chat = self.chat(user.id)
        assert chat is not None
        statuses: tuple[MemberStatus, MemberStatus] = (
            ("member", "kicked") if blocked else ("kicked", "member")
        )
        self._announce_bot_membership(chat, old=statuses[0], new=statuses[1], actor=user)

    def _announce_bot_membership(
        self,
        chat: SandboxChat,
        *,
        old: MemberStatus,
        new: MemberStatus,
        actor: SandboxUser | None = None,
    ) -> None:
        """my_chat_member: Telegram tells the bot when it is added, blocked or unblocked."""
        by = actor or next(
            (self.users[uid] for uid, status in chat.members.items() if uid != self.bot.id),
            self.bot,
        )
        self.updates.push(
            "my_chat_member",
            {
                "chat": chat_json(self, chat),
                "from": user_json(by),
                "date": self.now(),
                "old_chat_member": member_json(self.bot, old),
                "new_chat_member": member_json(self.bot, new),
            },
        )

    # Messages ---------------------------------------------------------------------------

    def post(self, chat: SandboxChat, sender_id: int, **content: Any) -> StoredMessage:
        message = StoredMessage(
            message_id=chat.next_message_id,
            chat_id=chat.id,
            sender_id=sender_id,
            date=self.now(),
            **content,
        )
        chat.next_message_id += 1
        chat.messages[message.message_id] = message
        markup = message.reply_markup or {}
        if "keyboard" in markup:
            chat.reply_keyboard = markup
        elif markup.get("remove_keyboard"):
            chat.reply_keyboard = None
        chat.revision += 1
        return message

    def message(self, chat: SandboxChat, message_id: int) -> StoredMessage | None:
        message = chat.messages.get(message_id)
        return None if message is None or message.deleted else message

    def edit(self, chat: SandboxChat, message: StoredMessage, **changes: Any) -> None:
        message.history.append(
            MessageVersion(
                date=message.edit_date or message.date,
                text=message.text,
                caption=message.caption,
                reply_markup=message.reply_markup,
            )
        )
        for name, value in changes.items():
            setattr(message, name, value)
        message.edit_date = self.now()
        chat.revision += 1

    def delete(self, chat: SandboxChat, message: StoredMessage) -> None:
        message.deleted = True
        chat.revision += 1

    def transcript(
        self, chat: SandboxChat, *, include_deleted: bool = False
    ) -> list[StoredMessage]:
        return [m for m in chat.messages.values() if include_deleted or not m.deleted]

    def message_json(self, message: StoredMessage) -> dict[str, Any]:
        return message_json(self, message)

    # Forum topics -----------------------------------------------------------------------

    def create_topic(
        self,
        chat: SandboxChat,
        name: str,
        icon_color: int,
        icon_custom_emoji_id: str | None,
        creator_id: int,
    ) -> ForumTopicRecord:
        # The topic's id is the id of its forum_topic_created service message.
        created = {"name": name, "icon_color": icon_color}
        if icon_custom_emoji_id:
            created["icon_custom_emoji_id"] = icon_custom_emoji_id
        message = self.post(chat, creator_id, service={"forum_topic_created": created})
        message.thread_id = message.message_id
        topic = ForumTopicRecord(message.message_id, name, icon_color, icon_custom_emoji_id)
        chat.topics[topic.thread_id] = topic
        return topic

    def delete_topic(self, chat: SandboxChat, topic: ForumTopicRecord) -> None:
        # Deleting a topic deletes every message in it (Bot API, deleteForumTopic).
        for message in chat.messages.values():
            if message.thread_id == topic.thread_id:
                message.deleted = True
        del chat.topics[topic.thread_id]
        chat.revision += 1

    # Files ------------------------------------------------------------------------------

    def store_file(
        self,
        kind: FileKind,
        content: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        number = next(self._file_numbers)
        prefix = "AgAC" if kind == "photo" else "BQAC"
        width, height = image_size(content) if kind == "photo" else (0, 0)
        if kind == "photo":
            mime_type = image_mime(content)  # Telegram re-encodes photos; keep what we got
        folder = "photos" if kind == "photo" else "documents"
        file = StoredFile(
            file_id=f"{prefix}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AQAD{secrets.token_urlsafe(8)}",
            kind=kind,
            content=content,
            file_path=f"{folder}/file_{number}{suffix_for(kind, file_name, mime_type)}",
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        self.files[file.file_id] = file
        return file

    def find_file(self, file_id: str) -> StoredFile | None:
        # Thumbnail sizes share the original's content in the sandbox.
        return self.files.get(file_id) or self.files.get(file_id.removesuffix("_s"))

    def file_by_path(self, file_path: str) -> StoredFile | None:
        return next((f for f in self.files.values() if f.file_path == file_path), None)

    # Callback queries -------------------------------------------------------------------

    def new_callback(
        self, user_id: int, chat_id: int, message_id: int, data: str
    ) -> CallbackWaiter:
        record = CallbackRecord(
            id=str(next(self._callback_ids)),
            user_id=user_id,
            chat_id=chat_id,
            message_id=message_id,
            data=data,
            created=self.clock(),
        )
        waiter = CallbackWaiter(record)
        self.callbacks[record.id] = waiter
        return waiter
