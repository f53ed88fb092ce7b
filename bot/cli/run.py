"""``huiyin run``: start the bot.

Without ``HUIYIN_BOT_TOKEN`` it starts the sandbox Bot API server with a demo organisation
(one forum group per unit of the config, a demo citizen, staff, a supervisor and an admin),
runs the bot against it on a fresh SQLite file and prints the URL to open in a browser.
With a token it talks to Telegram: long polling, or a webhook when ``HUIYIN_WEBHOOK_URL``
is set (served on ``HUIYIN_HOST:HUIYIN_PORT``).

``--workers N`` (N ≥ 2) starts N worker processes in webhook mode, on ports PORT+1 … PORT+N
of 127.0.0.1, behind a small built-in balancer on ``HUIYIN_HOST:HUIYIN_PORT``; a worker
that dies is started again. With a token ``HUIYIN_WEBHOOK_URL`` is required (the public
URL Telegram posts to, in front of the balancer); without one the sandbox and its demo
run in this process and post to the balancer. Use PostgreSQL (and Redis) for real work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("huiyin")

SANDBOX_DATABASE = Path("var") / "sandbox-demo.sqlite3"

# A worker that dies is started again after RESTART_FIRST_SECONDS, doubling up to
# RESTART_MAX_SECONDS while it keeps dying; one that ran for STABLE_SECONDS starts over.
RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STABLE_SECONDS = 30.0
# A worker finishes what is in flight within bot.app.STOP_GRACE_SECONDS (10 s) of SIGTERM.
WORKER_STOP_SECONDS = 15.0
# A worker that never got as far as answering /healthz is given this many tries (a setWebhook
# refused with 429 while N workers start at once is worth another); then the launch fails.
BOOT_ATTEMPTS = 3
WORKER_HOST = "127.0.0.1"
HEALTH_POLL_SECONDS = 0.2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="start the bot (the sandbox with a demo organisation when no token is set)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="address to listen on (default HUIYIN_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default HUIYIN_PORT or 8080)")
    parser.add_argument("--config", metavar="DIR", help="config folder (default config/)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="N ≥ 2: N worker processes in webhook mode behind a built-in balancer",
    )
    # Given by --workers to its workers: they stop when their launcher is gone.
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bot.settings import Settings

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.config:
        overrides["config_dir"] = Path(args.config)
    settings = Settings(**overrides)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.workers < 1:
        print("huiyin run: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:
        if problem := _workers_problem(settings, args.workers):
            print(f"huiyin run: {problem}", file=sys.stderr)
            return 2
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(serve_workers(settings, args.workers))
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, parent_pid=args.parent_pid))
    return 0


async def serve(
    settings: Any, *, ready: asyncio.Event | None = None, parent_pid: int | None = None
) -> None:
    """Run until SIGINT/SIGTERM (or cancellation, or the death of ``parent_pid``)."""
    from aiohttp import web

    from bot.app import Huiyin

    stop = _stop_on_signals()
    web_app = web.Application()
    if settings.sandbox:
        huiyin, url = await _start_sandbox(settings, web_app)
    else:
        token = settings.bot_token.get_secret_value()
        huiyin = await Huiyin.create(settings, token=token, api_url=settings.telegram_api_url)
        url = f"http://{settings.host}:{settings.port}/"
    # The webhook (when set), /healthz (503 "starting" until start() has returned: the
    # webhook registered and the loops running) and /metrics.
    huiyin.add_routes(web_app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    # The sandbox (when used) answers on this very server: start talking only now.
    await huiyin.start()
    watchdog = asyncio.create_task(_stop_when_orphaned(parent_pid, stop)) if parent_pid else None
    if settings.sandbox:
        print(f"Huiyin is running on the sandbox. Open {url} in a browser.", flush=True)
        print("回音已在沙盒中运行，请用浏览器打开上面的地址。", flush=True)
    else:
        mode = "webhook" if settings.webhook_url else "polling"
        print(f"Huiyin is running ({mode}) on port {settings.port}.", flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        await huiyin.stop()
        await runner.cleanup()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _stop_when_orphaned(parent_pid: int, stop: asyncio.Event) -> None:
    """A worker whose launcher was killed outright (no SIGTERM passed on) stops by itself,
    instead of holding its port against the next launch."""
    while os.getppid() == parent_pid:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
            return
    log.warning("the launcher (pid %d) is gone: stopping", parent_pid)
    stop.set()


async def _start_sandbox(settings: Any, web_app: Any) -> tuple[Any, str]:
    """The sandbox Bot API server shares the web app (and its port) with the bot."""
    from bot.app import Huiyin
    from bot.demo import seed_organisation
    from bot.sandbox import DEFAULT_TOKEN, SandboxState, create_app

    settings = _sandbox_database(settings)
    base = f"http://{_local(settings.host)}:{settings.port}"
    state = SandboxState(DEFAULT_TOKEN)
    web_app.add_subapp("/tg/", create_app(state))
    # create() migrates the database and loads the config; nothing talks to the Bot API
    # before start(), so the demo can be seeded in between.
    huiyin = await Huiyin.create(settings, token=state.token, api_url=f"{base}/tg")
    await seed_organisation(state, huiyin.config, huiyin.sessionmaker)
    web_app.router.add_get("/", _redirect_to("/tg/"))
    return huiyin, f"{base}/tg/"


def _sandbox_database(settings: Any) -> Any:
    if "HUIYIN_DATABASE_URL" in os.environ:
        return settings
    # The sandbox forgets its chats when it stops: start the demo's database afresh too.
    _fresh_sqlite(SANDBOX_DATABASE)
    url = f"sqlite+aiosqlite:///{SANDBOX_DATABASE.resolve()}"
    return settings.model_copy(update={"database_url": url})


def _fresh_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _local(host: str) -> str:
    """An address this machine can connect to, for one it listens on."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def _redirect_to(location: str) -> Any:
    from aiohttp import web

    async def handler(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(location)

    return handler


# ---------------------------------------------------------------------- several workers


def _workers_problem(settings: Any, count: int) -> str | None:
    """Why ``--workers count`` cannot start with these settings, if it cannot."""
    from bot.db.engine import is_sqlite

    if not settings.sandbox and not settings.webhook_url:
        return (
            "--workers needs HUIYIN_WEBHOOK_URL: the public https URL Telegram posts "
            "updates to (a proxy there forwards to the balancer on "
            f"{settings.host}:{settings.port}); several workers cannot share long polling"
        )
    wanted = [(settings.host, settings.port)]
    wanted += [(WORKER_HOST, port) for port in _worker_ports(settings.port, count)]
    if busy := [str(port) for host, port in wanted if not _port_is_free(host, port)]:
        return f"ports in use: {', '.join(busy)} (the balancer's and PORT+1 … PORT+N; try --port)"
    if not settings.sandbox and is_sqlite(settings.database_url):
        log.warning(
            "several workers on SQLite work, on one machine; PostgreSQL "
            "(HUIYIN_DATABASE_URL=postgresql+asyncpg://…) is how Huiyin scales"
        )
    return None


def _worker_ports(port: int, count: int) -> list[int]:
    return [port + index for index in range(1, count + 1)]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


async def serve_workers(settings: Any, count: int) -> int:
    """The launcher: the balancer (and, without a token, the sandbox with the demo) on
    ``settings.host:settings.port``, and ``count`` workers behind it. Runs until SIGINT or
    SIGTERM, then stops the workers; the exit status."""
    from aiohttp import web

    from bot.balancer import MAX_REQUEST_BYTES, Balancer
    from bot.db.migrate import upgrade_database

    stop = _stop_on_signals()
    public = f"http://{_local(settings.host)}:{settings.port}"
    env = _worker_env(settings, public)
    web_app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    if settings.sandbox:
        from bot.sandbox import DEFAULT_TOKEN

        settings = await _seed_sandbox(settings, web_app)
        env["HUIYIN_BOT_TOKEN"] = DEFAULT_TOKEN
        env["HUIYIN_TELEGRAM_API_URL"] = f"{public}/tg"
    else:
        # Once here rather than N times at once in the workers (which would take turns).
        await upgrade_database(settings.database_url)
    env["HUIYIN_DATABASE_URL"] = settings.database_url

    ports = _worker_ports(settings.port, count)
    balancer = Balancer([f"http://{WORKER_HOST}:{port}" for port in ports])
    # A worker that is ready takes requests at once, even while the balancer still rests
    # it after finding it down (starting, or restarted).
    pool = WorkerPool(ports, env, on_ready=lambda worker: balancer.mark_up(worker.url))

    async def workers(_request: web.Request) -> web.Response:
        return web.json_response(pool.status(balancer.status()))

    web_app.router.add_get("/huiyin/workers", workers)
    balancer.add_routes(web_app)  # last: it takes every path not routed above
    runner = web.AppRunner(web_app)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        pool.start()
        if not await pool.wait_ready(stop):
            return 0 if stop.is_set() else 1
        if settings.sandbox:
            print(
                f"Huiyin is running on the sandbox with {count} workers. "
                f"Open {public}/tg/ in a browser.",
                flush=True,
            )
            print("回音已在沙盒中运行，请用浏览器打开上面的地址。", flush=True)
        else:
            print(f"Huiyin is running (webhook, {count} workers) on {public}/.", flush=True)
        await stop.wait()
    finally:
        await pool.stop()
        await runner.cleanup()
    return 0


def _worker_env(settings: Any, public: str) -> dict[str, str]:
    """What the workers are told, over what they read from the environment and .env."""
    secret = (
        settings.webhook_secret.get_secret_value()
        if settings.webhook_secret
        else secrets.token_urlsafe(32)
    )
    # Every worker registers the same URL and secret: with a secret of its own each, they
    # would overwrite one another's setWebhook and refuse each other's updates.
    return {
        # The sandbox posts to the balancer; Telegram to the public URL in front of it.
        "HUIYIN_WEBHOOK_URL": public if settings.sandbox else settings.webhook_url,
        "HUIYIN_WEBHOOK_SECRET": secret,
        "HUIYIN_CONFIG_DIR": str(Path(settings.config_dir).resolve()),
        "HUIYIN_HOST": WORKER_HOST,
    }


async def _seed_sandbox(settings: Any, web_app: Any) -> Any:
    """The sandbox on the launcher's app, and the demo organisation in a database made and
    seeded once, here, before any worker starts (a worker only migrates, a no-op then)."""
    from bot.db.engine import make_engine, make_sessionmaker
    from bot.db.migrate import upgrade_database
    from bot.demo import seed_organisation
    from bot.sandbox import DEFAULT_TOKEN, SandboxState, create_app
    from routing.config import load_config

    settings = _sandbox_database(settings)
    state = SandboxState(DEFAULT_TOKEN)
    web_app.add_subapp("/tg/", create_app(state))
    web_app.router.add_get("/", _redirect_to("/tg/"))
    config = load_config(settings.config_dir)
    await upgrade_database(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        await seed_organisation(state, config, make_sessionmaker(engine))
    finally:
        await engine.dispose()
    return settings


@dataclass
class Worker:
    index: int
    port: int
    process: asyncio.subprocess.Process | None = None
    ready: bool = False  # the running process answers /healthz
    served: bool = False  # some process of this worker did (it can start at all)
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://{WORKER_HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


class WorkerPool:
    """``huiyin run`` child processes, one per port, each kept running until :meth:`stop`.

    ``on_ready(worker)`` is called each time a worker's process first answers /healthz."""

    def __init__(
        self,
        ports: list[int],
        env: dict[str, str],
        *,
        on_ready: Callable[[Worker], None] = lambda worker: None,
    ):
        self.workers = [Worker(index, port) for index, port in enumerate(ports, start=1)]
        self.env = env
        self.on_ready = on_ready
        self.boot_failed: Worker | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep_running(worker), name=f"worker-{worker.index}")
            for worker in self.workers
        ]

    async def wait_ready(self, stop: asyncio.Event) -> bool:
        """Until every worker answers its /healthz; False if one could not start at all
        (or on ``stop``)."""
        while not stop.is_set():
            if self.boot_failed is not None:
                log.error(
                    "worker %d could not start (see its log above): stopping",
                    self.boot_failed.index,
                )
                return False
            if all(worker.ready for worker in self.workers):
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEALTH_POLL_SECONDS)
        return False

    def status(self, upstreams: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_url = {upstream["url"]: upstream for upstream in upstreams}
        return [
            {
                "worker": worker.index,
                "pid": worker.pid,
                "port": worker.port,
                "ready": worker.ready,
                "restarts": worker.restarts,
                **by_url.get(worker.url, {}),
            }
            for worker in self.workers
        ]

    async def stop(self) -> None:
        """SIGTERM every worker, wait for them, SIGKILL those that hang."""
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _keep_running(self, worker: Worker) -> None:
        delay = RESTART_FIRST_SECONDS
        failures = 0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            process = await self._spawn(worker)
            watch = asyncio.create_task(self._watch_health(worker))
            code = await self._exit_or_stop(process)
            watch.cancel()
            worker.ready = False
            if code is None:  # told to stop
                break
            if not worker.served:
                failures += 1
                if failures >= BOOT_ATTEMPTS:
                    log.error(
                        "worker %d (pid %d) exited with %d, %d times without starting",
                        worker.index,
                        process.pid,
                        code,
                        failures,
                    )
                    self.boot_failed = worker
                    return
            if loop.time() - started > STABLE_SECONDS:
                delay = RESTART_FIRST_SECONDS
            worker.restarts += 1
            log.warning(
                "worker %d (pid %d) exited with %d; starting it again in %.0f s",
                worker.index,
                process.pid,
                code,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, RESTART_MAX_SECONDS)
        await self._terminate(worker)

    async def _spawn(self, worker: Worker) -> asyncio.subprocess.Process:
        env = {**os.environ, **self.env, "HUIYIN_PORT": str(worker.port)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--parent-pid",
            str(os.getpid()),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            # Its own session: a Ctrl-C at the terminal reaches the launcher only, which
            # then stops the workers in order.
            start_new_session=True,
        )
        worker.process = process
        log.info("worker %d started: pid %d on %s", worker.index, process.pid, worker.url)
        return process

    async def _watch_health(self, worker: Worker) -> None:
        """Poll the new process's /healthz until it answers (its webhook is registered)."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                try:
                    async with http.get(f"{worker.url}/healthz") as response:
                        if response.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(HEALTH_POLL_SECONDS)
        worker.ready = worker.served = True
        log.info("worker %d (pid %s) is ready", worker.index, worker.pid)
        self.on_ready(worker)

    async def _exit_or_stop(self, process: asyncio.subprocess.Process) -> int | None:
        """The exit status, or None when the pool is stopping first."""
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (exited, stopping):
            task.cancel()
        if exited.done() and not exited.cancelled() and not self._stopping.is_set():
            return exited.result()
        return None

    async def _terminate(self, worker: Worker) -> None:
        process = worker.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), WORKER_STOP_SECONDS)
        except TimeoutError:
            log.warning(
                "worker %d (pid %d) did not stop within %.0f s: killing it",
                worker.index,
                process.pid,
                WORKER_STOP_SECONDS,
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        log.info("worker %d (pid %d) stopped", worker.index, process.pid)
