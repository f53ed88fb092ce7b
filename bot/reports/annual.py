"""The table "收到和处理政府信息公开申请情况" of the annual report on government information
disclosure (2021 format, domain.md "Annual report …"), counted from the disclosure cases.

Where a case is counted
-----------------------
A disclosure case has at most one *conclusion*: a time and a row of 三、本年度办理结果.

* Answered (``answered_at`` set): concluded when answered, in the row of its Art 36 reply
  type (``"3.4"`` → (三)4). An answer without a valid reply type (data from before the type
  was required) goes to (六)3 其他 and is counted in ``unrecorded_reply_types``.
* Ended without an answer, at the event that ended it (fallback ``closed_at``, then
  ``updated_at``), in the row its recorded reply type names, or else by how it ended:
  - deemed withdrawn because the 补正 did not come in time (event ``supplement_lapsed``,
    条例 Art 30: 视为放弃申请) → (六)1 逾期不补正;
  - withdrawn by the applicant → (六)3 其他 (the format has no row of its own for 撤回);
  - diverted to another path → (五)1 信访举报投诉类申请: a petition, report or complaint
    made in the form of a disclosure request (条例 Art 39; routing.lifecycle says so too);
  - not accepted, or closed without an answer → (六)3 其他.
* Anything else is open.

With the conclusion taken no earlier than the receipt (a bad timestamp cannot move a case
out of the table), the four rows are

    一 received in the year          二 received before it, not concluded before it
    三(七) concluded in the year     四 received before its end, not concluded by then

so every case of 一 or 二 is in exactly one of 三(七) or 四: 一 + 二 = 三(七) + 四 holds by
construction, in every column. Years run by the bureau's clock (Asia/Shanghai): an item
sent at 00:30 on 1 January is the new year's, though it is still 31 December in UTC.

Columns are the requester kinds stored at filing (bot.services.intake.REQUESTER_KINDS); a
missing or unknown kind is counted under 其他 (法人或其他组织) and in
``unknown_requester_kinds``, so the dashboard can say so rather than hide it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, exists, func, literal, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Case, CaseEvent
from bot.services.intake import REQUESTER_KINDS
from bot.services.reply_types import REPLY_GROUPS, REPLY_TYPES
from routing.config import PathCode
from routing.lifecycle import SETTLED_STATES, Action, State

BUREAU_TZ = ZoneInfo("Asia/Shanghai")

# ------------------------------------------------------------------ columns

ORGANISATIONS = "法人或其他组织"
TOTAL = "total"


@dataclass(frozen=True)
class Column:
    """A column of the table: a requester kind (or the total), under an optional group
    header (法人或其他组织 spans the five organisation kinds)."""

    code: str
    label: str
    group: str | None = None


_KIND_LABELS = {
    "natural_person": ("自然人", None),
    "business": ("商业企业", ORGANISATIONS),
    "research": ("科研机构", ORGANISATIONS),
    "public_interest": ("社会公益组织", ORGANISATIONS),
    "legal_service": ("法律服务机构", ORGANISATIONS),
    "other": ("其他", ORGANISATIONS),
}
# A requester kind added at intake without a column here fails at import, not in January.
COLUMNS: tuple[Column, ...] = (
    *(Column(kind, *_KIND_LABELS[kind]) for kind in REQUESTER_KINDS),
    Column(TOTAL, "总计"),
)
KIND_COLUMNS: tuple[str, ...] = tuple(c.code for c in COLUMNS if c.code != TOTAL)
UNKNOWN_KIND_COLUMN = "other"

# ------------------------------------------------------------------ rows


@dataclass(frozen=True)
class RowSpec:
    """A row of the table. ``level`` is its indentation (0 一…四, 1 (一)…(七), 2 the numbered
    items); a ``heading`` has no numbers of its own in the national format (the report
    still gives it the subtotal of the rows under it)."""

    code: str
    label: str
    level: int
    heading: bool = False


NEW = "1"
CARRIED_IN = "2"
RESULTS = "3"
RESULTS_TOTAL = "3.7"
CARRIED_OUT = "4"

_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("1", "(一)予以公开", ()),
    ("2", "(二)部分公开", ()),
    (
        "3",
        "(三)不予公开",
        (
            "国家秘密",
            "其他法律行政法规禁止公开",
            '危及"三安全一稳定"',
            "保护第三方合法权益",
            "三类内部事务信息",
            "四类过程性信息",
            "行政执法案卷",
            "行政查询事项",
        ),
    ),
    ("4", "(四)无法提供", ("本机关不掌握", "没有现成信息需要另行制作", "补正后申请内容仍不明确")),
    (
        "5",
        "(五)不予处理",
        (
            "信访举报投诉类申请",
            "重复申请",
            "要求提供公开出版物",
            "无正当理由大量反复申请",
            "要求行政机关确认或重新出具已获取信息",
        ),
    ),
    ("6", "(六)其他处理", ("逾期不补正", "逾期未缴费", "其他")),
)


def result_row(reply_type: str) -> str:
    """The row of 三、本年度办理结果 for an Art 36 reply type: ``"3.4"`` → ``"3.3.4"``
    ((三)4 保护第三方合法权益), ``"1"`` → ``"3.1"`` ((一)予以公开)."""
    return f"{RESULTS}.{reply_type}"


def _row_specs() -> tuple[RowSpec, ...]:
    rows = [
        RowSpec(NEW, "一、本年新收申请数量", 0),
        RowSpec(CARRIED_IN, "二、上年结转申请数量", 0),
        RowSpec(RESULTS, "三、本年度办理结果", 0, heading=True),
    ]
    for group, label, items in _GROUPS:
        rows.append(RowSpec(result_row(group), label, 1, heading=bool(items)))
        rows.extend(
            RowSpec(result_row(f"{group}.{n}"), f"{n}.{item}", 2)
            for n, item in enumerate(items, start=1)
        )
    rows.append(RowSpec(RESULTS_TOTAL, "(七)总计", 1))
    rows.append(RowSpec(CARRIED_OUT, "四、结转下年度继续办理", 0))
    return tuple(rows)


ROWS: tuple[RowSpec, ...] = _row_specs()

# Every reply type the staff can choose has a row with numbers, and nothing else does.
assert {result_row(code) for code in REPLY_TYPES} == {
    r.code for r in ROWS if r.code.startswith(f"{RESULTS}.") and not r.heading
} - {RESULTS_TOTAL}, "reply types and report rows disagree"
assert set(REPLY_GROUPS) == {group for group, _, _ in _GROUPS}

# ------------------------------------------------------------------ how cases end

ANSWERED = "answered"
SUPPLEMENT_LAPSED = Action.SUPPLEMENT_LAPSED.value
# States a case ends in without an answer (answered ones end at ``answered_at``).
ENDED_STATES: tuple[str, ...] = tuple(sorted(s.value for s in SETTLED_STATES))

DEFAULT_OUTCOME: Mapping[str, str] = MappingProxyType(
    {
        ANSWERED: "6.3",  # an answer without a valid reply type: 其他
        SUPPLEMENT_LAPSED: "6.1",  # 逾期不补正 (条例 Art 30)
        State.WITHDRAWN.value: "6.3",  # 撤回申请: 其他
        State.DIVERTED.value: "5.1",  # 信访举报投诉类申请 (条例 Art 39)
        State.NOT_ACCEPTED.value: "6.3",
        State.CLOSED.value: "6.3",  # closed without an answer (not a path disclosure takes)
    }
)
"""How a concluded case without a valid recorded reply type is counted, by how it ended."""


def outcome_of(ending: str, reply_type: str | None) -> str:
    """The reply type (row of 三) a concluded case is counted in: the one recorded on the case
    when valid, else the default for how it ended (``DEFAULT_OUTCOME``)."""
    if reply_type in REPLY_TYPES:
        assert reply_type is not None
        return reply_type
    return DEFAULT_OUTCOME[ending]


# ------------------------------------------------------------------ the report


@dataclass(frozen=True)
class ReportRow:
    code: str
    label: str
    level: int
    heading: bool
    counts: Mapping[str, int]  # column code → count; every column, TOTAL included

    def __getitem__(self, column: str) -> int:
        return self.counts[column]


@dataclass(frozen=True)
class Balance:
    """One column of the check 一 + 二 = 三(七) + 四."""

    received: int  # 一 + 二
    handled: int  # 三(七) + 四
    balanced: bool


@dataclass(frozen=True)
class AnnualReport:
    year: int
    period_start: dt.datetime  # local midnight, 1 January (inclusive)
    period_end: dt.datetime  # local midnight, 1 January of the next year (exclusive)
    rows: tuple[ReportRow, ...]
    # Cases of this report (一 or 二) counted under 其他 for want of a known requester kind.
    unknown_requester_kinds: int = 0
    # Answers concluded this year without a valid reply type, counted under (六)3 其他.
    unrecorded_reply_types: int = 0

    @property
    def columns(self) -> tuple[Column, ...]:
        return COLUMNS

    def row(self, code: str) -> ReportRow:
        for row in self.rows:
            if row.code == code:
                return row
        raise KeyError(code)

    def check(self) -> dict[str, Balance]:
        """Per column: 一 + 二, 三(七) + 四, and whether they are equal."""
        result = {}
        for column in COLUMNS:
            received = self.row(NEW)[column.code] + self.row(CARRIED_IN)[column.code]
            handled = self.row(RESULTS_TOTAL)[column.code] + self.row(CARRIED_OUT)[column.code]
            result[column.code] = Balance(received, handled, received == handled)
        return result

    @property
    def balanced(self) -> bool:
        return all(b.balanced for b in self.check().values())

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the dashboard (JSON)."""
        return {
            "year": self.year,
            "period": [self.period_start.isoformat(), self.period_end.isoformat()],
            "columns": [{"code": c.code, "label": c.label, "group": c.group} for c in COLUMNS],
            "rows": [
                {
                    "code": r.code,
                    "label": r.label,
                    "level": r.level,
                    "heading": r.heading,
                    "counts": dict(r.counts),
                }
                for r in self.rows
            ],
            "check": {
                code: {"received": b.received, "handled": b.handled, "balanced": b.balanced}
                for code, b in self.check().items()
            },
            "unknown_requester_kinds": self.unknown_requester_kinds,
            "unrecorded_reply_types": self.unrecorded_reply_types,
        }


def year_bounds(year: int, tz: dt.tzinfo = BUREAU_TZ) -> tuple[dt.datetime, dt.datetime]:
    """Local midnight of 1 January of ``year`` and of the next year."""
    return dt.datetime(year, 1, 1, tzinfo=tz), dt.datetime(year + 1, 1, 1, tzinfo=tz)


def _count_query(start: dt.datetime, end: dt.datetime) -> Select[Any]:
    """One row per (requester kind, reply type, way of ending) with the number of cases in
    一, 二, 三 and 四. ``start`` and ``end`` are UTC: SQLite stores the UTC digits and
    compares them as text."""
    # The event that put a case into the state it ended in (a terminal state is entered
    # once; min() keeps one row per case whatever the log holds).
    ended_at = (
        select(func.min(CaseEvent.at))
        .where(CaseEvent.case_id == Case.id, CaseEvent.to_state == Case.state)
        .scalar_subquery()
    )
    lapsed = exists().where(
        CaseEvent.case_id == Case.id,
        CaseEvent.action == SUPPLEMENT_LAPSED,
        CaseEvent.to_state == State.WITHDRAWN.value,
    )
    answered = Case.answered_at.is_not(None)
    ended = Case.state.in_(ENDED_STATES)
    per_case = (
        select(
            Case.requester_kind.label("kind"),
            Case.reply_type.label("reply_type"),
            case(
                (answered, literal(ANSWERED)),
                (and_(Case.state == State.WITHDRAWN.value, lapsed), literal(SUPPLEMENT_LAPSED)),
                (ended, Case.state),
                else_=null(),
            ).label("ending"),
            Case.received_at.label("received"),
            case(
                (answered, Case.answered_at),
                (ended, func.coalesce(ended_at, Case.closed_at, Case.updated_at)),
                else_=null(),
            ).label("concluded"),
        )
        .where(Case.path == PathCode.DISCLOSURE.value, Case.received_at < end)
        .subquery("per_case")
    )
    p = per_case.c
    dated = select(
        p.kind,
        p.reply_type,
        p.ending,
        p.received,
        # Never concluded before received: keeps the identity whatever the timestamps say.
        case((p.concluded < p.received, p.received), else_=p.concluded).label("concluded"),
    ).subquery("dated")
    d = dated.c

    def number(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    def still_open_at(moment: dt.datetime) -> Any:
        return or_(d.concluded.is_(None), d.concluded >= moment)

    return (
        select(
            d.kind,
            d.reply_type,
            d.ending,
            number(d.received >= start).label("new"),
            number(d.received < start).label("carried_in"),
            number(d.concluded < end).label("concluded"),
            number(still_open_at(end)).label("carried_out"),
        )
        # Received before the end (above) and open at the start: the cases of 一 and 二.
        .where(still_open_at(start))
        .group_by(d.kind, d.reply_type, d.ending)
    )


async def annual_report(
    session: AsyncSession, year: int, *, tz: dt.tzinfo = BUREAU_TZ
) -> AnnualReport:
    """The table "收到和处理政府信息公开申请情况" of ``year`` (2021 format): counted in the
    database (one GROUP BY query), the year bounded by local midnights in ``tz``."""
    period_start, period_end = year_bounds(year, tz)
    query = _count_query(period_start.astimezone(dt.UTC), period_end.astimezone(dt.UTC))
    counts = {spec.code: dict.fromkeys(KIND_COLUMNS, 0) for spec in ROWS if not spec.heading}
    unknown_kinds = unrecorded = 0
    for kind, reply_type, ending, new, carried_in, concluded, carried_out in (
        await session.execute(query)
    ).all():
        new, carried_in, concluded, carried_out = (
            int(n or 0) for n in (new, carried_in, concluded, carried_out)
        )
        column = kind if kind in KIND_COLUMNS else UNKNOWN_KIND_COLUMN
        if kind not in KIND_COLUMNS:
            unknown_kinds += new + carried_in
        counts[NEW][column] += new
        counts[CARRIED_IN][column] += carried_in
        counts[CARRIED_OUT][column] += carried_out
        if concluded:
            counts[result_row(outcome_of(ending, reply_type))][column] += concluded
            counts[RESULTS_TOTAL][column] += concluded
            if ending == ANSWERED and reply_type not in REPLY_TYPES:
                unrecorded += concluded
    return AnnualReport(
        year=year,
        period_start=period_start,
        period_end=period_end,
        rows=_with_totals(counts),
        unknown_requester_kinds=unknown_kinds,
        unrecorded_reply_types=unrecorded,
    )


def _with_totals(counts: Mapping[str, Mapping[str, int]]) -> tuple[ReportRow, ...]:
    """The rows in table order with the 总计 column, and the subtotals of the headings."""

    def under(heading: str) -> list[Mapping[str, int]]:
        if heading == RESULTS:
            return [counts[RESULTS_TOTAL]]
        return [c for code, c in counts.items() if code.startswith(f"{heading}.")]

    rows = []
    for spec in ROWS:
        parts = under(spec.code) if spec.heading else [counts[spec.code]]
        by_kind = {kind: sum(part[kind] for part in parts) for kind in KIND_COLUMNS}
        row_counts = {**by_kind, TOTAL: sum(by_kind.values())}
        rows.append(
            ReportRow(
                spec.code, spec.label, spec.level, spec.heading, MappingProxyType(row_counts)
            )
        )
    return tuple(rows)
