"""The webhook endpoint: store the update, then answer 200.

Telegram treats any 2xx as "delivered" and retries anything else (Bot API, setWebhook), so
the 200 goes out only after :func:`bot.inbox.store_updates` has committed, and a failed
store answers 500 to be sent the update again. A replay is ignored by ``update_id``.

Telegram may post several updates at once (``max_connections``, default 40); they can be
stored out of order, and the processor orders only what is stored. One person rarely sends
two updates within a request's time, but ``max_connections=1`` removes the window.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence

from aiogram import Bot
from aiohttp import web

from bot.inbox import Sessionmaker, store_updates

log = logging.getLogger(__name__)

# Telegram sends setWebhook's secret_token in this header with every request.
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class InboxWebhook:
    """The webhook's aiohttp handler: ``app.router.add_post(path, InboxWebhook(...).handle)``.

    A secret is required: without it anyone who learns the URL could post updates that
    look like citizens' messages.
    """

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        *,
        secret_token: str,
        on_stored: Callable[[], None] | None = None,
    ):
        if not secret_token:
            raise ValueError("a webhook needs a secret_token")
        self.sessionmaker = sessionmaker
        self._secret = secret_token.encode()
        self.on_stored = on_stored

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            log.warning("webhook: request without the right secret from %s", request.remote)
            return web.Response(status=401)
        try:
            update = await request.json()
        except ValueError:
            return web.Response(status=400, text="body is not JSON")
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return web.Response(status=400, text="not an Update")
        try:
            await store_updates(self.sessionmaker, [update])
        except Exception:  # whatever broke, a non-2xx makes Telegram send it again
            log.exception("webhook: storing update %s failed", update["update_id"])
            return web.Response(status=500)
        if self.on_stored is not None:
            self.on_stored()
        # An empty 200: methods in the answer body would run unconfirmed, past the outbox.
        return web.Response(status=200)


def add_webhook_route(
    app: web.Application,
    path: str,
    sessionmaker: Sessionmaker,
    *,
    secret_token: str,
    on_stored: Callable[[], None] | None = None,
) -> InboxWebhook:
    handler = InboxWebhook(sessionmaker, secret_token=secret_token, on_stored=on_stored)
    app.router.add_post(path, handler.handle)
    return handler


async def set_webhook(
    bot: Bot,
    url: str,
    *,
    secret_token: str,
    allowed_updates: Sequence[str] | None = None,
    max_connections: int | None = None,
    drop_pending_updates: bool = False,
) -> bool:
    """Point Telegram at ``url``. Pending updates are kept unless told otherwise: dropping
    them would lose what citizens already sent."""
    return await bot.set_webhook(
        url=url,
        secret_token=secret_token,
        allowed_updates=list(allowed_updates) if allowed_updates is not None else None,
        max_connections=max_connections,
        drop_pending_updates=drop_pending_updates,
    )
