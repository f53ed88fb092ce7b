"""The built-in balancer (``huiyin run --workers N``) over real HTTP: requests take turns
over the workers, pass through unchanged, and survive a worker that is gone."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from bot.balancer import Balancer

Serve = Callable[..., Awaitable[str]]  # (app, port=0) -> base URL


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _free_port() -> int:
    """A port nothing listens on (a worker that died)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def worker(name: str) -> web.Application:
    """An upstream that says who it is and what it received."""

    async def echo(request: web.Request) -> web.StreamResponse:
        if request.path == "/stream":
            response = web.StreamResponse(status=200, headers={"X-Worker": name})
            await response.prepare(request)
            for part in (b"one,", b"two,", b"three"):
                await response.write(part)
            await response.write_eof()
            return response
        if request.path == "/broken":
            return web.Response(status=500, text="handler failed", headers={"X-Worker": name})
        body = await request.read()
        response = web.json_response(
            {
                "worker": name,
                "method": request.method,
                "raw_path": request.raw_path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body.decode(),
            },
            status=201 if request.method == "POST" else 200,
            headers={"X-Worker": name},
        )
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application, port: int = 0) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        runners.append(runner)
        host, bound = runner.addresses[0][:2]
        return f"http://{host}:{bound}"

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


@asynccontextmanager
async def balancer_in_front(
    serve: Serve, upstreams: list[str], clock: FakeClock | None = None
) -> AsyncIterator[tuple[Balancer, str, aiohttp.ClientSession]]:
    balancer = Balancer(upstreams, clock=clock or FakeClock())
    app = web.Application()
    balancer.add_routes(app)
    url = await serve(app)
    async with aiohttp.ClientSession() as http:
        yield balancer, url, http


async def test_requests_take_turns_over_the_workers(serve: Serve) -> None:
    upstreams = [await serve(worker("a")), await serve(worker("b"))]
    async with balancer_in_front(serve, upstreams) as (balancer, url, http):
        seen = []
        for _ in range(4):
            async with http.get(f"{url}/healthz") as response:
                seen.append(response.headers["X-Worker"])
    assert seen == ["a", "b", "a", "b"]
    assert [u["requests"] for u in balancer.status()] == [2, 2]


async def test_method_path_query_headers_and_body_pass_through(serve: Serve) -> None:
    upstreams = [await serve(worker("a"))]
    headers = {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": "s3cret",
        "Proxy-Authorization": "Basic eDp5",  # hop-by-hop: for the proxy only
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "named in Connection: not forwarded either",
    }
    async with (
        balancer_in_front(serve, upstreams) as (_balancer, url, http),
        http.post(
            f"{url}/telegram/webhook?x=1&y=%E4%B8%AD", data='{"update_id": 7}', headers=headers
        ) as response,
    ):
        assert response.status == 201
        assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
        received = await response.json()
    assert received["method"] == "POST"
    assert received["raw_path"] == "/telegram/webhook?x=1&y=%E4%B8%AD"
    assert received["body"] == '{"update_id": 7}'
    forwarded = received["headers"]
    assert forwarded["x-telegram-bot-api-secret-token"] == "s3cret"
    assert forwarded["content-type"] == "application/json"
    assert forwarded["x-forwarded-for"] == "127.0.0.1"
    assert "proxy-authorization" not in forwarded
    assert "x-hop" not in forwarded


async def test_a_streamed_answer_and_an_error_status_pass_through(serve: Serve) -> None:
    upstreams = [await serve(worker("a")), await serve(worker("b"))]
    async with balancer_in_front(serve, upstreams) as (_balancer, url, http):
        async with http.get(f"{url}/stream") as response:
            assert response.status == 200
            assert await response.read() == b"one,two,three"
        # A worker that answers, even with an error, was reached: no second try.
        async with http.post(f"{url}/broken", data=b"{}") as response:
            assert response.status == 500
            assert response.headers["X-Worker"] == "b"
            assert await response.text() == "handler failed"


async def test_a_dead_worker_is_skipped_and_the_request_still_delivered(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.balancer")
    dead_port = _free_port()
    clock = FakeClock()
    upstreams = [f"http://127.0.0.1:{dead_port}", await serve(worker("b"))]
    async with balancer_in_front(serve, upstreams, clock) as (balancer, url, http):
        for update_id in range(4):
            async with http.post(
                f"{url}/telegram/webhook", json={"update_id": update_id}
            ) as response:
                assert response.status == 201
                assert (await response.json())["body"] == f'{{"update_id": {update_id}}}'
        dead, alive = balancer.status()
        assert (dead["up"], dead["requests"], dead["failures"]) == (False, 0, 1)
        assert alive["requests"] == 4
        assert sum("is down" in r.message for r in caplog.records) == 1

        # The worker is started again: once its rest is over it is back in the rotation.
        await serve(worker("a"), dead_port)
        clock.now += 5
        workers = []
        for _ in range(2):
            async with http.get(f"{url}/healthz") as response:
                workers.append(response.headers["X-Worker"])
        assert sorted(workers) == ["a", "b"]
        assert balancer.status()[0]["up"] is True
        assert any("is back" in r.message for r in caplog.records)


async def test_502_only_when_every_worker_is_down(serve: Serve) -> None:
    upstreams = [f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"]
    async with balancer_in_front(serve, upstreams) as (balancer, url, http):
        async with http.post(f"{url}/telegram/webhook", json={"update_id": 1}) as response:
            assert response.status == 502
        assert [u["up"] for u in balancer.status()] == [False, False]
        # Both resting: they are still tried (one may be back) before answering 502 again.
        async with http.post(f"{url}/telegram/webhook", json={"update_id": 1}) as response:
            assert response.status == 502
        assert [u["failures"] for u in balancer.status()] == [2, 2]
