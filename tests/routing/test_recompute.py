"""Recomputing a stored deadline when holidays.yaml or paths.yaml change (domain.md
"Counting time": deadlines are recomputed when the calendar data changes)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.calendar import WorkCalendar
from routing.config import DEFAULT_CONFIG_DIR, HolidaysFile, YearSchedule, load_file
from routing.deadlines import (
    Deadline,
    DeadlineRules,
    Extension,
    Pause,
    Restart,
    UnknownRule,
    due_date,
    extend,
    pause_for_third_party,
    recompute,
    restart_after_supplement,
)

D = dt.date
RULES = DeadlineRules.load()
CALENDAR = WorkCalendar.load()  # the project's holidays.yaml: nothing official for 2027
HOLIDAYS: HolidaysFile = load_file(DEFAULT_CONFIG_DIR / "holidays.yaml", HolidaysFile)

# Test data only, NOT the official 2027 schedule: 元旦 1–3 January, 春节 5–11 February
# (除夕 to 初六) with make-up working days on Sunday 31 January and Saturday 20 February.
SCHEDULE_2027 = YearSchedule.model_validate(
    {
        "holidays": [
            *({"date": D(2027, 1, day), "name": "元旦"} for day in (1, 2, 3)),
            *({"date": D(2027, 2, day), "name": "春节"} for day in range(5, 12)),
        ],
        "workdays": [
            {"date": D(2027, 1, 31), "name": "春节调休"},
            {"date": D(2027, 2, 20), "name": "春节调休"},
        ],
    }
)
WITH_2027 = WorkCalendar.from_holidays(
    HOLIDAYS.model_copy(update={"years": {2027: SCHEDULE_2027}}, deep=True)
)

# The extendable periods and the rule that extends each (paths.yaml).
EXTENSIONS = {"disclosure.reply": "disclosure.extension", "petition.respond": "petition.extension"}


def test_the_2027_test_calendar_differs_only_where_it_should() -> None:
    assert CALENDAR.data_version != WITH_2027.data_version
    assert CALENDAR.day_info(D(2027, 2, 9)).provisional
    assert not WITH_2027.day_info(D(2027, 2, 9)).working
    assert WITH_2027.day_info(D(2027, 1, 31)).working
    assert CALENDAR.day_info(D(2026, 10, 1)) == WITH_2027.day_info(D(2026, 10, 1))


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    ("key", "start", "before", "after"),
    [
        # 20 working days: the fallback knows only 除夕–初三 (5 and 8 February); the schedule
        # adds 9–11 February off and the make-up Sunday 31 January.
        ("disclosure.reply", D(2027, 1, 18), D(2027, 2, 17), D(2027, 2, 19)),
        # 15 days end on Thursday 11 February: a fallback working day, a holiday now.
        ("petition.acknowledge", D(2027, 1, 27), D(2027, 2, 11), D(2027, 2, 12)),
        # No day in the period changes: the date stays, but it is no longer a forecast.
        ("disclosure.supplement_notice", D(2027, 1, 18), D(2027, 1, 27), D(2027, 1, 27)),
        ("disclosure.reply", D(2026, 12, 28), D(2027, 1, 26), D(2027, 1, 26)),
    ],
)
def test_official_2027_data_settles_provisional_due_dates(
    key: str, start: dt.date, before: dt.date, after: dt.date
) -> None:
    stored = due_date(RULES[key], start, CALENDAR)
    assert (stored.due, stored.provisional) == (before, True)
    recomputed = recompute(stored, RULES, WITH_2027)
    assert (recomputed.due, recomputed.provisional) == (after, False)
    assert recomputed == due_date(RULES[key], start, WITH_2027)


def test_a_deadline_that_no_new_day_touches_is_unchanged() -> None:
    stored = due_date(RULES["disclosure.reply"], D(2025, 9, 26), CALENDAR)
    assert recompute(stored, RULES, WITH_2027) == stored


def test_recompute_replays_restart_pause_and_extension_with_the_new_calendar() -> None:
    def build(calendar: WorkCalendar) -> Deadline:
        deadline = due_date(RULES["disclosure.reply"], D(2026, 12, 21), calendar)
        deadline = restart_after_supplement(deadline, D(2026, 12, 28), calendar)
        deadline = pause_for_third_party(deadline, D(2027, 1, 11), D(2027, 1, 15), calendar)
        return extend(
            deadline, RULES["disclosure.extension"], "需调取档案", "李主任", calendar, length=10
        )

    stored = build(CALENDAR)
    recomputed = recompute(stored, RULES, WITH_2027)
    assert recomputed == build(WITH_2027)
    assert (stored.due, stored.provisional) == (D(2027, 2, 18), True)
    assert (recomputed.due, recomputed.provisional) == (D(2027, 2, 20), False)  # make-up Sat
    assert [type(item) for item in recomputed.history] == [Restart, Pause, Extension]
    restart, pause, extension = recomputed.history
    assert isinstance(restart, Restart) and restart.start_before == D(2026, 12, 21)
    assert isinstance(pause, Pause) and pause.not_counted == 5
    assert isinstance(extension, Extension)
    assert (extension.reason, extension.approver, extension.length) == ("需调取档案", "李主任", 10)
    assert extension.due_after == recomputed.due


def test_recompute_applies_a_changed_rule() -> None:
    stored = due_date(RULES["petition.acknowledge"], D(2026, 4, 20), CALENDAR)
    shorter = replace(RULES["petition.acknowledge"], length=10, basis="新规则")
    rules = DeadlineRules({**RULES, shorter.key: shorter})
    recomputed = recompute(stored, rules, CALENDAR)
    assert recomputed == due_date(shorter, D(2026, 4, 20), CALENDAR)
    assert (recomputed.due, recomputed.length, recomputed.basis) == (D(2026, 4, 30), 10, "新规则")


def test_a_rule_gone_from_paths_yaml_is_an_unknown_rule() -> None:
    stored = due_date(RULES["disclosure.reply"], D(2026, 3, 2), CALENDAR)
    extended = extend(stored, RULES["disclosure.extension"], "理由", "主任", CALENDAR)
    without_reply = DeadlineRules({k: v for k, v in RULES.items() if k != "disclosure.reply"})
    with pytest.raises(UnknownRule, match=r"disclosure\.reply"):
        recompute(stored, without_reply, CALENDAR)
    without_extension = DeadlineRules(
        {k: v for k, v in RULES.items() if k != "disclosure.extension"}
    )
    assert recompute(stored, without_extension, CALENDAR) == stored
    with pytest.raises(UnknownRule, match=r"disclosure\.extension"):
        recompute(extended, without_extension, CALENDAR)


def test_an_extension_beyond_a_lowered_cap_is_refused() -> None:
    stored = due_date(RULES["disclosure.reply"], D(2026, 3, 2), CALENDAR)
    extended = extend(stored, RULES["disclosure.extension"], "理由", "主任", CALENDAR)
    lowered = replace(RULES["disclosure.reply"], extension_cap=10)
    with pytest.raises(ValueError, match="cap of 10"):
        recompute(extended, DeadlineRules({**RULES, lowered.key: lowered}), CALENDAR)


# --------------------------------------------------------------------------- properties

Step = tuple[str, int, int]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["restart", "pause", "extend"]), st.integers(0, 40), st.integers(0, 30)
    ),
    max_size=5,
)
KEYS = st.sampled_from([*sorted(RULES), *EXTENSIONS, *EXTENSIONS])  # extendable ones more often
STARTS = st.dates(min_value=D(2024, 1, 1), max_value=D(2028, 12, 31))


def apply_step(deadline: Deadline, step: Step, calendar: WorkCalendar) -> Deadline:
    """One restart, pause or extension, from offsets that hypothesis draws."""
    kind, offset, length = step
    if kind == "restart":
        return restart_after_supplement(
            deadline, deadline.start + dt.timedelta(days=offset), calendar
        )
    if kind == "pause":
        paused_from = min(deadline.start + dt.timedelta(days=offset), deadline.due)
        resumed_on = paused_from + dt.timedelta(days=length)
        return pause_for_third_party(deadline, paused_from, resumed_on, calendar)
    extension = RULES[EXTENSIONS.get(deadline.rule, "petition.extension")]
    granted = min(length, extension.length) or 1
    return extend(deadline, extension, "理由", "主任", calendar, length=granted)


def build(key: str, start: dt.date, steps: Sequence[Step], calendar: WorkCalendar) -> Deadline:
    """The deadline and the steps that apply to it (refused ones are left out)."""
    deadline = due_date(RULES[key], start, calendar)
    for step in steps:
        try:
            deadline = apply_step(deadline, step, calendar)
        except ValueError:
            continue  # e.g. no extension for this rule, or the cap is reached
    return deadline


@settings(max_examples=300, deadline=None)
@given(KEYS, STARTS, STEPS)
def test_recompute_with_the_same_data_changes_nothing(
    key: str, start: dt.date, steps: list[Step]
) -> None:
    stored = build(key, start, steps, CALENDAR)
    assert recompute(stored, RULES, CALENDAR) == stored
    # As stored on the ticket (JSON) and read back.
    assert recompute(Deadline.from_dict(stored.to_dict()), RULES, CALENDAR) == stored
    # A fresh calendar from the same file: same data, same answer.
    assert recompute(stored, RULES, WorkCalendar.load()) == stored


@settings(max_examples=200, deadline=None)
@given(KEYS, st.dates(min_value=D(2026, 10, 1), max_value=D(2027, 6, 30)), STEPS)
def test_recompute_equals_computing_with_the_new_data_from_the_start(
    key: str, start: dt.date, steps: list[Step]
) -> None:
    """The stored history replayed on the 2027 schedule is what the schedule would have given."""
    stored = build(key, start, steps, CALENDAR)
    try:
        expected = build(key, start, [], WITH_2027)
        for item in stored.history:
            expected = _replay(expected, item, WITH_2027)
    except ValueError as refused:
        # An adjustment that no longer fits the new dates: recompute refuses it the same way.
        with pytest.raises(ValueError, match=re.escape(str(refused))):
            recompute(stored, RULES, WITH_2027)
        return
    assert recompute(stored, RULES, WITH_2027) == expected
    assert recompute(expected, RULES, CALENDAR) == stored


def _replay(
    deadline: Deadline, item: Restart | Pause | Extension, calendar: WorkCalendar
) -> Deadline:
    if isinstance(item, Restart):
        return restart_after_supplement(deadline, item.received, calendar)
    if isinstance(item, Pause):
        return pause_for_third_party(deadline, item.paused_from, item.resumed_on, calendar)
    return extend(
        deadline, RULES[item.rule], item.reason, item.approver, calendar, length=item.length
    )
