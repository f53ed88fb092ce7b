"""A small HTTP reverse proxy that spreads requests over several workers, for local use.

``huiyin run --workers N`` puts it in front of its N worker processes; in production nginx
(or any load balancer) does the same job (README, "Deployment").

Each request goes to the next upstream in turn. An upstream whose connection fails (refused,
reset, closed before it answered) is skipped for a while and the request is tried on the
next one: a worker that died must not cost Telegram's webhook POST, which is only answered
502 when every upstream has failed (Telegram then sends it again). Trying again after a
reset is safe here because the bot's only POST is the webhook, and the inbox ignores an
update whose ``update_id`` it already holds. A slow answer is not retried (504).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

log = logging.getLogger(__name__)

# RFC 9110 §7.6.1: meant for one connection only, never forwarded. Host and Content-Length
# are set afresh for the upstream request, and its body is already read (no Expect).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect"}

# How long an upstream that failed is left out of the rotation before it is tried again.
DOWN_SECONDS = 2.0
# Large enough for the sandbox's uploads (60 MiB); a webhook update is a few KiB.
MAX_REQUEST_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 64 * 1024

# The request could not be delivered, or its answer never started: nothing the upstream
# said reached the client, so another upstream may have the request.
_CONNECTION_ERRORS = (
    aiohttp.ClientConnectorError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
)


@dataclass
class Upstream:
    """One worker's base URL (``http://127.0.0.1:8081``) and what the balancer knows of it."""

    url: str
    down: bool = False
    down_until: float = 0.0
    requests: int = 0
    failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "up": not self.down,
            "requests": self.requests,
            "failures": self.failures,
        }


class Balancer:
    """Round-robin over ``upstreams``. ``add_routes(app)`` sends every path not routed
    before it to the workers; call it last."""

    def __init__(
        self,
        upstreams: Sequence[str],
        *,
        down_seconds: float = DOWN_SECONDS,
        timeout: aiohttp.ClientTimeout | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not upstreams:
            raise ValueError("a balancer needs at least one upstream")
        self.upstreams = [Upstream(url.rstrip("/")) for url in upstreams]
        self.down_seconds = down_seconds
        # No total: an upstream may stream a long answer. A worker that accepts and then
        # says nothing for a minute is stuck.
        self.timeout = timeout or aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)
        self.clock = clock
        self._next = 0
        self._session: aiohttp.ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)

    async def _open(self, _app: web.Application) -> None:
        await self.start()

    async def _close(self, _app: web.Application) -> None:
        await self.close()

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                auto_decompress=False,  # bytes pass through as the upstream encoded them
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def status(self) -> list[dict[str, Any]]:
        return [upstream.to_dict() for upstream in self.upstreams]

    def _candidates(self) -> list[Upstream]:
        """Every upstream, in turn from the next one: those not resting first, then those
        resting after a failure (one of them may be back; better than a 502)."""
        start = self._next
        self._next = (self._next + 1) % len(self.upstreams)
        order = self.upstreams[start:] + self.upstreams[:start]
        now = self.clock()
        resting = [u for u in order if u.down and now < u.down_until]
        return [u for u in order if u not in resting] + resting

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            raise RuntimeError("Balancer.start() was not awaited")
        body = await request.read()
        headers = _forwarded_headers(request)
        for upstream in self._candidates():
            url = URL(upstream.url + request.raw_path, encoded=True)
            try:
                async with self._session.request(
                    request.method, url, headers=headers, data=body, allow_redirects=False
                ) as answer:
                    upstream.requests += 1
                    self._mark_up(upstream)
                    return await _relay(request, answer)
            except _CONNECTION_ERRORS as error:
                self._mark_down(upstream, error)
            except TimeoutError:
                log.warning("balancer: %s did not answer %s in time", upstream.url, request.path)
                return web.Response(status=504, text="upstream timed out")
        return web.Response(status=502, text="no worker is reachable")

    def mark_up(self, url: str) -> None:
        """Told from outside that an upstream is up (a health check passed)."""
        for upstream in self.upstreams:
            if upstream.url == url.rstrip("/"):
                self._mark_up(upstream)

    def _mark_up(self, upstream: Upstream) -> None:
        if upstream.down:
            upstream.down = False
            log.info("balancer: %s is back", upstream.url)

    def _mark_down(self, upstream: Upstream, error: BaseException) -> None:
        upstream.failures += 1
        upstream.down_until = self.clock() + self.down_seconds
        if not upstream.down:
            upstream.down = True
            log.info("balancer: %s is down (%s); trying the next worker", upstream.url, error)


def _forwarded_headers(request: web.Request) -> CIMultiDict[str]:
    named_in_connection = {
        token.strip().lower()
        for value in request.headers.getall("Connection", [])
        for token in value.split(",")
    }
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered not in NOT_FORWARDED and lowered not in named_in_connection:
            headers.add(name, value)
    if request.remote:
        previous = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = (
            f"{previous}, {request.remote}" if previous else request.remote
        )
    headers.setdefault("X-Forwarded-Proto", request.scheme)
    headers.setdefault("X-Forwarded-Host", request.host)
    return headers


async def _relay(request: web.Request, answer: aiohttp.ClientResponse) -> web.StreamResponse:
    """Stream the upstream's answer back: status, headers (minus hop-by-hop), body."""
    response = web.StreamResponse(status=answer.status, reason=answer.reason)
    for name, value in answer.headers.items():
        if name.lower() not in HOP_BY_HOP:
            response.headers.add(name, value)
    await response.prepare(request)
    try:
        async for chunk in answer.content.iter_chunked(CHUNK_BYTES):
            await response.write(chunk)
    except (TimeoutError, aiohttp.ClientError) as error:
        # The status is already out: all that is left is to cut the answer short.
        log.warning("balancer: answer from %s broke off: %s", answer.url.origin(), error)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def create_app(upstreams: Sequence[str], **options: Any) -> web.Application:
    """The balancer alone, as an aiohttp application."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    Balancer(upstreams, **options).add_routes(app)
    return app
