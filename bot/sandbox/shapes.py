"""Records → the JSON objects of the Bot API (User, Chat, Message, File, ChatMember, …).

Optional fields are left out rather than sent as null, as Telegram does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.sandbox.formatting import entities_to_html
from bot.sandbox.models import (
    ForumTopicRecord,
    MemberStatus,
    SandboxChat,
    SandboxUser,
    StoredFile,
    StoredMessage,
)

if TYPE_CHECKING:
    from bot.sandbox.state import SandboxState

# Thumbnails Telegram generates for photos are at most 90 px on the long side.
_THUMB_SIDE = 90


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def user_json(user: SandboxUser) -> dict[str, Any]:
    return _compact(
        {
            "id": user.id,
            "is_bot": user.is_bot,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "username": user.username,
            "language_code": None if user.is_bot else user.language_code,
        }
    )


def me_json(bot: SandboxUser) -> dict[str, Any]:
    return {
        **user_json(bot),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def chat_json(state: SandboxState, chat: SandboxChat) -> dict[str, Any]:
    if chat.type == "private":
        user = state.users[chat.id]
        return _compact(
            {
                "id": chat.id,
                "type": "private",
                "first_name": user.first_name,
                "last_name": user.last_name,
                "username": user.username,
            }
        )
    return _compact(
        {
            "id": chat.id,
            "type": chat.type,
            "title": chat.title,
            "is_forum": True if chat.is_forum else None,
        }
    )


def chat_full_info_json(state: SandboxState, chat: SandboxChat) -> dict[str, Any]:
    """getChat answers ChatFullInfo (Bot API 7.3+), with its required extras."""
    return {
        **chat_json(state, chat),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }


def photo_sizes_json(file: StoredFile) -> list[dict[str, Any]]:
    full = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.size,
        "width": file.width,
        "height": file.height,
    }
    longest = max(file.width, file.height, 1)
    if longest <= _THUMB_SIDE:
        return [full]
    scale = _THUMB_SIDE / longest
    thumb = {
        "file_id": f"{file.file_id}_s",
        "file_unique_id": f"{file.file_unique_id}s",
        "file_size": max(1, file.size // 10),
        "width": max(1, round(file.width * scale)),
        "height": max(1, round(file.height * scale)),
    }
    return [thumb, full]


def document_json(file: StoredFile) -> dict[str, Any]:
    return _compact(
        {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_name": file.file_name,
            "mime_type": file.mime_type,
            "file_size": file.size,
        }
    )


def file_json(file: StoredFile) -> dict[str, Any]:
    return {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.size,
        "file_path": file.file_path,
    }


def topic_json(topic: ForumTopicRecord) -> dict[str, Any]:
    return _compact(
        {
            "message_thread_id": topic.thread_id,
            "name": topic.name,
            "icon_color": topic.icon_color,
            "icon_custom_emoji_id": topic.icon_custom_emoji_id,
        }
    )


def message_json(
    state: SandboxState, message: StoredMessage, *, with_reply: bool = True
) -> dict[str, Any]:
    chat = state.chats[message.chat_id]
    body: dict[str, Any] = {
        "message_id": message.message_id,
        "message_thread_id": message.thread_id,
        "from": user_json(state.users[message.sender_id]),
        "date": message.date,
        "chat": chat_json(state, chat),
        "is_topic_message": True if message.thread_id is not None else None,
        "forward_origin": message.forward_origin,
        "edit_date": message.edit_date,
    }
    if with_reply:
        body["reply_to_message"] = _reply_json(state, chat, message)
    body.update(_content_json(message))
    return _compact(body)


def _reply_json(
    state: SandboxState, chat: SandboxChat, message: StoredMessage
) -> dict[str, Any] | None:
    # A topic message that replies to nothing still carries reply_to_message: the topic's
    # forum_topic_created service message. Real Telegram does this; handlers must cope.
    target_id = message.reply_to_message_id or message.thread_id
    if target_id is None or target_id == message.message_id:
        return None
    target = chat.messages.get(target_id)
    if target is None or target.deleted:
        return None
    return message_json(state, target, with_reply=False)


def _content_json(message: StoredMessage) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if message.text is not None:
        content["text"] = message.text
        if message.entities:
            content["entities"] = message.entities
    if message.photo is not None:
        content["photo"] = photo_sizes_json(message.photo)
    if message.document is not None:
        content["document"] = document_json(message.document)
    if message.caption is not None:
        content["caption"] = message.caption
        if message.caption_entities:
            content["caption_entities"] = message.caption_entities
    markup = message.reply_markup
    # Message.reply_markup only ever holds an InlineKeyboardMarkup (Bot API, Message).
    if markup is not None and "inline_keyboard" in markup:
        content["reply_markup"] = markup
    if message.service:
        content.update(message.service)
    return content


def member_json(user: SandboxUser, status: MemberStatus) -> dict[str, Any]:
    member: dict[str, Any] = {"status": status, "user": user_json(user)}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(_ADMIN_RIGHTS)
        member["can_be_edited"] = False
    elif status == "kicked":
        member["until_date"] = 0
    return member


_ADMIN_RIGHTS = {
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_send_welcome_messages": False,
    "can_pin_messages": True,
    "can_manage_topics": True,
}


def transcript_json(state: SandboxState, message: StoredMessage) -> dict[str, Any]:
    """One transcript line for the control API and the page (not a Bot API shape)."""
    sender = state.users[message.sender_id]
    entry: dict[str, Any] = {
        "message_id": message.message_id,
        "chat_id": message.chat_id,
        "from_bot": sender.is_bot,
        "from": user_json(sender),
        "sender_name": " ".join(filter(None, [sender.first_name, sender.last_name])),
        "date": message.date,
        "message_thread_id": message.thread_id,
        "reply_to_message_id": message.reply_to_message_id,
        "text": message.text,
        "caption": message.caption,
        "html": _rendered(message),
        "reply_markup": message.reply_markup,
        "photo": _file_entry(message.photo),
        "document": _file_entry(message.document),
        "forward_origin": message.forward_origin,
        "service": message.service,
        "edit_date": message.edit_date,
        "edits": [{"date": v.date, "text": v.text, "caption": v.caption} for v in message.history],
        "deleted": message.deleted,
    }
    return entry


def _rendered(message: StoredMessage) -> str | None:
    if message.text is not None:
        return entities_to_html(message.text, message.entities)
    if message.caption is not None:
        return entities_to_html(message.caption, message.caption_entities)
    return None


def _file_entry(file: StoredFile | None) -> dict[str, Any] | None:
    if file is None:
        return None
    return _compact(
        {
            "file_id": file.file_id,
            "file_name": file.file_name,
            "mime_type": file.mime_type,
            "file_size": file.size,
            "width": file.width or None,
            "height": file.height or None,
            "url": f"/sandbox/api/files/{file.file_id}",
        }
    )
