"""The lifecycle state machine: the legal paths through it, and the illegal steps refused."""

from __future__ import annotations

from collections import deque
from functools import reduce

import pytest

from routing.config import PathCode
from routing.lifecycle import (
    ACTION_LABELS,
    SETTLED_STATES,
    STATE_LABELS,
    TERMINAL_STATES,
    TRANSITIONS,
    Action,
    IllegalTransition,
    State,
    allowed_actions,
    apply,
    is_terminal,
)

S, A = State, Action


def run(*actions: Action, start: State = S.RECEIVED) -> State:
    return reduce(apply, actions, start)


def test_the_main_road() -> None:
    assert (
        run(
            A.ROUTE,
            A.ACCEPT,
            A.START,
            A.REQUEST_SUPPLEMENT,
            A.SUPPLEMENT_RECEIVED,
            A.EXTEND,
            A.URGE,
            A.ANSWER,
            A.RATE,
        )
        is S.CLOSED
    )


@pytest.mark.parametrize(
    ("actions", "end"),
    [
        ((A.ROUTE, A.ACCEPT, A.START, A.ANSWER, A.QUIET_PERIOD_ENDED), S.CLOSED),
        ((A.ROUTE, A.ACCEPT, A.ANSWER), S.ANSWERED),
        ((A.ROUTE, A.NOT_ACCEPT), S.NOT_ACCEPTED),
        ((A.DIVERT,), S.DIVERTED),
        ((A.ROUTE, A.ACCEPT, A.START, A.DIVERT), S.DIVERTED),
        ((A.ROUTE, A.WITHDRAW), S.WITHDRAWN),
        ((A.ROUTE, A.ACCEPT, A.REQUEST_SUPPLEMENT, A.SUPPLEMENT_LAPSED), S.WITHDRAWN),
        ((A.ROUTE, A.ACCEPT, A.START, A.TRANSFER), S.ROUTED),
        ((A.ROUTE, A.TRANSFER, A.HAND_BACK, A.ACCEPT), S.ACCEPTED),
        ((A.ROUTE, A.ACCEPT, A.START, A.ANSWER, A.REQUEST_REVIEW), S.REOPENED),
        ((A.ROUTE, A.ACCEPT, A.ANSWER, A.RATE, A.REQUEST_REVIEW, A.START, A.ANSWER), S.ANSWERED),
        ((A.ROUTE, A.ACCEPT, A.ANSWER, A.RATE, A.REQUEST_REVIEW, A.NOT_ACCEPT), S.CLOSED),
        ((A.ROUTE, A.ACCEPT, A.ANSWER, A.REQUEST_REVIEW, A.WITHDRAW), S.CLOSED),
    ],
)
def test_legal_sequences(actions: tuple[Action, ...], end: State) -> None:
    assert run(*actions) is end


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (S.RECEIVED, A.ANSWER),
        (S.RECEIVED, A.ACCEPT),  # routed first: acceptance is a unit's decision
        (S.ROUTED, A.ANSWER),
        (S.ROUTED, A.REQUEST_SUPPLEMENT),
        (S.AWAITING_SUPPLEMENT, A.ANSWER),
        (S.AWAITING_SUPPLEMENT, A.EXTEND),  # the clock is paused
        (S.ANSWERED, A.TRANSFER),
        (S.ANSWERED, A.WITHDRAW),
        (S.CLOSED, A.ANSWER),
        (S.CLOSED, A.RATE),
        (S.NOT_ACCEPTED, A.ACCEPT),
        (S.WITHDRAWN, A.ROUTE),
        (S.DIVERTED, A.REQUEST_REVIEW),
    ],
)
def test_illegal_steps_are_refused(state: State, action: Action) -> None:
    with pytest.raises(IllegalTransition) as caught:
        apply(state, action)
    assert (caught.value.state, caught.value.action) == (state, action)
    assert caught.value.allowed == allowed_actions(state)


def test_the_error_says_state_action_and_what_is_allowed() -> None:
    with pytest.raises(IllegalTransition) as caught:
        apply("received", "answer")
    message = str(caught.value)
    assert "cannot answer (答复)" in message
    assert "in state received (已收到)" in message
    assert "allowed there: divert, route, withdraw" in message


def test_a_terminal_state_says_so() -> None:
    with pytest.raises(IllegalTransition, match=r"allowed there: none \(a terminal state\)"):
        apply(S.WITHDRAWN, A.ACCEPT)


def test_every_pair_either_moves_or_is_refused_cleanly() -> None:
    for state in State:
        for action in Action:
            if action in TRANSITIONS[state]:
                assert apply(state, action) is TRANSITIONS[state][action]
            else:
                with pytest.raises(IllegalTransition):
                    apply(state, action)


def test_terminal_states() -> None:
    assert {S.NOT_ACCEPTED, S.DIVERTED, S.WITHDRAWN} == TERMINAL_STATES
    assert all(is_terminal(s) for s in TERMINAL_STATES)
    assert not is_terminal("closed")  # a 复查 request can reopen it
    assert {*TERMINAL_STATES, S.CLOSED} == SETTLED_STATES
    assert allowed_actions(S.CLOSED) == {A.REQUEST_REVIEW}


def test_every_state_is_reachable_and_every_open_state_can_settle() -> None:
    reachable = {S.RECEIVED}
    queue = deque([S.RECEIVED])
    while queue:
        for target in TRANSITIONS[queue.popleft()].values():
            if target not in reachable:
                reachable.add(target)
                queue.append(target)
    assert reachable == set(State)
    for state in State:
        seen, frontier = {state}, [state]
        while frontier:
            nxt = [t for s in frontier for t in TRANSITIONS[s].values() if t not in seen]
            seen.update(nxt)
            frontier = nxt
        assert seen & SETTLED_STATES, state


@pytest.mark.parametrize(
    ("state", "action"),
    [(S.IN_PROGRESS, A.EXTEND), (S.ACCEPTED, A.URGE), (S.ROUTED, A.URGE), (S.REOPENED, A.URGE)],
)
def test_extend_and_urge_do_not_move_the_item(state: State, action: Action) -> None:
    assert apply(state, action) is state


def test_transfer_and_hand_back_return_to_routed_from_any_held_state() -> None:
    for state in (S.ROUTED, S.ACCEPTED, S.IN_PROGRESS):
        assert apply(state, A.TRANSFER) is S.ROUTED
        assert apply(state, A.HAND_BACK) is S.ROUTED


def test_review_is_a_petition_remedy() -> None:
    assert apply(S.ANSWERED, A.REQUEST_REVIEW, PathCode.PETITION) is S.REOPENED
    assert apply(S.ANSWERED, A.REQUEST_REVIEW) is S.REOPENED  # path not given: not checked
    with pytest.raises(IllegalTransition, match="only on path petition, not disclosure"):
        apply(S.ANSWERED, A.REQUEST_REVIEW, "disclosure")
    assert apply(S.IN_PROGRESS, A.ANSWER, PathCode.DISCLOSURE) is S.ANSWERED


def test_strings_are_accepted_and_unknown_names_rejected() -> None:
    assert apply("routed", "accept") is S.ACCEPTED
    with pytest.raises(ValueError, match="sleeping"):
        apply("sleeping", "accept")
    with pytest.raises(ValueError, match="shred"):
        apply("routed", "shred")


def test_every_state_and_action_has_a_chinese_label() -> None:
    assert set(STATE_LABELS) == set(State)
    assert set(ACTION_LABELS) == set(Action)
    assert S.AWAITING_SUPPLEMENT.label == "待补正"
    assert A.URGE.label == "督办"
    assert all(label.strip() for label in (*STATE_LABELS.values(), *ACTION_LABELS.values()))
