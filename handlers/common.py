"""Small helpers the routers share: the person's language, attachments, role filters."""

from __future__ import annotations

from aiogram.types import CallbackQuery, InaccessibleMessage, Message

from bot.db.records import PersonRecord
from bot.services import AttachmentIn
from bot.texts import DEFAULT_LANGUAGE, LANGUAGES


def lang_of(actor: PersonRecord) -> str:
    return actor.language if actor.language in LANGUAGES else DEFAULT_LANGUAGE


def attachment_of(message: Message) -> AttachmentIn | None:
    """A photo (the largest size Telegram made) or a document, by file id."""
    if message.photo:
        photo = message.photo[-1]
        return AttachmentIn(
            kind="photo",
            file_id=photo.file_id,
            file_unique_id=photo.file_unique_id,
            size=photo.file_size,
            caption=message.caption,
        )
    if message.document:
        doc = message.document
        return AttachmentIn(
            kind="document",
            file_id=doc.file_id,
            file_unique_id=doc.file_unique_id,
            file_name=doc.file_name,
            mime_type=doc.mime_type,
            size=doc.file_size,
            caption=message.caption,
        )
    return None


def text_of(message: Message) -> str:
    return (message.text or message.caption or "").strip()


def is_private(message: Message) -> bool:
    return message.chat.type == "private"


def callback_in_private(callback: CallbackQuery) -> bool:
    return callback.message is not None and callback.message.chat.type == "private"


def callback_in_group(callback: CallbackQuery) -> bool:
    return callback.message is not None and callback.message.chat.type in ("group", "supergroup")


def command_args(message: Message) -> str:
    """What follows the command word (``/urge HY-… 请加快`` → ``HY-… 请加快``)."""
    parts = (message.text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def thread_of(message: Message | InaccessibleMessage | None) -> int | None:
    """The topic of a message; None in a group without topics or its general chat."""
    if not isinstance(message, Message) or not message.is_topic_message:
        return None
    return message.message_thread_id
