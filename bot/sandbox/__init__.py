"""A local stand-in for the Telegram Bot API, spoken to over real HTTP.

See README.md in this package for the control API.
"""

from bot.sandbox.limits import LimitsConfig
from bot.sandbox.seed import seed_demo
from bot.sandbox.server import SandboxServer, create_app
from bot.sandbox.state import DEFAULT_TOKEN, SandboxState
from bot.sandbox.webhook import RetryPolicy

__all__ = [
    "DEFAULT_TOKEN",
    "LimitsConfig",
    "RetryPolicy",
    "SandboxServer",
    "SandboxState",
    "create_app",
    "seed_demo",
]
