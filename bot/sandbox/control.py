"""The control API (JSON over HTTP under /sandbox/api): create people and groups, act as
them, read transcripts, and steer limits and faults. Documented in README.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.sandbox import people
from bot.sandbox.errors import ControlError
from bot.sandbox.limits import Fault, RandomFaults
from bot.sandbox.models import SandboxChat
from bot.sandbox.runtime import RUNTIME, Runtime
from bot.sandbox.shapes import me_json, topic_json, transcript_json, user_json

PREFIX = "/sandbox/api"
# How long /press waits for the bot's answerCallbackQuery unless told otherwise.
DEFAULT_ANSWER_WAIT = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as error:
        return web.json_response({"error": error.message}, status=error.status)
    except (KeyError, ValueError, TypeError) as error:
        if not request.path.startswith(PREFIX):
            raise
        return web.json_response({"error": f"bad request: {error}"}, status=400)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise ControlError(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


def _runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def _chat_summary(runtime: Runtime, chat: SandboxChat) -> dict[str, Any]:
    state = runtime.state
    title = chat.title or " ".join(
        filter(None, [state.users[chat.id].first_name, state.users[chat.id].last_name])
    )
    return {
        "id": chat.id,
        "type": chat.type,
        "title": title,
        "is_forum": chat.is_forum,
        "members": [{"user_id": uid, "status": s} for uid, s in chat.members.items()],
        "topics": [{**topic_json(t), "closed": t.closed} for t in chat.topics.values()],
        "reply_keyboard": chat.reply_keyboard,
        "revision": chat.revision,
        "last_message_id": chat.next_message_id - 1,
    }


# People and groups ---------------------------------------------------------------------------


async def create_user(request: web.Request) -> web.Response:
    body = await _body(request)
    if not body.get("first_name"):
        raise ControlError(400, "first_name is required")
    user = _runtime(request).state.add_user(
        str(body["first_name"]),
        last_name=body.get("last_name"),
        username=body.get("username"),
        language_code=body.get("language_code"),
        started_bot=bool(body.get("started", True)),
    )
    return web.json_response({**user_json(user), "id": user.id})


async def list_users(request: web.Request) -> web.Response:
    users = _runtime(request).state.users.values()
    return web.json_response(
        [
            {**user_json(u), "blocked_bot": u.blocked_bot, "started_bot": u.started_bot}
            for u in users
        ]
    )


async def block_user(request: web.Request) -> web.Response:
    state = _runtime(request).state
    user = people.person(state, request.match_info["user_id"])
    body = await _body(request)
    state.set_blocked(user, bool(body.get("blocked", True)))
    return web.json_response({"id": user.id, "blocked_bot": user.blocked_bot})


async def create_group(request: web.Request) -> web.Response:
    body = await _body(request)
    if not body.get("title"):
        raise ControlError(400, "title is required")
    state = _runtime(request).state
    members = [int(m) for m in body.get("members", [])]
    admins = [int(a) for a in body.get("admins", [])]
    for user_id in (*members, *admins):
        people.person(state, user_id)
    chat = state.add_group(
        str(body["title"]),
        forum=bool(body.get("forum", False)),
        members=members,
        admins=admins,
        chat_type="group" if body.get("type") == "group" else "supergroup",
    )
    return web.json_response({"id": chat.id, "type": chat.type, "is_forum": chat.is_forum})


# Chats and transcripts -----------------------------------------------------------------------


def _existing_chat(runtime: Runtime, raw_id: str) -> SandboxChat:
    chat = runtime.state.chat(int(raw_id))
    if chat is None:
        raise ControlError(404, f"chat {raw_id} not found")
    return chat


async def list_chats(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    return web.json_response([_chat_summary(runtime, c) for c in runtime.state.chats.values()])


async def get_chat(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    return web.json_response(
        _chat_summary(runtime, _existing_chat(runtime, request.match_info["chat_id"]))
    )


async def chat_messages(request: web.Request) -> web.Response:
    """The transcript; ?after=ID for newer ones, ?thread=ID (0 = General) for one topic."""
    runtime = _runtime(request)
    chat = _existing_chat(runtime, request.match_info["chat_id"])
    query = request.query
    after = int(query.get("after", 0))
    include_deleted = query.get("include_deleted") in ("1", "true")
    messages = [
        m
        for m in runtime.state.transcript(chat, include_deleted=include_deleted)
        if m.message_id > after
    ]
    if "thread" in query:
        thread = int(query["thread"]) or None
        messages = [m for m in messages if m.thread_id == thread]
    return web.json_response([transcript_json(runtime.state, m) for m in messages])


async def get_file(request: web.Request) -> web.Response:
    file = _runtime(request).state.find_file(request.match_info["file_id"])
    if file is None:
        raise ControlError(404, "file not found")
    return web.Response(
        body=file.content, content_type=file.mime_type or "application/octet-stream"
    )


# Acting as a person --------------------------------------------------------------------------


async def send(request: web.Request) -> web.Response:
    body = await _body(request)
    state = _runtime(request).state
    user = people.person(state, body.get("user_id"))
    chat = people.chat_of(state, user, body.get("chat_id"))
    message, update_id = people.send(state, user, chat, people.Outgoing.from_json(body))
    return web.json_response(
        {"message_id": message.message_id, "chat_id": chat.id, "update_id": update_id}
    )


async def edit(request: web.Request) -> web.Response:
    body = await _body(request)
    state = _runtime(request).state
    user = people.person(state, body.get("user_id"))
    chat = people.chat_of(state, user, body.get("chat_id"))
    text = str(body.get("text") or body.get("caption") or "")
    update_id = people.edit(state, user, chat, int(body["message_id"]), text)
    return web.json_response({"message_id": int(body["message_id"]), "update_id": update_id})


async def press(request: web.Request) -> web.Response:
    """A button press; waits up to `timeout` s for the bot's answerCallbackQuery."""
    body = await _body(request)
    state = _runtime(request).state
    user = people.person(state, body.get("user_id"))
    chat = people.chat_of(state, user, body.get("chat_id"))
    waiter, update_id = people.press(
        state,
        user,
        chat,
        int(body["message_id"]),
        str(body["data"]),
        force=bool(body.get("force", False)),
    )
    timeout = float(body.get("timeout", DEFAULT_ANSWER_WAIT))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await waiter.answered.wait()
    return web.json_response(
        {
            "update_id": update_id,
            "callback_query_id": waiter.record.id,
            "answer": waiter.record.answer,
        }
    )


# Overview and steering -----------------------------------------------------------------------


async def get_state(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    state = runtime.state
    return web.json_response(
        {
            "bot": me_json(state.bot),
            "demo": state.demo,
            "users": [
                {**user_json(u), "blocked_bot": u.blocked_bot}
                for u in state.users.values()
                if not u.is_bot
            ],
            "chats": [_chat_summary(runtime, c) for c in state.chats.values()],
            "webhook": state.webhook.url or None,
            "pending_updates": len(state.updates),
        }
    )


async def get_updates(request: web.Request) -> web.Response:
    """Pending updates, read without confirming them (for debugging)."""
    updates = _runtime(request).state.updates.peek(1000)
    return web.json_response([u.to_json() for u in updates])


async def limits(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    if request.method == "POST":
        runtime.limits.update(await _body(request))
        runtime.limiter.reset()
    return web.json_response(runtime.limits.to_json())


async def faults(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    if request.method == "POST":
        runtime.faults.add(Fault.from_json(await _body(request)))
    elif request.method == "DELETE":
        runtime.faults.clear()
    return _faults_json(runtime)


async def random_faults(request: web.Request) -> web.Response:
    """Faults drawn at random, seeded (limits.RandomFaults); DELETE stops them."""
    runtime = _runtime(request)
    if request.method == "POST":
        runtime.faults.set_random(RandomFaults.from_json(await _body(request)))
    elif request.method == "DELETE":
        runtime.faults.set_random(None)
    return _faults_json(runtime)


def _faults_json(runtime: Runtime) -> web.Response:
    drawn = runtime.faults.random
    return web.json_response(
        {
            "faults": [f.to_json() for f in runtime.faults.faults],
            "random": drawn.to_json() if drawn is not None else None,
        }
    )


async def stats(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    if request.method == "POST":
        runtime.stats.reset()
        runtime.limiter.sends.clear()
    state = runtime.state
    return web.json_response(
        {
            **runtime.stats.to_json(),
            "updates_created": state.updates.created,
            "pending_updates": len(state.updates),
        }
    )


async def sends(request: web.Request) -> web.Response:
    """Sending calls in order, admitted or refused, timed on the sandbox's monotonic clock
    (for flood-limit checks: Telegram counts a message when it arrives, not when sent)."""
    return web.json_response([send.to_json() for send in _runtime(request).limiter.sends])


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_post(f"{PREFIX}/users", create_user)
    router.add_get(f"{PREFIX}/users", list_users)
    router.add_post(f"{PREFIX}/users/{{user_id}}/block", block_user)
    router.add_post(f"{PREFIX}/groups", create_group)
    router.add_get(f"{PREFIX}/chats", list_chats)
    router.add_get(f"{PREFIX}/chats/{{chat_id}}", get_chat)
    router.add_get(f"{PREFIX}/chats/{{chat_id}}/messages", chat_messages)
    router.add_get(f"{PREFIX}/files/{{file_id}}", get_file)
    router.add_post(f"{PREFIX}/send", send)
    router.add_post(f"{PREFIX}/edit", edit)
    router.add_post(f"{PREFIX}/press", press)
    router.add_get(f"{PREFIX}/state", get_state)
    router.add_get(f"{PREFIX}/updates", get_updates)
    router.add_route("GET", f"{PREFIX}/limits", limits)
    router.add_route("POST", f"{PREFIX}/limits", limits)
    for method in ("GET", "POST", "DELETE"):
        router.add_route(method, f"{PREFIX}/faults", faults)
        router.add_route(method, f"{PREFIX}/faults/random", random_faults)
    router.add_route("GET", f"{PREFIX}/stats", stats)
    router.add_route("POST", f"{PREFIX}/stats/reset", stats)
    router.add_get(f"{PREFIX}/stats/sends", sends)
