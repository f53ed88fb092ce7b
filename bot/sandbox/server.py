"""Assembly: the aiohttp application and a server that runs it on a host and port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from types import TracebackType

from aiohttp import web

from bot.sandbox import api, control, page
from bot.sandbox.limits import FaultInjector, LimitsConfig, RateLimiter, Stats
from bot.sandbox.registry import execute
from bot.sandbox.runtime import RUNTIME, Runtime
from bot.sandbox.state import SandboxState
from bot.sandbox.webhook import RetryPolicy, WebhookDelivery

# In-flight long polls are woken on shutdown; anything else gets this long to finish.
SHUTDOWN_TIMEOUT = 2.0


def create_app(
    state: SandboxState | None = None,
    *,
    limits: LimitsConfig | None = None,
    webhook_retry: RetryPolicy | None = None,
) -> web.Application:
    """The sandbox as an aiohttp application: Bot API, control API and the page."""
    state = state or SandboxState()
    limits = limits or LimitsConfig()
    stats = Stats()
    webhook = WebhookDelivery(state, stats, webhook_retry)
    runtime = Runtime(state, limits, RateLimiter(limits), FaultInjector(), stats, webhook)
    webhook.execute = partial(execute, runtime)
    app = web.Application(
        client_max_size=api.MAX_REQUEST_BYTES, middlewares=[control.control_errors]
    )
    app[RUNTIME] = runtime
    api.add_routes(app)
    control.add_routes(app)
    page.add_routes(app)
    app.cleanup_ctx.append(_webhook_delivery)
    app.on_shutdown.append(_wake_long_polls)
    return app


async def _webhook_delivery(app: web.Application) -> AsyncIterator[None]:
    delivery = app[RUNTIME].webhook
    await delivery.start()
    delivery.wake()  # a webhook set on the state before start-up
    yield
    await delivery.stop()


async def _wake_long_polls(app: web.Application) -> None:
    updates = app[RUNTIME].state.updates
    updates.closing = True
    updates.notify()


class SandboxServer:
    """The sandbox on a real socket. ``port=0`` picks a free port; see :attr:`url`.

    Point aiogram at it with
    ``AiohttpSession(api=TelegramAPIServer.from_base(server.url))``.
    """

    def __init__(
        self,
        state: SandboxState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: LimitsConfig | None = None,
        webhook_retry: RetryPolicy | None = None,
    ):
        self.state = state or SandboxState()
        self.host = host
        self.port = port
        self.app = create_app(self.state, limits=limits, webhook_retry=webhook_retry)
        self._runner: web.AppRunner | None = None

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (valid once started)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        runner = web.AppRunner(self.app, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
