"""Deadlines: the last day of a statutory (or house) period, and how it was counted.

The counting follows domain.md "Counting time", which follows 民法典 第二百零一条至第二百零三条:

- the start day is not counted; counting begins the next day;
- a period in days (日) ends on start + N; a last day that is not a working day rolls to the
  next working day, and official make-up (调休) weekend days are working days;
- a period in working days (工作日) counts working days after the start day;
- a period in months (月) ends on the corresponding day of the target month, or on its last
  day when there is none, then rolls over like a period in days.

A :class:`Deadline` records what it skipped and every restart, pause and extension, so it can
be stored on the ticket, shown to staff and recomputed when the calendar data changes.
"""

from __future__ import annotations

import calendar as gregorian
import datetime as dt
import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from routing.calendar import DayInfo, WorkCalendar
from routing.config import DEFAULT_CONFIG_DIR, PathCode, PathsFile, PeriodUnit, load_file

RESTART_BASIS = "政府信息公开条例 第三十条：答复期限自行政机关收到补正的申请之日起计算"
PAUSE_BASIS = (
    "政府信息公开条例 第三十二条、第三十三条第二款："
    "征求第三方和其他机关意见所需时间不计算在答复期限内"
)
PAUSE_REASON = "征求第三方意见（不计入期限）"


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    """One named period from paths.yaml; ``key`` is ``"path.name"``, e.g. ``disclosure.reply``."""

    key: str
    path: PathCode
    unit: PeriodUnit
    length: int
    basis: str
    starts: str = ""
    extension_cap: int | None = None
    house_rule: bool = False
    description: str = ""


class UnknownRule(KeyError):
    """A rule key that paths.yaml does not define; the message suggests close matches."""

    def __init__(self, key: str, known: list[str]) -> None:
        self.key = key
        self.known = sorted(known)
        self.suggestions = _close_matches(key, self.known)
        super().__init__(key)

    def __str__(self) -> str:
        if self.suggestions:
            matches = ", ".join(self.suggestions)
            return f"unknown deadline rule {self.key!r}; did you mean {matches}?"
        return f"unknown deadline rule {self.key!r}; known rules: {', '.join(self.known)}"


def _close_matches(key: str, known: list[str]) -> list[str]:
    """Known keys like ``key``, whole (``disclosure.replay``) or by rule name alone (``reply``)."""
    matches = difflib.get_close_matches(key, known, n=3, cutoff=0.75)
    names = {rule.split(".", 1)[-1] for rule in known}
    similar = set(difflib.get_close_matches(key.rsplit(".", 1)[-1], names, n=3, cutoff=0.75))
    matches += [rule for rule in known if rule.split(".", 1)[-1] in similar]
    return list(dict.fromkeys(matches))[:5]


class DeadlineRules(Mapping[str, DeadlineRule]):
    """The deadline rules of all five paths, by full key."""

    def __init__(self, rules: Mapping[str, DeadlineRule]) -> None:
        self._rules = dict(sorted(rules.items()))

    @classmethod
    def from_paths(cls, paths: PathsFile) -> DeadlineRules:
        """The rules of a loaded paths.yaml (domain.md "The five paths")."""
        rules: dict[str, DeadlineRule] = {}
        for path, spec in paths.paths.items():
            for name, rule in spec.deadlines.items():
                key = f"{path.value}.{name}"
                rules[key] = DeadlineRule(
                    key=key,
                    path=path,
                    unit=rule.unit,
                    length=rule.length,
                    basis=rule.basis,
                    starts=rule.starts,
                    extension_cap=rule.extension_cap,
                    house_rule=rule.house_rule,
                    description=rule.description,
                )
        return cls(rules)

    @classmethod
    def load(cls, path: Path | str | None = None) -> DeadlineRules:
        """The rules of a paths.yaml file (default: the project's config)."""
        file = Path(path) if path is not None else DEFAULT_CONFIG_DIR / "paths.yaml"
        paths: PathsFile = load_file(file, PathsFile)
        return cls.from_paths(paths)

    def __getitem__(self, key: str) -> DeadlineRule:
        """The rule named ``key``; :class:`UnknownRule` (a KeyError) with suggestions if none."""
        try:
            return self._rules[key]
        except KeyError:
            raise UnknownRule(key, list(self._rules)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def due_date(self, key: str, start: dt.date, calendar: WorkCalendar) -> Deadline:
        """:func:`due_date` of the rule named ``key``."""
        return due_date(self[key], start, calendar)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class SkippedDay:
    """A non-working day passed over in the counting, or a day not counted (a pause)."""

    day: dt.date
    reason: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready: ``{"date": ISO date, "reason": …}``."""
        return {"date": self.day.isoformat(), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Restart:
    """补正: the clock restarted on the day the corrected application arrived (条例 第三十条)."""

    kind: ClassVar[str] = "restart"
    received: dt.date
    start_before: dt.date
    due_before: dt.date
    due_after: dt.date
    basis: str = RESTART_BASIS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``kind`` naming the adjustment."""
        return {
            "kind": self.kind,
            "received": self.received.isoformat(),
            "start_before": self.start_before.isoformat(),
            "due_before": self.due_before.isoformat(),
            "due_after": self.due_after.isoformat(),
            "basis": self.basis,
        }


@dataclass(frozen=True, slots=True)
class Pause:
    """Time not counted, e.g. third-party consultation (条例 第三十二条、第三十三条第二款)."""

    kind: ClassVar[str] = "pause"
    paused_from: dt.date
    resumed_on: dt.date
    not_counted: int  # in the deadline's unit: working days or calendar days
    due_before: dt.date
    due_after: dt.date
    basis: str = PAUSE_BASIS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``kind`` naming the adjustment."""
        return {
            "kind": self.kind,
            "paused_from": self.paused_from.isoformat(),
            "resumed_on": self.resumed_on.isoformat(),
            "not_counted": self.not_counted,
            "due_before": self.due_before.isoformat(),
            "due_after": self.due_after.isoformat(),
            "basis": self.basis,
        }


@dataclass(frozen=True, slots=True)
class Extension:
    """An approved extension added to the due date at the time (e.g. 条例 第三十三条)."""

    kind: ClassVar[str] = "extension"
    rule: str
    length: int
    unit: PeriodUnit
    reason: str
    approver: str
    due_before: dt.date
    due_after: dt.date
    basis: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``kind`` naming the adjustment."""
        return {
            "kind": self.kind,
            "rule": self.rule,
            "length": self.length,
            "unit": self.unit.value,
            "reason": self.reason,
            "approver": self.approver,
            "due_before": self.due_before.isoformat(),
            "due_after": self.due_after.isoformat(),
            "basis": self.basis,
        }


Adjustment = Restart | Pause | Extension


@dataclass(frozen=True, slots=True)
class Deadline:
    """A computed deadline and how it was computed.

    ``skipped`` lists the non-working days passed over (every one inside a working-day period;
    the days rolled over at the end of a calendar period) and days not counted by a pause.
    ``provisional`` is true when any day whose status decided ``due`` came from the fallback
    holidays rather than official data.
    """

    rule: str
    start: dt.date
    due: dt.date
    unit: PeriodUnit
    length: int
    basis: str
    provisional: bool
    skipped: tuple[SkippedDay, ...] = ()
    extension_cap: int | None = None
    history: tuple[Adjustment, ...] = ()

    @property
    def extended_by(self) -> int:
        """The extensions granted since the clock last (re)started, in the deadline's unit."""
        total = 0
        for item in self.history:
            if isinstance(item, Restart):
                total = 0  # 补正 restarts the whole period: earlier extensions no longer apply
            elif isinstance(item, Extension):
                total += item.length
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings, enums as their values."""
        return {
            "rule": self.rule,
            "start": self.start.isoformat(),
            "due": self.due.isoformat(),
            "unit": self.unit.value,
            "length": self.length,
            "basis": self.basis,
            "provisional": self.provisional,
            "skipped": [day.to_dict() for day in self.skipped],
            "extension_cap": self.extension_cap,
            "history": [item.to_dict() for item in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deadline:
        """The inverse of :meth:`to_dict` (a deadline stored on a ticket)."""
        return cls(
            rule=data["rule"],
            start=dt.date.fromisoformat(data["start"]),
            due=dt.date.fromisoformat(data["due"]),
            unit=PeriodUnit(data["unit"]),
            length=int(data["length"]),
            basis=data["basis"],
            provisional=bool(data["provisional"]),
            skipped=tuple(
                SkippedDay(dt.date.fromisoformat(item["date"]), item["reason"])
                for item in data.get("skipped", ())
            ),
            extension_cap=data.get("extension_cap"),
            history=tuple(_adjustment_from_dict(item) for item in data.get("history", ())),
        )


def _adjustment_from_dict(data: Mapping[str, Any]) -> Adjustment:
    day = dt.date.fromisoformat
    kind = data.get("kind")
    if kind == Restart.kind:
        return Restart(
            received=day(data["received"]),
            start_before=day(data["start_before"]),
            due_before=day(data["due_before"]),
            due_after=day(data["due_after"]),
            basis=data["basis"],
        )
    if kind == Pause.kind:
        return Pause(
            paused_from=day(data["paused_from"]),
            resumed_on=day(data["resumed_on"]),
            not_counted=int(data["not_counted"]),
            due_before=day(data["due_before"]),
            due_after=day(data["due_after"]),
            basis=data["basis"],
        )
    if kind == Extension.kind:
        return Extension(
            rule=data["rule"],
            length=int(data["length"]),
            unit=PeriodUnit(data["unit"]),
            reason=data["reason"],
            approver=data["approver"],
            due_before=day(data["due_before"]),
            due_after=day(data["due_after"]),
            basis=data["basis"],
        )
    raise ValueError(f"unknown deadline history kind {kind!r}")


# --------------------------------------------------------------------------- counting


@dataclass(frozen=True, slots=True)
class _Count:
    due: dt.date
    skipped: tuple[SkippedDay, ...]
    provisional: bool


def add_months(day: dt.date, months: int) -> dt.date:
    """The corresponding day ``months`` later, or that month's last day if it has none.

    民法典 第二百零二条: "按照年、月计算期间的，到期月的对应日为期间的最后一日；没有对应日的，
    月末日为期间的最后一日。"
    """
    year, month_index = divmod(day.month - 1 + months, 12)
    year += day.year
    month = month_index + 1
    return dt.date(year, month, min(day.day, gregorian.monthrange(year, month)[1]))


def _skip(day: dt.date, info: DayInfo) -> SkippedDay:
    return SkippedDay(day, info.reason or "非工作日")


def _count(unit: PeriodUnit, length: int, after: dt.date, calendar: WorkCalendar) -> _Count:
    """Count ``length`` units from ``after`` (not itself counted), with what was skipped."""
    if unit is PeriodUnit.WORKING_DAYS:
        return _count_working_days(length, after, calendar)
    if unit is PeriodUnit.DAYS:
        last = after + dt.timedelta(days=length)
    else:
        last = add_months(after, length)
    return _roll_over(last, calendar)


def _count_working_days(length: int, after: dt.date, calendar: WorkCalendar) -> _Count:
    skipped: list[SkippedDay] = []
    provisional = False
    counted = 0
    current = after
    while counted < length:
        current += dt.timedelta(days=1)
        info = calendar.day_info(current)
        provisional = provisional or info.provisional
        if info.working:
            counted += 1
        else:
            skipped.append(_skip(current, info))
    return _Count(current, tuple(skipped), provisional)


def _roll_over(last: dt.date, calendar: WorkCalendar) -> _Count:
    """民法典 第二百零三条: a last day that is not a working day moves to the next working day."""
    skipped: list[SkippedDay] = []
    info = calendar.day_info(last)
    provisional = info.provisional
    while not info.working:
        skipped.append(_skip(last, info))
        last += dt.timedelta(days=1)
        info = calendar.day_info(last)
        provisional = provisional or info.provisional
    return _Count(last, tuple(skipped), provisional)


def _merge(*groups: tuple[SkippedDay, ...]) -> tuple[SkippedDay, ...]:
    by_day: dict[dt.date, SkippedDay] = {}
    for group in groups:
        for item in group:
            by_day.setdefault(item.day, item)
    return tuple(by_day[day] for day in sorted(by_day))


def due_date(rule: DeadlineRule, start: dt.date, calendar: WorkCalendar) -> Deadline:
    """The last day of ``rule``'s period starting on ``start``.

    民法典 第二百零一条: "开始的当日不计入，自下一日开始计算。" Days periods end on start + N,
    month periods on the corresponding day (第二百零二条); a last day that is a 法定休假日
    (weekend or holiday, but not an official make-up working day) rolls to the next working day
    (第二百零三条). Working-day periods count working days after the start (行政复议法
    第八十八条: "三日"、"五日"、"七日"、"十日"的规定是指工作日，不含法定休假日).
    """
    counted = _count(rule.unit, rule.length, start, calendar)
    return Deadline(
        rule=rule.key,
        start=start,
        due=counted.due,
        unit=rule.unit,
        length=rule.length,
        basis=rule.basis,
        provisional=counted.provisional,
        skipped=counted.skipped,
        extension_cap=rule.extension_cap,
    )


# --------------------------------------------------------------------------- pauses and extensions


def restart_after_supplement(
    deadline: Deadline, corrected_received: dt.date, calendar: WorkCalendar
) -> Deadline:
    """The reply clock restarted on the day the corrected (补正) application arrived.

    政府信息公开条例 第三十条: "答复期限自行政机关收到补正的申请之日起计算。" The full period
    counts again from ``corrected_received`` (not itself counted); earlier pauses and extensions
    stay in the history but no longer move the due date.
    """
    if corrected_received < deadline.start:
        raise ValueError(
            f"the corrected application ({corrected_received}) cannot arrive before "
            f"the original one ({deadline.start})"
        )
    counted = _count(deadline.unit, deadline.length, corrected_received, calendar)
    restart = Restart(
        received=corrected_received,
        start_before=deadline.start,
        due_before=deadline.due,
        due_after=counted.due,
    )
    return replace(
        deadline,
        start=corrected_received,
        due=counted.due,
        provisional=counted.provisional,
        skipped=counted.skipped,
        history=(*deadline.history, restart),
    )


def pause_for_third_party(
    deadline: Deadline, paused_from: dt.date, resumed_on: dt.date, calendar: WorkCalendar
) -> Deadline:
    """The due date moved on by the time spent consulting a third party.

    政府信息公开条例 第三十三条第二款: "行政机关征求第三方和其他机关意见所需时间不计算在前款
    规定的期限内。" (the consultation itself: 第三十二条). The clock stands still from
    ``paused_from`` (the day the request went out) through ``resumed_on`` (the day the opinion
    arrived, or the third party's 15 working days ran out), both days included, and runs again
    the day after: the working days in between are added to the current due date (calendar
    days for a period in days or months). A pause that starts on the due date therefore still
    leaves one working day after the opinion arrives.
    """
    if resumed_on < paused_from:
        raise ValueError(f"resumed_on ({resumed_on}) is before paused_from ({paused_from})")
    if paused_from < deadline.start:
        raise ValueError(f"paused_from ({paused_from}) is before the start ({deadline.start})")
    if paused_from > deadline.due:
        raise ValueError(f"paused_from ({paused_from}) is after the due date ({deadline.due})")
    # The start day was never counted, so a pause cannot take it out again.
    stopped_after = max(paused_from - dt.timedelta(days=1), deadline.start)
    if deadline.unit is PeriodUnit.WORKING_DAYS:
        stopped = list(calendar.days_between(stopped_after, resumed_on))
        not_counted_days = tuple(
            SkippedDay(day, PAUSE_REASON) for day, info in stopped if info.working
        )
        pause_provisional = any(info.provisional for _, info in stopped)
        not_counted = len(not_counted_days)
        counted = _count_working_days(not_counted, deadline.due, calendar)
    else:
        not_counted_days = ()
        pause_provisional = False
        not_counted = (resumed_on - stopped_after).days
        counted = _roll_over(deadline.due + dt.timedelta(days=not_counted), calendar)
    pause = Pause(
        paused_from=paused_from,
        resumed_on=resumed_on,
        not_counted=not_counted,
        due_before=deadline.due,
        due_after=counted.due,
    )
    return replace(
        deadline,
        due=counted.due,
        provisional=deadline.provisional or pause_provisional or counted.provisional,
        skipped=_merge(deadline.skipped, not_counted_days, counted.skipped),
        history=(*deadline.history, pause),
    )


def extend(
    deadline: Deadline,
    extension: DeadlineRule,
    reason: str,
    approver: str,
    calendar: WorkCalendar,
    *,
    length: int | None = None,
) -> Deadline:
    """The deadline extended by ``extension`` (or ``length`` of it) from the current due date.

    信访工作条例 第三十四条: "经本机关、单位负责人批准，可以适当延长办理期限，但延长期限
    不得超过30日，并告知信访人延期理由"; 政府信息公开条例 第三十三条: "需要延长答复期限的，
    应当经政府信息公开工作机构负责人同意并告知申请人，延长的期限最长不得超过20个工作日".
    So an extension needs a reason
    (told to the citizen) and an approver, and all extensions together stay within the rule's
    ``extension_cap``.
    """
    given = {"reason": reason, "approver": approver}
    missing = [name for name, value in given.items() if not value.strip()]
    if missing:
        raise ValueError(
            f"extending {deadline.rule} needs a {' and an '.join(missing)}: "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} empty"
        )
    if deadline.extension_cap is None:
        raise ValueError(f"{deadline.rule} cannot be extended (no extension_cap in paths.yaml)")
    if extension.path.value != deadline.rule.split(".", 1)[0]:
        raise ValueError(f"{extension.key} does not extend {deadline.rule}: another path")
    if extension.unit is not deadline.unit:
        raise ValueError(
            f"{extension.key} counts {extension.unit.value}, {deadline.rule} counts "
            f"{deadline.unit.value}"
        )
    granted = extension.length if length is None else length
    if not 0 < granted <= extension.length:
        raise ValueError(f"extension length must be 1..{extension.length}, got {granted}")
    total = deadline.extended_by + granted
    if total > deadline.extension_cap:
        raise ValueError(
            f"{deadline.rule} would be extended by {total} {deadline.unit.value} in all, "
            f"more than the cap of {deadline.extension_cap} ({extension.basis})"
        )
    counted = _count(deadline.unit, granted, deadline.due, calendar)
    record = Extension(
        rule=extension.key,
        length=granted,
        unit=extension.unit,
        reason=reason.strip(),
        approver=approver.strip(),
        due_before=deadline.due,
        due_after=counted.due,
        basis=extension.basis,
    )
    return replace(
        deadline,
        due=counted.due,
        provisional=deadline.provisional or counted.provisional,
        skipped=_merge(deadline.skipped, counted.skipped),
        history=(*deadline.history, record),
    )


# --------------------------------------------------------------------------- recomputing


def recompute(deadline: Deadline, rules: DeadlineRules, calendar: WorkCalendar) -> Deadline:
    """A stored deadline counted again with the current rules and calendar data.

    domain.md "Counting time": deadlines are stored with how they were computed and recomputed
    when the calendar data (or paths.yaml) changes. The base period runs again from the
    original start (the day before the first 补正 restart, if any: 条例 第三十条), then every
    restart, pause and extension of ``deadline.history`` is applied again in order, with its
    own dates, reason and approver; only the counting can differ. With the same rules and
    calendar the result equals ``deadline``.

    Raises :class:`UnknownRule` when paths.yaml no longer has the deadline's rule or an
    extension's rule, and ``ValueError`` when an adjustment no longer fits the new dates
    (a pause now starting after the due date, extensions beyond a lowered cap).
    """
    first_restart = next((item for item in deadline.history if isinstance(item, Restart)), None)
    start = first_restart.start_before if first_restart is not None else deadline.start
    result = due_date(rules[deadline.rule], start, calendar)
    for item in deadline.history:
        if isinstance(item, Restart):
            result = restart_after_supplement(result, item.received, calendar)
        elif isinstance(item, Pause):
            result = pause_for_third_party(result, item.paused_from, item.resumed_on, calendar)
        else:
            result = extend(
                result, rules[item.rule], item.reason, item.approver, calendar, length=item.length
            )
    return result
