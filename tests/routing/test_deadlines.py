"""Deadline counting (domain.md "Counting time"), pauses and extensions."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.calendar import WorkCalendar
from routing.config import DEFAULT_CONFIG_DIR, HolidaysFile, PathCode, PeriodUnit, load_file
from routing.deadlines import (
    PAUSE_REASON,
    Deadline,
    DeadlineRule,
    DeadlineRules,
    Extension,
    Pause,
    Restart,
    SkippedDay,
    UnknownRule,
    add_months,
    due_date,
    extend,
    pause_for_third_party,
    restart_after_supplement,
)

CALENDAR = WorkCalendar.load()
RULES = DeadlineRules.load()
D = dt.date


def due(key: str, start: dt.date) -> Deadline:
    return due_date(RULES[key], start, CALENDAR)


def synthetic(unit: PeriodUnit, length: int) -> DeadlineRule:
    return DeadlineRule(
        key=f"test.{unit.value}_{length}",
        path=PathCode.PETITION,
        unit=unit,
        length=length,
        basis="测试",
    )


# --------------------------------------------------------------------------- acceptance checks


@pytest.mark.parametrize(
    ("key", "start", "expected", "provisional"),
    [
        ("disclosure.reply", D(2025, 9, 26), D(2025, 10, 30), False),
        ("petition.acknowledge", D(2026, 4, 20), D(2026, 5, 6), False),  # May 5 is 劳动节
        ("reconsideration.respondent_reply", D(2026, 9, 30), D(2026, 10, 20), False),
        ("litigation.filing_window", D(2025, 8, 31), D(2026, 2, 28), False),  # make-up Saturday
        ("disclosure.reply", D(2026, 12, 28), D(2027, 1, 26), True),
    ],
)
def test_acceptance(key: str, start: dt.date, expected: dt.date, provisional: bool) -> None:
    deadline = due(key, start)
    assert (deadline.due, deadline.provisional) == (expected, provisional)
    assert deadline.start == start
    assert deadline.rule == key


def test_acceptance_skipped_days_say_why() -> None:
    assert due("disclosure.reply", D(2025, 9, 26)).skipped == (
        SkippedDay(D(2025, 9, 27), "周末"),
        *(SkippedDay(D(2025, 10, day), "国庆节") for day in (1, 2, 3, 4, 5)),
        SkippedDay(D(2025, 10, 6), "中秋节"),
        SkippedDay(D(2025, 10, 7), "国庆节"),
        SkippedDay(D(2025, 10, 8), "国庆节"),
        *(SkippedDay(D(2025, 10, day), "周末") for day in (12, 18, 19, 25, 26)),
    )
    assert due("petition.acknowledge", D(2026, 4, 20)).skipped == (
        SkippedDay(D(2026, 5, 5), "劳动节"),
    )
    assert due("litigation.filing_window", D(2025, 8, 31)).skipped == ()


# --------------------------------------------------------------------------- counting tables


@pytest.mark.parametrize(
    ("key", "start", "expected"),
    [
        # Working days: the start day is never counted; make-up days count; holidays do not.
        ("disclosure.supplement_notice", D(2025, 9, 30), D(2025, 10, 16)),
        ("disclosure.supplement_notice", D(2025, 10, 3), D(2025, 10, 16)),  # start on a holiday
        ("disclosure.supplement_notice", D(2025, 9, 27), D(2025, 10, 13)),  # Sep 28 counts
        ("reconsideration.respondent_reply_simplified", D(2026, 2, 13), D(2026, 2, 27)),
        ("disclosure.reply", D(2026, 2, 12), D(2026, 3, 18)),  # 春节 2026, both make-ups
        ("reconsideration.respondent_reply", D(2026, 9, 18), D(2026, 10, 9)),  # 中秋 + 国庆 2026
        ("mediation.accept", D(2026, 9, 30), D(2026, 10, 13)),
        ("reconsideration.guidance", D(2025, 12, 31), D(2026, 1, 8)),  # 元旦 2026 Jan 1–3
        # Days: start + N; a last day off rolls to the next working day.
        ("petition.acknowledge", D(2025, 9, 16), D(2025, 10, 9)),  # Oct 1 → after 国庆
        ("petition.acknowledge", D(2025, 9, 12), D(2025, 9, 28)),  # Sat → make-up Sunday
        ("litigation.after_reconsideration", D(2025, 9, 13), D(2025, 9, 28)),  # lands on it
        ("petition.acknowledge", D(2026, 2, 5), D(2026, 2, 24)),  # 春节 2026
        ("petition.acknowledge", D(2026, 1, 30), D(2026, 2, 14)),  # make-up Saturday
        ("reconsideration.application_window", D(2026, 8, 5), D(2026, 10, 8)),
        ("reconsideration.application_window", D(2026, 8, 9), D(2026, 10, 8)),
        ("petition.respond", D(2025, 9, 26), D(2025, 11, 25)),
        ("litigation.defendant_answer", D(2026, 12, 17), D(2027, 1, 4)),  # Jan 1 2027, weekend
        ("mediation.conclude", D(2026, 1, 1), D(2026, 2, 2)),  # Jan 31 is a Saturday
        # Months: the corresponding day, or the month's last day; then roll over.
        ("litigation.filing_window", D(2025, 8, 30), D(2026, 2, 28)),
        ("litigation.filing_window", D(2025, 8, 27), D(2026, 2, 27)),
        ("litigation.filing_window", D(2026, 3, 31), D(2026, 9, 30)),
        ("litigation.filing_window", D(2026, 4, 3), D(2026, 10, 8)),  # Oct 3 → after 国庆
        ("litigation.filing_window", D(2026, 7, 31), D(2027, 2, 1)),  # Jan 31 2027 is a Sunday
    ],
)
def test_counting(key: str, start: dt.date, expected: dt.date) -> None:
    assert due(key, start).due == expected


@pytest.mark.parametrize(
    ("start", "expected", "provisional"),
    [
        (D(2026, 1, 31), D(2026, 2, 28), False),  # Feb 28 2026: make-up Saturday
        (D(2025, 1, 31), D(2025, 2, 28), False),
        (D(2024, 1, 31), D(2024, 2, 29), False),  # leap year
        (D(2027, 1, 31), D(2027, 3, 1), True),  # Feb 28 2027 is a Sunday
        (D(2028, 1, 31), D(2028, 2, 29), True),
        (D(2025, 12, 31), D(2026, 2, 2), False),  # Jan 31 2026 is a Saturday
    ],
)
def test_one_month(start: dt.date, expected: dt.date, provisional: bool) -> None:
    deadline = due_date(synthetic(PeriodUnit.MONTHS, 1), start, CALENDAR)
    assert (deadline.due, deadline.provisional) == (expected, provisional)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (D(2025, 1, 31), 1, D(2025, 2, 28)),
        (D(2024, 1, 31), 1, D(2024, 2, 29)),
        (D(2025, 8, 31), 6, D(2026, 2, 28)),
        (D(2025, 12, 31), 2, D(2026, 2, 28)),
        (D(2025, 11, 30), 3, D(2026, 2, 28)),
        (D(2025, 3, 31), 1, D(2025, 4, 30)),
        (D(2025, 10, 15), 14, D(2026, 12, 15)),
        (D(2025, 5, 31), 12, D(2026, 5, 31)),
    ],
)
def test_add_months(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("key", "start", "provisional"),
    [
        ("petition.acknowledge", D(2026, 12, 10), False),  # Dec 25 2026: known working day
        ("petition.acknowledge", D(2026, 12, 20), True),  # Jan 4 2027: forecast
        ("disclosure.reply", D(2026, 11, 30), False),  # ends Dec 28 2026
        ("disclosure.reply", D(2026, 12, 3), False),  # ends Dec 31 2026
        ("disclosure.reply", D(2026, 12, 7), True),  # crosses into 2027
        ("petition.acknowledge", D(2003, 6, 2), True),  # before the package's data
        ("litigation.filing_window", D(2026, 7, 31), True),
    ],
)
def test_provisional_only_when_a_forecast_day_decides(
    key: str, start: dt.date, provisional: bool
) -> None:
    assert due(key, start).provisional is provisional


def test_a_configured_2027_makes_it_official() -> None:
    holidays = load_file(DEFAULT_CONFIG_DIR / "holidays.yaml", HolidaysFile)
    data = holidays.model_dump()
    data["years"] = {2027: {"holidays": [{"date": D(2027, 1, 1), "name": "元旦"}]}}
    calendar = WorkCalendar.from_holidays(HolidaysFile.model_validate(data))
    deadline = due_date(RULES["disclosure.reply"], D(2026, 12, 28), calendar)
    assert (deadline.due, deadline.provisional) == (D(2027, 1, 26), False)


# --------------------------------------------------------------------------- rules


EXPECTED_RULES = {
    "petition.acknowledge": ("days", 15, "第二十三条"),
    "petition.respond": ("days", 60, "第三十四条"),
    "petition.extension": ("days", 30, "第三十四条"),
    "petition.review_request": ("days", 30, "第三十五条"),
    "petition.review_decision": ("days", 30, "第三十五条"),
    "disclosure.supplement_notice": ("working_days", 7, "第三十条"),
    "disclosure.reply": ("working_days", 20, "第三十三条"),
    "disclosure.extension": ("working_days", 20, "第三十三条"),
    "disclosure.third_party": ("working_days", 15, "第三十二条"),
    "reconsideration.guidance": ("working_days", 5, "本局规定"),
    "reconsideration.application_window": ("days", 60, "第二十条"),
    "reconsideration.respondent_reply": ("working_days", 10, "第四十八条"),
    "reconsideration.respondent_reply_simplified": ("working_days", 5, "第五十四条"),
    "litigation.guidance": ("days", 15, "本局规定"),
    "litigation.filing_window": ("months", 6, "第四十六条"),
    "litigation.after_reconsideration": ("days", 15, "第四十五条"),
    "litigation.defendant_answer": ("days", 15, "第六十七条"),
    "mediation.accept": ("working_days", 5, "本局规定"),
    "mediation.conclude": ("days", 30, "第三十三条"),
}


def test_rules_match_the_spec() -> None:
    assert sorted(RULES) == sorted(EXPECTED_RULES)
    for key, (unit, length, article) in EXPECTED_RULES.items():
        rule = RULES[key]
        assert (rule.unit.value, rule.length) == (unit, length), key
        assert article in rule.basis, key
        assert rule.house_rule == (article == "本局规定"), key
        assert rule.starts, key
    assert RULES["petition.respond"].extension_cap == 30
    assert RULES["disclosure.reply"].extension_cap == 20
    assert [key for key, rule in RULES.items() if rule.extension_cap] == [
        "disclosure.reply",
        "petition.respond",
    ]


def test_the_baoshan_example_has_the_same_national_law() -> None:
    example = DEFAULT_CONFIG_DIR / "examples" / "baoshan"
    for name in ("paths.yaml", "holidays.yaml"):
        assert (example / name).read_text(encoding="utf-8") == (
            DEFAULT_CONFIG_DIR / name
        ).read_text(encoding="utf-8")


def test_unknown_rule_suggests_close_matches() -> None:
    with pytest.raises(UnknownRule, match=r"did you mean disclosure\.reply") as caught:
        RULES["disclosure.replay"]
    assert isinstance(caught.value, KeyError)
    assert "disclosure.reply" in caught.value.suggestions
    with pytest.raises(UnknownRule, match=r"litigation\.guidance, reconsideration\.guidance"):
        RULES["guidance"]
    with pytest.raises(UnknownRule, match=r"known rules: disclosure\.extension, "):
        RULES["xyz"]
    assert RULES.get("xyz") is None  # a Mapping: get() still answers None


def test_rules_due_date_shortcut() -> None:
    assert RULES.due_date("disclosure.reply", D(2025, 9, 26), CALENDAR).due == D(2025, 10, 30)


# --------------------------------------------------------------------------- the stored form


def test_to_dict_is_json_ready_and_round_trips() -> None:
    deadline = due("disclosure.reply", D(2025, 9, 26))
    deadline = pause_for_third_party(deadline, D(2025, 10, 9), D(2025, 10, 17), CALENDAR)
    deadline = extend(
        deadline, RULES["disclosure.extension"], "需调取档案", "办公室主任", CALENDAR
    )
    deadline = restart_after_supplement(deadline, D(2025, 10, 10), CALENDAR)
    data = deadline.to_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert data["start"] == "2025-10-10"
    assert data["unit"] == "working_days"
    assert data["skipped"][0] == {"date": "2025-10-12", "reason": "周末"}
    assert [item["kind"] for item in data["history"]] == ["pause", "extension", "restart"]
    assert Deadline.from_dict(data) == deadline


def test_from_dict_refuses_unknown_history() -> None:
    data = due("disclosure.reply", D(2025, 9, 26)).to_dict()
    data["history"] = [{"kind": "magic"}]
    with pytest.raises(ValueError, match="magic"):
        Deadline.from_dict(data)


# --------------------------------------------------------------------------- 补正: restart


def test_supplement_restarts_the_reply_clock() -> None:
    original = due("disclosure.reply", D(2025, 9, 26))
    restarted = restart_after_supplement(original, D(2025, 10, 10), CALENDAR)
    assert (restarted.start, restarted.due) == (D(2025, 10, 10), D(2025, 11, 6))
    assert restarted.history == (
        Restart(
            received=D(2025, 10, 10),
            start_before=D(2025, 9, 26),
            due_before=D(2025, 10, 30),
            due_after=D(2025, 11, 6),
        ),
    )
    assert "第三十条" in restarted.history[0].basis
    assert restarted.skipped[0] == SkippedDay(D(2025, 10, 12), "周末")


def test_supplement_into_the_forecast_is_provisional() -> None:
    restarted = restart_after_supplement(
        due("disclosure.reply", D(2026, 11, 2)), D(2026, 12, 21), CALENDAR
    )
    assert restarted.provisional


def test_supplement_cannot_predate_the_application() -> None:
    with pytest.raises(ValueError, match="before the original"):
        restart_after_supplement(due("disclosure.reply", D(2025, 9, 26)), D(2025, 9, 1), CALENDAR)


# --------------------------------------------------------------------------- third party: pause


def test_third_party_time_is_not_counted() -> None:
    original = due("disclosure.reply", D(2025, 9, 26))
    paused = pause_for_third_party(original, D(2025, 10, 9), D(2025, 10, 17), CALENDAR)
    # Oct 9, 10, 11 (make-up), 13–17: eight working days not counted.
    assert paused.due == D(2025, 11, 11)
    assert paused.history == (
        Pause(D(2025, 10, 9), D(2025, 10, 17), 8, D(2025, 10, 30), D(2025, 11, 11)),
    )
    not_counted = [item.day for item in paused.skipped if item.reason == PAUSE_REASON]
    assert not_counted == [D(2025, 10, day) for day in (9, 10, 11, 13, 14, 15, 16, 17)]
    assert SkippedDay(D(2025, 11, 8), "周末") in paused.skipped
    assert [item.day for item in paused.skipped] == sorted({item.day for item in paused.skipped})


def test_pause_past_the_old_due_date() -> None:
    original = due("disclosure.reply", D(2025, 9, 26))  # due Oct 30
    paused = pause_for_third_party(original, D(2025, 10, 28), D(2025, 11, 20), CALENDAR)
    # 17 working days were counted before the pause, 3 remain after Nov 20.
    assert paused.due == D(2025, 11, 25)


def test_pause_from_the_due_date_leaves_one_working_day_after_it() -> None:
    original = due("disclosure.reply", D(2025, 9, 26))  # due Oct 30
    paused = pause_for_third_party(original, D(2025, 10, 30), D(2025, 11, 1), CALENDAR)
    assert paused.due == D(2025, 11, 3)  # Nov 1 is a Saturday


def test_a_pause_over_days_off_changes_nothing_but_the_history() -> None:
    original = due("disclosure.reply", D(2025, 9, 26))
    paused = pause_for_third_party(original, D(2025, 10, 4), D(2025, 10, 5), CALENDAR)
    assert (paused.due, paused.skipped) == (original.due, original.skipped)
    assert len(paused.history) == 1


def test_a_pause_on_the_start_day_does_not_take_it_out_twice() -> None:
    original = due("disclosure.reply", D(2025, 9, 26))
    paused = pause_for_third_party(original, D(2025, 9, 26), D(2025, 9, 26), CALENDAR)
    assert paused.due == original.due


def test_pause_of_a_calendar_day_period_adds_calendar_days() -> None:
    original = due("petition.respond", D(2025, 9, 26))  # Nov 25
    paused = pause_for_third_party(original, D(2025, 10, 1), D(2025, 10, 11), CALENDAR)
    assert paused.due == D(2025, 12, 8)  # Nov 25 + 11 days = Sat Dec 6


@pytest.mark.parametrize(
    ("paused_from", "resumed_on", "problem"),
    [
        (D(2025, 10, 17), D(2025, 10, 9), "before paused_from"),
        (D(2025, 9, 20), D(2025, 10, 9), "before the start"),
        (D(2025, 11, 3), D(2025, 11, 9), "after the due date"),
    ],
)
def test_pause_refuses_impossible_dates(
    paused_from: dt.date, resumed_on: dt.date, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        pause_for_third_party(
            due("disclosure.reply", D(2025, 9, 26)), paused_from, resumed_on, CALENDAR
        )


# --------------------------------------------------------------------------- extensions


def test_disclosure_extension_adds_twenty_working_days_to_the_due_date() -> None:
    extended = extend(
        due("disclosure.reply", D(2025, 9, 26)),
        RULES["disclosure.extension"],
        "需向档案馆调取",
        "张主任",
        CALENDAR,
    )
    assert extended.due == D(2025, 11, 27)
    (record,) = extended.history
    assert record == Extension(
        rule="disclosure.extension",
        length=20,
        unit=PeriodUnit.WORKING_DAYS,
        reason="需向档案馆调取",
        approver="张主任",
        due_before=D(2025, 10, 30),
        due_after=D(2025, 11, 27),
        basis=RULES["disclosure.extension"].basis,
    )
    assert extended.extended_by == 20


def test_petition_extension_of_thirty_days_rolls_over() -> None:
    base = due("petition.respond", D(2025, 12, 1))
    assert base.due == D(2026, 1, 30)
    extended = extend(base, RULES["petition.extension"], "情况复杂", "局长", CALENDAR)
    assert extended.due == D(2026, 3, 2)  # Mar 1 is a Sunday
    assert extended.skipped == (SkippedDay(D(2026, 3, 1), "周末"),)


def test_extension_cap_holds_over_several_extensions() -> None:
    deadline = due("disclosure.reply", D(2025, 9, 26))
    rule = RULES["disclosure.extension"]
    deadline = extend(deadline, rule, "理由一", "主任", CALENDAR, length=10)
    deadline = extend(deadline, rule, "理由二", "主任", CALENDAR, length=10)
    assert deadline.extended_by == 20
    assert deadline.due == D(2025, 11, 27)  # the same as one extension of 20
    with pytest.raises(ValueError, match="cap of 20"):
        extend(deadline, rule, "理由三", "主任", CALENDAR, length=1)


def test_a_restart_gives_back_the_whole_extension_allowance() -> None:
    rule = RULES["disclosure.extension"]
    deadline = extend(due("disclosure.reply", D(2025, 9, 26)), rule, "理由", "主任", CALENDAR)
    assert deadline.extended_by == 20
    restarted = restart_after_supplement(deadline, D(2025, 10, 10), CALENDAR)
    assert (restarted.due, restarted.extended_by) == (D(2025, 11, 6), 0)
    assert extend(restarted, rule, "理由", "主任", CALENDAR).extended_by == 20


def test_extension_into_2027_is_provisional() -> None:
    deadline = due("disclosure.reply", D(2026, 11, 16))
    assert (deadline.due, deadline.provisional) == (D(2026, 12, 14), False)
    assert extend(deadline, RULES["disclosure.extension"], "理由", "主任", CALENDAR).provisional


@pytest.mark.parametrize(
    ("reason", "approver", "message"),
    [
        ("", "主任", "needs a reason: reason is empty"),
        ("理由", "  ", "needs a approver: approver is empty"),
        (" ", "", "needs a reason and an approver: reason and approver are empty"),
    ],
)
def test_extension_needs_reason_and_approver(reason: str, approver: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extend(
            due("disclosure.reply", D(2025, 9, 26)),
            RULES["disclosure.extension"],
            reason,
            approver,
            CALENDAR,
        )


@pytest.mark.parametrize(
    ("key", "extension", "kwargs", "message"),
    [
        ("petition.acknowledge", "petition.extension", {}, "cannot be extended"),
        ("disclosure.reply", "petition.extension", {}, "another path"),
        ("disclosure.reply", "disclosure.extension", {"length": 21}, "1..20"),
        ("disclosure.reply", "disclosure.extension", {"length": 0}, "1..20"),
    ],
)
def test_extension_refusals(
    key: str, extension: str, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        extend(due(key, D(2025, 9, 26)), RULES[extension], "理由", "主任", CALENDAR, **kwargs)


def test_extension_unit_must_match() -> None:
    odd = DeadlineRule(
        key="disclosure.odd",
        path=PathCode.DISCLOSURE,
        unit=PeriodUnit.DAYS,
        length=5,
        basis="测试",
    )
    with pytest.raises(ValueError, match="counts days"):
        extend(due("disclosure.reply", D(2025, 9, 26)), odd, "理由", "主任", CALENDAR)


# --------------------------------------------------------------------------- properties

ANY_DAY = st.dates(min_value=D(2000, 1, 1), max_value=D(2100, 12, 31))
RULE_KEYS = st.sampled_from(sorted(RULES))
UNITS = st.sampled_from(list(PeriodUnit))


@settings(max_examples=300, deadline=None)
@given(RULE_KEYS, ANY_DAY)
def test_every_rule_on_every_day(key: str, start: dt.date) -> None:
    deadline = due(key, start)
    assert deadline.due > start
    assert CALENDAR.is_working_day(deadline.due)
    if deadline.unit is PeriodUnit.WORKING_DAYS:
        assert CALENDAR.working_days_between(start, deadline.due) == deadline.length
        inside = [
            day for day, info in CALENDAR.days_between(start, deadline.due) if not info.working
        ]
        assert [item.day for item in deadline.skipped] == inside
    if start.year >= 2004 and deadline.due.year <= 2026:
        assert not deadline.provisional
    if start.year >= 2027:
        assert deadline.provisional


@settings(max_examples=200, deadline=None)
@given(UNITS, st.integers(1, 400), st.integers(0, 60), ANY_DAY)
def test_more_time_never_gives_an_earlier_due_date(
    unit: PeriodUnit, length: int, more: int, start: dt.date
) -> None:
    if unit is PeriodUnit.MONTHS:
        length, more = length % 24 + 1, more % 12
    shorter = due_date(synthetic(unit, length), start, CALENDAR)
    longer = due_date(synthetic(unit, length + more), start, CALENDAR)
    later_start = due_date(synthetic(unit, length), start + dt.timedelta(days=more), CALENDAR)
    assert start < shorter.due <= longer.due
    assert shorter.due <= later_start.due
    assert CALENDAR.is_working_day(shorter.due)


@settings(max_examples=200, deadline=None)
@given(
    st.dates(min_value=D(2020, 1, 1), max_value=D(2030, 12, 31)),
    st.integers(0, 40),
    st.integers(0, 40),
)
def test_pause_equals_counting_the_remaining_days_after_it(
    start: dt.date, pause_offset: int, pause_days: int
) -> None:
    """Adding the paused working days to the due date is the same as stopping the clock."""
    deadline = due("disclosure.reply", start)
    paused_from = min(start + dt.timedelta(days=pause_offset), deadline.due)
    resumed_on = paused_from + dt.timedelta(days=pause_days)
    paused = pause_for_third_party(deadline, paused_from, resumed_on, CALENDAR)
    counted = CALENDAR.working_days_between(start, paused_from - dt.timedelta(days=1))
    assert paused.due == CALENDAR.add_working_days(resumed_on, deadline.length - counted)
