"""Bot API methods that send, change and remove messages, and the files they carry."""

from __future__ import annotations

from typing import Any

from bot.sandbox.errors import BotApiError, bad_request
from bot.sandbox.files import guess_mime, placeholder_png
from bot.sandbox.models import FileKind, SandboxChat, StoredFile, StoredMessage
from bot.sandbox.params import Params, Upload
from bot.sandbox.registry import (
    admit,
    bot_method,
    caption,
    ensure_can_post,
    message_text,
    reply_markup,
    require_chat,
    resolve_reply,
    resolve_thread,
)
from bot.sandbox.runtime import Runtime
from bot.sandbox.shapes import file_json

# Bots download files up to 20 MB and upload up to 50 MB (Bot API, getFile / sending files).
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# Bots may delete messages younger than 48 hours (Bot API, deleteMessage).
DELETE_WINDOW_SECONDS = 48 * 60 * 60
MAX_CALLBACK_ANSWER = 200


async def _send(
    runtime: Runtime, params: Params, content: dict[str, Any], *, markup: bool = True
) -> StoredMessage:
    """The common path of every send: target, thread, reply, flood limits, then post."""
    chat = require_chat(runtime, params)
    thread_id = resolve_thread(chat, params.int_("message_thread_id"))
    reply_to = resolve_reply(runtime, chat, params)
    if reply_to is not None and thread_id is None:
        thread_id = reply_to.thread_id  # a reply lands in the replied message's topic
    ensure_can_post(runtime, chat)
    keyboard = reply_markup(params) if markup else None
    admit(runtime, chat)
    return runtime.state.post(
        chat,
        runtime.state.bot.id,
        thread_id=thread_id,
        reply_to_message_id=reply_to.message_id if reply_to else None,
        reply_markup=keyboard,
        **content,
    )


@bot_method("sendMessage")
async def send_message(runtime: Runtime, params: Params) -> dict[str, Any]:
    text, entities = message_text(params)
    message = await _send(runtime, params, {"text": text, "entities": entities})
    return runtime.state.message_json(message)


@bot_method("sendPhoto")
async def send_photo(runtime: Runtime, params: Params) -> dict[str, Any]:
    text, entities = caption(params)
    photo = _input_file(runtime, params, "photo", "photo")
    content = {"photo": photo, "caption": text, "caption_entities": entities}
    return runtime.state.message_json(await _send(runtime, params, content))


@bot_method("sendDocument")
async def send_document(runtime: Runtime, params: Params) -> dict[str, Any]:
    text, entities = caption(params)
    document = _input_file(runtime, params, "document", "document")
    content = {"document": document, "caption": text, "caption_entities": entities}
    return runtime.state.message_json(await _send(runtime, params, content))


def _input_file(runtime: Runtime, params: Params, name: str, kind: FileKind) -> StoredFile:
    ref = params.file_ref(name)
    state = runtime.state
    if ref is None:
        raise bad_request(f"there is no {name} in the request")
    if isinstance(ref, Upload):
        if len(ref.content) > MAX_UPLOAD_BYTES:
            raise BotApiError(413, "Request Entity Too Large")
        if not ref.content:
            raise bad_request("file must be non-empty")
        mime = (
            None
            if kind == "photo"
            else (
                ref.content_type
                if ref.content_type != "application/octet-stream"
                else guess_mime(ref.filename)
            )
        )
        return state.store_file(kind, ref.content, file_name=ref.filename, mime_type=mime)
    if ref.startswith(("http://", "https://")):
        # The sandbox does not fetch URLs: a placeholder stands in for the remote file.
        file_name = ref.rsplit("/", 1)[-1] or "file"
        content = placeholder_png() if kind == "photo" else ref.encode()
        mime = guess_mime(file_name)
        return state.store_file(kind, content, file_name=file_name, mime_type=mime)
    known = state.find_file(ref)
    if known is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if known.kind != kind:
        raise bad_request(
            f"wrong type of the web page content or can't use file of type "
            f"{known.kind.capitalize()} as {kind.capitalize()}"
        )
    return known


@bot_method("copyMessage")
async def copy_message(runtime: Runtime, params: Params) -> dict[str, Any]:
    source = _source_message(runtime, params, "message to copy not found")
    if source.is_service:
        raise bad_request("message can't be copied")
    content: dict[str, Any] = {
        "text": source.text,
        "entities": list(source.entities),
        "photo": source.photo,
        "document": source.document,
        "caption": source.caption,
        "caption_entities": list(source.caption_entities),
    }
    if params.has("caption") and source.text is None:
        content["caption"], content["caption_entities"] = caption(params)
    message = await _send(runtime, params, content)
    return {"message_id": message.message_id}


@bot_method("forwardMessage")
async def forward_message(runtime: Runtime, params: Params) -> dict[str, Any]:
    source = _source_message(runtime, params, "message to forward not found")
    if source.is_service:
        raise bad_request("message can't be forwarded")
    origin = source.forward_origin or {
        "type": "user",
        "date": source.date,
        "sender_user": runtime.state.message_json(source)["from"],
    }
    content: dict[str, Any] = {
        "text": source.text,
        "entities": list(source.entities),
        "photo": source.photo,
        "document": source.document,
        "caption": source.caption,
        "caption_entities": list(source.caption_entities),
        "forward_origin": origin,
    }
    message = await _send(runtime, params, content, markup=False)
    return runtime.state.message_json(message)


def _source_message(runtime: Runtime, params: Params, missing: str) -> StoredMessage:
    source_chat = require_chat(runtime, params, "from_chat_id")
    source = runtime.state.message(source_chat, params.required_int("message_id"))
    if source is None:
        raise bad_request(missing)
    return source


def _own_message(
    runtime: Runtime, params: Params, missing: str
) -> tuple[SandboxChat, StoredMessage]:
    if params.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")  # the sandbox has no inline mode
    chat = require_chat(runtime, params)
    message = runtime.state.message(chat, params.required_int("message_id"))
    if message is None:
        raise bad_request(missing)
    if message.sender_id != runtime.state.bot.id or message.is_service:
        raise bad_request("message can't be edited")
    return chat, message


def _not_modified() -> BotApiError:
    return bad_request(
        "message is not modified: specified new message content and reply markup are "
        "exactly the same as a current content and reply markup of the message"
    )


@bot_method("editMessageText")
async def edit_message_text(runtime: Runtime, params: Params) -> dict[str, Any]:
    chat, message = _own_message(runtime, params, "message to edit not found")
    if message.text is None:
        raise bad_request("there is no text in the message to edit")
    text, entities = message_text(params)
    # Omitting reply_markup in an edit removes the inline keyboard, as on Telegram.
    markup = reply_markup(params, inline_only=True)
    if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
        raise _not_modified()
    runtime.state.edit(chat, message, text=text, entities=entities, reply_markup=markup)
    return runtime.state.message_json(message)


@bot_method("editMessageCaption")
async def edit_message_caption(runtime: Runtime, params: Params) -> dict[str, Any]:
    chat, message = _own_message(runtime, params, "message to edit not found")
    if message.text is not None:
        raise bad_request("there is no caption in the message to edit")
    text, entities = caption(params)
    markup = reply_markup(params, inline_only=True)
    current = (message.caption, message.caption_entities, message.reply_markup)
    if (text, entities, markup) == current:
        raise _not_modified()
    runtime.state.edit(chat, message, caption=text, caption_entities=entities, reply_markup=markup)
    return runtime.state.message_json(message)


@bot_method("editMessageReplyMarkup")
async def edit_message_reply_markup(runtime: Runtime, params: Params) -> dict[str, Any]:
    chat, message = _own_message(runtime, params, "message to edit not found")
    markup = reply_markup(params, inline_only=True)
    if markup == message.reply_markup:
        raise _not_modified()
    runtime.state.edit(chat, message, reply_markup=markup)
    return runtime.state.message_json(message)


@bot_method("deleteMessage")
async def delete_message(runtime: Runtime, params: Params) -> bool:
    chat = require_chat(runtime, params)
    _delete(runtime, chat, params.required_int("message_id"))
    return True


@bot_method("deleteMessages")
async def delete_messages(runtime: Runtime, params: Params) -> bool:
    chat = require_chat(runtime, params)
    ids = params.json_("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must be a list of 1-100 ids")
    for message_id in ids:
        if runtime.state.message(chat, int(message_id)) is not None:
            _delete(runtime, chat, int(message_id))
    return True


def _delete(runtime: Runtime, chat: SandboxChat, message_id: int) -> None:
    state = runtime.state
    message = state.message(chat, message_id)
    if message is None:
        raise bad_request("message to delete not found")
    if state.now() - message.date > DELETE_WINDOW_SECONDS:
        raise bad_request("message can't be deleted")
    # In groups only an admin bot may delete others' messages; in private chats any bot may.
    if (
        chat.is_group
        and message.sender_id != state.bot.id
        and (chat.members.get(state.bot.id) != "administrator")
    ):
        raise bad_request("message can't be deleted")
    if message.thread_id == message.message_id and message.thread_id in chat.topics:
        raise bad_request("message can't be deleted")  # the topic's own service message
    state.delete(chat, message)


@bot_method("answerCallbackQuery")
async def answer_callback_query(runtime: Runtime, params: Params) -> bool:
    waiter = runtime.state.callbacks.get(params.required_str("callback_query_id"))
    if waiter is None or waiter.record.answered:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = params.str_("text")
    # Notification text is limited to 200 characters (Bot API, answerCallbackQuery).
    if text is not None and len(text) > MAX_CALLBACK_ANSWER:
        raise bad_request("MESSAGE_TOO_LONG")
    waiter.record.answered = True
    waiter.record.answer = {
        "text": text,
        "show_alert": params.bool_("show_alert"),
        "url": params.str_("url"),
        "cache_time": params.int_("cache_time", 0),
    }
    waiter.answered.set()
    return True


@bot_method("sendChatAction")
async def send_chat_action(runtime: Runtime, params: Params) -> bool:
    chat = require_chat(runtime, params)
    resolve_thread(chat, params.int_("message_thread_id"))
    ensure_can_post(runtime, chat)
    params.required_str("action")
    return True


@bot_method("getFile")
async def get_file(runtime: Runtime, params: Params) -> dict[str, Any]:
    file = runtime.state.find_file(params.required_str("file_id"))
    if file is None:
        raise bad_request("wrong file_id or the file is temporarily unavailable")
    if file.size > MAX_DOWNLOAD_BYTES:
        raise bad_request("file is too big")
    return file_json(file)
