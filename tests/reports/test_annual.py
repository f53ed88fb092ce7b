"""The annual disclosure table (2021 format), on SQLite and PostgreSQL.

A year of disclosure cases is filed and handled through the real CaseService (file,
accept, request a 补正, answer with a reply type, withdraw). Two lifecycle steps have no
service operation yet — a 补正 that lapses (条例 Art 30) and a diversion to another path
— so they go through the service's own transition (lifecycle check + audit event), as
the operation will. The report is compared with a ledger kept while seeding and with
counts made here in plain SQL, written from the events rather than the states.
A second test inserts messy cases directly through the repository (bad timestamps,
unknown kinds, missing reply types, no end event) and checks the identity still holds.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, replace
from io import BytesIO
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import DateTime, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.records import CaseRecord
from bot.reports import COLUMNS, ROWS, annual_report, annual_report_xlsx, rows_xlsx
from bot.reports.annual import KIND_COLUMNS, TOTAL, AnnualReport, result_row
from bot.services import CaseService, Intake
from bot.services.reply_types import REPLY_TYPES
from routing.lifecycle import Action
from tests.services import conftest as services
from tests.services.conftest import DISCLOSURE, PETITION, People

# The services' fixtures (a migrated database on each backend, the people, the service),
# taken into this module so its tests can ask for them by name.
config, texts, service = services.config, services.texts, services.service
engine, sessionmaker, people = services.engine, services.sessionmaker, services.people

SHANGHAI = ZoneInfo("Asia/Shanghai")
YEAR = 2026


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def request_by(kind: str) -> Intake:
    """A disclosure request by ``kind`` as intake collects it: an ID for a person, a
    credit code for an organisation."""
    answers = dict(DISCLOSURE.answers, requester_kind=kind)
    if kind != "natural_person":
        del answers["id_number"]
        answers.update(name="安顺某单位", credit_code="91520400MA6DXXXX0X")
    return replace(DISCLOSURE, answers=answers)


@dataclass
class Expected:
    """One seeded case as the report must see it (times in local time)."""

    kind: str
    received: dt.datetime
    concluded: dt.datetime | None = None
    outcome: str | None = None  # reply type code of its row of 三


class Year:
    """Seeds cases through the service and keeps the ledger."""

    def __init__(self, service: CaseService, session: AsyncSession, people: People) -> None:
        self.service, self.session, self.people = service, session, people
        self.ledger: list[Expected] = []

    async def file(self, kind: str, at: dt.datetime) -> tuple[CaseRecord, Expected]:
        case = await self.service.file_case(
            self.session, self.people.citizen, request_by(kind), at
        )
        entry = Expected(kind, at)
        self.ledger.append(entry)
        return case, entry

    async def answered(
        self, kind: str, filed: dt.datetime, answered: dt.datetime, reply_type: str
    ) -> None:
        case, entry = await self.file(kind, filed)
        staff = self.people.disclosure_staff
        await self.service.accept(self.session, staff, case.id, filed)
        await self.service.answer(self.session, staff, case.id, "答复如下", answered, reply_type)
        entry.concluded, entry.outcome = answered, reply_type

    async def open(self, kind: str, filed: dt.datetime, *, supplement: bool = False) -> None:
        case, _ = await self.file(kind, filed)
        staff = self.people.disclosure_staff
        await self.service.accept(self.session, staff, case.id, filed)
        if supplement:
            await self.service.request_supplement(
                self.session, staff, case.id, "请写明文号", filed
            )

    async def withdrawn(self, kind: str, filed: dt.datetime, at: dt.datetime) -> None:
        case, entry = await self.file(kind, filed)
        await self.service.withdraw(self.session, self.people.citizen, case.id, at)
        entry.concluded, entry.outcome = at, "6.3"

    async def lapsed(self, kind: str, filed: dt.datetime, at: dt.datetime) -> None:
        case, entry = await self.file(kind, filed)
        staff = self.people.disclosure_staff
        await self.service.accept(self.session, staff, case.id, filed)
        case = await self.service.request_supplement(
            self.session, staff, case.id, "请写明所需信息的名称", filed
        )
        await self.service._transition(self.session, None, case, Action.SUPPLEMENT_LAPSED, at)
        entry.concluded, entry.outcome = at, "6.1"

    async def diverted(self, kind: str, filed: dt.datetime, at: dt.datetime) -> None:
        case, entry = await self.file(kind, filed)
        staff = self.people.disclosure_staff
        case = await self.service.accept(self.session, staff, case.id, filed)
        await self.service._transition(self.session, staff, case, Action.DIVERT, at)
        entry.concluded, entry.outcome = at, "5.1"


def ledger_table(ledger: list[Expected], year: int) -> dict[str, dict[str, int]]:
    """The table by hand: row code → column → count (every non-heading row)."""
    start, end = local(year, 1, 1, 0), local(year + 1, 1, 1, 0)
    table = {r.code: dict.fromkeys([*KIND_COLUMNS, TOTAL], 0) for r in ROWS if not r.heading}

    def add(row: str, kind: str) -> None:
        table[row][kind] += 1
        table[row][TOTAL] += 1

    for e in ledger:
        if e.received >= end or (e.concluded is not None and e.concluded < start):
            continue
        add("1" if e.received >= start else "2", e.kind)
        if e.concluded is not None and e.concluded < end:
            assert e.outcome is not None
            add(result_row(e.outcome), e.kind)
            add("3.7", e.kind)
        else:
            add("4", e.kind)
    return table


def numbers(report: AnnualReport) -> dict[str, dict[str, int]]:
    return {r.code: dict(r.counts) for r in report.rows if not r.heading}


# ------------------------------------------------------------------ counted here in SQL

# How each item ended, from the audit log's actions rather than the case's state.
ENDS = """
WITH ends AS (
    SELECT c.id AS id, c.answered_at AS at, c.reply_type AS code
    FROM cases c
    WHERE c.path = 'disclosure' AND c.answered_at IS NOT NULL
  UNION ALL
    SELECT c.id, e.at,
           CASE e.action WHEN 'supplement_lapsed' THEN '6.1'
                         WHEN 'divert' THEN '5.1'
                         ELSE '6.3' END
    FROM cases c JOIN case_events e ON e.case_id = c.id
    WHERE c.path = 'disclosure' AND c.answered_at IS NULL
      AND e.action IN ('withdraw', 'supplement_lapsed', 'divert', 'not_accept')
),
items AS (
    SELECT c.requester_kind AS kind, c.received_at AS received, ends.at AS ended, ends.code
    FROM cases c LEFT JOIN ends ON ends.id = c.id
    WHERE c.path = 'disclosure'
)
"""

SQL_ROWS = {
    "1": "SELECT kind, COUNT(*) FROM items WHERE received >= :s AND received < :e GROUP BY kind",
    "2": "SELECT kind, COUNT(*) FROM items WHERE received < :s"
    " AND (ended IS NULL OR ended >= :s) GROUP BY kind",
    "4": "SELECT kind, COUNT(*) FROM items WHERE received < :e"
    " AND (ended IS NULL OR ended >= :e) GROUP BY kind",
    "3.7": "SELECT kind, COUNT(*) FROM items WHERE ended >= :s AND ended < :e GROUP BY kind",
}
SQL_RESULTS = (
    "SELECT kind, code, COUNT(*) FROM items WHERE ended >= :s AND ended < :e GROUP BY kind, code"
)


async def sql_table(session: AsyncSession, year: int) -> dict[str, dict[str, int]]:
    bounds = {
        "s": local(year, 1, 1, 0).astimezone(dt.UTC),
        "e": local(year + 1, 1, 1, 0).astimezone(dt.UTC),
    }

    def query(sql: str) -> TextClause:
        names = [name for name in bounds if f":{name}" in sql]
        return text(ENDS + sql).bindparams(
            *(bindparam(name, bounds[name], type_=DateTime(timezone=True)) for name in names)
        )

    table = {r.code: dict.fromkeys([*KIND_COLUMNS, TOTAL], 0) for r in ROWS if not r.heading}
    for row, sql in SQL_ROWS.items():
        for kind, count in (await session.execute(query(sql))).all():
            table[row][kind] += count
            table[row][TOTAL] += count
    for kind, code, count in (await session.execute(query(SQL_RESULTS))).all():
        table[result_row(code)][kind] += count
        table[result_row(code)][TOTAL] += count
    return table


# ------------------------------------------------------------------ the year, via services


async def seed_year(year: Year) -> None:
    kinds = list(KIND_COLUMNS)
    # Filed in 2025 and done with in 2025: in no row of 2026.
    await year.answered("natural_person", local(2025, 6, 10), local(2025, 7, 1), "1")
    await year.withdrawn("other", local(2025, 10, 1), local(2025, 10, 5))
    # Carried over from 2025 (二), each ending differently in 2026 — or not at all.
    await year.answered("business", local(2025, 11, 20), local(2026, 1, 5), "2")
    await year.open("research", local(2025, 12, 20))
    # 23:59 on 31 December in Anshun is still 2025 (15:59 UTC).
    await year.answered("natural_person", local(2025, 12, 31, 23, 59), local(2026, 2, 3), "3.4")
    await year.withdrawn("legal_service", local(2025, 12, 1), local(2026, 1, 10))
    await year.lapsed("public_interest", local(2025, 12, 15), local(2026, 1, 20))
    # New in 2026 (一): 00:30 on 1 January in Anshun is 2026 (16:30 UTC on 31 December).
    await year.answered("natural_person", local(2026, 1, 1, 0, 30), local(2026, 1, 20), "1")
    # Every reply type at least once, the requester kinds in turn.
    for n, code in enumerate(sorted(REPLY_TYPES)):
        filed = local(2026, 1 + n % 11, 3 + n)
        await year.answered(kinds[n % len(kinds)], filed, filed + dt.timedelta(days=15), code)
    await year.answered("business", local(2026, 3, 2), local(2026, 3, 20), "1")
    await year.withdrawn("other", local(2026, 4, 1), local(2026, 4, 3))
    await year.lapsed("other", local(2026, 5, 6), local(2026, 6, 20))
    await year.diverted("natural_person", local(2026, 7, 1), local(2026, 7, 2))
    # Answered at 23:00 on 31 December: this year; at 01:00 on 1 January: next year (四).
    await year.answered("legal_service", local(2026, 12, 20), local(2026, 12, 31, 23), "4.1")
    await year.answered("research", local(2026, 12, 20), local(2027, 1, 1, 1), "5.2")
    await year.open("business", local(2026, 12, 1))
    await year.open("natural_person", local(2026, 12, 10), supplement=True)
    # Filed at 00:30 on 1 January 2027 (2026 in UTC): next year's.
    await year.answered("business", local(2027, 1, 1, 0, 30), local(2027, 1, 8), "1")
    # Not a disclosure request: never in this table.
    other_path = await year.service.file_case(
        year.session, year.people.citizen, PETITION, local(2026, 3, 1)
    )
    assert other_path.path == "petition"


async def test_report_of_a_year_filed_through_the_services(
    service: CaseService,
    sessionmaker: async_sessionmaker[AsyncSession],
    people: People,
) -> None:
    async with sessionmaker() as session:
        year = Year(service, session, people)
        await seed_year(year)
        await session.commit()

    async with sessionmaker() as session:
        report = await annual_report(session, YEAR)
        by_sql = await sql_table(session, YEAR)
        previous = await annual_report(session, YEAR - 1)
        following = await annual_report(session, YEAR + 1)

    # Every row and column, in the order of the format.
    assert [r.code for r in report.rows] == [r.code for r in ROWS]
    assert [r.label for r in report.rows] == [r.label for r in ROWS]
    for row in report.rows:
        assert set(row.counts) == {c.code for c in COLUMNS}
        assert row[TOTAL] == sum(row[k] for k in KIND_COLUMNS)

    # The same numbers three ways: the report, the ledger, plain SQL over the audit log.
    assert numbers(report) == ledger_table(year.ledger, YEAR)
    assert numbers(report) == by_sql
    assert numbers(previous) == ledger_table(year.ledger, YEAR - 1)
    assert numbers(following) == ledger_table(year.ledger, YEAR + 1)

    # A few cells read off the scenario directly.
    assert report.row("1")[TOTAL] == 1 + len(REPLY_TYPES) + 8
    assert report.row("2")[TOTAL] == 5
    assert report.row("2")["research"] == 1 and report.row("4")["research"] >= 1
    # 逾期不补正: lapsed in January and June, and the one answered with reply type 6.1.
    assert report.row("3.6.1")[TOTAL] == 3
    assert report.row("3.6.3")[TOTAL] == 3  # withdrawn in January and April, and reply 6.3
    assert report.row("3.5.1")["natural_person"] >= 1  # the diverted one
    assert report.row("4")[TOTAL] == 4  # research from 2025, late answer, two still open
    assert report.row("3.3")[TOTAL] == sum(report.row(f"3.3.{n}")[TOTAL] for n in range(1, 9))
    assert report.row("3")[TOTAL] == report.row("3.7")[TOTAL]
    assert (report.unknown_requester_kinds, report.unrecorded_reply_types) == (0, 0)

    # 一 + 二 = 三(七) + 四 in every column, and what one year carries out the next carries in.
    check = report.check()
    assert set(check) == {c.code for c in COLUMNS}
    assert all(b.balanced and b.received == b.handled for b in check.values())
    assert check[TOTAL].received == report.row("1")[TOTAL] + report.row("2")[TOTAL]
    assert previous.row("4").counts == report.row("2").counts
    assert report.row("4").counts == following.row("2").counts
    assert report.to_dict()["check"][TOTAL]["balanced"] is True

    # The XLSX reads back to the same numbers, laid out as the national format.
    assert xlsx_numbers(annual_report_xlsx(report)) == numbers(report)


def xlsx_numbers(data: bytes) -> dict[str, dict[str, int]]:
    sheet = load_workbook(BytesIO(data)).active
    assert sheet is not None
    assert str(sheet["A1"].value).startswith(str(YEAR))
    assert {str(m) for m in sheet.merged_cells.ranges} >= {
        "A1:H1",
        "A2:A4",
        "B2:H2",
        "B3:B4",
        "C3:G3",
        "H3:H4",
    }
    assert (sheet["B2"].value, sheet["B3"].value, sheet["C3"].value, sheet["H3"].value) == (
        "申请人情况",
        "自然人",
        "法人或其他组织",
        "总计",
    )
    assert [sheet.cell(4, c).value for c in range(3, 8)] == [
        "商业企业",
        "科研机构",
        "社会公益组织",
        "法律服务机构",
        "其他",
    ]
    assert sheet["A5"].font.name == "宋体"
    found: dict[str, dict[str, int]] = {}
    for offset, spec in enumerate(ROWS):
        r = 5 + offset
        assert sheet.cell(r, 1).value == spec.label
        assert sheet.cell(r, 1).alignment.indent == spec.level * 2
        values = [sheet.cell(r, c).value for c in range(2, 2 + len(COLUMNS))]
        if spec.heading:
            assert values == [None] * len(COLUMNS)
            continue
        found[spec.code] = {c.code: v for c, v in zip(COLUMNS, values, strict=True)}
    assert "各列平衡" in str(sheet.cell(5 + len(ROWS) + 1, 1).value)
    return found


# ------------------------------------------------------------------ messy data, directly


async def test_identity_holds_on_messy_data(
    sessionmaker: async_sessionmaker[AsyncSession], people: People
) -> None:
    """Cases written straight through the repository (fast, and able to hold what the
    services would refuse): conclusions before receipts, unknown and missing requester
    kinds, answers without a valid reply type, endings without an event."""
    rng = random.Random(2026)
    kinds = [*KIND_COLUMNS, None, "alien"]
    endings = ["open", "answered", "bad_reply", "withdrawn", "silent", "lapsed", "diverted"]
    tally: Counter[str] = Counter()
    async with sessionmaker() as session:
        for _ in range(160):
            received = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                hours=rng.randrange(3 * 365 * 24)
            )
            ended = received + dt.timedelta(hours=rng.randrange(-24 * 20, 24 * 200))
            kind = rng.choice(kinds)
            ending = rng.choice(endings)
            case = await repo.create_case(
                session,
                citizen_id=people.citizen.id,
                path="disclosure",
                topic="social_assistance",
                unit_id="disclosure_office",
                state="in_progress",
                text="申请公开",
                received_at=received,
                requester_kind=kind,
            )
            if ending in ("answered", "bad_reply"):
                code = rng.choice(sorted(REPLY_TYPES)) if ending == "answered" else "3"
                await repo.update_case(
                    session,
                    case.id,
                    case.version,
                    state="answered",
                    reply_type=code if ending == "answered" else rng.choice([code, None]),
                    answered_at=ended,
                )
            elif ending != "open":
                state = "diverted" if ending == "diverted" else "withdrawn"
                await repo.update_case(session, case.id, case.version, state=state)
                if ending != "silent":
                    action = {"lapsed": "supplement_lapsed", "diverted": "divert"}.get(
                        ending, "withdraw"
                    )
                    await repo.add_event(
                        session,
                        case.id,
                        actor_id=None,
                        actor_role="system",
                        action=action,
                        from_state="in_progress",
                        to_state=state,
                        at=ended,
                    )
            tally[ending] += 1
        # Another path in the same table is never counted.
        await repo.create_case(
            session,
            citizen_id=people.citizen.id,
            path="petition",
            topic="social_assistance",
            unit_id="general_desk",
            state="routed",
            text="投诉",
            received_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        )
        await session.commit()

    async with sessionmaker() as session:
        reports = [await annual_report(session, y) for y in (2024, 2025, 2026, 2027, 2028)]
    assert tally["silent"] and tally["bad_reply"] and tally["lapsed"]
    for report in reports:
        assert report.balanced, report.check()
        for row in report.rows:
            assert row[TOTAL] == sum(row[k] for k in KIND_COLUMNS)
    for before, after in pairwise(reports):
        assert before.row("4").counts == after.row("2").counts
    # Everything received in 2025–2027 is new in exactly one report; 2024 has nothing.
    assert reports[0].row("1")[TOTAL] == reports[0].row("2")[TOTAL] == 0
    assert sum(r.row("1")[TOTAL] for r in reports) == 160
    assert sum(r.unknown_requester_kinds for r in reports) > 0
    # Every answer lies within 2025–2028, so each bad reply type is flagged exactly once.
    assert sum(r.unrecorded_reply_types for r in reports) == tally["bad_reply"]
    # Cases without a known kind are in 其他, never lost: every 一 adds up.
    assert sum(r.row("3.7")[TOTAL] for r in reports) + reports[-1].row("4")[TOTAL] == 160


async def test_an_empty_year_is_all_zeros_and_balances(
    sessionmaker: async_sessionmaker[AsyncSession], people: People
) -> None:
    async with sessionmaker() as session:
        report = await annual_report(session, YEAR)
    assert [r.code for r in report.rows] == [r.code for r in ROWS]
    assert all(v == 0 for r in report.rows for v in r.counts.values())
    assert report.balanced
    assert report.period_start == local(YEAR, 1, 1, 0)
    assert xlsx_numbers(annual_report_xlsx(report)) == numbers(report)


# ------------------------------------------------------------------ list export


def test_rows_xlsx_keeps_values_and_text() -> None:
    answered = dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC)  # 01:00 on 1 Jan in Anshun
    data = rows_xlsx(
        ["编号", "申请人", "答复时间", "件数"],
        [
            ("HY2026-0001", '=HYPERLINK("http://x")', answered, 3),
            ("HY2026-0002", "张三\x07", None, 0),
        ],
        "2026年政府信息公开申请: 清单",
    )
    sheet = load_workbook(BytesIO(data)).active
    assert sheet is not None
    assert sheet.title == "2026年政府信息公开申请  清单"
    assert sheet["A1"].value == "2026年政府信息公开申请: 清单"
    assert [c.value for c in sheet[2]] == ["编号", "申请人", "答复时间", "件数"]
    assert sheet["B3"].value == '=HYPERLINK("http://x")' and sheet["B3"].data_type == "s"
    assert sheet["C3"].value == dt.datetime(2027, 1, 1, 1, 0)
    assert sheet["D3"].value == 3
    assert sheet["B4"].value == "张三"
    assert sheet["C4"].value is None
    assert sheet.auto_filter.ref == "A2:D4"
    assert sheet.column_dimensions["B"].width >= 8


@pytest.mark.parametrize("headers", [[], ["only"]])
def test_rows_xlsx_with_few_columns(headers: list[str]) -> None:
    sheet = load_workbook(BytesIO(rows_xlsx(headers, [], "空"))).active
    assert sheet is not None
    assert sheet["A1"].value == "空"
