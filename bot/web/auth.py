"""Dashboard login: one-time links, session cookies and CSRF tokens.

The bot sends ``{base}/dashboard/login?t=TOKEN`` on ``/dashboard``. The token is
``base64url(claims).base64url(HMAC-SHA256(key, claims))``: it names the person and the role
they had when they asked, a random id and an expiry :data:`LINK_TTL` later. It is
single-use: the first login writes ``dashboard-token:<id>`` into the ``fsm`` table (a
primary key, so two workers racing on one link cannot both win; the table is shared by
every worker, unlike process memory). The marks are deleted once their link has expired.

The session cookie is signed the same way (with a different purpose prefix, so a login
token is never a valid cookie, nor the reverse), HttpOnly, SameSite=Lax, expires after
:data:`SESSION_TTL`, and carries a random CSRF token that every POST must echo in a form
field (compared in constant time).

The key is derived from ``HUIYIN_WEBHOOK_SECRET`` when it is set, else from the bot token
(every worker of one bot shares both); changing either logs everyone out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import FsmRecord
from bot.db.repo_base import insert, to_utc
from bot.settings import Settings

LINK_TTL = dt.timedelta(minutes=10)
SESSION_TTL = dt.timedelta(hours=8)
COOKIE_NAME = "huiyin_dashboard"
USED_MARK_PREFIX = "dashboard-token:"
_LOGIN, _SESSION = "login", "session"


class BadToken(Exception):
    """A link or cookie that is forged, malformed, expired or already used."""


@dataclass(frozen=True)
class LoginClaims:
    token_id: str
    person_id: int
    role: str
    expires: dt.datetime


@dataclass(frozen=True)
class SessionClaims:
    person_id: int
    role: str
    csrf: str
    expires: dt.datetime


def derive_key(settings: Settings, bot_token: str) -> bytes:
    """The signing key: from the webhook secret when set, else from the bot token."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else bot_token
    return hmac.new(b"huiyin-dashboard-v1", secret.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, purpose: str, claims: dict[str, Any]) -> str:
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def _open(key: bytes, purpose: str, token: str, now: dt.datetime) -> dict[str, Any]:
    try:
        body, mac = token.split(".")
        expected = hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise BadToken("bad signature")
        claims = json.loads(_unb64(body))
        if not isinstance(claims, dict):
            raise BadToken("malformed")
        expires = int(claims["exp"])
    except (ValueError, KeyError, TypeError) as error:
        raise BadToken("malformed") from error
    if now.timestamp() >= expires:
        raise BadToken("expired")
    return claims


def issue_login_token(
    key: bytes, person_id: int, role: str, now: dt.datetime, *, ttl: dt.timedelta = LINK_TTL
) -> str:
    claims = {
        "jti": secrets.token_urlsafe(12),
        "pid": person_id,
        "role": role,
        "exp": int((now + ttl).timestamp()),
    }
    return _sign(key, _LOGIN, claims)


def read_login_token(key: bytes, token: str, now: dt.datetime) -> LoginClaims:
    """The claims of a valid, unexpired link (whether it was used is :func:`use_once`'s)."""
    claims = _open(key, _LOGIN, token, now)
    try:
        return LoginClaims(
            str(claims["jti"]),
            int(claims["pid"]),
            str(claims["role"]),
            dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise BadToken("malformed") from error


async def use_once(session: AsyncSession, claims: LoginClaims, now: dt.datetime) -> None:
    """Mark the link used; :class:`BadToken` if it already was. Also forgets the marks of
    links that have expired (they can no longer be presented)."""
    await session.execute(
        delete(FsmRecord).where(
            FsmRecord.key.startswith(USED_MARK_PREFIX, autoescape=True),
            FsmRecord.updated_at < to_utc(now) - LINK_TTL,
        )
    )
    statement = (
        insert(session, FsmRecord)
        .values(
            key=f"{USED_MARK_PREFIX}{claims.token_id}",
            state="used",
            data={"person": claims.person_id, "expires": claims.expires.isoformat()},
            updated_at=to_utc(now),
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    result = await session.execute(statement)
    if getattr(result, "rowcount", 0) != 1:
        raise BadToken("already used")


def issue_session(
    key: bytes, person_id: int, role: str, now: dt.datetime, *, ttl: dt.timedelta = SESSION_TTL
) -> tuple[str, SessionClaims]:
    claims = SessionClaims(person_id, role, secrets.token_urlsafe(24), now + ttl)
    cookie = _sign(
        key,
        _SESSION,
        {
            "pid": person_id,
            "role": role,
            "csrf": claims.csrf,
            "exp": int(claims.expires.timestamp()),
        },
    )
    return cookie, claims


def read_session(key: bytes, cookie: str, now: dt.datetime) -> SessionClaims:
    claims = _open(key, _SESSION, cookie, now)
    try:
        return SessionClaims(
            int(claims["pid"]),
            str(claims["role"]),
            str(claims["csrf"]),
            dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise BadToken("malformed") from error


def csrf_ok(expected: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())
