"""The dashboard's pages and exports (aiohttp + Jinja2), mounted under ``/dashboard``.

Who sees what: supervisors, heads and admins see every unit; staff see their own unit only,
enforced here in every query (the list, the exports, the overview) and on the case page
(another unit's case is a 404, as if it did not exist); anyone else gets 403. The person is
read from the database on every request, so a changed role takes effect at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy import case as sql_case
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.models import Case, DeadlineRow
from bot.db.records import CaseRecord, DeadlineStatus, PersonRecord
from bot.db.repo_base import from_db
from bot.reports.annual import AnnualReport, annual_report
from bot.reports.xlsx import annual_report_xlsx, rows_xlsx
from bot.services import CaseService, ServiceError
from bot.services.common import ANSWER_RULE, OPEN_STATES
from bot.texts import Texts
from bot.web import auth
from routing.lifecycle import State

if TYPE_CHECKING:
    from bot.app import Huiyin

log = logging.getLogger("huiyin.web")

PREFIX = "/dashboard"
HERE = Path(__file__).resolve().parent
OVERSIGHT = frozenset({"supervisor", "head", "admin"})
PAGE_SIZE = 50
EXPORT_LIMIT = 20_000  # one file; beyond that, narrow the filters
DUE_SOON_DAYS = 3  # as /duesoon's default
TREND_WEEKS = 12
TEMPLATES_KEY = web.AppKey("dashboard_templates", jinja2.Environment)
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Dashboard:
    sessionmaker: async_sessionmaker[AsyncSession]
    services: CaseService
    texts: Texts
    key: bytes
    clock: Clock


CONTEXT_KEY = web.AppKey("dashboard", Dashboard)


@dataclass(frozen=True)
class Viewer:
    person: PersonRecord
    csrf: str

    @property
    def oversight(self) -> bool:
        return self.person.role in OVERSIGHT

    @property
    def unit_scope(self) -> str | None:
        """None: every unit; else the one unit this person may see."""
        return None if self.oversight else self.person.unit_id


VIEWER_KEY = web.RequestKey("dashboard_viewer", Viewer)


def add_dashboard_routes(
    web_app: web.Application, huiyin: Huiyin, *, clock: Clock | None = None
) -> None:
    """Mount the dashboard on ``web_app`` under ``/dashboard`` (before it starts)."""
    dashboard = Dashboard(
        sessionmaker=huiyin.sessionmaker,
        services=huiyin.dispatcher["services"],
        texts=huiyin.dispatcher["texts"],
        key=auth.derive_key(huiyin.settings, huiyin.bot.token),
        # The bot's clock (tests move it), which the reminder scanner holds.
        clock=clock or huiyin.scanner.clock,
    )
    web_app.add_subapp(PREFIX, build_app(dashboard))

    async def to_overview(_request: web.Request) -> web.Response:
        return _see_other(f"{PREFIX}/")

    web_app.router.add_get(PREFIX, to_overview)  # the subapp answers "/dashboard/…" only


def build_app(dashboard: Dashboard) -> web.Application:
    app = web.Application(middlewares=[_security_headers, _authenticate])
    app[CONTEXT_KEY] = dashboard
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        app_key=TEMPLATES_KEY,
    )
    env.globals["prefix"] = PREFIX
    app.router.add_get("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", overview)
    app.router.add_get("/cases", case_list)
    app.router.add_get("/cases.csv", cases_csv)
    app.router.add_get("/cases.xlsx", cases_xlsx)
    app.router.add_get("/cases/{number}", case_page)
    app.router.add_post("/cases/{number}/urge", urge)
    app.router.add_get(r"/report/{year:\d{4}}", report_page)
    app.router.add_get(r"/report/{year:\d{4}}.xlsx", report_xlsx)
    app.router.add_static("/static", HERE / "static")
    return app


# ------------------------------------------------------------------ middlewares

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC = ("/login", "/static/")


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # the link is a credential
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The session cookie → ``request["viewer"]``; every POST must carry its CSRF token."""
    path = request.path.removeprefix(PREFIX)
    if path == "/login" or path.startswith("/static/"):
        return await handler(request)
    dashboard = request.app[CONTEXT_KEY]
    cookie = request.cookies.get(auth.COOKIE_NAME)
    if not cookie:
        return _page(request, "message.html", {"title": "请登录", "kind": "login"}, status=401)
    try:
        claims = auth.read_session(dashboard.key, cookie, dashboard.clock())
    except auth.BadToken:
        return _page(request, "message.html", {"title": "登录已过期", "kind": "login"}, status=401)
    async with dashboard.sessionmaker() as session:
        person = await repo.get_person(session, claims.person_id)
    if person is None or not _may_enter(person):
        return _forbidden(request)
    request[VIEWER_KEY] = Viewer(person, claims.csrf)
    if request.method == "POST":
        form = await request.post()
        if not auth.csrf_ok(claims.csrf, form.get("csrf")):
            log.warning(
                "dashboard: POST %s by person %s without a valid CSRF token", path, person.id
            )
            return _forbidden(request)
    return await handler(request)


def _may_enter(person: PersonRecord) -> bool:
    return person.role in OVERSIGHT or (person.role == "staff" and person.unit_id is not None)


def _forbidden(request: web.Request) -> web.Response:
    return _page(request, "message.html", {"title": "无权访问", "kind": "forbidden"}, status=403)


def _not_found(request: web.Request) -> web.Response:
    return _page(request, "message.html", {"title": "未找到", "kind": "not_found"}, status=404)


def _page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    context.setdefault("viewer", request.get(VIEWER_KEY))
    dashboard = request.app[CONTEXT_KEY]
    context.setdefault("services", dashboard.services)
    # The report due by 31 January is last year's.
    context.setdefault("report_year", dashboard.services.today(dashboard.clock()).year - 1)
    return aiohttp_jinja2.render_template(
        template, request, context, status=status, app_key=TEMPLATES_KEY
    )


def _see_other(location: str) -> web.Response:
    """303: after a POST (or the login) the browser GETs the page (no resubmission)."""
    return web.Response(status=303, headers={"Location": location})


def _viewer(request: web.Request) -> Viewer:
    return request[VIEWER_KEY]


# ------------------------------------------------------------------ login


async def login(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT_KEY]
    now = dashboard.clock()
    try:
        claims = auth.read_login_token(dashboard.key, request.query.get("t", ""), now)
        async with dashboard.sessionmaker() as session, session.begin():
            person = await repo.get_person(session, claims.person_id)
            # Bound to the role the person had when asking: a demoted person's link is void.
            if person is None or person.role != claims.role or not _may_enter(person):
                raise auth.BadToken("role changed")
            await auth.use_once(session, claims, now)
    except auth.BadToken as error:
        log.warning("dashboard: login refused (%s)", error)
        return _page(
            request, "message.html", {"title": "链接无效", "kind": "bad_link"}, status=403
        )
    cookie, _ = auth.issue_session(dashboard.key, person.id, person.role, now)
    response = _see_other(f"{PREFIX}/")
    response.set_cookie(
        auth.COOKIE_NAME,
        cookie,
        max_age=int(auth.SESSION_TTL.total_seconds()),
        path=PREFIX,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
    )
    log.info("dashboard: person %s (%s) logged in", person.id, person.role)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = _see_other(f"{PREFIX}/login")
    response.del_cookie(auth.COOKIE_NAME, path=PREFIX)
    return response


# ------------------------------------------------------------------ overview


@dataclass
class Counts:
    open: int = 0
    due_soon: int = 0
    overdue: int = 0


async def overview(request: web.Request) -> web.StreamResponse:
    """Counted in the database: the page costs the same with a thousand cases or a million
    (only the duties falling due and the last weeks' dates are read)."""
    dashboard, viewer = request.app[CONTEXT_KEY], _viewer(request)
    services = dashboard.services
    now = dashboard.clock()
    today = services.today(now)
    scope = viewer.unit_scope
    first_monday = today - dt.timedelta(days=today.weekday(), weeks=TREND_WEEKS - 1)
    since = dt.datetime.combine(first_monday, dt.time(), tzinfo=services.tz).astimezone(dt.UTC)
    async with dashboard.sessionmaker() as session:
        groups = (await session.execute(_overview_groups(scope))).all()
        overdue, due_soon = await _due_case_ids(services, session, today, scope)
        recent = await _recent_dates(session, scope, since)
    by_unit: dict[str, Counts] = defaultdict(Counts)
    by_path: dict[str, Counts] = defaultdict(Counts)
    total = Counts()
    cases = answered = on_time = hops = 0
    for row in groups:
        for counts in (by_unit[row.unit_id], by_path[row.path], total):
            counts.open += row.open
        cases, hops = cases + row.cases, hops + row.hops
        answered, on_time = answered + row.answered, on_time + row.on_time
    for case in {**overdue, **due_soon}.values():
        for counts in (by_unit[case.unit_id], by_path[case.path], total):
            counts.overdue += case.id in overdue
            counts.due_soon += case.id in due_soon
    context = {
        "title": "总览",
        "total": total,
        "by_unit": sorted(by_unit.items()),
        "by_path": sorted(by_path.items()),
        "answered": answered,
        "on_time_percent": None if not answered else 100.0 * on_time / answered,
        "average_hops": hops / cases if cases else 0.0,
        "trend": weekly_trend(recent, today, services.tz),
        "due_soon_days": DUE_SOON_DAYS,
    }
    return _page(request, "overview.html", context)


def _overview_groups(scope: str | None) -> Any:
    """Per unit and path: cases, open ones, hops, answered, answered within the period."""
    answer_rule = sql_case(*((Case.path == path, rule) for path, rule in ANSWER_RULE.items()))
    met = exists().where(
        DeadlineRow.case_id == Case.id,
        DeadlineRow.rule == answer_rule,
        DeadlineRow.status == DeadlineStatus.MET,
    )
    answered = Case.answered_at.is_not(None)
    query = select(
        Case.unit_id,
        Case.path,
        func.count().label("cases"),
        func.count().filter(Case.state.in_([s.value for s in OPEN_STATES])).label("open"),
        func.coalesce(func.sum(Case.hops), 0).label("hops"),
        func.count().filter(answered).label("answered"),
        func.count().filter(answered & met).label("on_time"),
    ).group_by(Case.unit_id, Case.path)
    return query.where(Case.unit_id == scope) if scope is not None else query


async def _recent_dates(
    session: AsyncSession, scope: str | None, since: dt.datetime
) -> list[tuple[dt.datetime | None, dt.datetime | None]]:
    """(received, answered) of the cases received or answered since ``since``."""
    query = select(Case.received_at, Case.answered_at).where(
        (Case.received_at >= since) | (Case.answered_at >= since)
    )
    if scope is not None:
        query = query.where(Case.unit_id == scope)
    return [
        (from_db(r) if r else None, from_db(a) if a else None)
        for r, a in (await session.execute(query)).all()
    ]


async def _due_case_ids(
    services: CaseService, session: AsyncSession, today: dt.date, scope: str | None
) -> tuple[dict[int, CaseRecord], dict[int, CaseRecord]]:
    """Cases (by id) with an open duty past its last day, and with one due within
    DUE_SOON_DAYS (the same reading as /overdue and /duesoon: time limits for the citizen
    are no duty)."""
    overdue: dict[int, CaseRecord] = {}
    due_soon: dict[int, CaseRecord] = {}
    until = today + dt.timedelta(days=DUE_SOON_DAYS)
    for item in await services.duties_due_by(session, until):
        if scope is None or item.case.unit_id == scope:
            (overdue if item.deadline.due < today else due_soon)[item.case.id] = item.case
    return overdue, due_soon


@dataclass(frozen=True)
class Trend:
    weeks: list[dict[str, Any]]
    width: int
    height: int
    top: int
    received_points: str
    answered_points: str


def weekly_trend(
    dates: Iterable[tuple[dt.datetime | None, dt.datetime | None]], today: dt.date, tz: dt.tzinfo
) -> Trend:
    """Received and answered per week (Monday to Sunday, bureau time) for TREND_WEEKS
    weeks up to this one, with the SVG polyline coordinates."""
    this_monday = today - dt.timedelta(days=today.weekday())
    mondays = [this_monday - dt.timedelta(weeks=n) for n in range(TREND_WEEKS - 1, -1, -1)]
    received = dict.fromkeys(mondays, 0)
    answered = dict.fromkeys(mondays, 0)

    def week_of(moment: dt.datetime) -> dt.date:
        day = moment.astimezone(tz).date()
        return day - dt.timedelta(days=day.weekday())

    for received_at, answered_at in dates:
        if received_at is not None and (week := week_of(received_at)) in received:
            received[week] += 1
        if answered_at is not None and (week := week_of(answered_at)) in answered:
            answered[week] += 1
    width, height, left, bottom = 600, 200, 40, 170
    top = max([1, *received.values(), *answered.values()])
    step = (width - left - 20) / (TREND_WEEKS - 1)

    def points(series: dict[dt.date, int]) -> str:
        return " ".join(
            f"{left + i * step:.1f},{bottom - 150 * series[m] / top:.1f}"
            for i, m in enumerate(mondays)
        )

    weeks = [
        {
            "monday": m,
            "received": received[m],
            "answered": answered[m],
            "x": round(left + i * step, 1),
        }
        for i, m in enumerate(mondays)
    ]
    return Trend(weeks, width, height, top, points(received), points(answered))


# ------------------------------------------------------------------ case list


@dataclass(frozen=True)
class Filters:
    unit: str | None
    path: str | None
    state: str | None
    overdue: bool
    since: dt.date | None
    until: dt.date | None
    q: str
    page: int

    def query(self, **changes: object) -> str:
        """The filters as a query string (for the exports and the page links)."""
        values: dict[str, object] = {
            "unit": self.unit,
            "path": self.path,
            "state": self.state,
            "overdue": "1" if self.overdue else None,
            "from": self.since.isoformat() if self.since else None,
            "to": self.until.isoformat() if self.until else None,
            "q": self.q or None,
            "page": self.page if self.page > 1 else None,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v is not None})


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def read_filters(request: web.Request, viewer: Viewer) -> Filters:
    query = request.query
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    return Filters(
        # Staff: their unit, whatever the query says.
        unit=viewer.unit_scope if not viewer.oversight else (query.get("unit") or None),
        path=query.get("path") or None,
        state=query.get("state") or None,
        overdue=query.get("overdue") == "1",
        since=_date(query.get("from")),
        until=_date(query.get("to")),
        q=query.get("q", "").strip()[:100],
        page=page,
    )


async def _find(
    session: AsyncSession,
    services: CaseService,
    filters: Filters,
    now: dt.datetime,
    *,
    limit: int | None,
    offset: int = 0,
) -> list[CaseRecord]:
    tz = services.tz

    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=tz)

    return await repo.list_cases(
        session,
        unit_id=filters.unit,
        path=filters.path,
        state=filters.state,
        overdue_on=services.today(now) if filters.overdue else None,
        since=midnight(filters.since) if filters.since else None,
        # "to" is inclusive: up to the end of that day.
        until=midnight(filters.until + dt.timedelta(days=1)) if filters.until else None,
        text=filters.q or None,
        limit=limit,
        offset=offset,
    )


async def case_list(request: web.Request) -> web.StreamResponse:
    dashboard, viewer = request.app[CONTEXT_KEY], _viewer(request)
    filters = read_filters(request, viewer)
    async with dashboard.sessionmaker() as session:
        cases = await _find(
            session,
            dashboard.services,
            filters,
            dashboard.clock(),
            limit=PAGE_SIZE + 1,
            offset=(filters.page - 1) * PAGE_SIZE,
        )
        units = await repo.list_units(session)
    context = {
        "title": "事项列表",
        "cases": cases[:PAGE_SIZE],
        "filters": filters,
        "has_next": len(cases) > PAGE_SIZE,
        "units": units,
        "paths": [p.value for p in dashboard.services.config.paths.paths],
        "states": [s.value for s in State],
    }
    return _page(request, "cases.html", context)


EXPORT_HEADERS = [
    "编号",
    "路径",
    "类别",
    "承办单位",
    "状态",
    "收到时间",
    "答复时间",
    "转办次数",
    "摘要",
]


def _export_rows(services: CaseService, texts: Texts, cases: list[CaseRecord]) -> list[list[Any]]:
    return [
        [
            case.number,
            texts.label("path", case.path, "zh"),
            texts.label("topic", case.topic, "zh"),
            services.unit_name(case.unit_id),
            texts.label("state", case.state, "zh"),
            case.received_at,
            case.answered_at,
            case.hops,
            case.summary or case.text[:200],
        ]
        for case in cases
    ]


async def _export(request: web.Request) -> tuple[Dashboard, list[list[Any]]]:
    dashboard, viewer = request.app[CONTEXT_KEY], _viewer(request)
    filters = read_filters(request, viewer)
    async with dashboard.sessionmaker() as session:
        cases = await _find(
            session, dashboard.services, filters, dashboard.clock(), limit=EXPORT_LIMIT
        )
    return dashboard, _export_rows(dashboard.services, dashboard.texts, cases)


def _csv_cell(value: Any, tz: dt.tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    text = str(value)
    # A cell beginning with = + - @ is a formula to Excel: keep citizens' words as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


async def cases_csv(request: web.Request) -> web.StreamResponse:
    dashboard, rows = await _export(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_HEADERS)
    for row in rows:
        writer.writerow([_csv_cell(v, dashboard.services.tz) for v in row])
    # UTF-8 with a BOM: Excel opens it as UTF-8 only then.
    return web.Response(
        body=("\ufeff" + buffer.getvalue()).encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="cases.csv"'},
    )


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def cases_xlsx(request: web.Request) -> web.StreamResponse:
    dashboard, rows = await _export(request)
    body = rows_xlsx(EXPORT_HEADERS, rows, "事项列表", tz=dashboard.services.tz)
    return web.Response(
        body=body,
        content_type=XLSX_TYPE,
        headers={"Content-Disposition": 'attachment; filename="cases.xlsx"'},
    )


# ------------------------------------------------------------------ one case


async def _visible_case(request: web.Request, session: AsyncSession) -> CaseRecord | None:
    """The case of the URL, if this viewer may see it (else None: a 404, not a 403, so a
    staff member learns nothing about another unit's numbers)."""
    viewer = _viewer(request)
    case = await repo.get_case_by_number(session, request.match_info["number"])
    if case is None or (viewer.unit_scope is not None and case.unit_id != viewer.unit_scope):
        return None
    return case


def _applicant(case: CaseRecord) -> dict[str, str]:
    """What the page shows of the applicant: the ID number masked (it is stored masked;
    this guards a record from before that, or an import)."""
    from bot.services.validate import mask_id

    shown = {}
    for key, value in case.applicant.items():
        if value in (None, ""):
            continue
        text = str(value)
        if key in ("id", "id_number") and len(text) > 8:
            key, text = "id_masked", mask_id(text)
        shown[key] = text
    return shown


async def case_page(request: web.Request) -> web.StreamResponse:
    return await _case_response(request)


async def _case_response(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.StreamResponse:
    dashboard = request.app[CONTEXT_KEY]
    async with dashboard.sessionmaker() as session:
        case = await _visible_case(request, session)
        if case is None:
            return _not_found(request)
        events = await repo.events_of_case(session, case.id)
        deadlines = await repo.deadlines_of_case(session, case.id)
        attachments = await repo.attachments_of_case(session, case.id)
        people = {}
        for person_id in {e.actor_id for e in events if e.actor_id is not None}:
            person = await repo.get_person(session, person_id)
            if person is not None:
                people[person_id] = person
    context = {
        "title": f"事项 {case.number}",
        "case": case,
        "applicant": _applicant(case),
        "events": events,
        "people": people,
        "deadlines": [(d, d.deadline) for d in deadlines],
        "attachments": attachments,
        "texts": dashboard.texts,
        "tz": dashboard.services.tz,
        "urged": request.query.get("urged") == "1",
        "error": error,
    }
    return _page(request, "case.html", context, status=status)


async def urge(request: web.Request) -> web.StreamResponse:
    """督办 from the web: the same service call as /urge (posted to the unit's topic,
    recorded as an URGE event, copied to the other supervisors)."""
    dashboard, viewer = request.app[CONTEXT_KEY], _viewer(request)
    if not viewer.oversight:
        return _forbidden(request)
    form = await request.post()
    text = str(form.get("text", ""))
    number = request.match_info["number"]
    failure: ServiceError | None = None
    async with dashboard.sessionmaker() as session, session.begin():
        visible = await _visible_case(request, session) is not None
        if visible:
            try:
                await dashboard.services.urge(
                    session, viewer.person, number, text, dashboard.clock()
                )
            except ServiceError as error:
                # Committed all the same, as the bot's /urge does: a refusal the service
                # wrote to the audit log stays there (bot/services/errors.py).
                failure = error
    if failure is not None:
        message = dashboard.texts.get(failure.key, "zh", **failure.fmt)
        return await _case_response(request, error=message, status=400)
    if not visible:
        return _not_found(request)
    log.info("dashboard: person %s urged %s", viewer.person.id, number)
    return _see_other(f"{PREFIX}/cases/{number}?urged=1")


# ------------------------------------------------------------------ annual report


def _year(request: web.Request) -> int | None:
    year = int(request.match_info["year"])
    return year if 2000 <= year <= 2100 else None


async def _annual(request: web.Request) -> AnnualReport | web.StreamResponse:
    """The year's report for an oversight viewer (the bureau's, not a unit's); else the
    refusal to answer with."""
    dashboard, viewer = request.app[CONTEXT_KEY], _viewer(request)
    if not viewer.oversight:
        return _forbidden(request)
    year = _year(request)
    if year is None:
        return _not_found(request)
    async with dashboard.sessionmaker() as session:
        return await annual_report(session, year, tz=dashboard.services.tz)


async def report_page(request: web.Request) -> web.StreamResponse:
    report = await _annual(request)
    if not isinstance(report, AnnualReport):
        return report
    context = {"title": f"{report.year}年度政府信息公开申请情况", "report": report}
    return _page(request, "report.html", context)


async def report_xlsx(request: web.Request) -> web.StreamResponse:
    report = await _annual(request)
    if not isinstance(report, AnnualReport):
        return report
    return web.Response(
        body=annual_report_xlsx(report),
        content_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="report-{report.year}.xlsx"'},
    )
