"""``huiyin recompute-deadlines [--dry-run] [--config DIR]``: count stored deadlines again.

Run it after editing ``holidays.yaml`` (a new year's official schedule) or ``paths.yaml``
(a period's length): every open deadline is recomputed with the new data (domain.md
"Counting time"). Where a last day or the provisional flag moved, the deadline is stored
again, the case gets an audit event and its unit a message in the case's topic; the
messages wait in the outbox until the bot runs. Prints the changes and the counts.

``--dry-run`` only reports. Exits 0, or 1 when a case could not be recomputed (each is
named on stderr; the other cases are recomputed all the same) or the config is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.services.recompute import RecomputeReport
    from bot.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "recompute-deadlines",
        help="recompute stored deadlines after holidays.yaml or paths.yaml changed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would change; write nothing"
    )
    parser.add_argument(
        "--config", metavar="DIR", type=Path, help="config folder (default HUIYIN_CONFIG_DIR)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bot.settings import Settings
    from routing.config import ConfigError

    overrides: dict[str, Any] = {}
    if args.config is not None:
        overrides["config_dir"] = args.config
    settings = Settings(**overrides)
    # A one-off command prints its own report: only warnings (a failed case) go to the log.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = asyncio.run(recompute(settings, dry_run=args.dry_run))
    except ConfigError as exc:
        print(f"huiyin recompute-deadlines: config error: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    return 1 if report.failures else 0


async def recompute(settings: Settings, *, dry_run: bool) -> RecomputeReport:
    """Migrate the database, build the service from the config folder and recompute."""
    from bot.db.engine import make_engine, make_sessionmaker
    from bot.db.migrate import upgrade_database
    from bot.services import CaseService
    from bot.services.recompute import recompute_deadlines
    from bot.texts import Texts
    from routing.calendar import WorkCalendar
    from routing.classifier import Classifier
    from routing.config import load_config
    from routing.deadlines import DeadlineRules

    config = load_config(settings.config_dir)
    service = CaseService(
        config=config,
        # Nothing is classified here: skip loading the learned layer's weights.
        classifier=Classifier.from_config(config, learned=False),
        rules=DeadlineRules.from_paths(config.paths),
        calendar=WorkCalendar.from_holidays(config.holidays),
        texts=Texts.load(settings.config_dir),
    )
    await upgrade_database(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        return await recompute_deadlines(
            make_sessionmaker(engine), service, now=dt.datetime.now(dt.UTC), dry_run=dry_run
        )
    finally:
        await engine.dispose()


def print_report(report: RecomputeReport) -> None:
    rows = [
        (
            change.case_number,
            change.rule,
            _day(change.due_before, change.provisional_before),
            _day(change.due_after, change.provisional_after),
        )
        for change in report.changes
    ]
    if rows:
        header = ("case", "rule", "before", "after")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for failure in report.failures:
        print(
            f"FAILED: case {failure.case_number or failure.case_id}: {failure.error}",
            file=sys.stderr,
        )
    verb = "would change" if report.dry_run else "changed"
    print(
        f"{report.checked} open deadlines checked: {report.changed} {verb}, "
        f"{report.unchanged} unchanged, {report.failed} failed"
        + (" (dry run: nothing written)" if report.dry_run else "")
    )


def _day(day: dt.date, provisional: bool) -> str:
    return f"{day.isoformat()} (provisional)" if provisional else day.isoformat()
