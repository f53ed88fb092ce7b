"""The supervisor dashboard: a small aiohttp + Jinja2 web app under ``/dashboard``.

Login is by a one-time link the bot sends on ``/dashboard`` (handlers/dashboard.py,
bot/web/auth.py); the pages and exports are in bot/web/views.py. Mount it with
:func:`add_dashboard_routes` on the web app that ``huiyin run`` serves (same host and port
as the sandbox or the webhook).
"""

from bot.web.views import add_dashboard_routes

__all__ = ["add_dashboard_routes"]
