"""``huiyin deadline RULE FROM_DATE``: the due date of one deadline rule, as one JSON object.

Staff and scripts use it to check a date by hand::

    $ huiyin deadline disclosure.reply 2025-09-26
    {"rule": "disclosure.reply", "from": "2025-09-26", "due": "2025-10-30", ...}

It reads only ``paths.yaml`` and ``holidays.yaml``, so it works while the rest of a config
folder is being written, and it imports routing/ only when it runs, so registering it costs
the other subcommands nothing (and it never imports aiogram).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Usage errors (unknown rule, bad date) exit 2 like argparse's own; a broken config exits 1.
EXIT_USAGE = 2
EXIT_CONFIG = 1

_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
DATE_FORMATS = "YYYY-MM-DD (also 2025/9/26 or 2025年9月26日)"


def parse_date(text: str) -> dt.date:
    """A date written 2025-09-26, 2025/9/26, 2025.9.26 or 2025年9月26日 (full-width digits too)."""
    normalised = unicodedata.normalize("NFKC", text).strip()
    match = _DATE.fullmatch(normalised)
    if match is None:
        raise ValueError(f"bad date {text!r}: expected {DATE_FORMATS}")
    year, month, day = (int(part) for part in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"bad date {text!r}: {exc}") from None


def register(subparsers: Any) -> None:
    """Add the ``deadline`` subcommand to the ``huiyin`` parser."""
    parser = subparsers.add_parser(
        "deadline",
        help="compute the due date of a deadline rule",
        description="Print the due date of deadline RULE counted from FROM_DATE, as JSON.",
    )
    _add_arguments(parser)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "rule", metavar="RULE", help="rule key from paths.yaml, e.g. disclosure.reply"
    )
    parser.add_argument("from_date", metavar="FROM_DATE", help=f"the start day: {DATE_FORMATS}")
    parser.add_argument(
        "--config",
        metavar="DIR",
        type=Path,
        default=None,
        help="config folder holding paths.yaml and holidays.yaml (default: the project's config/)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the deadline as one JSON line; errors go to stderr with a non-zero status."""
    from routing.calendar import WorkCalendar
    from routing.config import DEFAULT_CONFIG_DIR, ConfigError
    from routing.deadlines import DeadlineRules, UnknownRule, due_date

    try:
        start = parse_date(args.from_date)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    directory: Path = args.config if args.config is not None else DEFAULT_CONFIG_DIR
    try:
        rules = DeadlineRules.load(directory / "paths.yaml")
        calendar = WorkCalendar.load(directory / "holidays.yaml")
    except ConfigError as exc:
        return _fail(f"config error: {exc}", EXIT_CONFIG)
    try:
        rule = rules[args.rule]
    except UnknownRule as exc:
        return _fail(str(exc), EXIT_USAGE)
    deadline = due_date(rule, start, calendar)
    output = {
        "rule": deadline.rule,
        "from": deadline.start.isoformat(),
        "due": deadline.due.isoformat(),
        "unit": deadline.unit.value,
        "length": deadline.length,
        "basis": deadline.basis,
        "provisional": deadline.provisional,
        "skipped": [day.to_dict() for day in deadline.skipped],
    }
    print(json.dumps(output, ensure_ascii=False))
    return 0


def _fail(message: str, status: int) -> int:
    print(f"huiyin deadline: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subcommand alone (``python -m bot.cli.deadline``)."""
    parser = argparse.ArgumentParser(prog="huiyin deadline", description=run.__doc__)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
