"""The Bot API over HTTP: ``/bot{token}/{method}`` and ``/file/bot{token}/{file_path}``.

Every answer is Telegram's envelope: ``{"ok": true, "result": …}`` or ``{"ok": false,
"error_code": N, "description": …, "parameters"?: …}`` with the HTTP status equal to
error_code, which is what aiogram's session turns into its exception classes.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

# Importing the method modules fills the registry.
from bot.sandbox import api_chats, api_messages, api_updates  # noqa: F401
from bot.sandbox.errors import NOT_FOUND, UNAUTHORIZED, BotApiError, too_many_requests
from bot.sandbox.limits import Fault
from bot.sandbox.params import Params
from bot.sandbox.registry import METHODS
from bot.sandbox.runtime import RUNTIME, Runtime

log = logging.getLogger(__name__)

# Uploads may reach 50 MB (Bot API, sending files); aiohttp's default body cap is 1 MB.
MAX_REQUEST_BYTES = 60 * 1024 * 1024

_NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)


async def handle_method(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    method = request.match_info["method"]
    spec = METHODS.get(method.lower())
    runtime.stats.calls[spec.name if spec else method] += 1
    try:
        if request.match_info["token"] != runtime.state.token:
            raise UNAUTHORIZED
        fault = runtime.faults.take(method)
        params: Params | None = None
        if fault is not None:
            if fault.kind == "slow":
                # The call arrived whole (read it now: a client that gives up closes the
                # connection) and is processed however late; only the answer is slow.
                params = await Params.from_request(request)
            injected = await _apply_fault(runtime, fault, request)
            if injected is not None:
                return injected
        if spec is None:
            raise NOT_FOUND
        if params is None:
            params = await Params.from_request(request)
        result = await spec.handler(runtime, params)
    except BotApiError as error:
        return _error_response(runtime, error)
    except (ValueError, TypeError) as error:
        # A malformed value deep in a structured parameter: Telegram answers 400 for those.
        log.info("bad parameters for %s: %s", method, error)
        return _error_response(runtime, BotApiError(400, f"Bad Request: {error}"))
    except Exception:
        log.exception("sandbox failure in %s", method)
        return _error_response(runtime, BotApiError(500, "Internal Server Error"))
    return web.json_response({"ok": True, "result": result})


async def _apply_fault(
    runtime: Runtime, fault: Fault, request: web.Request
) -> web.Response | None:
    """The fault's answer, or None to process the call after all (a slow fault, late)."""
    runtime.stats.faults_injected += 1
    runtime.stats.faults[fault.label] += 1
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay)
        return None
    if fault.kind == "timeout":
        # Held, then dropped unprocessed: the client sees its own timeout or, if it waits
        # longer than the hold, the connection closing without an answer. (aiohttp does not
        # cancel a handler whose client went away, so the hold runs out either way.)
        await asyncio.sleep(fault.delay)
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=504)  # written nowhere: the connection is gone
    if fault.kind == "flood":
        return _error_response(runtime, too_many_requests(fault.retry_after))
    runtime.stats.errors[fault.status] += 1
    if fault.html:
        return web.Response(status=fault.status, text=_NGINX_502, content_type="text/html")
    error = BotApiError(fault.status, fault.description)
    return web.json_response(error.to_json(), status=fault.status)


def _error_response(runtime: Runtime, error: BotApiError) -> web.Response:
    runtime.stats.errors[error.error_code] += 1
    if error.error_code == 429:
        runtime.stats.too_many_requests += 1
    return web.json_response(error.to_json(), status=error.error_code)


async def handle_file(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if request.match_info["token"] != runtime.state.token:
        return web.json_response(UNAUTHORIZED.to_json(), status=401)
    file = runtime.state.file_by_path(request.match_info["file_path"])
    if file is None:
        return web.json_response(NOT_FOUND.to_json(), status=404)
    content_type = file.mime_type or "application/octet-stream"
    return web.Response(body=file.content, content_type=content_type)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/bot{token}/{method}", handle_method)
    app.router.add_get("/file/bot{token}/{file_path:.+}", handle_file)
