"""Telegram's flood limits, on-demand faults, and the counters that show both at work."""

from __future__ import annotations

import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, cast

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


FaultKind = Literal["error", "slow", "flood", "timeout"]
FAULT_KINDS: tuple[FaultKind, ...] = ("error", "slow", "flood", "timeout")
# How long a timeout fault holds a request before dropping it, unless told: past aiogram's
# default request timeout of 60 s would make tests wait; a client that sets its own shorter
# timeout gives up first, as it would with Telegram.
TIMEOUT_HOLD = 2.0


@dataclass
class Fault:
    """The next `remaining` calls (of `method`, or of any method) misbehave.

    ``slow`` is processed late: the call sleeps ``delay`` seconds, then runs and answers. A
    client that gave up meanwhile never hears that it was done (and may do it again).
    ``timeout`` is never processed: the call is held ``delay`` seconds (:data:`TIMEOUT_HOLD`
    by default) and the connection dropped without an answer, as when Telegram's front end
    loses a request before passing it on.
    """

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
        if kind not in FAULT_KINDS:
            raise ValueError("kind must be error, slow, flood or timeout")
        status = int(body.get("status", 500))
        if kind == "error" and not 500 <= status <= 599:
            raise ValueError("an error fault answers a 5xx status")
        method = body.get("method")
        delay = float(body.get("delay", TIMEOUT_HOLD if kind == "timeout" else 0.0))
        return cls(
            kind=kind,
            remaining=int(body.get("count", 1)),
            method=str(method).lower() if method else None,
            status=status,
            description=str(body.get("description", _REASONS.get(status, "Server Error"))),
            delay=delay,
            retry_after=int(body.get("retry_after", 5)),
            html=bool(body.get("html", False)),
        )

    @property
    def label(self) -> str:
        """The kind as counted in the stats (an HTML 502 apart from a JSON 5xx)."""
        return "html" if self.kind == "error" and self.html else self.kind

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# What a random fault can be: the fault kinds, with an HTML 502 counted apart.
RANDOM_KINDS = ("error", "html", "flood", "timeout", "slow")


@dataclass
class RandomFaults:
    """Faults drawn at random from a seeded generator: a call of ``methods`` (any, when
    empty) that finds its method calm starts a fault with probability ``rate``; the fault's
    kind is drawn by the ``mix`` weights and goes on for a burst of 1 to ``max_burst``
    consecutive calls of that method (Telegram's trouble comes in runs: a flood wait
    answers every call for a while, a failing front end every request that meets it).

    The same seed gives the same draws in the same call order; concurrent callers may still
    meet them in another order.
    """

    rate: float
    seed: int = 0
    methods: frozenset[str] = frozenset()
    mix: dict[str, float] = field(default_factory=lambda: dict.fromkeys(RANDOM_KINDS, 1.0))
    max_burst: int = 1
    retry_after: int = 1
    delay: float = TIMEOUT_HOLD  # held by a timeout, slept by a slow fault
    statuses: tuple[int, ...] = (500, 502, 503, 504)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RandomFaults:
        rate = float(body["rate"])
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        mix = {str(k): float(v) for k, v in dict(body.get("mix") or {}).items()}
        unknown = set(mix) - set(RANDOM_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds in mix: {sorted(unknown)}")
        if mix and (min(mix.values()) < 0 or sum(mix.values()) <= 0):
            raise ValueError("mix weights must be non-negative and not all zero")
        statuses = tuple(int(s) for s in body.get("statuses", (500, 502, 503, 504)))
        if not statuses or not all(500 <= s <= 599 for s in statuses):
            raise ValueError("statuses must be 5xx")
        max_burst = int(body.get("max_burst", 1))
        if max_burst < 1:
            raise ValueError("max_burst must be at least 1")
        return cls(
            rate=rate,
            seed=int(body.get("seed", 0)),
            methods=frozenset(str(m).lower() for m in body.get("methods", ())),
            mix=mix or dict.fromkeys(RANDOM_KINDS, 1.0),
            max_burst=max_burst,
            retry_after=int(body.get("retry_after", 1)),
            delay=float(body.get("delay", TIMEOUT_HOLD)),
            statuses=statuses,
        )

    def applies_to(self, method: str) -> bool:
        return not self.methods or method in self.methods

    def draw(self, rng: random.Random, method: str) -> Fault | None:
        """A new burst for ``method``, or None (most calls)."""
        if rng.random() >= self.rate:
            return None
        kinds = [k for k in RANDOM_KINDS if self.mix.get(k, 0.0) > 0]
        label = rng.choices(kinds, weights=[self.mix[k] for k in kinds])[0]
        burst = rng.randint(1, self.max_burst)
        status = 502 if label == "html" else rng.choice(self.statuses)
        kind: FaultKind = "error" if label == "html" else cast(FaultKind, label)
        return Fault(
            kind=kind,
            remaining=burst,
            method=method,
            status=status,
            description=_REASONS.get(status, "Server Error"),
            delay=self.delay,
            retry_after=self.retry_after,
            html=label == "html",
        )

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["methods"] = sorted(self.methods)
        body["statuses"] = list(self.statuses)
        return body


class FaultInjector:
    """Faults queued one by one (:meth:`add`, applied first) and drawn at random
    (:meth:`set_random`)."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.random: RandomFaults | None = None
        self._rng = random.Random(0)
        self._bursts: dict[str, Fault] = {}  # method → the random burst it is in

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def set_random(self, faults: RandomFaults | None) -> None:
        """Start drawing (afresh from the seed), or stop with None."""
        self.random = faults
        self._rng = random.Random(faults.seed if faults is not None else 0)
        self._bursts.clear()

    def take(self, method: str) -> Fault | None:
        """The fault that applies to this call, counted down: a queued one first, then the
        method's random burst, then maybe a new one."""
        method = method.lower()
        for fault in self.faults:
            if fault.method in (None, method):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        if self.random is None or not self.random.applies_to(method):
            return None
        drawn = self._bursts.get(method) or self.random.draw(self._rng, method)
        if drawn is None:
            return None
        drawn.remaining -= 1
        if drawn.remaining > 0:
            self._bursts[method] = drawn
        else:
            self._bursts.pop(method, None)
        return drawn

    def clear(self) -> None:
        self.faults.clear()
        self.set_random(None)


@dataclass
class Stats:
    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[int] = field(default_factory=Counter)
    too_many_requests: int = 0
    faults_injected: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # by kind, "html" apart
    webhook_deliveries: int = 0
    webhook_failures: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total_calls": sum(self.calls.values()),
            "errors": {str(code): n for code, n in self.errors.items()},
            "too_many_requests": self.too_many_requests,
            "faults_injected": self.faults_injected,
            "faults": dict(self.faults),
            "webhook_deliveries": self.webhook_deliveries,
            "webhook_failures": self.webhook_failures,
        }

    def reset(self) -> None:
        self.calls.clear()
        self.errors.clear()
        self.faults.clear()
        self.too_many_requests = self.faults_injected = 0
        self.webhook_deliveries = self.webhook_failures = 0
