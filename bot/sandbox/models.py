"""The sandbox's records: plain dataclasses, turned into Telegram JSON by shapes.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ChatType = Literal["private", "group", "supergroup"]
MemberStatus = Literal["creator", "administrator", "member", "left", "kicked"]
FileKind = Literal["photo", "document"]


@dataclass
class SandboxUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    # Telegram refuses to let a bot write first ("bot can't initiate conversation").
    started_bot: bool = True
    blocked_bot: bool = False


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: FileKind
    content: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass
class ForumTopicRecord:
    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False


@dataclass
class MessageVersion:
    """What a message said before an edit (kept for the transcript)."""

    date: int
    text: str | None
    caption: str | None
    reply_markup: dict[str, Any] | None


@dataclass
class StoredMessage:
    message_id: int
    chat_id: int
    sender_id: int
    date: int
    thread_id: int | None = None
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    photo: StoredFile | None = None
    document: StoredFile | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    forward_origin: dict[str, Any] | None = None
    # Service messages (forum_topic_created, forum_topic_closed, …): field name → payload.
    service: dict[str, Any] | None = None
    edit_date: int | None = None
    history: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False

    @property
    def is_service(self) -> bool:
        return self.service is not None


@dataclass
class SandboxChat:
    id: int
    type: ChatType
    title: str | None = None
    is_forum: bool = False
    members: dict[int, MemberStatus] = field(default_factory=dict)
    topics: dict[int, ForumTopicRecord] = field(default_factory=dict)
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    # Bumped on every change so the page can poll cheaply.
    revision: int = 0
    # A reply keyboard stays on screen until replaced or removed, unlike inline ones.
    reply_keyboard: dict[str, Any] | None = None

    @property
    def is_group(self) -> bool:
        return self.type != "private"


@dataclass
class CallbackRecord:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answer: dict[str, Any] | None = None
    answered: bool = False
