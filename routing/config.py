"""Configuration as data: the YAML files in a config folder, validated on load.

A config folder holds:

- ``paths.yaml``      the five legal regimes and their named deadline rules;
- ``units.yaml``      the organisation, its subdivisions (县区 or 街道/镇) and its units;
- ``routing.yaml``    ordered rules (path, topic, district) → unit, and the fallback unit (兜底);
- ``holidays.yaml``   official holiday data for years the calendar package lacks, and the
                      statutory holidays assumed beyond any known data;
- ``classifier.yaml`` the classifier's lexicon: cues per path and topic, as data staff can read;
- ``reminders.yaml``  when units are warned and overdue items escalate (optional: a folder
                      without it gets the defaults of :class:`RemindersFile`).

Every error names the file and the key and says what is wrong (:class:`ConfigError`).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class PathCode(StrEnum):
    """The five legal regimes (domain.md "The five paths")."""

    PETITION = "petition"
    LITIGATION = "litigation"
    MEDIATION = "mediation"
    RECONSIDERATION = "reconsideration"
    DISCLOSURE = "disclosure"


class Topic(StrEnum):
    """Subject codes (domain.md "Routing")."""

    SOCIAL_ASSISTANCE = "social_assistance"
    ELDERLY_CARE = "elderly_care"
    MARRIAGE_ADOPTION = "marriage_adoption"
    FUNERAL = "funeral"
    SOCIAL_ORG = "social_org"
    CHARITY = "charity"
    CHILD_WELFARE = "child_welfare"
    COMMUNITY = "community"
    PLACE_NAMES = "place_names"
    DISABILITY = "disability"
    OTHER = "other"


class PeriodUnit(StrEnum):
    WORKING_DAYS = "working_days"
    DAYS = "days"
    MONTHS = "months"


class ConfigError(ValueError):
    """A config folder that does not load. The message names file, key and problem."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        super().__init__(f"{file}: {key}: {problem}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- paths.yaml


class DeadlineRuleSpec(_Strict):
    """One named statutory (or house) period, e.g. ``disclosure.reply``."""

    unit: PeriodUnit
    length: int = Field(gt=0, le=3660)
    starts: str = Field(min_length=1, description="what event starts the period (Chinese)")
    basis: str = Field(min_length=1, description="law and article, in Chinese")
    extension_cap: int | None = Field(default=None, gt=0)
    house_rule: bool = False
    description: str = ""


class PathSpec(_Strict):
    name: str
    name_en: str
    basis: str
    unit_kind: str = Field(description="which kind of unit handles it, in words")
    deadlines: dict[str, DeadlineRuleSpec]


class PathsFile(_Strict):
    paths: dict[PathCode, PathSpec]

    @model_validator(mode="after")
    def _all_paths(self) -> PathsFile:
        missing = [p.value for p in PathCode if p not in self.paths]
        if missing:
            raise ValueError(f"missing paths: {', '.join(missing)}")
        return self


# --------------------------------------------------------------------------- units.yaml


class Organisation(_Strict):
    id: str
    name: str
    name_en: str
    subdivision_kind: str = Field(
        description="what its subdivisions are called, e.g. 县区 or 街道/镇"
    )
    timezone: str = "Asia/Shanghai"


class District(_Strict):
    """A subdivision: its exact short name, the other ways people write it, its towns."""

    name: str
    full_name: str = ""
    aliases: list[str] = Field(default_factory=list)
    towns: list[str] = Field(default_factory=list)


class UnitSpec(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    name_en: str
    kind: Literal["section", "subdivision", "office"]
    topics: list[Topic] = Field(default_factory=list)
    districts: list[str] = Field(default_factory=list)
    chat_id: int | None = None


class UnitsFile(_Strict):
    organisation: Organisation
    districts: list[District]
    units: list[UnitSpec]

    @field_validator("units")
    @classmethod
    def _consistent(cls, units: list[UnitSpec], info: ValidationInfo) -> list[UnitSpec]:
        # A field validator (not a model one) so that the error's key is ``units``, and the
        # message names the entry: ``units.12.id: duplicate unit id 'x' (first at units.3.id)``.
        first: dict[str, int] = {}
        for index, unit in enumerate(units):
            if unit.id in first:
                raise ValueError(
                    f"units.{index}.id: duplicate unit id {unit.id!r} "
                    f"(first at units.{first[unit.id]}.id)"
                )
            first[unit.id] = index
        if "districts" not in info.data:  # districts failed validation: that error comes first
            return units
        names = {d.name for d in info.data["districts"]}
        for index, unit in enumerate(units):
            unknown = [d for d in unit.districts if d not in names]
            if unknown:
                raise ValueError(
                    f"units.{index}.districts: unit {unit.id} names unknown districts: "
                    f"{', '.join(unknown)}"
                )
        return units


# --------------------------------------------------------------------------- routing.yaml


class RoutingRule(_Strict):
    """One ordered rule. An absent field matches anything.

    ``unit`` is a unit id, or ``by_district``: the subdivision unit that serves the
    case's district and handles its topic (no match → the rule does not apply).
    """

    path: list[PathCode] | None = None
    topic: list[Topic] | None = None
    district: list[str] | None = None
    district_known: bool | None = None
    unit: str
    note: str = ""


class RoutingFile(_Strict):
    fallback: str
    rules: list[RoutingRule]


# --------------------------------------------------------------------------- holidays.yaml


class HolidayEntry(_Strict):
    date: dt.date
    name: str


class FixedHoliday(_Strict):
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)
    name: str


class LunarHoliday(_Strict):
    """A holiday by lunar date; ``month: 12, day: -1`` is the last day of the lunar year (除夕)."""

    month: int = Field(ge=1, le=12)
    day: int = Field(ge=-1, le=30)
    name: str


class SolarTermHoliday(_Strict):
    term: str = Field(description="solar term name in Chinese, e.g. 清明")
    name: str


class FallbackHolidays(_Strict):
    """Statutory holidays assumed for years with no official schedule.

    Per 全国年节及纪念日放假办法 (2024 revision)."""

    fixed: list[FixedHoliday] = Field(default_factory=list)
    lunar: list[LunarHoliday] = Field(default_factory=list)
    solar_terms: list[SolarTermHoliday] = Field(default_factory=list)


class YearSchedule(_Strict):
    holidays: list[HolidayEntry] = Field(default_factory=list)
    workdays: list[HolidayEntry] = Field(
        default_factory=list, description="official 调休 make-up working days (weekends)"
    )


class HolidaysFile(_Strict):
    years: dict[int, YearSchedule] = Field(default_factory=dict)
    fallback: FallbackHolidays = Field(default_factory=FallbackHolidays)


# --------------------------------------------------------------------------- classifier.yaml


class Cue(_Strict):
    """A phrase, or a regular expression when ``regex``, with the weight it adds."""

    text: str = Field(min_length=1)
    weight: float = 1.0
    regex: bool = False


class Signal(_Strict):
    """A named group of cues: one idea the decision rules talk about (e.g. ``court_pending``).

    ``reason`` is the short Chinese phrase shown to staff when the signal decided.
    """

    reason: str = Field(min_length=1)
    cues: list[str | Cue] = Field(min_length=1)


class PathRule(_Strict):
    """Evidence for paths: when all of ``when`` are present and none of ``unless``, add ``add``."""

    when: list[str] = Field(min_length=1)
    unless: list[str] = Field(default_factory=list)
    add: dict[PathCode, float]
    note: str = ""


class TopicLexicon(_Strict):
    name: str
    name_en: str
    cues: list[str | Cue]


class ClassifierFile(_Strict):
    version: int = 1
    normalise: dict[str, str] = Field(
        default_factory=dict, description="common typos and variants → the standard word"
    )
    negators: list[str] = Field(default_factory=list)
    signals: dict[str, Signal]
    rules: list[PathRule]
    default_path: PathCode = PathCode.PETITION
    topics: dict[Topic, TopicLexicon]
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _signals_exist(self) -> ClassifierFile:
        for index, rule in enumerate(self.rules):
            unknown = [s for s in (*rule.when, *rule.unless) if s not in self.signals]
            if unknown:
                raise ValueError(f"rules.{index} names unknown signals: {', '.join(unknown)}")
        return self


# --------------------------------------------------------------------------- reminders.yaml

# YAML 1.1 reads an unquoted 17:30 as the base-60 integer 1050, and pydantic would take that
# as 1050 seconds after midnight: a silent 00:17:30. Times must be quoted strings.
_CLOCK_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _clock_time(value: object) -> object:
    """``"09:00"`` → ``time(9, 0)``; anything but an ``"HH:MM"`` string is refused."""
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        match = _CLOCK_TIME.match(value.strip())
        if match:
            return dt.time(int(match[1]), int(match[2]))
    raise ValueError(f'expected a time of day in quotes, e.g. "09:00", got {value!r}')


class WorkingHours(_Strict):
    """Office hours (办公时间), local time: notifications go out only inside them."""

    start: dt.time = dt.time(9, 0)
    end: dt.time = Field(default=dt.time(17, 30), validate_default=True)

    _times = field_validator("start", "end", mode="before")(_clock_time)

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: dt.time, info: ValidationInfo) -> dt.time:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(f"end {end:%H:%M} must be after start {start:%H:%M}")
        return end


class OverdueLevels(_Strict):
    """Escalation once the due day has passed: working days after the due day, per level.

    0 and 1 both mean the first working day after the due day (nothing is overdue sooner).
    """

    unit: StrictInt = Field(default=0, ge=0, le=366)
    # validate_default: ``{unit: 3}`` alone must still be checked against the default 2.
    supervisors: StrictInt = Field(default=2, ge=0, le=366, validate_default=True)
    head: StrictInt = Field(default=5, ge=0, le=366, validate_default=True)

    @field_validator("supervisors", "head")
    @classmethod
    def _not_before_the_level_below(cls, days: int, info: ValidationInfo) -> int:
        below = "unit" if info.field_name == "supervisors" else "supervisors"
        earlier = info.data.get(below)
        if earlier is not None and days < earlier:
            raise ValueError(
                f"{info.field_name} ({days}) must not come before {below} ({earlier}): "
                "levels escalate unit ≤ supervisors ≤ head"
            )
        return days


class RemindersFile(_Strict):
    """When units are reminded of deadlines and overdue items escalate.

    domain.md "Reminders and escalation": warn before the deadline and on the day, only in
    working hours on working days; overdue, tell the unit, then supervisors, in levels; a
    daily digest on working-day mornings. Every key has a default.
    """

    timezone: str = "Asia/Shanghai"
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    warn_before: tuple[StrictInt, ...] = Field(
        default=(3, 1), description="working days before the due date (descending)"
    )
    on_the_day: bool = True
    overdue: OverdueLevels = Field(default_factory=OverdueLevels)
    digest_at: dt.time = Field(default=dt.time(9, 0), validate_default=True)
    quiet_close_days: StrictInt = Field(default=15, ge=1, le=366)
    scan_every_seconds: StrictInt = Field(default=60, ge=5, le=3600)

    _digest_time = field_validator("digest_at", mode="before")(_clock_time)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None
        return name

    @field_validator("warn_before")
    @classmethod
    def _distinct_positive(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        for index, value in enumerate(days):
            if not 1 <= value <= 366:
                raise ValueError(
                    f"warn_before.{index}: {value} is not a number of working days from 1 "
                    "to 366 (the due day itself is on_the_day)"
                )
        if len(set(days)) != len(days):
            raise ValueError(f"{list(days)} lists a day twice")
        return tuple(sorted(days, reverse=True))

    @field_validator("digest_at")
    @classmethod
    def _inside_working_hours(cls, at: dt.time, info: ValidationInfo) -> dt.time:
        hours = info.data.get("working_hours")
        if hours is not None and not hours.start <= at < hours.end:
            raise ValueError(
                f"{at:%H:%M} is outside working_hours {hours.start:%H:%M}–{hours.end:%H:%M}"
            )
        return at


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Config:
    """A loaded, validated config folder."""

    directory: Path
    paths: PathsFile
    units: UnitsFile
    routing: RoutingFile
    holidays: HolidaysFile
    classifier: ClassifierFile
    reminders: RemindersFile = field(default_factory=RemindersFile)

    def unit(self, unit_id: str) -> UnitSpec:
        for unit in self.units.units:
            if unit.id == unit_id:
                return unit
        raise KeyError(unit_id)


_FILES: Mapping[str, type[_Strict]] = {
    "paths.yaml": PathsFile,
    "units.yaml": UnitsFile,
    "routing.yaml": RoutingFile,
    "holidays.yaml": HolidaysFile,
    "classifier.yaml": ClassifierFile,
}

# Files a folder may leave out: every key has a default (config/examples/ folders lack them).
_OPTIONAL_FILES: Mapping[str, type[_Strict]] = {
    "reminders.yaml": RemindersFile,
}


def _key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_file(path: Path, model: type[_Strict], *, empty_ok: bool = False) -> Any:
    """Read one YAML file into its model; any problem becomes a :class:`ConfigError`.

    ``empty_ok``: a file with no keys (all commented out) means the model's defaults.
    """
    name = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "(file)", "file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise ConfigError(str(path), where, f"not valid YAML: {exc}") from None
    if raw is None and empty_ok:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "(top level)", "expected a mapping of keys to values")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(str(path.parent / name), _key(first["loc"]), first["msg"]) from None


def load_config(directory: Path | str | None = None) -> Config:
    """Load and cross-check a config folder (default: the project's ``config/``)."""
    base = Path(directory) if directory is not None else DEFAULT_CONFIG_DIR
    if not base.is_dir():
        raise ConfigError(str(base), "(folder)", "not a folder")
    loaded = {name: load_file(base / name, model) for name, model in _FILES.items()}
    for name, model in _OPTIONAL_FILES.items():
        path = base / name
        loaded[name] = load_file(path, model, empty_ok=True) if path.exists() else model()
    config = Config(
        directory=base,
        paths=loaded["paths.yaml"],
        units=loaded["units.yaml"],
        routing=loaded["routing.yaml"],
        holidays=loaded["holidays.yaml"],
        classifier=loaded["classifier.yaml"],
        reminders=loaded["reminders.yaml"],
    )
    _cross_check(config)
    return config


def _cross_check(config: Config) -> None:
    """Checks that span files: routing names real units and districts."""
    unit_ids = {u.id for u in config.units.units}
    district_names = {d.name for d in config.units.districts}
    routing = str(config.directory / "routing.yaml")
    if config.routing.fallback not in unit_ids:
        raise ConfigError(routing, "fallback", f"unknown unit id {config.routing.fallback!r}")
    for index, rule in enumerate(config.routing.rules):
        if rule.unit != "by_district" and rule.unit not in unit_ids:
            raise ConfigError(routing, f"rules.{index}.unit", f"unknown unit id {rule.unit!r}")
        for name in rule.district or []:
            if name not in district_names:
                raise ConfigError(routing, f"rules.{index}.district", f"unknown district {name!r}")
