"""What one running sandbox holds together, shared by the Bot API and the control API."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.sandbox.limits import FaultInjector, LimitsConfig, RateLimiter, Stats
from bot.sandbox.state import SandboxState
from bot.sandbox.webhook import WebhookDelivery


@dataclass
class Runtime:
    state: SandboxState
    limits: LimitsConfig
    limiter: RateLimiter
    faults: FaultInjector
    stats: Stats
    webhook: WebhookDelivery


RUNTIME = web.AppKey("sandbox_runtime", Runtime)
