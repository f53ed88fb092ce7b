"""Recomputing stored deadlines after holidays.yaml changes: the stored dates, one audit event
and one message per changed case, nothing for the others, and the same again changes nothing.
The CLI runs the same against a database from the environment."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import cli
from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade_database
from bot.db.models import OutboxMessage
from bot.db.records import CaseRecord
from bot.services import CaseService, Intake
from bot.services.recompute import ACTION, DeadlineChange, recompute_deadlines
from routing.calendar import WorkCalendar
from routing.config import DEFAULT_CONFIG_DIR, HolidaysFile, YearSchedule, load_file
from routing.deadlines import DeadlineRules
from tests.services.conftest import CHATS, DISCLOSURE, NOW, PETITION, People, sent_to

D = dt.date
T = TypeVar("T")
Sessionmaker = async_sessionmaker[AsyncSession]
# Monday 18 January 2027, 09:30 in Anshun: a year the project's holidays.yaml has no schedule
# for, so the deadlines filed then are provisional.
FILED_2027 = dt.datetime(2027, 1, 18, 1, 30, tzinfo=dt.UTC)
LATER = dt.datetime(2027, 1, 20, 2, 0, tzinfo=dt.UTC)

# Test data only, NOT the official 2027 schedule: 元旦 1–3 January, 春节 5–11 February, make-up
# working days on Sunday 31 January and Saturday 20 February.
SCHEDULE_2027 = {
    "holidays": [
        *({"date": f"2027-01-0{day}", "name": "元旦"} for day in (1, 2, 3)),
        *({"date": f"2027-02-{day:02}", "name": "春节"} for day in range(5, 12)),
    ],
    "workdays": [
        {"date": "2027-01-31", "name": "春节调休"},
        {"date": "2027-02-20", "name": "春节调休"},
    ],
}


def calendar_with_2027() -> WorkCalendar:
    holidays: HolidaysFile = load_file(DEFAULT_CONFIG_DIR / "holidays.yaml", HolidaysFile)
    schedule = YearSchedule.model_validate(SCHEDULE_2027)
    return WorkCalendar.from_holidays(holidays.model_copy(update={"years": {2027: schedule}}))


def service_with(
    service: CaseService,
    *,
    calendar: WorkCalendar | None = None,
    rules: DeadlineRules | None = None,
) -> CaseService:
    """The tests' service after an admin edited holidays.yaml or paths.yaml."""
    return CaseService(
        config=service.config,
        classifier=service.classifier,
        rules=rules if rules is not None else service.rules,
        calendar=calendar if calendar is not None else service.calendar,
        texts=service.texts,
    )


async def file(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    people: People,
    now: dt.datetime,
    intake: Intake,
) -> CaseRecord:
    async with sessionmaker() as session, session.begin():
        return await service.file_case(session, people.citizen, intake, now)


async def snapshot(
    sessionmaker: async_sessionmaker[AsyncSession], case: CaseRecord
) -> tuple[dict[str, tuple[dt.date, bool, str]], list[str], int]:
    """A case's open deadlines (due, provisional, calendar version), its event actions and
    the number of messages in the outbox."""
    async with sessionmaker() as session, session.begin():
        deadlines = {
            d.rule: (d.due, d.provisional, d.calendar_version)
            for d in await repo.deadlines_of_case(session, case.id)
        }
        actions = [e.action for e in await repo.events_of_case(session, case.id)]
        messages = await session.scalar(select(func.count()).select_from(OutboxMessage))
    return deadlines, actions, messages or 0


@pytest.fixture
async def two_cases(
    sessionmaker: async_sessionmaker[AsyncSession], service: CaseService, people: People
) -> tuple[CaseRecord, CaseRecord]:
    """A disclosure filed in January 2027 (provisional dates) and a petition of March 2026."""
    disclosure = await file(sessionmaker, service, people, FILED_2027, DISCLOSURE)
    petition = await file(sessionmaker, service, people, NOW, PETITION)
    return disclosure, petition


async def test_new_holiday_data_moves_dates_tells_the_unit_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    two_cases: tuple[CaseRecord, CaseRecord],
) -> None:
    disclosure, petition = two_cases
    old_version = service.calendar.data_version
    before, _, _ = await snapshot(sessionmaker, disclosure)
    assert before == {
        "disclosure.supplement_notice": (D(2027, 1, 27), True, old_version),
        "disclosure.reply": (D(2027, 2, 17), True, old_version),
    }
    petition_before, petition_actions, _ = await snapshot(sessionmaker, petition)
    async with sessionmaker() as session:
        xixiu_before = await sent_to(session, CHATS["xixiu"])
        office_before = await sent_to(session, CHATS["disclosure_office"])

    edited = service_with(service, calendar=calendar_with_2027())
    new_version = edited.calendar.data_version
    report = await recompute_deadlines(sessionmaker, edited, now=LATER)

    assert (report.checked, report.changed, report.unchanged, report.failed) == (3, 2, 1, 0)
    assert report.changes == [  # in the order of their last days
        DeadlineChange(
            disclosure.id,
            disclosure.number,
            "disclosure.supplement_notice",
            D(2027, 1, 27),
            D(2027, 1, 27),
            True,
            False,
        ),
        DeadlineChange(
            disclosure.id,
            disclosure.number,
            "disclosure.reply",
            D(2027, 2, 17),
            D(2027, 2, 19),
            True,
            False,
        ),
    ]
    after, actions, _ = await snapshot(sessionmaker, disclosure)
    assert after == {
        "disclosure.supplement_notice": (D(2027, 1, 27), False, new_version),
        "disclosure.reply": (D(2027, 2, 19), False, new_version),
    }
    assert actions.count(ACTION) == 1
    async with sessionmaker() as session:
        (event,) = [
            e for e in await repo.events_of_case(session, disclosure.id) if e.action == ACTION
        ]
        assert (event.actor_id, event.actor_role) == (None, "system")
        assert event.at == LATER
        assert "节假日" in (event.reason or "")
        assert event.data["deadlines"] == [
            {
                "rule": "disclosure.supplement_notice",
                "due_before": "2027-01-27",
                "due_after": "2027-01-27",
                "provisional_before": True,
                "provisional_after": False,
            },
            {
                "rule": "disclosure.reply",
                "due_before": "2027-02-17",
                "due_after": "2027-02-19",
                "provisional_before": True,
                "provisional_after": False,
            },
        ]
        office = (await sent_to(session, CHATS["disclosure_office"]))[len(office_before) :]
        (note,) = [m for m in office if m["_method"] == "sendMessage"]
        assert note["_key"] == f"case:{disclosure.id}:recomputed:{event.id}"
        assert note["_case_topic"] is True  # in the case's own topic
        assert "答复申请人：2027-02-17 → 2027-02-19" in note["text"]
        assert "一次性告知补正：2027-01-27 → 2027-01-27（已按正式节假日安排确定）" in note["text"]
        (card,) = [m for m in office if m["_method"] == "editMessageText"]
        assert "2027-02-19" in card["text"]
        assert "暂定" not in card["text"]
        # The petition's dates do not touch 2027: no event, no message, only the new version.
        assert await sent_to(session, CHATS["xixiu"]) == xixiu_before
    petition_after, actions, _ = await snapshot(sessionmaker, petition)
    assert actions == petition_actions
    assert {rule: value[:2] for rule, value in petition_after.items()} == {
        rule: value[:2] for rule, value in petition_before.items()
    }
    assert {value[2] for value in petition_after.values()} == {new_version}

    # Again: everything already matches the new data.
    _, disclosure_actions, messages = await snapshot(sessionmaker, disclosure)
    again = await recompute_deadlines(sessionmaker, edited, now=LATER + dt.timedelta(hours=1))
    assert (again.checked, again.changed, again.unchanged, again.failed) == (3, 0, 3, 0)
    assert await snapshot(sessionmaker, disclosure) == (after, disclosure_actions, messages)


async def test_dry_run_reports_and_writes_nothing(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    two_cases: tuple[CaseRecord, CaseRecord],
) -> None:
    disclosure, petition = two_cases
    before = [await snapshot(sessionmaker, case) for case in two_cases]
    edited = service_with(service, calendar=calendar_with_2027())
    report = await recompute_deadlines(sessionmaker, edited, now=LATER, dry_run=True)
    assert (report.checked, report.changed, report.unchanged, report.failed) == (3, 2, 1, 0)
    assert [(c.case_number, c.rule) for c in report.changes] == [
        (disclosure.number, "disclosure.supplement_notice"),
        (disclosure.number, "disclosure.reply"),
    ]
    assert [await snapshot(sessionmaker, case) for case in (disclosure, petition)] == before


async def test_a_case_that_fails_is_reported_and_the_others_go_on(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    two_cases: tuple[CaseRecord, CaseRecord],
) -> None:
    disclosure, petition = two_cases
    petition_before = await snapshot(sessionmaker, petition)
    rules = DeadlineRules({k: v for k, v in service.rules.items() if k != "petition.acknowledge"})
    edited = service_with(service, calendar=calendar_with_2027(), rules=rules)
    report = await recompute_deadlines(sessionmaker, edited, now=LATER)
    assert (report.checked, report.changed, report.unchanged, report.failed) == (3, 2, 0, 1)
    (failure,) = report.failures
    assert (failure.case_id, failure.case_number, failure.deadlines) == (
        petition.id,
        petition.number,
        1,
    )
    assert "petition.acknowledge" in failure.error
    assert (await snapshot(sessionmaker, petition))[:2] == petition_before[:2]
    after, _, _ = await snapshot(sessionmaker, disclosure)
    assert after["disclosure.reply"][:2] == (D(2027, 2, 19), False)


async def test_met_and_void_deadlines_are_left_alone(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: CaseService,
    two_cases: tuple[CaseRecord, CaseRecord],
) -> None:
    disclosure, _ = two_cases
    async with sessionmaker() as session, session.begin():
        await repo.mark_deadline(session, disclosure.id, "disclosure.reply", "met", FILED_2027)
    edited = service_with(service, calendar=calendar_with_2027())
    report = await recompute_deadlines(sessionmaker, edited, now=LATER)
    assert [c.rule for c in report.changes] == ["disclosure.supplement_notice"]
    after, _, _ = await snapshot(sessionmaker, disclosure)
    assert after["disclosure.reply"][:2] == (D(2027, 2, 17), True)


# --------------------------------------------------------------------------- the command


@pytest.fixture
def config_with_2027(tmp_path: Path) -> Path:
    """A copy of the config folder whose holidays.yaml has the (test) 2027 schedule."""
    folder = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, folder)
    holidays = yaml.safe_load((folder / "holidays.yaml").read_text(encoding="utf-8"))
    holidays["years"] = {2027: SCHEDULE_2027}
    (folder / "holidays.yaml").write_text(
        yaml.safe_dump(holidays, allow_unicode=True), encoding="utf-8"
    )
    return folder


def test_cli_dry_run_then_run(
    tmp_path: Path,
    service: CaseService,
    config_with_2027: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'huiyin.sqlite3'}"
    disclosure = asyncio.run(_on(url, lambda sm: _seed(sm, service)))
    monkeypatch.setenv("HUIYIN_DATABASE_URL", url)
    monkeypatch.delenv("HUIYIN_CONFIG_DIR", raising=False)

    # The project's config: the stored dates are what it gives.
    assert cli.main(["recompute-deadlines", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 open deadlines checked: 0 would change, 2 unchanged, 0 failed" in out

    # The edited config: a dry run shows the changes and writes nothing.
    argv = ["recompute-deadlines", "--dry-run", "--config", str(config_with_2027)]
    before = asyncio.run(_on(url, lambda sm: snapshot(sm, disclosure)))
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert disclosure.number in out
    assert "disclosure.reply" in out
    assert "2027-02-17 (provisional)  2027-02-19" in out
    assert "2 open deadlines checked: 2 would change, 0 unchanged, 0 failed (dry run" in out
    assert asyncio.run(_on(url, lambda sm: snapshot(sm, disclosure))) == before

    # For real: the dates move and the case gets its event.
    assert cli.main(["recompute-deadlines", "--config", str(config_with_2027)]) == 0
    assert "2 changed, 0 unchanged, 0 failed" in capsys.readouterr().out
    after, actions, _ = asyncio.run(_on(url, lambda sm: snapshot(sm, disclosure)))
    assert after["disclosure.reply"][:2] == (D(2027, 2, 19), False)
    assert actions.count(ACTION) == 1


async def _on(url: str, work: Callable[[Sessionmaker], Awaitable[T]]) -> T:
    """``work`` on the database at ``url``, in this event loop (the command runs its own)."""
    await upgrade_database(url)
    engine = make_engine(url)
    try:
        return await work(make_sessionmaker(engine))
    finally:
        await engine.dispose()


async def _seed(sessionmaker: Sessionmaker, service: CaseService) -> CaseRecord:
    async with sessionmaker() as session, session.begin():
        await repo.sync_units(session, service.config.units.units)
        await repo.set_unit_chat(session, "disclosure_office", CHATS["disclosure_office"], True)
        citizen = await repo.get_or_create_person(session, 101, "张三")
        return await service.file_case(session, citizen, DISCLOSURE, FILED_2027)
