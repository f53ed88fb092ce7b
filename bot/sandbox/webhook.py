"""Webhook delivery: POST each update, in order, until the bot answers 2xx.

Telegram retries a failed webhook request "a reasonable amount of attempts" and keeps the
update meanwhile (Bot API, setWebhook); getWebhookInfo then shows the last error. One
request is in flight at a time here, so updates always arrive in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.sandbox.limits import Stats
from bot.sandbox.params import Params
from bot.sandbox.state import SandboxState
from bot.sandbox.updates import QueuedUpdate

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
Executor = Callable[[str, Params], Awaitable[Any]]


@dataclass
class RetryPolicy:
    """Backoff between failed attempts; far shorter than Telegram's, to keep tests quick."""

    first_delay: float = 0.2
    max_delay: float = 5.0
    factor: float = 2.0
    request_timeout: float = 10.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * self.factor ** (attempt - 1)))


class WebhookDelivery:
    def __init__(self, state: SandboxState, stats: Stats, retry: RetryPolicy | None = None):
        self.state = state
        self.stats = stats
        self.retry = retry or RetryPolicy()
        self.execute: Executor | None = None  # runs a method the bot answers with
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wake(self) -> None:
        """Called after setWebhook/deleteWebhook: start delivering if a URL is set."""
        if self.state.webhook.url and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name="sandbox-webhook")
        self.state.updates.notify()

    async def _run(self) -> None:
        attempt = 0
        while self.state.webhook.url:
            pending = self.state.updates.peek(1)
            if not pending:
                await self.state.updates.wait(30)
                continue
            update = pending[0]
            if await self._deliver(update):
                self.state.updates.drop(update.update_id)
                attempt = 0
                continue
            attempt += 1
            await asyncio.sleep(self.retry.delay(attempt))

    async def _deliver(self, update: QueuedUpdate) -> bool:
        assert self._session is not None, "WebhookDelivery.start() was not awaited"
        config = self.state.webhook
        headers = {SECRET_HEADER: config.secret_token} if config.secret_token else {}
        timeout = aiohttp.ClientTimeout(total=self.retry.request_timeout)
        try:
            async with self._session.post(
                config.url, json=update.to_json(), headers=headers, timeout=timeout
            ) as response:
                if not 200 <= response.status < 300:
                    self._failed(
                        f"Wrong response from the webhook: {response.status} {response.reason}"
                    )
                    return False
                reply = await _method_reply(response)
        except (aiohttp.ClientError, TimeoutError) as error:
            self._failed(_connection_error(error))
            return False
        self.stats.webhook_deliveries += 1
        if reply is not None:
            await self._run_reply(*reply)
        return True

    def _failed(self, message: str) -> None:
        self.stats.webhook_failures += 1
        self.state.webhook.last_error_date = self.state.now()
        self.state.webhook.last_error_message = message
        log.info("webhook delivery failed: %s", message)

    async def _run_reply(self, method: str, params: Params) -> None:
        # Telegram runs a method given in the webhook answer and reports nothing back.
        if self.execute is None:
            return
        try:
            await self.execute(method, params)
        except Exception as error:  # Telegram swallows these too
            log.info("method %s in webhook answer failed: %s", method, error)


async def _method_reply(response: aiohttp.ClientResponse) -> tuple[str, Params] | None:
    """A bot may answer a webhook with one method call (JSON or multipart, as aiogram does)."""
    if response.content_type == "application/json":
        try:
            body = json.loads(await response.text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    elif response.content_type == "multipart/form-data":
        body = await _read_multipart(response)
    else:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("method"), str):
        return None
    method = body.pop("method")
    return method, Params(body)


async def _read_multipart(response: aiohttp.ClientResponse) -> dict[str, Any]:
    reader = aiohttp.MultipartReader(response.headers, response.content)
    body: dict[str, Any] = {}
    while (part := await reader.next()) is not None:
        if isinstance(part, aiohttp.BodyPartReader) and part.name:
            body[part.name] = await part.text()
    return body


def _connection_error(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "Read timeout expired"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "Connection refused"
    return f"Connection error: {error.__class__.__name__}"
