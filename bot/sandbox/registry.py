"""The table of Bot API methods and the checks most of them share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.errors import BotApiError, bad_request, forbidden, too_many_requests
from bot.sandbox.formatting import parse_html
from bot.sandbox.models import ForumTopicRecord, SandboxChat, StoredMessage
from bot.sandbox.params import Params
from bot.sandbox.runtime import Runtime

ApiHandler = Callable[[Runtime, Params], Awaitable[Any]]

# Bot API limits (sendMessage, sendPhoto, InlineKeyboardButton).
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64


@dataclass(frozen=True)
class MethodSpec:
    name: str
    handler: ApiHandler


# Method names are case-insensitive (Bot API, "Making requests").
METHODS: dict[str, MethodSpec] = {}


def bot_method(name: str) -> Callable[[ApiHandler], ApiHandler]:
    def register(handler: ApiHandler) -> ApiHandler:
        METHODS[name.lower()] = MethodSpec(name, handler)
        return handler

    return register


async def execute(runtime: Runtime, method: str, params: Params) -> Any:
    spec = METHODS.get(method.lower())
    if spec is None:
        raise BotApiError(404, "Not Found")
    return await spec.handler(runtime, params)


# Chats and threads ------------------------------------------------------------------------


def require_chat(runtime: Runtime, params: Params, name: str = "chat_id") -> SandboxChat:
    raw = params.raw(name)
    if raw is None:
        raise bad_request(f"{name} is empty")
    try:
        chat_id = int(raw)
    except (TypeError, ValueError):
        # @username addresses public chats; sandbox chats have no usernames.
        raise bad_request("chat not found") from None
    chat = runtime.state.chat(chat_id)
    if chat is None or runtime.state.bot.id not in chat.members:
        raise bad_request("chat not found")
    return chat


def ensure_can_post(runtime: Runtime, chat: SandboxChat) -> None:
    if chat.type == "private":
        user = runtime.state.users[chat.id]
        if user.is_bot:
            raise forbidden("bot can't send messages to bots")
        if user.blocked_bot:
            raise forbidden("bot was blocked by the user")
        if not user.started_bot:
            raise forbidden("bot can't initiate conversation with a user")
        return
    status = chat.members.get(runtime.state.bot.id)
    if status == "kicked":
        raise forbidden(f"bot was kicked from the {chat.type} chat")
    if status not in ("administrator", "member", "creator"):
        raise forbidden(f"bot is not a member of the {chat.type} chat")


def resolve_thread(chat: SandboxChat, thread_id: int | None) -> int | None:
    if thread_id is None:
        return None
    if chat.is_forum:
        if thread_id not in chat.topics:
            raise bad_request("message thread not found")
        return thread_id
    # Outside forums a thread is a supergroup message's reply thread.
    if chat.type == "supergroup" and thread_id in chat.messages:
        return thread_id
    raise bad_request("message thread not found")


def require_topic(chat: SandboxChat, params: Params) -> ForumTopicRecord:
    if not chat.is_forum:
        raise bad_request("the chat is not a forum")
    topic = chat.topics.get(params.required_int("message_thread_id"))
    if topic is None:
        raise bad_request("TOPIC_ID_INVALID")
    return topic


def resolve_reply(runtime: Runtime, chat: SandboxChat, params: Params) -> StoredMessage | None:
    """reply_parameters, or the older reply_to_message_id + allow_sending_without_reply."""
    reply = params.json_("reply_parameters")
    if isinstance(reply, dict):
        target_id = reply.get("message_id")
        lenient = bool(reply.get("allow_sending_without_reply"))
    else:
        target_id = params.int_("reply_to_message_id")
        lenient = params.bool_("allow_sending_without_reply")
    if target_id is None:
        return None
    target = runtime.state.message(chat, int(target_id))
    if target is None and not lenient:
        raise bad_request("message to be replied not found")
    return target


def admit(runtime: Runtime, chat: SandboxChat) -> None:
    retry_after = runtime.limiter.admit(chat.id, chat.is_group)
    if retry_after is not None:
        raise too_many_requests(retry_after)


# Text and markup ----------------------------------------------------------------------------


def formatted(
    params: Params,
    text: str,
    *,
    mode_field: str = "parse_mode",
    entities_field: str = "entities",
) -> tuple[str, list[dict[str, Any]]]:
    mode = params.str_(mode_field)
    if mode is None:
        entities = params.json_(entities_field)
        return text, entities if isinstance(entities, list) else []
    if mode.lower() == "html":
        return parse_html(text)
    if mode.lower() in ("markdown", "markdownv2"):
        # Markdown is not parsed by the sandbox: the text is kept as written.
        return text, []
    raise bad_request(f'unsupported parse_mode "{mode}"')


def message_text(params: Params) -> tuple[str, list[dict[str, Any]]]:
    text, entities = formatted(params, params.str_("text") or "")
    if not text.strip():
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, entities


def caption(params: Params) -> tuple[str | None, list[dict[str, Any]]]:
    raw = params.str_("caption")
    if raw is None:
        return None, []
    text, entities = formatted(params, raw, entities_field="caption_entities")
    if len(text) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return text, entities


def reply_markup(params: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
    markup = params.json_("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
    elif inline_only:
        raise bad_request("inline keyboard expected")
    return markup


_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict) or not button.get("text"):
            raise bad_request("can't parse inline keyboard button: Text must be non-empty")
        if not any(action in button for action in _BUTTON_ACTIONS):
            raise bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the "
                "inline keyboard"
            )
        data = button.get("callback_data")
        # callback_data is 1-64 bytes (Bot API, InlineKeyboardButton).
        if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
