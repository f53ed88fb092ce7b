"""The reminder policy: plans across real 2026 holidays, office hours, catch-up, reminders.yaml."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli import check_config
from routing.calendar import MAKE_UP_WORKDAY, WorkCalendar
from routing.config import (
    DEFAULT_CONFIG_DIR,
    ConfigError,
    HolidaysFile,
    RemindersFile,
    load_config,
    load_file,
)
from routing.reminders import (
    Audience,
    ReminderPolicy,
    Step,
    digest_due,
    due_now,
    first_after,
    in_working_hours,
    next_opening,
    quiet_close_at,
    quiet_close_date,
    schedule,
)

HOLIDAYS = load_file(DEFAULT_CONFIG_DIR / "holidays.yaml", HolidaysFile)
CALENDAR = WorkCalendar.from_holidays(HOLIDAYS)
POLICY = ReminderPolicy.default()
SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFIG_FILES = ("paths.yaml", "units.yaml", "routing.yaml", "holidays.yaml", "classifier.yaml")

D = dt.date


def at(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SHANGHAI)


def policy(**changes: object) -> ReminderPolicy:
    return dataclasses.replace(POLICY, **changes)  # type: ignore[arg-type]


def plan(due: dt.date, rules: ReminderPolicy = POLICY) -> dict[str, dt.date]:
    """``{"warn 3": date, …, "overdue 1": date}``; every step at the day's 09:00 opening."""
    steps = schedule(due, rules, CALENDAR)
    assert all(step.at.time() == rules.start and step.at.tzinfo is SHANGHAI for step in steps)
    return {f"{step.kind} {step.level}": step.at.date() for step in steps}


# --------------------------------------------------------------------------- the calendar used


def test_the_2026_holidays_these_tables_rely_on() -> None:
    """2026: 中秋节 Sep 25–27, 国庆节 Oct 1–7 (make-up Sun Sep 20, Sat Oct 10); 春节 Feb 15–23."""
    off = [D(2026, 9, 25), D(2026, 9, 27), D(2026, 10, 1), D(2026, 10, 7), D(2026, 2, 23)]
    assert not any(CALENDAR.is_working_day(day) for day in off)
    for make_up in (D(2026, 9, 20), D(2026, 10, 10), D(2026, 2, 14), D(2026, 2, 28)):
        assert CALENDAR.day_info(make_up).reason == MAKE_UP_WORKDAY
    assert CALENDAR.is_working_day(D(2026, 10, 8))
    assert CALENDAR.is_working_day(D(2026, 9, 30))
    assert not CALENDAR.is_working_day(D(2026, 10, 11))


# --------------------------------------------------------------------------- the plan

W3, W1, TODAY = "warn 3", "warn 1", "due_today 0"
O1, O2, O3 = "overdue 1", "overdue 2", "overdue 3"


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        pytest.param(
            D(2026, 3, 11),
            {W3: D(2026, 3, 6), W1: D(2026, 3, 10), TODAY: D(2026, 3, 11),
             O1: D(2026, 3, 12), O2: D(2026, 3, 13), O3: D(2026, 3, 18)},
            id="ordinary-wednesday",
        ),
        pytest.param(
            D(2026, 3, 16),
            {W3: D(2026, 3, 11), W1: D(2026, 3, 13), TODAY: D(2026, 3, 16),
             O1: D(2026, 3, 17), O2: D(2026, 3, 18), O3: D(2026, 3, 23)},
            id="monday-after-a-weekend",
        ),
        pytest.param(
            D(2026, 10, 8),
            {W3: D(2026, 9, 28), W1: D(2026, 9, 30), TODAY: D(2026, 10, 8),
             O1: D(2026, 10, 9), O2: D(2026, 10, 10), O3: D(2026, 10, 14)},
            id="right-after-guoqing-escalating-on-make-up-saturday",
        ),
        pytest.param(
            D(2026, 9, 30),
            {W3: D(2026, 9, 24), W1: D(2026, 9, 29), TODAY: D(2026, 9, 30),
             O1: D(2026, 10, 8), O2: D(2026, 10, 9), O3: D(2026, 10, 13)},
            id="eve-of-guoqing-overdue-after-it",
        ),
        pytest.param(
            D(2026, 9, 21),
            {W3: D(2026, 9, 17), W1: D(2026, 9, 20), TODAY: D(2026, 9, 21),
             O1: D(2026, 9, 22), O2: D(2026, 9, 23), O3: D(2026, 9, 29)},
            id="warned-on-make-up-sunday-overdue-across-zhongqiu",
        ),
        pytest.param(
            D(2026, 2, 24),
            {W3: D(2026, 2, 12), W1: D(2026, 2, 14), TODAY: D(2026, 2, 24),
             O1: D(2026, 2, 25), O2: D(2026, 2, 26), O3: D(2026, 3, 2)},
            id="after-chunjie-warned-on-make-up-feb-14",
        ),
        pytest.param(
            D(2026, 10, 3),
            {W3: D(2026, 9, 28), W1: D(2026, 9, 30),
             O1: D(2026, 10, 8), O2: D(2026, 10, 9), O3: D(2026, 10, 13)},
            id="provisional-due-on-a-holiday-overdue-supersedes-due-today",
        ),
        pytest.param(
            D(2026, 12, 31),
            {W3: D(2026, 12, 28), W1: D(2026, 12, 30), TODAY: D(2026, 12, 31),
             O1: D(2027, 1, 4), O2: D(2027, 1, 5), O3: D(2027, 1, 8)},
            id="year-end-into-the-provisional-2027",
        ),
    ],
)  # fmt: skip
def test_schedule(due: dt.date, expected: dict[str, dt.date]) -> None:
    assert plan(due) == expected


def test_audiences() -> None:
    steps = schedule(D(2026, 10, 8), POLICY, CALENDAR)
    assert [(s.kind, s.level, s.audience) for s in steps] == [
        ("warn", 3, Audience.UNIT),
        ("warn", 1, Audience.UNIT),
        ("due_today", 0, Audience.UNIT),
        ("overdue", 1, Audience.UNIT),
        ("overdue", 2, Audience.SUPERVISORS),
        ("overdue", 3, Audience.HEAD),
    ]


def test_due_today_on_a_holiday_is_kept_when_overdue_comes_later() -> None:
    later = policy(overdue_unit=2, overdue_supervisors=2)
    assert plan(D(2026, 10, 3), later) == {
        W3: D(2026, 9, 28),
        W1: D(2026, 9, 30),
        TODAY: D(2026, 10, 8),
        O1: D(2026, 10, 9),
        O2: D(2026, 10, 9),
        O3: D(2026, 10, 13),
    }


def test_zero_and_one_working_day_overdue_are_the_same_day() -> None:
    """Nothing is overdue before the due day has passed, whatever the level says."""
    at_once = policy(overdue_unit=0, overdue_supervisors=0, overdue_head=0)
    after_one = policy(overdue_unit=1, overdue_supervisors=1, overdue_head=1)
    assert plan(D(2026, 9, 30), at_once) == plan(D(2026, 9, 30), after_one)
    assert plan(D(2026, 9, 30), at_once)[O2] == D(2026, 10, 8)


def test_levels_on_one_moment_are_all_kept_in_level_order() -> None:
    together = policy(overdue_unit=2, overdue_supervisors=2, overdue_head=2)
    overdue = [s for s in schedule(D(2026, 3, 11), together, CALENDAR) if s.kind == "overdue"]
    assert [(s.level, s.audience) for s in overdue] == [
        (1, Audience.UNIT),
        (2, Audience.SUPERVISORS),
        (3, Audience.HEAD),
    ]
    assert len({s.at for s in overdue}) == 1


def test_switched_off_warnings() -> None:
    quiet = policy(warn_before=(), on_the_day=False)
    assert list(plan(D(2026, 3, 11), quiet)) == [O1, O2, O3]


def test_other_office_hours_and_time_zone() -> None:
    urumqi = ZoneInfo("Asia/Urumqi")
    rules = policy(timezone=urumqi, start=dt.time(10), end=dt.time(19, 30), digest_at=dt.time(10))
    steps = schedule(D(2026, 3, 11), rules, CALENDAR)
    assert {(s.at.tzinfo, s.at.time()) for s in steps} == {(urumqi, dt.time(10))}


# --------------------------------------------------------------------------- catching up


def test_due_now_sends_each_step_once_in_turn() -> None:
    steps = schedule(D(2026, 10, 8), POLICY, CALENDAR)
    assert due_now(steps, 0, at(D(2026, 9, 25), 16)) == ([], 0)
    assert due_now(steps, 0, at(D(2026, 9, 28), 9)) == ([steps[0]], 1)
    assert due_now(steps, 1, at(D(2026, 9, 28), 9, 1)) == ([], 1)
    assert due_now(steps, 1, at(D(2026, 9, 30), 9)) == ([steps[1]], 2)
    assert due_now(steps, 6, at(D(2027, 1, 1), 9)) == ([], 6)


def test_catch_up_sends_only_the_latest_per_audience() -> None:
    """The bot was down from 27 Sep to 10 Oct: "3 days left" is stale, the item is overdue."""
    steps = schedule(D(2026, 10, 8), POLICY, CALENDAR)
    send, following = due_now(steps, 0, at(D(2026, 10, 10), 11))
    assert [(s.kind, s.level, s.audience) for s in send] == [
        ("overdue", 1, Audience.UNIT),
        ("overdue", 2, Audience.SUPERVISORS),
    ]
    assert following == 5
    assert steps[following].audience is Audience.HEAD


def test_due_now_refuses_a_naive_now() -> None:
    steps = schedule(D(2026, 10, 8), POLICY, CALENDAR)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_now(steps, 0, dt.datetime(2026, 10, 8, 9))
    with pytest.raises(ValueError, match="negative"):
        due_now(steps, -1, at(D(2026, 10, 8), 9))


def test_first_after_skips_what_came_before_the_item() -> None:
    """Registered on 30 Sep at 10:00 with 8 Oct due: no "3 days left" message, ever."""
    steps = schedule(D(2026, 10, 8), POLICY, CALENDAR)
    start = first_after(steps, at(D(2026, 9, 30), 10))
    assert (steps[start].kind, steps[start].at) == ("due_today", at(D(2026, 10, 8), 9))
    assert first_after(steps, at(D(2026, 9, 1), 9)) == 0
    assert first_after(steps, at(D(2026, 12, 1), 9)) == len(steps)


# --------------------------------------------------------------------------- office hours


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        pytest.param(at(D(2026, 3, 11), 20), at(D(2026, 3, 12), 9), id="wednesday-evening"),
        pytest.param(at(D(2026, 3, 13), 18), at(D(2026, 3, 16), 9), id="friday-evening"),
        pytest.param(at(D(2026, 3, 14), 10), at(D(2026, 3, 16), 9), id="saturday"),
        pytest.param(at(D(2026, 9, 30), 18), at(D(2026, 10, 8), 9), id="eve-of-guoqing"),
        pytest.param(at(D(2026, 10, 4), 11), at(D(2026, 10, 8), 9), id="inside-guoqing"),
        pytest.param(at(D(2026, 9, 19), 12), at(D(2026, 9, 20), 9), id="to-make-up-sunday"),
        pytest.param(at(D(2026, 10, 9), 17, 30), at(D(2026, 10, 10), 9), id="closing-time"),
        pytest.param(at(D(2026, 3, 11), 8, 59), at(D(2026, 3, 11), 9), id="early-morning"),
        pytest.param(at(D(2026, 3, 11), 9), at(D(2026, 3, 11), 9), id="opening"),
        pytest.param(
            at(D(2026, 3, 11), 17, 29, 59), at(D(2026, 3, 11), 17, 29, 59), id="last-second"
        ),
        pytest.param(
            dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC), at(D(2026, 3, 11), 9), id="utc-7:30"
        ),
        pytest.param(
            dt.datetime(2026, 3, 11, 2, tzinfo=dt.UTC), at(D(2026, 3, 11), 10), id="utc-10:00"
        ),
    ],
)
def test_next_opening(moment: dt.datetime, opening: dt.datetime) -> None:
    found = next_opening(moment, POLICY, CALENDAR)
    assert found == opening
    assert found.tzinfo is SHANGHAI
    assert in_working_hours(moment, POLICY, CALENDAR) is (found == moment)


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        in_working_hours(dt.datetime(2026, 3, 11, 10), POLICY, CALENDAR)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_opening(dt.datetime(2026, 3, 11, 10), POLICY, CALENDAR)


@pytest.mark.parametrize(
    ("now", "digest"),
    [
        (at(D(2026, 3, 11), 8, 59), None),
        (at(D(2026, 3, 11), 9), D(2026, 3, 11)),
        (at(D(2026, 3, 11), 14), D(2026, 3, 11)),  # late, after an outage: still today's
        (at(D(2026, 3, 11), 17, 30), None),
        (at(D(2026, 3, 14), 10), None),  # Saturday
        (at(D(2026, 10, 10), 9, 30), D(2026, 10, 10)),  # make-up Saturday
        (at(D(2026, 10, 2), 9, 30), None),  # 国庆节
        (dt.datetime(2026, 3, 11, 1, 5, tzinfo=dt.UTC), D(2026, 3, 11)),  # 09:05 in Shanghai
    ],
)
def test_digest_due(now: dt.datetime, digest: dt.date | None) -> None:
    assert digest_due(now, POLICY, CALENDAR) == digest


def test_digest_later_in_the_morning() -> None:
    rules = policy(digest_at=dt.time(10, 30))
    assert digest_due(at(D(2026, 3, 11), 10), rules, CALENDAR) is None
    assert digest_due(at(D(2026, 3, 11), 10, 30), rules, CALENDAR) == D(2026, 3, 11)


@pytest.mark.parametrize(
    ("answered", "closes_on", "closes_at"),
    [
        (D(2026, 3, 2), D(2026, 3, 17), at(D(2026, 3, 17), 9)),
        (D(2026, 9, 16), D(2026, 10, 1), at(D(2026, 10, 8), 9)),  # 国庆节: after it
        (D(2026, 9, 5), D(2026, 9, 20), at(D(2026, 9, 20), 9)),  # a make-up Sunday
    ],
)
def test_quiet_close(answered: dt.date, closes_on: dt.date, closes_at: dt.datetime) -> None:
    assert quiet_close_date(answered, POLICY) == closes_on
    assert quiet_close_at(answered, POLICY, CALENDAR) == closes_at


# --------------------------------------------------------------------------- properties

ANY_DAY = st.dates(min_value=D(2000, 1, 1), max_value=D(2100, 12, 31))
NEAR_DAY = st.dates(min_value=D(2025, 1, 1), max_value=D(2027, 12, 31))
ZONES = st.sampled_from([SHANGHAI, ZoneInfo("UTC"), ZoneInfo("America/New_York")])
MOMENTS = st.builds(
    lambda day, seconds, zone: (
        dt.datetime.combine(day, dt.time(0), tzinfo=zone) + dt.timedelta(seconds=seconds)
    ),
    ANY_DAY,
    st.integers(0, 86_399),
    ZONES,
)


@st.composite
def policies(draw: st.DrawFn) -> ReminderPolicy:
    start = draw(st.integers(6 * 60, 12 * 60))
    end = draw(st.integers(start + 1, 23 * 60 + 59))
    levels = sorted(draw(st.lists(st.integers(0, 20), min_size=3, max_size=3)))
    warn = draw(st.sets(st.integers(1, 15), max_size=4))

    def minutes(value: int) -> dt.time:
        return dt.time(value // 60, value % 60)

    return policy(
        start=minutes(start),
        end=minutes(end),
        digest_at=minutes(draw(st.integers(start, end - 1))),
        warn_before=tuple(sorted(warn, reverse=True)),
        on_the_day=draw(st.booleans()),
        overdue_unit=levels[0],
        overdue_supervisors=levels[1],
        overdue_head=levels[2],
    )


@settings(max_examples=300, deadline=None)
@given(ANY_DAY, policies())
def test_every_step_is_in_working_hours_and_in_order(due: dt.date, rules: ReminderPolicy) -> None:
    steps = schedule(due, rules, CALENDAR)
    assert all(in_working_hours(step.at, rules, CALENDAR) for step in steps)
    assert list(steps) == sorted(steps, key=lambda step: step.sort_key)
    warnings = [s for s in steps if s.kind == "warn"]
    assert [s.level for s in warnings] == list(rules.warn_before)
    assert all(s.at.date() < due for s in warnings)
    overdue = [s for s in steps if s.kind == "overdue"]
    assert [s.level for s in overdue] == [1, 2, 3]
    assert all(s.at.date() > due for s in overdue)
    today = [s for s in steps if s.kind == "due_today"]
    assert len(today) <= rules.on_the_day
    assert all(s.at.date() >= due and s.at < overdue[0].at for s in today)


@settings(max_examples=200, deadline=None)
@given(NEAR_DAY, st.lists(st.integers(0, 40 * 24 * 60), min_size=1, max_size=12))
def test_scanning_forward(due: dt.date, offsets: list[int]) -> None:
    """Scans at any times: each step is sent at most once, and no audience twice per scan."""
    steps = schedule(due, POLICY, CALENDAR)
    origin = at(due, 0) - dt.timedelta(days=20)
    index, sent = 0, []
    for offset in sorted(offsets):
        now = origin + dt.timedelta(minutes=offset)
        send, following = due_now(steps, index, now)
        assert following >= index
        assert len({step.audience for step in send}) == len(send)
        assert all(step.at <= now for step in send)
        assert all(step.at > now for step in steps[following:])
        sent += send
        index = following
    assert len(set(sent)) == len(sent)


@settings(max_examples=500, deadline=None)
@given(MOMENTS, policies())
def test_next_opening_is_the_first_office_moment(
    moment: dt.datetime, rules: ReminderPolicy
) -> None:
    opening = next_opening(moment, rules, CALENDAR)
    assert opening >= moment
    assert in_working_hours(opening, rules, CALENDAR)
    assert opening.tzinfo is rules.timezone
    if opening != moment:
        assert not in_working_hours(moment, rules, CALENDAR)
        assert opening.time() == rules.start
    assert (digest_due(moment, rules, CALENDAR) is not None) <= (opening == moment)


# --------------------------------------------------------------------------- the policy itself


def test_default_policy() -> None:
    expected = ReminderPolicy(
        timezone=SHANGHAI,
        start=dt.time(9),
        end=dt.time(17, 30),
        warn_before=(3, 1),
        on_the_day=True,
        overdue_unit=0,
        overdue_supervisors=2,
        overdue_head=5,
        digest_at=dt.time(9),
        quiet_close_days=15,
        scan_every_seconds=60,
    )
    assert ReminderPolicy.default() == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"start": dt.time(18)},
        {"warn_before": (1, 3)},
        {"warn_before": (3, 0)},
        {"overdue_supervisors": 6},
        {"quiet_close_days": 0},
        {"start": dt.time(9, tzinfo=SHANGHAI)},
    ],
)
def test_a_policy_built_by_hand_is_checked(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        policy(**changes)


def test_a_step_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Step("warn", 3, Audience.UNIT, dt.datetime(2026, 3, 11, 9))
    with pytest.raises(ValueError, match="kind"):
        Step("nag", 3, Audience.UNIT, at(D(2026, 3, 11), 9))


# --------------------------------------------------------------------------- reminders.yaml


def test_the_project_config_gives_the_defaults() -> None:
    config = load_config()
    assert (config.directory / "reminders.yaml").exists()
    assert config.reminders == RemindersFile()
    assert ReminderPolicy.from_config(config.reminders) == POLICY


@pytest.mark.parametrize(
    "directory",
    sorted(p for p in (DEFAULT_CONFIG_DIR / "examples").iterdir() if p.is_dir()),
    ids=lambda p: p.name,
)
def test_example_folders_load(directory: Path) -> None:
    config = load_config(directory)
    if not (directory / "reminders.yaml").exists():
        assert config.reminders == RemindersFile()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the project's config folder, with its reminders.yaml."""
    target = tmp_path / "config"
    target.mkdir()
    for name in (*CONFIG_FILES, "reminders.yaml"):
        shutil.copy(DEFAULT_CONFIG_DIR / name, target / name)
    return target


def _reminders(folder: Path, text: str) -> RemindersFile:
    (folder / "reminders.yaml").write_text(text, encoding="utf-8")
    reminders: RemindersFile = load_config(folder).reminders
    return reminders


def _error(folder: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _reminders(folder, text)
    assert caught.value.file == str(folder / "reminders.yaml")
    return caught.value


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('working_hours: {start: "18:00", end: "09:00"}', "working_hours.end", "after start"),
        ('working_hours: {start: "18:00"}', "working_hours.end", "17:30 must be after start"),
        ("working_hours: {end: 17:30}", "working_hours.end", "in quotes"),  # YAML: 1050
        ('working_hours: {end: "25:00"}', "working_hours.end", "in quotes"),
        ("warn_before: [3, 0]", "warn_before", "warn_before.1: 0 is not"),
        ("warn_before: [1, 3, 1]", "warn_before", "twice"),
        ("warn_before: [3, true]", "warn_before.1", "integer"),
        ("warn_before: 3", "warn_before", "tuple"),
        ("overdue: {unit: 3}", "overdue.supervisors", "must not come before unit"),
        ("overdue: {supervisors: 6}", "overdue.head", "must not come before supervisors"),
        ("overdue: {unit: -1}", "overdue.unit", "greater than or equal to 0"),
        ('digest_at: "08:30"', "digest_at", "outside working_hours"),
        ('working_hours: {start: "10:00"}', "digest_at", "09:00 is outside"),
        ("quiet_close_days: 0", "quiet_close_days", "greater than or equal to 1"),
        ("scan_every_seconds: 1", "scan_every_seconds", "greater than or equal to 5"),
        ("scan_every_seconds: 7200", "scan_every_seconds", "less than or equal to 3600"),
        ("timezone: Asia/Beijing", "timezone", "unknown time zone"),
        ("timezone: ../etc/passwd", "timezone", "unknown time zone"),
        ("on_the_day: maybe", "on_the_day", "boolean"),
        ("remind_citizens: true", "remind_citizens", "not permitted"),
    ],
)
def test_errors_name_file_and_key(folder: Path, text: str, key: str, problem: str) -> None:
    error = _error(folder, text)
    assert error.key == key
    assert problem in error.problem


def test_settings_are_read(folder: Path) -> None:
    reminders = _reminders(
        folder,
        'timezone: Asia/Urumqi\nworking_hours: {start: "10:00", end: "19:30"}\n'
        "warn_before: [1, 5, 2]\non_the_day: false\noverdue: {unit: 1, supervisors: 1, head: 3}\n"
        'digest_at: "10:15"\nquiet_close_days: 7\nscan_every_seconds: 30\n',
    )
    assert ReminderPolicy.from_config(reminders) == ReminderPolicy(
        timezone=ZoneInfo("Asia/Urumqi"),
        start=dt.time(10),
        end=dt.time(19, 30),
        warn_before=(5, 2, 1),
        on_the_day=False,
        overdue_unit=1,
        overdue_supervisors=1,
        overdue_head=3,
        digest_at=dt.time(10, 15),
        quiet_close_days=7,
        scan_every_seconds=30,
    )


def test_keys_left_out_keep_their_defaults(folder: Path) -> None:
    assert _reminders(folder, "# all commented out\n") == RemindersFile()
    assert _reminders(folder, "overdue: {head: 9}\n").overdue.supervisors == 2
    (folder / "reminders.yaml").unlink()
    assert load_config(folder).reminders == RemindersFile()


def test_not_a_mapping(folder: Path) -> None:
    error = _error(folder, "- 3\n- 1\n")
    assert (error.key, error.problem) == ("(top level)", "expected a mapping of keys to values")


# --------------------------------------------------------------------------- check-config


def check(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="huiyin")
    check_config.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check-config", *argv])
    status: int = args.handler(args)
    return status


def test_check_config_reports_a_broken_reminders_yaml(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "reminders.yaml").write_text("overdue: {unit: 3, supervisors: 2}\n")
    assert check(str(folder)) == 1
    err = capsys.readouterr().err
    assert "reminders.yaml: overdue.supervisors: Value error, supervisors (2) must not" in err


def test_check_config_warns_about_reminders(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(str(folder)) == 0
    assert "reminders" not in capsys.readouterr().out
    (folder / "reminders.yaml").write_text("timezone: Asia/Urumqi\n")
    assert check(str(folder)) == 0
    assert "reminders.yaml timezone Asia/Urumqi differs" in capsys.readouterr().out
    (folder / "reminders.yaml").unlink()
    assert check(str(folder)) == 0
    assert "warning: no reminders.yaml: the default reminder policy applies" in (
        capsys.readouterr().out
    )
