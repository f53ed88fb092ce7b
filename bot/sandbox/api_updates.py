"""Bot API methods for receiving updates: long polling and webhooks."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bot.sandbox.errors import BotApiError, bad_request
from bot.sandbox.params import Params
from bot.sandbox.registry import bot_method
from bot.sandbox.runtime import Runtime

# getUpdates: limit 1-100 (default 100); timeout is the long-polling wait in seconds.
MAX_UPDATES = 100
# Telegram caps long polling at 50 s in practice; a longer wait gains nothing.
MAX_POLL_SECONDS = 50.0
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _set_allowed_updates(runtime: Runtime, params: Params) -> None:
    # "If not specified, the previous setting will be used" (Bot API, getUpdates).
    allowed = params.json_("allowed_updates")
    if allowed is None:
        return
    if not isinstance(allowed, list):
        raise bad_request("allowed_updates must be an Array of String")
    runtime.state.updates.allowed_updates = frozenset(str(kind) for kind in allowed)


@bot_method("getUpdates")
async def get_updates(runtime: Runtime, params: Params) -> list[dict[str, Any]]:
    state = runtime.state
    if state.webhook.url:
        raise BotApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    _set_allowed_updates(runtime, params)
    queue = state.updates
    offset = params.int_("offset")
    if offset is not None:
        queue.confirm(offset)
    limit = min(max(params.int_("limit", MAX_UPDATES) or MAX_UPDATES, 1), MAX_UPDATES)
    timeout = min(max(params.float_("timeout", 0.0), 0.0), MAX_POLL_SECONDS)
    # A newer getUpdates ends the one still waiting, as when two bot instances run.
    queue.poll_generation += 1
    generation = queue.poll_generation
    queue.notify()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not queue.peek(1) and (remaining := deadline - loop.time()) > 0:
        await queue.wait(remaining)
        if queue.poll_generation != generation:
            raise BotApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only "
                "one bot instance is running",
            )
        if state.webhook.url or queue.closing:
            return []
    return [update.to_json() for update in queue.peek(limit)]


@bot_method("setWebhook")
async def set_webhook(runtime: Runtime, params: Params) -> bool:
    url = params.str_("url") or ""
    if url and not url.startswith(("http://", "https://")):
        # Telegram demands HTTPS; the sandbox also takes http:// for local receivers.
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.str_("secret_token")
    if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    _set_allowed_updates(runtime, params)
    if params.bool_("drop_pending_updates"):
        runtime.state.updates.clear()
    webhook = runtime.state.webhook
    if url != webhook.url:
        webhook.last_error_date = webhook.last_error_message = None
    webhook.url, webhook.secret_token = url, secret
    webhook.max_connections = params.int_("max_connections", 40) or 40
    runtime.webhook.wake()
    return True


@bot_method("deleteWebhook")
async def delete_webhook(runtime: Runtime, params: Params) -> bool:
    if params.bool_("drop_pending_updates"):
        runtime.state.updates.clear()
    webhook = runtime.state.webhook
    webhook.url, webhook.secret_token = "", None
    webhook.last_error_date = webhook.last_error_message = None
    runtime.webhook.wake()
    return True


@bot_method("getWebhookInfo")
async def get_webhook_info(runtime: Runtime, params: Params) -> dict[str, Any]:
    state = runtime.state
    webhook = state.webhook
    info: dict[str, Any] = {
        "url": webhook.url,
        "has_custom_certificate": False,
        "pending_update_count": len(state.updates),
    }
    if webhook.url:
        info["max_connections"] = webhook.max_connections
        if state.updates.allowed_updates:
            info["allowed_updates"] = sorted(state.updates.allowed_updates)
        if webhook.last_error_date is not None:
            info["last_error_date"] = webhook.last_error_date
            info["last_error_message"] = webhook.last_error_message
    return info
