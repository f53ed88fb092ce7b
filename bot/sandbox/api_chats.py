"""Bot API methods about the bot itself, chats, members, forum topics and commands."""

from __future__ import annotations

import re
from typing import Any

from bot.sandbox.errors import bad_request
from bot.sandbox.models import MemberStatus, SandboxChat
from bot.sandbox.params import Params
from bot.sandbox.registry import bot_method, require_chat, require_topic
from bot.sandbox.runtime import Runtime
from bot.sandbox.shapes import chat_full_info_json, me_json, member_json, topic_json
from bot.sandbox.state import DEFAULT_TOPIC_COLOR, TOPIC_COLORS

# Topic names are 1-128 characters (Bot API, createForumTopic).
MAX_TOPIC_NAME = 128
# Commands: 1-32 characters of a-z, 0-9 and _; descriptions 1-256 (Bot API, BotCommand).
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
MAX_COMMAND_DESCRIPTION = 256


@bot_method("getMe")
async def get_me(runtime: Runtime, params: Params) -> dict[str, Any]:
    return me_json(runtime.state.bot)


@bot_method("logOut")
async def log_out(runtime: Runtime, params: Params) -> bool:
    return True


@bot_method("close")
async def close(runtime: Runtime, params: Params) -> bool:
    return True


@bot_method("getChat")
async def get_chat(runtime: Runtime, params: Params) -> dict[str, Any]:
    return chat_full_info_json(runtime.state, require_chat(runtime, params))


@bot_method("getChatMember")
async def get_chat_member(runtime: Runtime, params: Params) -> dict[str, Any]:
    chat = require_chat(runtime, params)
    user = runtime.state.users.get(params.required_int("user_id"))
    if user is None:
        raise bad_request("user not found")
    return member_json(user, _status(runtime, chat, user.id))


def _status(runtime: Runtime, chat: SandboxChat, user_id: int) -> MemberStatus:
    if chat.type == "private" and user_id == runtime.state.bot.id:
        return "kicked" if runtime.state.users[chat.id].blocked_bot else "member"
    return chat.members.get(user_id, "left")


@bot_method("getChatAdministrators")
async def get_chat_administrators(runtime: Runtime, params: Params) -> list[dict[str, Any]]:
    chat = require_chat(runtime, params)
    if not chat.is_group:
        raise bad_request("there are no administrators in the private chat")
    users = runtime.state.users
    return [
        member_json(users[uid], status)
        for uid, status in chat.members.items()
        if status in ("creator", "administrator")
    ]


@bot_method("getChatMemberCount")
async def get_chat_member_count(runtime: Runtime, params: Params) -> int:
    chat = require_chat(runtime, params)
    return sum(status not in ("left", "kicked") for status in chat.members.values())


# Forum topics -------------------------------------------------------------------------------


def _forum(runtime: Runtime, params: Params) -> SandboxChat:
    chat = require_chat(runtime, params)
    if not chat.is_forum:
        raise bad_request("the chat is not a forum")
    if chat.members.get(runtime.state.bot.id) != "administrator":
        raise bad_request("not enough rights to manage topics")  # needs can_manage_topics
    return chat


def _topic_name(params: Params, *, required: bool) -> str | None:
    name = params.str_("name")
    if name is None or not name.strip():
        if required:
            raise bad_request("TOPIC_TITLE_EMPTY")
        return None
    if len(name) > MAX_TOPIC_NAME:
        raise bad_request("TOPIC_TITLE_TOO_LONG")
    return name


@bot_method("createForumTopic")
async def create_forum_topic(runtime: Runtime, params: Params) -> dict[str, Any]:
    chat = _forum(runtime, params)
    name = _topic_name(params, required=True)
    assert name is not None
    color = params.int_("icon_color", DEFAULT_TOPIC_COLOR)
    if color not in TOPIC_COLORS:
        raise bad_request("TOPIC_COLOR_INVALID")  # only six colours are allowed
    topic = runtime.state.create_topic(
        chat, name, color, params.str_("icon_custom_emoji_id"), runtime.state.bot.id
    )
    return topic_json(topic)


@bot_method("editForumTopic")
async def edit_forum_topic(runtime: Runtime, params: Params) -> bool:
    chat = _forum(runtime, params)
    topic = require_topic(chat, params)
    name = _topic_name(params, required=False)
    emoji = params.str_("icon_custom_emoji_id")
    if name is None and emoji is None:
        raise bad_request("TOPIC_NOT_MODIFIED")
    edited: dict[str, Any] = {}
    if name is not None:
        topic.name = edited["name"] = name
    if emoji is not None:
        topic.icon_custom_emoji_id = edited["icon_custom_emoji_id"] = emoji
    _topic_service(runtime, chat, topic.thread_id, {"forum_topic_edited": edited})
    return True


@bot_method("closeForumTopic")
async def close_forum_topic(runtime: Runtime, params: Params) -> bool:
    return _set_closed(runtime, params, closed=True)


@bot_method("reopenForumTopic")
async def reopen_forum_topic(runtime: Runtime, params: Params) -> bool:
    return _set_closed(runtime, params, closed=False)


def _set_closed(runtime: Runtime, params: Params, *, closed: bool) -> bool:
    chat = _forum(runtime, params)
    topic = require_topic(chat, params)
    if topic.closed == closed:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.closed = closed
    event = "forum_topic_closed" if closed else "forum_topic_reopened"
    _topic_service(runtime, chat, topic.thread_id, {event: {}})
    return True


def _topic_service(
    runtime: Runtime, chat: SandboxChat, thread_id: int, service: dict[str, Any]
) -> None:
    runtime.state.post(chat, runtime.state.bot.id, thread_id=thread_id, service=service)


@bot_method("deleteForumTopic")
async def delete_forum_topic(runtime: Runtime, params: Params) -> bool:
    chat = _forum(runtime, params)
    runtime.state.delete_topic(chat, require_topic(chat, params))
    return True


# Commands -----------------------------------------------------------------------------------


def _commands_key(params: Params) -> str:
    scope = params.json_("scope")
    scope_key = "default"
    if isinstance(scope, dict):
        scope_key = ":".join(str(scope.get(k, "")) for k in ("type", "chat_id", "user_id"))
    return f"{scope_key}|{params.str_('language_code') or ''}"


@bot_method("setMyCommands")
async def set_my_commands(runtime: Runtime, params: Params) -> bool:
    commands = params.json_("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("commands must be a list of at most 100 BotCommand")
    for command in commands:
        if not isinstance(command, dict) or not _COMMAND.fullmatch(str(command.get("command"))):
            raise bad_request("BOT_COMMAND_INVALID")
        description = str(command.get("description") or "")
        if not 1 <= len(description) <= MAX_COMMAND_DESCRIPTION:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    runtime.state.commands[_commands_key(params)] = [
        {"command": c["command"], "description": c["description"]} for c in commands
    ]
    return True


@bot_method("getMyCommands")
async def get_my_commands(runtime: Runtime, params: Params) -> list[dict[str, Any]]:
    return runtime.state.commands.get(_commands_key(params), [])


@bot_method("deleteMyCommands")
async def delete_my_commands(runtime: Runtime, params: Params) -> bool:
    runtime.state.commands.pop(_commands_key(params), None)
    return True
