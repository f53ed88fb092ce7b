"""The working calendar: which days are working days (工作日) in mainland China.

Sources, per year, first one that knows the year wins:

1. ``holidays.yaml`` ``years``: the State Council's official schedule (国务院办公厅关于
   部分节假日安排的通知) for years the package lacks. A year listed there replaces the
   package's data for that year, so staff can correct or add data without a release.
2. the ``chinese_calendar`` package: official schedules 2004–2026; it raises
   ``NotImplementedError`` for other years.
3. beyond known data: weekends plus the statutory holidays of 全国年节及纪念日放假办法
   (2024 revision) listed in ``holidays.yaml`` ``fallback``. Nothing is known about 调休
   then, so every day of such a year is *provisional* and the deadlines it touches are
   flagged for staff (domain.md "Counting time").

Answers are cached per day: the classifier computes deadlines for every message.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import chinese_calendar

from routing.config import DEFAULT_CONFIG_DIR, ConfigError, HolidaysFile, load_file

WEEKEND = "周末"
MAKE_UP_WORKDAY = "调休上班"

# chinese_calendar names its holidays in English; staff read Chinese.
PACKAGE_HOLIDAY_NAMES: dict[str, str] = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}

SOLAR_TERMS = (
    "小寒", "大寒", "立春", "雨水", "惊蛰", "春分", "清明", "谷雨", "立夏", "小满", "芒种", "夏至",
    "小暑", "大暑", "立秋", "处暑", "白露", "秋分", "寒露", "霜降", "立冬", "小雪", "大雪", "冬至",
)  # fmt: skip

# More non-working days in a row than this means the holiday data is broken, not a long holiday.
_MAX_DAYS_OFF_IN_A_ROW = 366


class DaySource(StrEnum):
    """Where a day's status came from."""

    CONFIG = "config"  # holidays.yaml ``years``: official data
    PACKAGE = "package"  # chinese_calendar: official data
    FALLBACK = "fallback"  # weekends + statutory holidays: provisional


@dataclass(frozen=True, slots=True)
class DayInfo:
    """One day's status: working or not, why, and whether it is only a forecast.

    ``reason`` is the holiday's Chinese name (``国庆节``), ``周末``, ``调休上班`` for an
    official make-up working day, or ``None`` for an ordinary weekday.
    """

    working: bool
    reason: str | None
    provisional: bool
    source: DaySource


class WorkCalendar:
    """Working days from official data where known, a provisional forecast elsewhere."""

    def __init__(self, holidays: HolidaysFile | None = None, *, use_package: bool = True) -> None:
        self._holidays = holidays if holidays is not None else HolidaysFile()
        self._use_package = use_package
        self._official = _official_years(self._holidays)
        _check_fallback(self._holidays)
        self._fallback: dict[int, dict[dt.date, str]] = {}
        self._package_lacks: set[int] = set()
        self._days: dict[dt.date, DayInfo] = {}

    @classmethod
    def from_holidays(cls, holidays: HolidaysFile, *, use_package: bool = True) -> WorkCalendar:
        """The calendar for a loaded ``holidays.yaml``.

        ``use_package=False`` ignores chinese_calendar (tests compare the fallback with it).
        """
        return cls(holidays, use_package=use_package)

    @classmethod
    def load(cls, path: Path | str | None = None) -> WorkCalendar:
        """The calendar for a ``holidays.yaml`` file (default: the project's config)."""
        file = Path(path) if path is not None else DEFAULT_CONFIG_DIR / "holidays.yaml"
        holidays: HolidaysFile = load_file(file, HolidaysFile)
        return cls(holidays)

    @property
    def data_version(self) -> str:
        """A short fingerprint of the holiday data: when it changes, recompute stored deadlines.

        domain.md "Counting time": deadlines are recomputed when the calendar data changes.
        """
        package = chinese_calendar.__version__ if self._use_package else "-"
        text = f"{package}|{self._holidays.model_dump_json()}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    # ----------------------------------------------------------------- one day

    def day_info(self, day: dt.date) -> DayInfo:
        """Whether ``day`` is a working day, why, and whether that is provisional.

        Official 调休 make-up weekend days are working days (国务院办公厅 annual notice);
        statutory holidays follow 全国年节及纪念日放假办法 第二条 where no schedule is known.
        """
        info = self._days.get(day)
        if info is None:
            info = self._classify(day)
            self._days[day] = info
        return info

    def is_working_day(self, day: dt.date) -> bool:
        """True on working days, including official make-up (调休) weekend days."""
        return self.day_info(day).working

    # ----------------------------------------------------------------- moving along

    def next_working_day_after(self, day: dt.date) -> dt.date:
        """The first working day strictly after ``day``."""
        return self.working_day_on_or_after(day + dt.timedelta(days=1))

    def working_day_on_or_after(self, day: dt.date) -> dt.date:
        """``day`` if it is a working day, else the next one.

        This is the roll-over of 民法典 第二百零三条: "期间的最后一日是法定休假日的，以法定休假日
        结束的次日为期间的最后一日。"
        """
        current = day
        for _ in range(_MAX_DAYS_OFF_IN_A_ROW):
            if self.day_info(current).working:
                return current
            current += dt.timedelta(days=1)
        raise ValueError(f"no working day within a year from {day}: check holidays.yaml")

    def add_working_days(self, day: dt.date, count: int) -> dt.date:
        """The ``count``-th working day after ``day`` (``day`` itself is not counted; 0 → ``day``).

        民法典 第二百零一条: "开始的当日不计入，自下一日开始计算。"
        """
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        current = day
        for _ in range(count):
            current = self.next_working_day_after(current)
        return current

    def working_days_between(self, after: dt.date, through: dt.date) -> int:
        """How many working days lie in ``(after, through]`` (0 when ``through <= after``)."""
        return sum(1 for _, info in self.days_between(after, through) if info.working)

    def days_between(self, after: dt.date, through: dt.date) -> Iterator[tuple[dt.date, DayInfo]]:
        """Each day in ``(after, through]`` with its status."""
        current = after + dt.timedelta(days=1)
        while current <= through:
            yield current, self.day_info(current)
            current += dt.timedelta(days=1)

    # ----------------------------------------------------------------- sources

    def _classify(self, day: dt.date) -> DayInfo:
        if isinstance(day, dt.datetime):
            # A datetime's date depends on its time zone; the caller must decide (Asia/Shanghai).
            raise TypeError(f"expected a date, got the datetime {day!r}")
        official = self._official.get(day.year)
        if official is not None:
            return official.get(day) or _ordinary(day, DaySource.CONFIG)
        if self._use_package and day.year not in self._package_lacks:
            try:
                is_holiday, name = chinese_calendar.get_holiday_detail(day)
            except NotImplementedError:
                self._package_lacks.add(day.year)
            else:
                return _from_package(day, bool(is_holiday), name)
        name = self._fallback_holidays(day.year).get(day)
        if name is not None:
            return DayInfo(False, name, True, DaySource.FALLBACK)
        return _ordinary(day, DaySource.FALLBACK)

    def _fallback_holidays(self, year: int) -> dict[dt.date, str]:
        table = self._fallback.get(year)
        if table is None:
            table = _statutory_holidays(self._holidays, year)
            self._fallback[year] = table
        return table


_ORDINARY = {
    (source, weekend): DayInfo(
        working=not weekend,
        reason=WEEKEND if weekend else None,
        provisional=source is DaySource.FALLBACK,
        source=source,
    )
    for source in DaySource
    for weekend in (False, True)
}


def _ordinary(day: dt.date, source: DaySource) -> DayInfo:
    return _ORDINARY[source, day.weekday() >= 5]


def _from_package(day: dt.date, is_holiday: bool, name: str | None) -> DayInfo:
    if name is None:
        return _ordinary(day, DaySource.PACKAGE)
    if not is_holiday:
        return DayInfo(True, MAKE_UP_WORKDAY, False, DaySource.PACKAGE)
    return DayInfo(False, PACKAGE_HOLIDAY_NAMES.get(name, name), False, DaySource.PACKAGE)


def _official_years(holidays: HolidaysFile) -> dict[int, dict[dt.date, DayInfo]]:
    """The ``years`` of holidays.yaml as day → status, checked for contradictions."""
    years: dict[int, dict[dt.date, DayInfo]] = {}
    for year, schedule in holidays.years.items():
        off: dict[dt.date, list[str]] = {}
        for index, entry in enumerate(schedule.holidays):
            if entry.date.year != year:
                key = f"years.{year}.holidays.{index}.date"
                raise ConfigError("holidays.yaml", key, f"{entry.date} is not in {year}")
            names = off.setdefault(entry.date, [])
            if entry.name not in names:
                names.append(entry.name)
        table = {
            day: DayInfo(False, "、".join(names), False, DaySource.CONFIG)
            for day, names in off.items()
        }
        for index, entry in enumerate(schedule.workdays):
            key = f"years.{year}.workdays.{index}.date"
            if entry.date.year != year:
                raise ConfigError("holidays.yaml", key, f"{entry.date} is not in {year}")
            if entry.date in off:
                raise ConfigError(
                    "holidays.yaml", key, f"{entry.date} is also listed as a holiday"
                )
            table[entry.date] = DayInfo(True, MAKE_UP_WORKDAY, False, DaySource.CONFIG)
        years[year] = table
    return years


def _check_fallback(holidays: HolidaysFile) -> None:
    for index, lunar in enumerate(holidays.fallback.lunar):
        if lunar.day == 0:
            key = f"fallback.lunar.{index}.day"
            raise ConfigError("holidays.yaml", key, "lunar day 0 does not exist (use -1 for last)")
    for index, term in enumerate(holidays.fallback.solar_terms):
        if term.term not in SOLAR_TERMS:
            key = f"fallback.solar_terms.{index}.term"
            raise ConfigError("holidays.yaml", key, f"unknown solar term {term.term!r}")


def _statutory_holidays(holidays: HolidaysFile, year: int) -> dict[dt.date, str]:
    """The fallback holidays that fall in Gregorian ``year`` (全国年节及纪念日放假办法 第二条)."""
    names: dict[dt.date, list[str]] = {}

    def add(day: dt.date | None, name: str) -> None:
        if day is not None and day.year == year:
            entry = names.setdefault(day, [])
            if name not in entry:
                entry.append(name)

    for fixed in holidays.fallback.fixed:
        try:
            add(dt.date(year, fixed.month, fixed.day), fixed.name)
        except ValueError:  # 2月30日 and the like: no such day this year
            continue
    for lunar in holidays.fallback.lunar:
        # A lunar date in this Gregorian year belongs to this lunar year or the one before
        # (腊月 falls in January/February).
        for lunar_year in (year - 1, year):
            add(_solar_of_lunar(lunar_year, lunar.month, lunar.day), lunar.name)
    for term in holidays.fallback.solar_terms:
        # Lunar year Y's jieqi table names the terms from 冬至 of Y-1 to 大雪 of Y.
        for lunar_year in (year, year + 1):
            add(_solar_term(lunar_year, term.term), term.name)
    return {day: "、".join(entry) for day, entry in sorted(names.items())}


def _solar_of_lunar(lunar_year: int, month: int, day: int) -> dt.date | None:
    """The Gregorian date of a lunar date; ``day == -1`` is the month's last day.

    For month 12 the last day is the last day of the lunar year (除夕), in the leap 12th
    month when there is one. ``None`` when the day does not exist that year (三十 of a
    29-day month).
    """
    months = _lunar_year(lunar_year).months
    if day == -1 and month == 12 and -12 in months:
        month = -12
    first, days_in_month = months[month]
    if day == -1:
        day = days_in_month
    if day > days_in_month:
        return None
    return first + dt.timedelta(days=day - 1)


def _solar_term(lunar_year: int, term: str) -> dt.date | None:
    """The day of solar term ``term`` in lunar year ``lunar_year``'s table.

    The table runs from 冬至 of the year before to 大雪 of this one.
    """
    return _lunar_year(lunar_year).solar_terms.get(term)


@dataclass(frozen=True, slots=True)
class _LunarYear:
    months: dict[int, tuple[dt.date, int]]  # lunar month (negative: leap) → first day, length
    solar_terms: dict[str, dt.date]


@functools.lru_cache(maxsize=512)
def _lunar_year(lunar_year: int) -> _LunarYear:
    """One lunar year from lunar_python, computed once.

    lunar_python caches a single LunarYear and rebuilds it (about 15 ms) whenever another
    year is asked for; a Gregorian year needs three lunar years, so we keep our own table.
    """
    from lunar_python import Lunar, LunarYear, Solar  # imported on first use: rarely needed

    def to_date(julian_day: float) -> dt.date:
        solar = Solar.fromJulianDay(julian_day)
        return dt.date(int(solar.getYear()), int(solar.getMonth()), int(solar.getDay()))

    year = LunarYear.fromYear(lunar_year)
    months = {
        int(month.getMonth()): (to_date(month.getFirstJulianDay()), int(month.getDayCount()))
        for month in year.getMonthsInYear()
    }
    julian_days = year.getJieQiJulianDays()
    # Lunar.JIE_QI_IN_USE names the table; names in pinyin belong to the neighbouring years.
    solar_terms = {
        name: to_date(julian_days[index])
        for index, name in enumerate(Lunar.JIE_QI_IN_USE)
        if name in SOLAR_TERMS
    }
    return _LunarYear(months, solar_terms)
