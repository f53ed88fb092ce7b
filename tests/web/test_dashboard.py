"""The dashboard over real HTTP: the link comes from the bot in the sandbox (/dashboard),
the pages and exports from the web app mounted on an aiohttp test server, on both backends.

The clock starts on Monday 2026-03-02 (10:00 in Shanghai). A petition filed then must say
whether it is accepted by Tue 03-17; a mediation request must be accepted by Mon 03-09.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import openpyxl
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.db import repo
from bot.web import add_dashboard_routes
from bot.web.auth import derive_key, issue_login_token
from handlers import dashboard as dashboard_handlers
from tests.e2e.conftest import World, make_world
from tests.e2e.test_oversight import PETITION, file_mediation
from tests.e2e.test_paths import file_petition
from tests.e2e.test_staff import case_of

LINK = re.compile(r"https?://\S+?/dashboard/login\?t=[\w.\-]+")


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    async with make_world(db_url) as world:
        assert dashboard_handlers.router in world.huiyin.dispatcher.sub_routers
        yield world


@pytest.fixture
async def web_client(world: World) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    add_dashboard_routes(app, world.huiyin)
    async with TestClient(TestServer(app)) as client:
        yield client


Client = TestClient[web.Request, web.Application]


async def login_link(world: World, user: int) -> str:
    """``user`` sends /dashboard; the path and query of the link the bot sends back."""
    await world.send(user, "/dashboard")
    message = await world.bot_says(user)
    found = LINK.search(message["text"])
    assert found, message["text"]
    url = urlsplit(found.group(0))
    return f"{url.path}?{url.query}"


async def log_in(world: World, client: Client, user: int) -> str:
    """Log ``user`` in; the overview's HTML."""
    response = await client.get(await login_link(world, user))
    assert response.status == 200, await response.text()
    assert response.url.path == "/dashboard/"
    return await response.text()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def count(page: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}">(\d+)<', page)
    assert found, element_id
    return int(found.group(1))


async def test_supervisor_dashboard(world: World, web_client: Client) -> None:
    petition = await file_petition(world, world.citizen, PETITION)
    mediation = await file_mediation(world)
    world.advance(days=8)  # Tue 03-10: the mediation's 03-09 has passed; the petition is not due
    anonymous = await web_client.get("/dashboard/")
    assert anonymous.status == 401

    overview = await log_in(world, web_client, world.supervisor)
    assert count(overview, "open-count") == 2
    assert count(overview, "overdue-count") == 1
    assert "<svg" in overview and "polyline" in overview
    # Nothing answered yet, nothing transferred; both received in the week of Mon 03-02,
    # the one before this week (Mon 03-09).
    assert 'id="on-time">—<' in overview and 'id="hops">0.00<' in overview
    received = re.search(r"<tr><th>收到</th>((?:<td>\d+</td>)+)</tr>", overview)
    assert received and received.group(1).endswith("<td>2</td><td>0</td>")
    assert sum(map(int, re.findall(r"\d+", received.group(1)))) == 2
    mediation_unit = (await case_of(world, mediation)).unit_id
    petition_unit = (await case_of(world, petition)).unit_id

    response = await web_client.get("/dashboard/cases", params={"overdue": "1"})
    listing = await response.text()
    assert mediation in listing and petition not in listing
    response = await web_client.get("/dashboard/cases", params={"unit": petition_unit})
    listing = await response.text()
    assert petition in listing and mediation not in listing
    response = await web_client.get("/dashboard/cases", params={"q": "低保"})
    listing = await response.text()
    assert petition in listing and mediation not in listing
    response = await web_client.get("/dashboard/cases", params={"from": "2026-03-03"})
    assert petition not in await response.text()

    page = await (await web_client.get(f"/dashboard/cases/{petition}")).text()
    assert PETITION in page and "2026-03-17" in page and "信访工作条例 第二十三条" in page
    page = await (await web_client.get(f"/dashboard/cases/{mediation}")).text()
    # 5 working days from Mon 03-02: the weekend is skipped, and the page says so.
    assert "2026-03-09" in page and "跳过的日期（2 天）" in page
    assert "<li>2026-03-07（" in page and "<li>2026-03-08（" in page
    assert (await web_client.get("/dashboard/cases/HY-NO-SUCH")).status == 404

    url = f"/dashboard/cases/{mediation}/urge"
    refused = await web_client.post(url, data={"text": "请尽快受理"})
    assert refused.status == 403
    refused = await web_client.post(url, data={"text": "请尽快受理", "csrf": "x" * 32})
    assert refused.status == 403
    urged = await web_client.post(url, data={"text": "请尽快受理", "csrf": csrf_of(page)})
    assert urged.status == 200 and 'id="urged"' in await urged.text()
    case = await case_of(world, mediation)
    async with world.huiyin.sessionmaker() as session:
        events = await repo.events_of_case(session, case.id)
    assert [(e.action, e.reason) for e in events if e.action == "urge"] == [("urge", "请尽快受理")]
    unit_chat = int(world.unit(mediation_unit)["chat_id"])
    await world.bot_says(unit_chat, lambda m: "请尽快受理" in (m.get("text") or ""))

    response = await web_client.get("/dashboard/cases.csv", params={"overdue": "1"})
    assert response.status == 200
    rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    assert rows[0][0] == "编号" and [r[0] for r in rows[1:]] == [mediation]
    response = await web_client.get("/dashboard/cases.xlsx")
    assert response.status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(await response.read())).active
    assert sheet is not None
    numbers = [row[0] for row in sheet.iter_rows(min_row=3, values_only=True)]
    assert sorted(numbers) == sorted([petition, mediation])

    report = await web_client.get("/dashboard/report/2026")
    text = await report.text()
    assert report.status == 200 and 'id="check"' in text and "一 + 二 = 三(七) + 四" in text
    assert "勾稽关系平衡" in text
    report_file = await web_client.get("/dashboard/report/2026.xlsx")
    assert report_file.status == 200
    openpyxl.load_workbook(io.BytesIO(await report_file.read()))


async def test_staff_see_their_unit_only(world: World, web_client: Client) -> None:
    petition = await file_petition(world, world.citizen, PETITION)
    mediation = await file_mediation(world)
    unit = (await case_of(world, petition)).unit_id
    assert (await case_of(world, mediation)).unit_id != unit
    staff = int(world.unit(unit)["staff_user_id"])

    overview = await log_in(world, web_client, staff)
    assert count(overview, "open-count") == 1
    listing = await (await web_client.get("/dashboard/cases")).text()
    assert petition in listing and mediation not in listing
    other_unit = (await case_of(world, mediation)).unit_id
    response = await web_client.get("/dashboard/cases", params={"unit": other_unit})
    assert mediation not in await response.text()
    exported = await (await web_client.get("/dashboard/cases.csv")).read()
    assert petition in exported.decode() and mediation not in exported.decode()
    assert (await web_client.get(f"/dashboard/cases/{petition}")).status == 200
    assert (await web_client.get(f"/dashboard/cases/{mediation}")).status == 404
    page = await (await web_client.get(f"/dashboard/cases/{petition}")).text()
    urge = await web_client.post(
        f"/dashboard/cases/{petition}/urge", data={"text": "请尽快", "csrf": csrf_of(page)}
    )
    assert urge.status == 403
    assert (await web_client.get("/dashboard/report/2026")).status == 403

    await world.send(world.citizen, "/dashboard")
    refusal = await world.bot_says(world.citizen)
    assert "仅供" in refusal["text"] and "/dashboard/login" not in refusal["text"]


async def test_links_are_single_use_short_lived_and_signed(
    world: World, web_client: Client
) -> None:
    link = await login_link(world, world.supervisor)
    assert (await web_client.get(link)).status == 200
    web_client.session.cookie_jar.clear()
    reused = await web_client.get(link)
    assert reused.status == 403 and "链接无效" in await reused.text()

    late = await login_link(world, world.supervisor)
    world.advance(hours=0.2)  # 12 minutes: past the 10-minute life of a link
    assert (await web_client.get(late)).status == 403

    forged = late[:-3] + ("AAA" if not late.endswith("AAA") else "BBB")
    assert (await web_client.get(forged)).status == 403
    await world.send(world.citizen, "/dashboard")  # refused; now the bot knows them
    assert "/dashboard/login" not in (await world.bot_says(world.citizen))["text"]
    async with world.huiyin.sessionmaker() as session:
        citizen = await repo.get_person_by_telegram(session, world.citizen)
    assert citizen is not None
    key = derive_key(world.settings, world.token)
    # A well-signed link for a citizen (claiming a supervisor's role) is still refused.
    crafted = issue_login_token(key, citizen.id, "supervisor", world.clock())
    assert (await web_client.get("/dashboard/login", params={"t": crafted})).status == 403
    expired = issue_login_token(key, citizen.id, "citizen", world.clock().replace(year=2025))
    assert (await web_client.get("/dashboard/login", params={"t": expired})).status == 403
    assert (await web_client.get("/dashboard/")).status == 401
    assert (await web_client.get("/dashboard")).status == 401  # redirected to the overview
