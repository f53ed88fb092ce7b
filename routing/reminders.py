"""The reminder policy (domain.md "Reminders and escalation") as pure rules over given times.

- Warn the handling unit N working days before a due date, and on the due day itself.
- Overdue: tell the unit, then the supervisors (督办), then the bureau head (局领导), each a
  configured number of working days after the due day.
- Everything goes out only in working hours on working days (the :class:`WorkCalendar`,
  with 调休 make-up days as working days); what falls due outside waits for the next opening.
- A daily digest on working-day mornings; an answered item closes after a quiet period.

A deadline's whole plan is computed once (:func:`schedule`); a periodic scan then asks which
steps are due (:func:`due_now`) and keeps the index of the next one. Nothing here reads the
clock: ``now`` is always an argument, timezone-aware.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from routing.calendar import WorkCalendar
from routing.config import RemindersFile

WARN = "warn"
DUE_TODAY = "due_today"
OVERDUE = "overdue"

# Ties at one moment: a warning before the due-day notice before an escalation.
_KIND_ORDER = {WARN: 0, DUE_TODAY: 1, OVERDUE: 2}

# More non-working days in a row than this means the holiday data is broken (as in calendar.py).
_MAX_DAYS_OFF_IN_A_ROW = 366


class Audience(StrEnum):
    """Who is told: the handling unit, the supervisors (督办), the bureau head (局领导)."""

    UNIT = "unit"
    SUPERVISORS = "supervisors"
    HEAD = "head"


_OVERDUE_AUDIENCE = {1: Audience.UNIT, 2: Audience.SUPERVISORS, 3: Audience.HEAD}


@dataclass(frozen=True)
class ReminderPolicy:
    """reminders.yaml as values: when to warn, when to escalate, and the office hours.

    ``warn_before`` is in working days, descending; ``overdue_*`` are working days after the
    due day (0 and 1 both mean the first working day after it).
    """

    timezone: ZoneInfo
    start: dt.time
    end: dt.time
    warn_before: tuple[int, ...]
    on_the_day: bool
    overdue_unit: int
    overdue_supervisors: int
    overdue_head: int
    digest_at: dt.time
    quiet_close_days: int
    scan_every_seconds: int

    def __post_init__(self) -> None:
        # reminders.yaml is validated on load; these guard a policy built by hand, since the
        # functions below rely on them (e.g. next_opening needs start < end).
        if any(t.tzinfo is not None for t in (self.start, self.end, self.digest_at)):
            raise ValueError("start, end and digest_at are local times: no tzinfo")
        if not self.start < self.end:
            raise ValueError(f"working hours start {self.start} must be before end {self.end}")
        warn = self.warn_before
        if any(n < 1 for n in warn) or warn != tuple(sorted(set(warn), reverse=True)):
            raise ValueError(f"warn_before must be distinct, positive, descending: {warn}")
        if not 0 <= self.overdue_unit <= self.overdue_supervisors <= self.overdue_head:
            raise ValueError("overdue levels must satisfy 0 <= unit <= supervisors <= head")
        if self.quiet_close_days < 1 or self.scan_every_seconds < 1:
            raise ValueError("quiet_close_days and scan_every_seconds must be positive")

    @classmethod
    def from_config(cls, reminders: RemindersFile) -> ReminderPolicy:
        """The policy of a loaded reminders.yaml (``Config.reminders``)."""
        return cls(
            timezone=ZoneInfo(reminders.timezone),
            start=reminders.working_hours.start,
            end=reminders.working_hours.end,
            warn_before=tuple(sorted(reminders.warn_before, reverse=True)),
            on_the_day=reminders.on_the_day,
            overdue_unit=reminders.overdue.unit,
            overdue_supervisors=reminders.overdue.supervisors,
            overdue_head=reminders.overdue.head,
            digest_at=reminders.digest_at,
            quiet_close_days=reminders.quiet_close_days,
            scan_every_seconds=reminders.scan_every_seconds,
        )

    @classmethod
    def default(cls) -> ReminderPolicy:
        """The defaults of reminders.yaml: warn 3 and 1 working days before and on the day,
        09:00–17:30, overdue to the unit at once, supervisors after 2, the head after 5."""
        return cls.from_config(RemindersFile())

    def opening(self, day: dt.date) -> dt.datetime:
        """The start of office hours on ``day``, aware, in the policy's time zone."""
        return dt.datetime.combine(day, self.start, tzinfo=self.timezone)


@dataclass(frozen=True)
class Step:
    """One notification of a deadline's plan.

    ``kind`` is ``"warn"`` (``level`` = working days before the due date), ``"due_today"``
    (``level`` 0) or ``"overdue"`` (``level`` 1 unit, 2 supervisors, 3 head). ``at`` is
    aware, in the policy's time zone, and always the start of office hours on a working day.
    """

    kind: str
    level: int
    audience: Audience
    at: dt.datetime

    def __post_init__(self) -> None:
        if self.kind not in _KIND_ORDER:
            raise ValueError(f"unknown step kind {self.kind!r}")
        _require_aware(self.at, "at")

    @property
    def sort_key(self) -> tuple[dt.datetime, int, int]:
        """Order of a plan: by time; at one moment warn < due_today < overdue, then level."""
        return (self.at, _KIND_ORDER[self.kind], self.level)


# --------------------------------------------------------------------------- the plan


def schedule(due: dt.date, policy: ReminderPolicy, calendar: WorkCalendar) -> tuple[Step, ...]:
    """Every notification for a deadline on ``due``, sorted by :attr:`Step.sort_key`.

    - warn N: at the opening of the N-th working day before ``due`` (counted back from
      ``due`` even when ``due`` itself is not a working day), told to the unit;
    - due_today (if ``on_the_day``): at the opening of ``due``. A ``due`` that is not a
      working day (a provisional date the official schedule later made a holiday) moves to
      the next working day, unless the overdue notice to the unit falls on that same day:
      then it is dropped, since "overdue" supersedes "due today";
    - overdue 1/2/3 (unit, supervisors, head): at the opening of the working day
      ``overdue_*`` working days after ``due``; 0 counts as 1, since nothing is overdue
      before the due day has passed. Levels on the same day are all kept.
    """
    unit = Audience.UNIT
    steps = [
        Step(WARN, n, unit, policy.opening(_working_days_before(due, n, calendar)))
        for n in policy.warn_before
    ]
    overdue_days = {
        1: _overdue_day(due, policy.overdue_unit, calendar),
        2: _overdue_day(due, policy.overdue_supervisors, calendar),
        3: _overdue_day(due, policy.overdue_head, calendar),
    }
    if policy.on_the_day:
        due_day = calendar.working_day_on_or_after(due)
        if due_day != overdue_days[1]:
            steps.append(Step(DUE_TODAY, 0, unit, policy.opening(due_day)))
    steps += [
        Step(OVERDUE, level, _OVERDUE_AUDIENCE[level], policy.opening(day))
        for level, day in overdue_days.items()
    ]
    return tuple(sorted(steps, key=lambda step: step.sort_key))


def _overdue_day(due: dt.date, after: int, calendar: WorkCalendar) -> dt.date:
    """The working day ``after`` working days after ``due``; at least the first one after it."""
    return calendar.add_working_days(due, max(after, 1))


def _working_days_before(day: dt.date, count: int, calendar: WorkCalendar) -> dt.date:
    """The ``count``-th working day before ``day`` (``day`` itself not counted).

    The mirror of :meth:`WorkCalendar.add_working_days`, which only counts forward.
    """
    current = day
    for _ in range(count):
        current = _previous_working_day(current, calendar)
    return current


def _previous_working_day(day: dt.date, calendar: WorkCalendar) -> dt.date:
    current = day
    for _ in range(_MAX_DAYS_OFF_IN_A_ROW):
        current -= dt.timedelta(days=1)
        if calendar.is_working_day(current):
            return current
    raise ValueError(f"no working day within a year before {day}: check holidays.yaml")


def due_now(steps: Sequence[Step], start: int, now: dt.datetime) -> tuple[list[Step], int]:
    """What to send at ``now`` from ``steps[start:]``, and the index of the next step not yet due.

    The steps from ``start`` whose ``at <= now`` are due (``steps`` as :func:`schedule`
    sorts them). After an outage several may be due at once: per audience only the latest
    is sent, since it supersedes the earlier ones ("3 days left" is stale once the item is
    overdue); each audience still gets its own. The returned index is never below ``start``.

    This does not know office hours: the caller sends only when :func:`in_working_hours`.
    """
    _require_aware(now, "now")
    if start < 0:
        raise ValueError(f"start must not be negative, got {start}")
    index = start
    while index < len(steps) and steps[index].at <= now:
        index += 1
    latest: dict[Audience, Step] = {}
    for step in steps[start:index]:
        latest[step.audience] = step
    return sorted(latest.values(), key=lambda step: step.sort_key), index


def first_after(steps: Sequence[Step], moment: dt.datetime) -> int:
    """The index of the first step after ``moment``: where a new item's scan starts.

    An item registered two working days before its due date must not be told "3 working
    days left": start its scan here with the moment it was registered.
    """
    _require_aware(moment, "moment")
    return next((i for i, step in enumerate(steps) if step.at > moment), len(steps))


# --------------------------------------------------------------------------- office hours


def in_working_hours(moment: dt.datetime, policy: ReminderPolicy, calendar: WorkCalendar) -> bool:
    """True on a working day (in the policy's time zone) with ``start <= local time < end``."""
    local = _local(moment, policy)
    return calendar.is_working_day(local.date()) and policy.start <= local.time() < policy.end


def next_opening(
    moment: dt.datetime, policy: ReminderPolicy, calendar: WorkCalendar
) -> dt.datetime:
    """The first office-hours moment at or after ``moment``, in the policy's time zone.

    ``moment`` itself when in working hours; today's opening when it is earlier on a working
    day; else the opening of the next working day (Friday 18:00 → Monday 09:00, the evening
    before 国庆节 → the first working day after it).
    """
    local = _local(moment, policy)
    today = local.date()
    if calendar.is_working_day(today):
        if local.time() < policy.start:
            return policy.opening(today)
        if local.time() < policy.end:
            return local
    return policy.opening(calendar.next_working_day_after(today))


def digest_due(now: dt.datetime, policy: ReminderPolicy, calendar: WorkCalendar) -> dt.date | None:
    """The local date whose daily digest should go out now, or ``None``.

    Today, when today is a working day and ``digest_at <= local time < end``: the digest goes
    out on working-day mornings (domain.md) and, if the bot was down at ``digest_at``, later
    that day; the caller records which dates were sent.
    """
    local = _local(now, policy)
    if calendar.is_working_day(local.date()) and policy.digest_at <= local.time() < policy.end:
        return local.date()
    return None


# --------------------------------------------------------------------------- quiet close


def quiet_close_date(answered_on: dt.date, policy: ReminderPolicy) -> dt.date:
    """The day an answered item closes by itself: ``quiet_close_days`` calendar days later.

    domain.md "Lifecycle of an item": answered → closed (rated, or after a quiet period).
    """
    return answered_on + dt.timedelta(days=policy.quiet_close_days)


def quiet_close_at(
    answered_on: dt.date, policy: ReminderPolicy, calendar: WorkCalendar
) -> dt.datetime:
    """The moment the item closes: the first office-hours moment from the start of
    :func:`quiet_close_date` (its opening if a working day, else the next working day's)."""
    midnight = dt.datetime.combine(
        quiet_close_date(answered_on, policy), dt.time(0), tzinfo=policy.timezone
    )
    return next_opening(midnight, policy, calendar)


# --------------------------------------------------------------------------- helpers


def _require_aware(moment: dt.datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


def _local(moment: dt.datetime, policy: ReminderPolicy) -> dt.datetime:
    _require_aware(moment, "moment")
    return moment.astimezone(policy.timezone)
