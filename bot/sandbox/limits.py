"""Telegram's flood limits, on-demand faults, and the counters that show both at work."""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

# Methods that deliver a message to a chat: the ones Telegram's per-chat limits apply to.
SENDING_METHODS = frozenset(
    {"sendmessage", "sendphoto", "senddocument", "copymessage", "forwardmessage"}
)
# Sends remembered for /stats/sends; the oldest are dropped first.
SENDS_KEPT = 100_000


@dataclass
class LimitsConfig:
    """Defaults follow the Bot FAQ: about 1 message/s per chat (short bursts tolerated),
    20 messages/min per group, about 30 messages/s overall."""

    enabled: bool = True
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: float = 20.0
    group_burst: int = 20
    global_per_second: float = 30.0
    global_burst: int = 30

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f.type for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown limit {name!r}")
            current = getattr(self, name)
            setattr(self, name, type(current)(value))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Bucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    stamp: float

    def refill(self, now: float, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens = min(capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now

    def wait(self) -> float:
        if self.tokens >= 1:
            return 0.0
        return math.inf if self.rate <= 0 else (1 - self.tokens) / self.rate


@dataclass(frozen=True)
class Send:
    """A sending call as the limits judged it, when Telegram would count it."""

    at: float  # seconds on the limiter's clock (time.monotonic by default)
    chat_id: int
    retry_after: int | None  # None: admitted; else refused with this 429

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "chat_id": self.chat_id, "retry_after": self.retry_after}


class RateLimiter:
    """Token buckets per chat and overall; a refused call takes no token.

    ``sends`` records every call judged (limits on or off), so a test can hold a sender to
    the limits in every window, not only to what the buckets happen to tolerate.
    """

    def __init__(self, config: LimitsConfig, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self._clock = clock
        self._buckets: dict[int | str, _Bucket] = {}
        self.sends: deque[Send] = deque(maxlen=SENDS_KEPT)

    def admit(self, chat_id: int, is_group: bool) -> int | None:
        """None if the message may go now, else Telegram's retry_after in whole seconds."""
        now = self._clock()
        retry_after = self._judge(chat_id, is_group, now)
        self.sends.append(Send(now, chat_id, retry_after))
        return retry_after

    def _judge(self, chat_id: int, is_group: bool, now: float) -> int | None:
        if not self.config.enabled:
            return None
        cfg = self.config
        chat_rate, chat_burst = (
            (cfg.group_per_minute / 60, cfg.group_burst)
            if is_group
            else (cfg.private_per_second, cfg.private_burst)
        )
        buckets = [
            self._bucket("global", now, cfg.global_per_second, cfg.global_burst),
            self._bucket(chat_id, now, chat_rate, chat_burst),
        ]
        wait = max(bucket.wait() for bucket in buckets)
        if wait > 0:
            return max(1, math.ceil(wait)) if math.isfinite(wait) else 3600
        for bucket in buckets:
            bucket.tokens -= 1
        return None

    def _bucket(self, key: int | str, now: float, rate: float, capacity: int) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(rate, capacity, float(capacity), now)
        bucket.refill(now, rate, float(capacity))
        return bucket

    def reset(self) -> None:
        self._buckets.clear()


FaultKind = Literal["error", "slow", "flood"]


@dataclass
class Fault:
    """The next `remaining` calls (of `method`, or of any method) misbehave."""

    kind: FaultKind
    remaining: int = 1
    method: str | None = None
    status: int = 500
    description: str = "Internal Server Error"
    delay: float = 0.0
    retry_after: int = 5
    # A bare nginx HTML page, as Telegram's front end sometimes answers a 502.
    html: bool = False

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Fault:
        kind = body.get("kind", "error")
        if kind not in ("error", "slow", "flood"):
            raise ValueError("kind must be error, slow or flood")
        status = int(body.get("status", 500))
        if kind == "error" and not 500 <= status <= 599:
            raise ValueError("an error fault answers a 5xx status")
        method = body.get("method")
        return cls(
            kind=kind,
            remaining=int(body.get("count", 1)),
            method=str(method).lower() if method else None,
            status=status,
            description=str(body.get("description", _REASONS.get(status, "Server Error"))),
            delay=float(body.get("delay", 0.0)),
            retry_after=int(body.get("retry_after", 5)),
            html=bool(body.get("html", False)),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class FaultInjector:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def take(self, method: str) -> Fault | None:
        """The first fault that applies to this call, counted down."""
        for fault in self.faults:
            if fault.method in (None, method.lower()):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.faults.clear()


@dataclass
class Stats:
    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[int] = field(default_factory=Counter)
    too_many_requests: int = 0
    faults_injected: int = 0
    webhook_deliveries: int = 0
    webhook_failures: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total_calls": sum(self.calls.values()),
            "errors": {str(code): n for code, n in self.errors.items()},
            "too_many_requests": self.too_many_requests,
            "faults_injected": self.faults_injected,
            "webhook_deliveries": self.webhook_deliveries,
            "webhook_failures": self.webhook_failures,
        }

    def reset(self) -> None:
        self.calls.clear()
        self.errors.clear()
        self.too_many_requests = self.faults_injected = 0
        self.webhook_deliveries = self.webhook_failures = 0
