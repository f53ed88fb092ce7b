"""The working calendar: official data from the package and holidays.yaml, a forecast beyond."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest
from chinese_calendar.constants import holidays as package_holidays
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.calendar import (
    MAKE_UP_WORKDAY,
    PACKAGE_HOLIDAY_NAMES,
    WEEKEND,
    DaySource,
    WorkCalendar,
)
from routing.config import DEFAULT_CONFIG_DIR, ConfigError, HolidaysFile, load_file

HOLIDAYS = load_file(DEFAULT_CONFIG_DIR / "holidays.yaml", HolidaysFile)
CALENDAR = WorkCalendar.from_holidays(HOLIDAYS)
FALLBACK_ONLY = WorkCalendar.from_holidays(HOLIDAYS, use_package=False)

D = dt.date


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


# --------------------------------------------------------------------------- official data


@pytest.mark.parametrize(
    ("day", "working", "reason"),
    [
        # 2025: 国庆节 and 中秋节 together, Oct 1–8 off; make-up Sunday Sep 28 and Saturday Oct 11.
        (D(2025, 9, 26), True, None),
        (D(2025, 9, 27), False, WEEKEND),
        (D(2025, 9, 28), True, MAKE_UP_WORKDAY),
        (D(2025, 10, 1), False, "国庆节"),
        (D(2025, 10, 4), False, "国庆节"),
        (D(2025, 10, 6), False, "中秋节"),
        (D(2025, 10, 8), False, "国庆节"),
        (D(2025, 10, 9), True, None),
        (D(2025, 10, 11), True, MAKE_UP_WORKDAY),
        (D(2025, 10, 12), False, WEEKEND),
        # 2026 春节: Feb 15–23 off, make-up Saturdays Feb 14 and Feb 28.
        (D(2026, 2, 14), True, MAKE_UP_WORKDAY),
        (D(2026, 2, 15), False, "春节"),
        (D(2026, 2, 23), False, "春节"),
        (D(2026, 2, 24), True, None),
        (D(2026, 2, 28), True, MAKE_UP_WORKDAY),
        # 2026 劳动节 May 1–5, 中秋节 Sep 25–27, 国庆节 Oct 1–7; make-up Sep 20 and Oct 10.
        (D(2026, 5, 5), False, "劳动节"),
        (D(2026, 9, 20), True, MAKE_UP_WORKDAY),
        (D(2026, 9, 25), False, "中秋节"),
        (D(2026, 10, 1), False, "国庆节"),
        (D(2026, 10, 7), False, "国庆节"),
        (D(2026, 10, 8), True, None),
        (D(2026, 10, 10), True, MAKE_UP_WORKDAY),
        (D(2026, 4, 5), False, "清明节"),
        (D(2026, 6, 19), False, "端午节"),
        (D(2026, 1, 1), False, "元旦"),
    ],
)
def test_official_days_2025_2026(day: dt.date, working: bool, reason: str | None) -> None:
    info = CALENDAR.day_info(day)
    assert (info.working, info.reason) == (working, reason)
    assert not info.provisional
    assert info.source is DaySource.PACKAGE
    assert CALENDAR.is_working_day(day) is working


def test_agrees_with_the_package_on_every_day_it_knows() -> None:
    for day in days(D(2004, 1, 1), D(2026, 12, 31)):
        assert CALENDAR.is_working_day(day) == chinese_calendar.is_workday(day), day


def test_every_package_holiday_has_a_chinese_name() -> None:
    assert set(package_holidays.values()) <= set(PACKAGE_HOLIDAY_NAMES)
    reasons = {CALENDAR.day_info(day).reason for day in package_holidays}
    assert all(reason and not reason.isascii() for reason in reasons), reasons


# --------------------------------------------------------------------------- beyond known data


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        (D(2027, 1, 1), "元旦"),
        (D(2027, 2, 5), "春节"),  # 除夕: 腊月廿九, the lunar 12th month of 2026 has 29 days
        (D(2027, 2, 6), "春节"),  # 正月初一
        (D(2027, 2, 8), "春节"),  # 初三
        (D(2027, 4, 5), "清明节"),
        (D(2027, 5, 1), "劳动节"),
        (D(2027, 5, 2), "劳动节"),
        (D(2027, 6, 9), "端午节"),
        (D(2027, 9, 15), "中秋节"),
        (D(2027, 10, 1), "国庆节"),
        (D(2027, 10, 3), "国庆节"),
    ],
)
def test_2027_statutory_holidays_are_provisional(day: dt.date, reason: str) -> None:
    info = CALENDAR.day_info(day)
    assert (info.working, info.reason, info.provisional) == (False, reason, True)
    assert info.source is DaySource.FALLBACK


def test_2027_other_days_are_weekdays_and_weekends_provisionally() -> None:
    assert CALENDAR.day_info(D(2027, 10, 4)).working  # Monday: no 调休 known
    assert CALENDAR.day_info(D(2027, 10, 4)).provisional
    assert CALENDAR.day_info(D(2027, 2, 9)).working  # 初四 is no longer a statutory holiday
    assert CALENDAR.day_info(D(2027, 1, 2)).reason == WEEKEND


def test_years_before_the_package_use_the_fallback() -> None:
    info = CALENDAR.day_info(D(2003, 10, 1))
    assert (info.working, info.reason, info.provisional) == (False, "国庆节", True)


@pytest.mark.parametrize("year", [2025, 2026])
def test_fallback_holidays_are_official_holidays(year: int) -> None:
    """Checks the lunar and solar-term arithmetic against two years of official data.

    The 2024 revision applies from 2025, so in 2025 and 2026 every statutory holiday the
    fallback predicts must be a day off in the official schedule.
    """
    predicted = [
        day
        for day in days(D(year, 1, 1), D(year, 12, 31))
        if FALLBACK_ONLY.day_info(day).reason not in (None, WEEKEND)
    ]
    assert len(predicted) == 13  # 全国年节及纪念日放假办法 第二条: 13 days in all
    assert [day for day in predicted if chinese_calendar.is_workday(day)] == []


def test_new_year_eve_is_the_day_before_spring_festival_every_year() -> None:
    for year in range(2000, 2101):
        eve = [
            day
            for day in days(D(year, 1, 15), D(year, 2, 25))
            if FALLBACK_ONLY.day_info(day).reason == "春节"
        ]
        assert len(eve) == 4, (year, eve)
        assert eve[-1] - eve[0] == dt.timedelta(days=3), (year, eve)


# --------------------------------------------------------------------------- holidays.yaml years


def calendar_with(years: dict[int, object], **fallback: object) -> WorkCalendar:
    data: dict[str, object] = {"years": years}
    if fallback:
        data["fallback"] = fallback
    return WorkCalendar.from_holidays(HolidaysFile.model_validate(data))


def test_a_configured_year_is_official() -> None:
    calendar = calendar_with(
        {
            2027: {
                "holidays": [{"date": "2027-10-04", "name": "国庆节"}],
                "workdays": [{"date": "2027-09-26", "name": "国庆节调休"}],
            }
        }
    )
    assert calendar.day_info(D(2027, 10, 4)) == calendar.day_info(D(2027, 10, 4))
    info = calendar.day_info(D(2027, 10, 4))
    assert (info.working, info.reason, info.provisional) == (False, "国庆节", False)
    assert info.source is DaySource.CONFIG
    made_up = calendar.day_info(D(2027, 9, 26))
    assert (made_up.working, made_up.reason, made_up.provisional) == (True, MAKE_UP_WORKDAY, False)
    # Only the listed days are holidays: the fallback does not apply to a configured year.
    assert calendar.day_info(D(2027, 10, 1)).working
    assert not calendar.day_info(D(2027, 10, 2)).provisional
    # Other years are untouched.
    assert calendar.day_info(D(2028, 10, 2)).provisional


def test_a_configured_year_replaces_the_package() -> None:
    calendar = calendar_with({2026: {"holidays": [{"date": "2026-10-09", "name": "国庆节"}]}})
    assert not calendar.is_working_day(D(2026, 10, 9))
    assert calendar.is_working_day(D(2026, 10, 1))  # not listed: the package no longer counts


@pytest.mark.parametrize(
    ("years", "fallback", "key"),
    [
        (
            {2027: {"holidays": [{"date": "2028-01-01", "name": "元旦"}]}},
            {},
            "years.2027.holidays.0",
        ),
        (
            {
                2027: {
                    "holidays": [{"date": "2027-01-01", "name": "元旦"}],
                    "workdays": [{"date": "2027-01-01", "name": "调休"}],
                }
            },
            {},
            "years.2027.workdays.0",
        ),
        ({}, {"solar_terms": [{"term": "清明节", "name": "清明节"}]}, "fallback.solar_terms.0"),
        ({}, {"lunar": [{"month": 1, "day": 0, "name": "春节"}]}, "fallback.lunar.0"),
    ],
)
def test_contradictory_holiday_data_is_a_config_error(
    years: dict[int, object], fallback: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        calendar_with(years, **fallback)


def test_lunar_day_thirty_in_a_short_month_is_skipped() -> None:
    # The lunar 12th month of 2026 has 29 days: there is no 腊月三十 in early 2027.
    calendar = calendar_with({}, lunar=[{"month": 12, "day": 30, "name": "三十"}])
    assert [
        d for d in days(D(2027, 1, 1), D(2027, 3, 1)) if calendar.day_info(d).reason == "三十"
    ] == []


def test_load_reads_the_project_config() -> None:
    assert WorkCalendar.load().is_working_day(D(2025, 9, 28))


def test_data_version_follows_the_data() -> None:
    other = calendar_with({2027: {"holidays": [{"date": "2027-01-01", "name": "元旦"}]}})
    assert CALENDAR.data_version == WorkCalendar.from_holidays(HOLIDAYS).data_version
    assert CALENDAR.data_version != other.data_version
    assert CALENDAR.data_version != FALLBACK_ONLY.data_version


# --------------------------------------------------------------------------- moving along


@pytest.mark.parametrize(
    ("day", "after", "on_or_after"),
    [
        (D(2025, 10, 1), D(2025, 10, 9), D(2025, 10, 9)),  # inside the holiday
        (D(2025, 9, 30), D(2025, 10, 9), D(2025, 9, 30)),  # the last working day before
        (D(2025, 9, 27), D(2025, 9, 28), D(2025, 9, 28)),  # Saturday → make-up Sunday
        (D(2025, 10, 10), D(2025, 10, 11), D(2025, 10, 10)),  # Friday → make-up Saturday
        (D(2026, 2, 14), D(2026, 2, 24), D(2026, 2, 14)),
        (D(2026, 12, 31), D(2027, 1, 4), D(2026, 12, 31)),  # into the provisional year
    ],
)
def test_next_working_day(day: dt.date, after: dt.date, on_or_after: dt.date) -> None:
    assert CALENDAR.next_working_day_after(day) == after
    assert CALENDAR.working_day_on_or_after(day) == on_or_after


def test_add_working_days_does_not_count_the_start_day() -> None:
    # chinese_calendar.find_workday(1, Oct 1) would give Oct 10: one day too many.
    assert CALENDAR.add_working_days(D(2025, 10, 1), 1) == D(2025, 10, 9)
    assert CALENDAR.add_working_days(D(2025, 9, 26), 20) == D(2025, 10, 30)
    assert CALENDAR.add_working_days(D(2025, 9, 26), 0) == D(2025, 9, 26)
    with pytest.raises(ValueError, match="negative"):
        CALENDAR.add_working_days(D(2025, 9, 26), -1)


def test_working_days_between() -> None:
    assert CALENDAR.working_days_between(D(2025, 9, 26), D(2025, 10, 30)) == 20
    assert CALENDAR.working_days_between(D(2025, 10, 1), D(2025, 10, 8)) == 0
    assert CALENDAR.working_days_between(D(2025, 10, 8), D(2025, 10, 1)) == 0


def test_a_datetime_is_refused() -> None:
    with pytest.raises(TypeError, match="datetime"):
        CALENDAR.day_info(dt.datetime(2025, 10, 1, 9, 0))


def test_answers_are_cached() -> None:
    calendar = WorkCalendar.from_holidays(HOLIDAYS)
    assert calendar.day_info(D(2027, 2, 5)) is calendar.day_info(D(2027, 2, 5))


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=D(2000, 1, 1), max_value=D(2100, 12, 31)))
def test_never_raises_and_is_consistent(day: dt.date) -> None:
    info = CALENDAR.day_info(day)
    assert info.provisional == (not 2004 <= day.year <= 2026)
    if not info.working:
        assert info.reason  # every day off says why
    elif info.reason is not None:
        assert info.reason == MAKE_UP_WORKDAY
        assert day.weekday() >= 5
    after = CALENDAR.next_working_day_after(day)
    assert day < after <= day + dt.timedelta(days=15)
    assert CALENDAR.is_working_day(after)
    assert CALENDAR.working_day_on_or_after(day) <= after
