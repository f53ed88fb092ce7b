"""The lifecycle of an item (domain.md "Lifecycle of an item") as a pure state machine.

    received → routed → accepted (受理告知 sent) → in_progress ⇄ awaiting_supplement
             → answered → closed (rated, or after a quiet period)

Side exits: ``not_accepted`` (the citizen is told the route to take), ``diverted`` (the
matter belongs on another path: this item ends and the caller opens one on that path, so
that e.g. a "disclosure request" that is really a complaint is counted as 不予处理 in the
disclosure report, 政府信息公开条例 Art 39), ``withdrawn`` by the citizen (or deemed
withdrawn when a 补正 is not made in time, 条例 Art 30). A transfer or hand-back puts the
item back to ``routed`` at another unit. A 复查 request (信访工作条例 Art 35: within 30 days
of the written reply) takes an answered or closed item to ``reopened``; whether it came in
time is for the deadline engine, which knows the calendar — this module only knows order.

Every transition here is one event of the audit log; who, when and why are recorded by
the caller. Self-loops (``extend``, ``urge``) change no state but are legal only where
listed, so the table is the one answer to "what can be done with this item now".
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from routing.config import PathCode


class State(StrEnum):
    """Where an item stands."""

    RECEIVED = "received"
    ROUTED = "routed"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    AWAITING_SUPPLEMENT = "awaiting_supplement"
    ANSWERED = "answered"
    CLOSED = "closed"
    REOPENED = "reopened"
    NOT_ACCEPTED = "not_accepted"
    DIVERTED = "diverted"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        """The Chinese name staff see."""
        return STATE_LABELS[self]


class Action(StrEnum):
    """What can happen to an item: each is one audit-log event."""

    ROUTE = "route"
    ACCEPT = "accept"
    NOT_ACCEPT = "not_accept"
    START = "start"
    REQUEST_SUPPLEMENT = "request_supplement"
    SUPPLEMENT_RECEIVED = "supplement_received"
    SUPPLEMENT_LAPSED = "supplement_lapsed"
    EXTEND = "extend"
    URGE = "urge"
    ANSWER = "answer"
    RATE = "rate"
    QUIET_PERIOD_ENDED = "quiet_period_ended"
    REQUEST_REVIEW = "request_review"
    TRANSFER = "transfer"
    HAND_BACK = "hand_back"
    DIVERT = "divert"
    WITHDRAW = "withdraw"

    @property
    def label(self) -> str:
        """The Chinese name staff see."""
        return ACTION_LABELS[self]


STATE_LABELS: Mapping[State, str] = MappingProxyType(
    {
        State.RECEIVED: "已收到",
        State.ROUTED: "已分办",
        State.ACCEPTED: "已受理",
        State.IN_PROGRESS: "办理中",
        State.AWAITING_SUPPLEMENT: "待补正",
        State.ANSWERED: "已答复",
        State.CLOSED: "已办结",
        State.REOPENED: "复查中",
        State.NOT_ACCEPTED: "不予受理",
        State.DIVERTED: "已转其他途径",
        State.WITHDRAWN: "已撤回",
    }
)

ACTION_LABELS: Mapping[Action, str] = MappingProxyType(
    {
        Action.ROUTE: "分办",
        Action.ACCEPT: "受理（发受理告知）",
        Action.NOT_ACCEPT: "不予受理（告知途径）",
        Action.START: "开始办理",
        Action.REQUEST_SUPPLEMENT: "要求补正",
        Action.SUPPLEMENT_RECEIVED: "收到补正",
        Action.SUPPLEMENT_LAPSED: "逾期未补正",
        Action.EXTEND: "延期",
        Action.URGE: "督办",
        Action.ANSWER: "答复",
        Action.RATE: "评价",
        Action.QUIET_PERIOD_ENDED: "静默期满办结",
        Action.REQUEST_REVIEW: "申请复查",
        Action.TRANSFER: "转办",
        Action.HAND_BACK: "退回",
        Action.DIVERT: "转其他途径",
        Action.WITHDRAW: "撤回",
    }
)

_S = State
_A = Action

TRANSITIONS: Mapping[State, Mapping[Action, State]] = MappingProxyType(
    {
        _S.RECEIVED: {
            _A.ROUTE: _S.ROUTED,
            _A.DIVERT: _S.DIVERTED,
            _A.WITHDRAW: _S.WITHDRAWN,
        },
        _S.ROUTED: {
            _A.ACCEPT: _S.ACCEPTED,
            _A.NOT_ACCEPT: _S.NOT_ACCEPTED,
            _A.URGE: _S.ROUTED,
            _A.TRANSFER: _S.ROUTED,
            _A.HAND_BACK: _S.ROUTED,
            _A.DIVERT: _S.DIVERTED,
            _A.WITHDRAW: _S.WITHDRAWN,
        },
        _S.ACCEPTED: {
            _A.START: _S.IN_PROGRESS,
            _A.REQUEST_SUPPLEMENT: _S.AWAITING_SUPPLEMENT,
            _A.ANSWER: _S.ANSWERED,  # a simple question answered at once
            _A.EXTEND: _S.ACCEPTED,
            _A.URGE: _S.ACCEPTED,
            _A.TRANSFER: _S.ROUTED,
            _A.HAND_BACK: _S.ROUTED,
            _A.DIVERT: _S.DIVERTED,
            _A.WITHDRAW: _S.WITHDRAWN,
        },
        _S.IN_PROGRESS: {
            _A.REQUEST_SUPPLEMENT: _S.AWAITING_SUPPLEMENT,
            _A.ANSWER: _S.ANSWERED,
            _A.EXTEND: _S.IN_PROGRESS,
            _A.URGE: _S.IN_PROGRESS,
            _A.TRANSFER: _S.ROUTED,
            _A.HAND_BACK: _S.ROUTED,
            _A.DIVERT: _S.DIVERTED,
            _A.WITHDRAW: _S.WITHDRAWN,
        },
        # The clock is paused (补正 restarts it), so there is nothing to urge or extend.
        _S.AWAITING_SUPPLEMENT: {
            _A.SUPPLEMENT_RECEIVED: _S.IN_PROGRESS,
            _A.SUPPLEMENT_LAPSED: _S.WITHDRAWN,  # 视为放弃申请 (政府信息公开条例 Art 30)
            _A.DIVERT: _S.DIVERTED,
            _A.WITHDRAW: _S.WITHDRAWN,
        },
        _S.ANSWERED: {
            _A.RATE: _S.CLOSED,
            _A.QUIET_PERIOD_ENDED: _S.CLOSED,
            _A.REQUEST_REVIEW: _S.REOPENED,
        },
        _S.CLOSED: {
            _A.REQUEST_REVIEW: _S.REOPENED,
        },
        # A 复查 request: taken up, refused (the answer stands) or withdrawn (likewise).
        _S.REOPENED: {
            _A.START: _S.IN_PROGRESS,
            _A.NOT_ACCEPT: _S.CLOSED,
            _A.URGE: _S.REOPENED,
            _A.WITHDRAW: _S.CLOSED,
        },
        _S.NOT_ACCEPTED: {},
        _S.DIVERTED: {},
        _S.WITHDRAWN: {},
    }
)
"""state → action → next state. An action missing from a state's row is illegal there."""

TERMINAL_STATES: frozenset[State] = frozenset(s for s, row in TRANSITIONS.items() if not row)
"""States nothing leaves: not_accepted, diverted, withdrawn."""

SETTLED_STATES: frozenset[State] = TERMINAL_STATES | {State.CLOSED}
"""States with no work due from a unit (closed can still be reopened by a 复查 request)."""

PATH_ONLY_ACTIONS: Mapping[Action, frozenset[PathCode]] = MappingProxyType(
    {
        # 复查 is the petition remedy (信访工作条例 Art 35); the other paths have
        # 复议 or 诉讼, which are new items on their own paths.
        Action.REQUEST_REVIEW: frozenset({PathCode.PETITION}),
    }
)
"""Actions that exist only on some paths; checked when ``apply`` is given the path."""


class IllegalTransition(ValueError):
    """An action that the lifecycle does not allow in the item's current state."""

    def __init__(self, state: State, action: Action, reason: str = "") -> None:
        self.state = state
        self.action = action
        self.allowed = allowed_actions(state)
        allowed = ", ".join(sorted(self.allowed)) or "none (a terminal state)"
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"cannot {action.value} ({action.label}) in state {state.value} ({state.label})"
            f"{why}; allowed there: {allowed}"
        )


def allowed_actions(state: State | str) -> frozenset[Action]:
    """The actions legal in ``state``."""
    return frozenset(TRANSITIONS[State(state)])


def is_terminal(state: State | str) -> bool:
    """True for states nothing leaves (not accepted, diverted, withdrawn)."""
    return State(state) in TERMINAL_STATES


def apply(state: State | str, action: Action | str, path: PathCode | str | None = None) -> State:
    """The state after ``action``; :class:`IllegalTransition` if it is not allowed there.

    With ``path``, actions that exist only on some paths (a 复查 request is a petition
    remedy) are refused on the others.
    """
    current = State(state)
    act = Action(action)
    target = TRANSITIONS[current].get(act)
    if target is None:
        raise IllegalTransition(current, act)
    paths = PATH_ONLY_ACTIONS.get(act)
    if path is not None and paths is not None and PathCode(path) not in paths:
        only = ", ".join(sorted(paths))
        raise IllegalTransition(current, act, f"only on path {only}, not {PathCode(path).value}")
    return target
