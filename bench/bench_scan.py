"""One reminder scan over a large table: 1,000,000 cases, 1 % of them with a reminder due.

    PYTHONPATH=. .venv/bin/python -m bench.bench_scan [--backend sqlite|postgres|both]
        [--cases 1000000] [--due 10000] [--keep] [--profile]

Seeds one open deadline per case. The due ones are 告知 (petition.acknowledge) deadlines
computed the afternoon before Tuesday 2026-03-17, their due day: exactly one reminder
("due today") each at 10:00 that day. The others have their next reminder in the coming
weeks and months (real deadlines from the rules, each at its next step of the plan). Then
it measures one ``ReminderScanner.scan`` at 2026-03-17 10:00 Asia/Shanghai, in a fresh
process: wall time, peak Python memory (tracemalloc, in a second identical scan, since
tracing slows the code) and the process's max RSS; a scan right after (nothing due); the
query plan of the due-rows query; and, apart, one build of today's digests (the timed scan
finds them done). Seeding is timed but is not the measured number.

The databases are left in place (``--keep`` reuses them; ``--drop`` removes them at the end):
PostgreSQL ``huiyin_bench_scan`` (created through the ``test`` database, as the tests do),
SQLite ``var/bench_scan.sqlite3``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import gc
import io
import json
import os
import pstats
import random
import resource
import sqlite3
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.engine import is_sqlite, make_engine, make_sessionmaker
from bot.db.migrate import upgrade_database
from bot.db.models import Case, DeadlineRow, Notification, OutboxMessage, Unit
from bot.db.records import Role
from bot.reminders import ReminderScanner, ScanReport, count_due
from routing.calendar import WorkCalendar
from routing.classifier import Classifier
from routing.config import DEFAULT_CONFIG_DIR, Config, load_config
from routing.deadlines import DeadlineRules, due_date
from routing.reminders import ReminderPolicy, first_after, schedule

PROJECT = Path(__file__).resolve().parent.parent
CORPUS = PROJECT / "tests" / "data" / "corpus.jsonl"
SQLITE_FILE = PROJECT / "var" / "bench_scan.sqlite3"
PG_ADMIN_DSN = os.environ.get("HUIYIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PG_DATABASE = "huiyin_bench_scan"

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
DUE = dt.date(2026, 3, 17)  # a Tuesday, a working day
NOW = dt.datetime(2026, 3, 17, 10, 0, tzinfo=SHANGHAI)
# The afternoon before: the plan's next step is "due today", 09:00 on DUE.
COMPUTED = dt.datetime(2026, 3, 16, 15, 0, tzinfo=SHANGHAI)
DUE_RULE, DUE_START = "petition.acknowledge", dt.date(2026, 3, 2)
# The duty each path's not-due cases wait on (a unit's duty, not the citizen's window).
RULE_OF_PATH = {
    "petition": "petition.respond",
    "disclosure": "disclosure.reply",
    "mediation": "mediation.conclude",
    "reconsideration": "reconsideration.respondent_reply",
    "litigation": "litigation.defendant_answer",
}
STATES = ("routed", "accepted", "in_progress", "routed", "received")
FIRST_START = dt.date(2025, 12, 1)  # not-due deadlines started between this and DUE
CASE_COLUMNS = (
    "id", "number", "citizen_id", "path", "topic", "district", "unit_id", "lead_unit_id",
    "state", "hops", "text", "summary", "applicant", "details", "classification",
    "anonymous", "received_at", "accepted_at", "updated_at", "version",
)  # fmt: skip
DEADLINE_COLUMNS = (
    "id", "case_id", "rule", "start", "due", "provisional", "status", "computation",
    "calendar_version", "computed_at", "next_reminder_at", "reminder_step",
)  # fmt: skip
# What the scanner reads, as it reads it (bot/reminders.py ReminderScanner._reminders).
DUE_QUERY = (
    "SELECT id, case_id, rule, due, status, computed_at, reminder_step FROM deadlines "
    "WHERE next_reminder_at <= :now ORDER BY next_reminder_at LIMIT 500"
)
INDEX = "ix_deadlines_next_reminder"
NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Template:
    """One labelled corpus message as a case: what the classifier made of it."""

    path: str
    topic: str
    district: str | None
    text: str
    summary: str
    classification: str  # JSON


@dataclass(frozen=True)
class Planned:
    """A deadline as the scan left it: its computation and its next reminder."""

    rule: str
    start: dt.date
    due: dt.date
    computation: str  # JSON
    computed_at: dt.datetime
    next_at: dt.datetime | None
    step: int | None


def build_services(config: Config) -> Any:
    """CaseService as bot/app.py builds it (without the learned classifier: not needed)."""
    from bot.services import CaseService
    from bot.texts import Texts

    return CaseService(
        config=config,
        classifier=Classifier.from_config(config, learned=False),
        rules=DeadlineRules.from_paths(config.paths),
        calendar=WorkCalendar.from_holidays(config.holidays),
        texts=Texts.load(DEFAULT_CONFIG_DIR),
    )


def templates(config: Config) -> list[Template]:
    classifier = Classifier.from_config(config, learned=False)
    out = []
    with CORPUS.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            item = json.loads(line)
            found = classifier.classify(item["text"]).to_dict()
            out.append(
                Template(
                    item["path"],
                    item["topic"],
                    item.get("district"),
                    item["text"],
                    item["text"][:60],
                    json.dumps(found, ensure_ascii=False),
                )
            )
    return out


def plans(services: Any, policy: ReminderPolicy) -> tuple[Planned, dict[str, list[Planned]]]:
    """The due deadline, and per path every not-due one: started on a working day between
    FIRST_START and the day before DUE, with a reminder still to come after NOW."""
    calendar: WorkCalendar = services.calendar

    def planned(rule: str, start: dt.date, computed: dt.datetime, *, due_now: bool) -> Planned:
        deadline = due_date(services.rules[rule], start, calendar)
        if due_now:  # step None: the scan plans it from computed_at, and one step is due
            step, at = None, computed
        else:  # as the last scan left it: at the first step after NOW
            steps = schedule(deadline.due, policy, calendar)
            step = first_after(steps, NOW)
            at = steps[step].at if step < len(steps) else None
        return Planned(
            rule,
            start,
            deadline.due,
            json.dumps(deadline.to_dict(), ensure_ascii=False),
            computed.astimezone(UTC),
            at.astimezone(UTC) if at else None,
            step,
        )

    due = planned(DUE_RULE, DUE_START, COMPUTED, due_now=True)
    assert due.due == DUE, due
    later: dict[str, list[Planned]] = {}
    for path, rule in RULE_OF_PATH.items():
        options = []
        day = FIRST_START
        while day < DUE:
            if calendar.is_working_day(day):
                computed = dt.datetime.combine(day, dt.time(15, 0), tzinfo=SHANGHAI)
                option = planned(rule, day, computed, due_now=False)
                # Not overdue, a reminder still to come (the first step after NOW).
                if option.due > DUE and option.next_at is not None and option.next_at > NOW:
                    options.append(option)
            day += dt.timedelta(days=1)
        assert options, rule
        later[path] = options
    return due, later


def case_number(index: int) -> str:
    """HY-2026-XXXX-XXXX, distinct for every index, random-looking (a bijection mod 31**8)."""
    code = index * 0x9E3779B1 % 31**8
    symbols = []
    for _ in range(8):
        code, digit = divmod(code, 31)
        symbols.append(NUMBER_ALPHABET[digit])
    return f"HY-2026-{''.join(symbols[:4])}-{''.join(symbols[4:])}"


def seed_rows(
    total: int,
    due_count: int,
    units: list[str],
    citizen_id: int,
    corpus: list[Template],
    due_plan: Planned,
    later: dict[str, list[Planned]],
    chunk: int,
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """(cases, deadlines) rows in chunks, Python values (aware UTC datetimes, dates, JSON
    as text); ids 1..total, deadline i belongs to case i."""
    rng = random.Random(2026)
    due_ids = set(rng.sample(range(1, total + 1), due_count))
    petitions = [t for t in corpus if t.path == "petition"]
    applicant = json.dumps({"name": "王某某", "phone": "138****0000"}, ensure_ascii=False)
    cases: list[tuple[Any, ...]] = []
    deadlines: list[tuple[Any, ...]] = []
    for case_id in range(1, total + 1):
        if case_id in due_ids:
            template = petitions[case_id % len(petitions)]
            plan = due_plan
        else:
            template = corpus[case_id % len(corpus)]
            options = later[template.path]
            plan = options[rng.randrange(len(options))]
        unit = units[case_id % len(units)]
        state = STATES[case_id % len(STATES)]
        received = plan.computed_at - dt.timedelta(minutes=case_id % 360)
        cases.append(
            (
                case_id,
                case_number(case_id),
                citizen_id,
                template.path,
                template.topic,
                template.district,
                unit,
                unit,
                state,
                0,
                template.text,
                template.summary,
                applicant,
                "{}",
                template.classification,
                False,
                received,
                None if state in ("received", "routed") else plan.computed_at,
                plan.computed_at,
                1,
            )
        )
        deadlines.append(
            (
                case_id,
                case_id,
                plan.rule,
                plan.start,
                plan.due,
                False,
                "open",
                plan.computation,
                "bench",
                plan.computed_at,
                plan.next_at,
                plan.step,
            )
        )
        if len(cases) == chunk:
            yield cases, deadlines
            cases, deadlines = [], []
    if cases:
        yield cases, deadlines


# --------------------------------------------------------------------------- databases


async def pg_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def pg_url() -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{PG_DATABASE}"


def sqlite_url() -> str:
    return f"sqlite+aiosqlite:///{SQLITE_FILE}"


async def seeded(url: str, cases: int, due: int) -> bool:
    """Whether the database holds a seed of this size (for --keep)."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            have = await session.scalar(select(func.count()).select_from(Case))
            due_rows = await session.scalar(
                select(func.count()).select_from(DeadlineRow).where(DeadlineRow.due == DUE)
            )
        return have == cases and due_rows == due
    except Exception:  # no database, no tables: seed it
        return False
    finally:
        await engine.dispose()


async def organisation(url: str, config: Config) -> tuple[int, list[str]]:
    """Migrate; the units, each with a plain (not forum) group; a citizen, a supervisor."""
    await upgrade_database(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            units = await repo.sync_units(session, config.units.units)
            for index, unit in enumerate(units):
                await repo.set_unit_chat(session, unit.id, -100200000000 - index, forum=False)
            citizen = await repo.get_or_create_person(session, 7_000_000_001, "市民")
            supervisor = await repo.get_or_create_person(session, 7_000_000_002, "督办")
            await repo.set_role(session, supervisor.id, Role.SUPERVISOR, None)
        return citizen.id, [unit.id for unit in units]
    finally:
        await engine.dispose()


async def seed_postgres(args: argparse.Namespace, data: dict[str, Any]) -> None:
    await pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    await pg_admin(f'CREATE DATABASE "{PG_DATABASE}"')
    url = pg_url()
    citizen_id, units = await organisation(url, data["config"])
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.execute("SET synchronous_commit = off")
            # Skip the foreign-key triggers during the load: the rows are consistent by
            # construction, and a million lookups each would triple the seeding time.
            await raw.execute("SET session_replication_role = replica")
            for cases, deadlines in seed_rows(
                args.cases, args.due, units, citizen_id, chunk=100_000, **data["rows"]
            ):
                async with raw.transaction():
                    await raw.copy_records_to_table("cases", records=cases, columns=CASE_COLUMNS)
                    await raw.copy_records_to_table(
                        "deadlines", records=deadlines, columns=DEADLINE_COLUMNS
                    )
            await raw.execute("SET session_replication_role = origin")
            for table in ("cases", "deadlines"):
                await raw.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            # As a live table would be: vacuumed (hint bits, visibility map) and analysed.
            await raw.execute("VACUUM (ANALYZE) cases, deadlines")
            await connection.rollback()
    finally:
        await engine.dispose()


def seed_sqlite(args: argparse.Namespace, data: dict[str, Any]) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
    citizen_id, units = asyncio.run(organisation(sqlite_url(), data["config"]))
    stamps: dict[Any, str | None] = {None: None}

    def stored(value: Any) -> Any:  # as SQLAlchemy stores them on SQLite: naive UTC text
        if isinstance(value, dt.datetime):
            found = stamps.get(value)
            if found is None:
                found = stamps[value] = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            return found
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    connection = sqlite3.connect(SQLITE_FILE, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-400000")
        insert_cases = (
            f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(CASE_COLUMNS))})"
        )
        insert_deadlines = (
            f"INSERT INTO deadlines ({', '.join(DEADLINE_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(DEADLINE_COLUMNS))})"
        )
        for cases, deadlines in seed_rows(
            args.cases, args.due, units, citizen_id, chunk=50_000, **data["rows"]
        ):
            connection.execute("BEGIN")
            connection.executemany(insert_cases, ([stored(v) for v in row] for row in cases))
            connection.executemany(
                insert_deadlines, ([stored(v) for v in row] for row in deadlines)
            )
            connection.execute("COMMIT")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


async def reset(url: str, *, undo: bool = True) -> None:
    """Today's digests marked done (the scan's reminder part is what is timed); with ``undo``
    first back to the seeded state: the due deadlines at their first step again, no
    notifications or messages, and on PostgreSQL the dead rows vacuumed away."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            if undo:
                await session.execute(delete(OutboxMessage))
                await session.execute(delete(Notification))
                await session.execute(
                    update(DeadlineRow)
                    .where(
                        DeadlineRow.status == "open",
                        DeadlineRow.due == DUE,
                        DeadlineRow.rule == DUE_RULE,
                    )
                    .values(next_reminder_at=DeadlineRow.computed_at, reminder_step=None)
                    .execution_options(synchronize_session=False)
                )
            await mark_digests_done(session)
        if undo and not is_sqlite(url):
            async with engine.connect() as connection:
                await connection.commit()
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.exec_driver_sql(
                    "VACUUM (ANALYZE) deadlines, notifications, outbox"
                )
                # Write the dirty pages out now, not in a checkpoint during the timed scan.
                await autocommit.exec_driver_sql("CHECKPOINT")
    finally:
        await engine.dispose()


def digest_keys(unit_ids: list[str]) -> list[tuple[str, str | None]]:
    day = NOW.date().isoformat()
    return [(f"digest:{u}:{day}", u) for u in unit_ids] + [(f"digest:supervisors:{day}", None)]


async def mark_digests_done(session: AsyncSession) -> None:
    unit_ids = list(
        await session.scalars(
            select(Unit.id).where(Unit.chat_id.is_not(None), Unit.active.is_(True))
        )
    )
    for key, unit_id in digest_keys(unit_ids):
        session.add(
            Notification(
                key=key,
                kind="digest",
                level=0,
                audience="unit" if unit_id else "supervisors",
                unit_id=unit_id,
                due=NOW.date(),
                recipients=0,
                created_at=NOW.astimezone(UTC),
            )
        )


async def query_plan(url: str, backend: str) -> list[str]:
    """The due-rows query's plan; on PostgreSQL executed (and rolled back)."""
    now = bindparam("now", type_=DateTime(timezone=True))
    if backend == "postgres":
        query = text(
            f"EXPLAIN (ANALYZE, BUFFERS) {DUE_QUERY} FOR UPDATE OF deadlines SKIP LOCKED"
        ).bindparams(now)
    else:
        query = text(f"EXPLAIN QUERY PLAN {DUE_QUERY}").bindparams(now)
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(query, {"now": NOW.astimezone(UTC)})).all()
            await connection.rollback()
    finally:
        await engine.dispose()
    if backend == "postgres":
        return [row[0] for row in rows]
    return [str(row[-1]) for row in rows]


# --------------------------------------------------------------------------- the measurement


def max_rss_mb() -> float:
    """This process's peak RSS. Linux: VmHWM, since getrusage's ru_maxrss survives exec and
    so would report the parent's peak (the seeding) in the spawned child."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(url: str, profile: bool, batch: int) -> dict[str, Any]:
    """In a fresh process, so max RSS is the scan's and not the seeding's."""
    return asyncio.run(_measure(url, profile, batch))


async def _measure(url: str, profile: bool, batch: int) -> dict[str, Any]:
    config = load_config()
    services = build_services(config)
    policy = ReminderPolicy.from_config(config.reminders)
    now = NOW.astimezone(UTC)  # SQLite compares stored UTC text: pass UTC
    engine = make_engine(url)
    sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
    scanner = ReminderScanner(sessionmaker, services, policy, clock=lambda: now, batch=batch)
    out: dict[str, Any] = {}
    try:
        async with sessionmaker() as session:
            out["due_before"] = await count_due(session, now)
        gc.collect()
        out["rss_before"] = max_rss_mb()

        began = time.perf_counter()
        report = await scanner.scan(now)
        out["scan"] = time.perf_counter() - began
        out["rss"] = max_rss_mb()
        out["report"] = report

        began = time.perf_counter()
        second = await scanner.scan(now)
        out["second"] = time.perf_counter() - began
        out["second_report"] = second

        await reset(url)
        tracemalloc.start()
        began = time.perf_counter()
        await scanner.scan(now)
        out["traced"] = time.perf_counter() - began
        out["peak"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()

        if profile:
            await reset(url)
            profiler = cProfile.Profile()
            profiler.enable()
            await scanner.scan(now)
            profiler.disable()
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(25)
            out["profile"] = buffer.getvalue()

        # Today's digests, timed apart: unmark them and build them once.
        async with sessionmaker() as session, session.begin():
            await session.execute(delete(Notification).where(Notification.kind == "digest"))
        digest = ScanReport()
        began = time.perf_counter()
        await scanner._digests(now, await scanner._people(), digest)
        out["digest"] = time.perf_counter() - began
        out["digest_report"] = digest
    finally:
        await engine.dispose()
    return out


# --------------------------------------------------------------------------- main


def run_backend(backend: str, args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    url = pg_url() if backend == "postgres" else sqlite_url()
    print(f"\n== {backend} ({url})")
    began = time.perf_counter()
    if args.keep and asyncio.run(seeded(url, args.cases, args.due)):
        asyncio.run(reset(url))
        seed_s = None
        print(f"reused the seeded database (reset in {time.perf_counter() - began:.1f} s)")
    else:
        if backend == "postgres":
            asyncio.run(seed_postgres(args, data))
        else:
            seed_sqlite(args, data)
        asyncio.run(reset(url, undo=False))
        seed_s = time.perf_counter() - began
        print(f"seeded {args.cases:,} cases and deadlines in {seed_s:.1f} s (ANALYZE included)")

    plan = asyncio.run(query_plan(url, backend))
    uses_index = any(INDEX in line for line in plan)
    print("plan of the due-rows query:")
    for line in plan:
        print(f"  {line}")
    print(f"plan uses {INDEX}: {'yes' if uses_index else 'NO'}")

    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        result = pool.submit(measure, url, args.profile, args.batch).result()
    print(f"due before the scan: {result['due_before']:,}")
    print(f"timed scan:   {result['report']}  in {result['scan']:.2f} s")
    print(f"second scan:  {result['second_report']}  in {result['second'] * 1e3:.1f} ms")
    print(f"traced scan (tracemalloc on, same work): {result['traced']:.2f} s")
    print(f"digest build (excluded above): {result['digest_report']}  in {result['digest']:.2f} s")
    print(f"RSS before the scan {result['rss_before']:.0f} MB, after {result['rss']:.0f} MB")
    if result.get("profile"):
        print("cProfile of one scan (top 25, cumulative):")
        print(result["profile"])
    if args.drop:
        if backend == "postgres":
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
    report: ScanReport = result["report"]
    return {
        "backend": backend,
        "cases": args.cases,
        "due": args.due,
        "seed": seed_s,
        "scan": result["scan"],
        "second": result["second"],
        "peak": result["peak"],
        "rss": result["rss"],
        "index": uses_index,
        "counts": (report.deadlines, report.notifications, report.messages),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="ReminderScanner batch size")
    parser.add_argument("--keep", action="store_true", help="reuse a seeded database")
    parser.add_argument("--profile", action="store_true", help="cProfile one more scan")
    parser.add_argument("--drop", action="store_true", help="remove the databases at the end")
    args = parser.parse_args()
    if not 0 < args.due <= args.cases:
        parser.error("--due must be between 1 and --cases")
    started = time.perf_counter()
    SQLITE_FILE.parent.mkdir(parents=True, exist_ok=True)

    config = load_config()
    services = build_services(config)
    due_plan, later = plans(services, ReminderPolicy.from_config(config.reminders))
    data = {
        "config": config,
        "rows": {"corpus": templates(config), "due_plan": due_plan, "later": later},
    }
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    rows = [run_backend(backend, args, data) for backend in backends]

    print(f"\none scan at {NOW.isoformat()} (digest excluded), batch {args.batch}")
    header = (
        f"{'backend':<9} {'cases':>10} {'due':>7} {'seed s':>7} {'scan s':>7} "
        f"{'2nd scan s':>10} {'tracemalloc MB':>14} {'max RSS MB':>10} {'index':>5}  "
        "deadlines/notifications/messages"
    )
    print(header)
    for row in rows:
        seed = "reused" if row["seed"] is None else f"{row['seed']:.0f}"
        print(
            f"{row['backend']:<9} {row['cases']:>10,} {row['due']:>7,} {seed:>7} "
            f"{row['scan']:>7.2f} {row['second']:>10.3f} {row['peak']:>14.1f} "
            f"{row['rss']:>10.0f} {'yes' if row['index'] else 'no':>5}  "
            f"{'/'.join(f'{n:,}' for n in row['counts'])}"
        )
    print(f"whole run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
