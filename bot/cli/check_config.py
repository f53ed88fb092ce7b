"""``huiyin check-config [DIR]``: load a config folder and check that routing holds together.

Loading (``routing.config.load_config``) validates every file and the references between
them. On top of that this command checks what only the routing rules can show:

- every path × topic × district (and "district unknown") lands on a unit;
- no town, alias or district name belongs to two districts (a town must name one county);
- warnings, which do not fail the check: civil-affairs topics that reach the fallback only
  because no rule names them, districts that no subdivision unit serves, units that no
  rule ever reaches, short forms of town names (旧州 for 旧州镇) shared by two districts,
  units that have no Telegram group (``chat_id``) yet, a folder without ``reminders.yaml``
  (the default reminder policy applies) and a reminders time zone that differs from the
  organisation's.

Prints ``OK: …`` and exits 0, or prints each error as ``file: key: problem`` and exits 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routing.config import DEFAULT_CONFIG_DIR, Config, ConfigError, PathCode, Topic, load_config
from routing.router import RoutingError, route

# Suffixes people drop when they name a town (旧州镇 → 旧州, 猴场苗族仡佬族乡 → 猴场).
_TOWN_SUFFIX = re.compile(
    r"(?:(?:苗|布依|仡佬|回|彝|水|侗|壮|瑶|土家|白|蒙古|满)族)*(?:乡|镇|街道)$"
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a config folder and check that every item routes to a unit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        default=None,
        help=f"config folder (default: {DEFAULT_CONFIG_DIR})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = check(args.directory)
    for warning in report.warnings:
        print(f"warning: {warning}")
    if report.errors:
        for error in report.errors:
            print(f"ERROR: {error}", file=sys.stderr)
        return 1
    print(f"OK: {report.summary}")
    return 0


@dataclass
class Report:
    """What the check found: errors fail it, warnings are for the admin to read."""

    summary: str = ""
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check(directory: Path | str | None = None) -> Report:
    """Load ``directory`` (default: the project's config folder) and check its routing."""
    report = Report()
    try:
        config = load_config(directory)
    except ConfigError as exc:
        report.errors.append(exc)
        return report
    _check_places(config, report)
    combinations, by_fallback, reached = _check_routes(config, report)
    _check_units(config, report, reached)
    _check_reminders(config, report)
    org = config.units.organisation
    report.summary = (
        f"{config.directory} — {org.name} ({org.id}): "
        f"{len(config.units.districts)} {org.subdivision_kind}, "
        f"{len(config.units.units)} units, {len(config.routing.rules)} rules, "
        f"fallback {config.routing.fallback}; "
        f"{combinations} path×topic×district combinations all land on a unit "
        f"({by_fallback} by the fallback)"
    )
    return report


def _check_places(config: Config, report: Report) -> None:
    units_file = str(config.directory / "units.yaml")
    owner: dict[str, tuple[str, str]] = {}  # name → (district, key)
    short: dict[str, set[str]] = {}
    for d_index, district in enumerate(config.units.districts):
        forms: list[tuple[str, str]] = [(district.name, f"districts.{d_index}.name")]
        if district.full_name:
            forms.append((district.full_name, f"districts.{d_index}.full_name"))
        forms += [(a, f"districts.{d_index}.aliases.{i}") for i, a in enumerate(district.aliases)]
        forms += [(t, f"districts.{d_index}.towns.{i}") for i, t in enumerate(district.towns)]
        for name, key in forms:
            first = owner.setdefault(name, (district.name, key))
            if first[0] != district.name:
                report.errors.append(
                    ConfigError(
                        units_file,
                        key,
                        f"{name!r} is also listed under {first[0]} ({first[1]}): "
                        "a place name must identify one district",
                    )
                )
        for town in district.towns:
            stripped = _TOWN_SUFFIX.sub("", town)
            if stripped != town and len(stripped) >= 2:
                short.setdefault(stripped, set()).add(district.name)
    for stripped, districts in sorted(short.items()):
        if len(districts) > 1:
            report.warnings.append(
                f"the short form {stripped!r} names towns in {', '.join(sorted(districts))}: "
                "a message that says only that cannot be placed"
            )
        elif stripped in owner and owner[stripped][0] not in districts:
            report.warnings.append(
                f"the short form {stripped!r} of a town in {next(iter(districts))} "
                f"is also a name of {owner[stripped][0]}"
            )


def _check_routes(config: Config, report: Report) -> tuple[int, int, set[str]]:
    routing_file = str(config.directory / "routing.yaml")
    districts: list[str | None] = [None, *(d.name for d in config.units.districts)]
    combinations = by_fallback = 0
    reached: set[str] = set()
    unruled: set[tuple[PathCode, Topic]] = set()
    for path in PathCode:
        for topic in Topic:
            for district in districts:
                combinations += 1
                try:
                    decision = route(config, path, topic, district)
                except RoutingError as exc:
                    where = f"{path.value}/{topic.value}/{district or '-'}"
                    report.errors.append(ConfigError(routing_file, where, str(exc)))
                    continue
                reached.add(decision.unit)
                if decision.rule == "fallback":
                    by_fallback += 1
                    if topic is not Topic.OTHER:
                        unruled.add((path, topic))
    for path, topic in sorted(unruled):
        report.warnings.append(
            f"{path.value} × {topic.value} reaches the fallback unit only because no rule "
            "names it: add a rule if a section handles it"
        )
    return combinations, by_fallback, reached


def _check_units(config: Config, report: Report, reached: set[str]) -> None:
    served = {name for unit in config.units.units for name in unit.districts}
    for district in config.units.districts:
        if district.name not in served:
            report.warnings.append(
                f"no subdivision unit serves {district.name}: its items go to the sections"
            )
    never = [u.id for u in config.units.units if u.id not in reached]
    if never:
        report.warnings.append(
            f"no path/topic/district routes to {', '.join(never)} (reachable only by transfer)"
        )
    no_chat = [u.id for u in config.units.units if u.chat_id is None]
    if no_chat:
        report.warnings.append(
            f"{len(no_chat)} of {len(config.units.units)} units have no chat_id yet "
            f"(no Telegram group to deliver to): {', '.join(no_chat)}"
        )


def _check_reminders(config: Config, report: Report) -> None:
    # reminders.yaml is validated by load_config; here only what an admin may not have meant.
    if not (config.directory / "reminders.yaml").exists():
        report.warnings.append(
            "no reminders.yaml: the default reminder policy applies "
            "(see config/reminders.yaml for the settings)"
        )
    organisation = config.units.organisation.timezone
    if config.reminders.timezone != organisation:
        report.warnings.append(
            f"reminders.yaml timezone {config.reminders.timezone} differs from units.yaml "
            f"organisation.timezone {organisation}: office hours are counted in the former"
        )
