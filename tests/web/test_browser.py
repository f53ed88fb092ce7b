"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) against the web app on a real TCP port, bound to the
bot in the sandbox. The login link comes from the bot (/dashboard), as in
test_dashboard.py; the clock starts on Monday 2026-03-02 (10:00 in Shanghai).

Selenium is synchronous and the server shares the test's event loop, so every browser call
runs in a thread (:func:`asyncio.to_thread`). A screenshot of each page goes to
``tests/artifacts/`` (kept by CI, ignored by git). Without Chromium the tests skip, except
under CI (``CI=true``), where they fail. SQLite only: the database adds nothing here.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import openpyxl
import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from bot.web import add_dashboard_routes
from tests.e2e.conftest import World, make_world
from tests.e2e.test_oversight import PETITION, file_mediation
from tests.e2e.test_paths import file_disclosure, file_petition
from tests.e2e.test_staff import case_of
from tests.web.test_dashboard import login_link

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
T = TypeVar("T")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the browser sees the same pages on either backend (test_dashboard.py
    covers both), and Chromium's start-up is time enough."""
    return f"sqlite+aiosqlite:///{tmp_path / 'huiyin.sqlite3'}"


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    async with make_world(db_url) as world:
        yield world


@pytest.fixture
async def base_url(world: World) -> AsyncIterator[str]:
    """The dashboard served on a real TCP port (a free one on 127.0.0.1)."""
    app = web.Application()
    add_dashboard_routes(app, world.huiyin)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def driver(downloads: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with downloads going to ``downloads`` (no prompt)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        reason = f"no {CHROMIUM} or {CHROMEDRIVER}: apt-get install chromium chromium-driver"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)  # CI installs them (.ci/run): their absence is a failure
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--lang=zh-CN",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    chrome = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    chrome.set_page_load_timeout(20)
    chrome.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield chrome
    finally:
        chrome.quit()


async def in_browser(action: Callable[..., T], *args: Any) -> T:
    """Run a (blocking) Selenium call off the event loop, so the server can answer it."""
    return await asyncio.to_thread(action, *args)


def shot(driver: webdriver.Chrome, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def open_page(driver: webdriver.Chrome, url: str, name: str) -> str:
    """Open ``url``, screenshot it; the text of the page."""
    driver.get(url)
    shot(driver, name)
    return str(driver.find_element(By.TAG_NAME, "body").text)


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    element = WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, element_id)))
    return str(element.text)


def status_of(driver: webdriver.Chrome, path: str) -> int:
    """The HTTP status of ``path`` fetched by the page itself (with the browser's cookie)."""
    status = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => done(r.status));",
        path,
    )
    return int(status)


def filter_overdue(driver: webdriver.Chrome) -> list[str]:
    """On the case list: tick 仅已逾期, press 筛选; the case numbers listed."""
    checkbox = driver.find_element(By.CSS_SELECTOR, "form.filters input[name=overdue]")
    if not checkbox.is_selected():
        checkbox.click()
    driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(driver, 10).until(EC.url_contains("overdue=1"))
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "cases")))
    shot(driver, "cases-overdue")
    cells = driver.find_elements(By.CSS_SELECTOR, "#cases tbody tr td:first-child a")
    return [str(cell.text) for cell in cells]


def open_case(driver: webdriver.Chrome, number: str) -> str:
    driver.find_element(By.LINK_TEXT, number).click()
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "timeline")))
    deadline = driver.find_element(By.CSS_SELECTOR, "section.deadline")
    driver.execute_script("arguments[0].scrollIntoView();", deadline)
    shot(driver, "case")
    return str(driver.find_element(By.TAG_NAME, "body").text)


def urge(driver: webdriver.Chrome, text: str) -> str:
    driver.find_element(By.CSS_SELECTOR, "form.urge textarea[name=text]").send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "form.urge button[type=submit]").click()
    notice = text_of(driver, "urged")
    shot(driver, "case-urged")
    return notice


def download(driver: webdriver.Chrome, folder: Path, link_id: str, name: str) -> bytes:
    """Click the link ``link_id``; the bytes of the file ``name`` once Chromium has it."""
    driver.find_element(By.ID, link_id).click()
    target = folder / name
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if target.exists() and not list(folder.glob("*.crdownload")):
            data = target.read_bytes()
            if data:
                return data
        time.sleep(0.1)
    raise AssertionError(f"{name} not downloaded: {sorted(p.name for p in folder.iterdir())}")


def sheet_of(data: bytes) -> Any:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    return sheet


async def test_supervisor_in_the_browser(
    driver: webdriver.Chrome, downloads: Path, world: World, base_url: str
) -> None:
    petition = await file_petition(world, world.citizen, PETITION)
    mediation = await file_mediation(world)
    disclosure = await file_disclosure(world, world.citizen)
    world.advance(days=8)  # Tue 03-10: the mediation's 03-09 has passed; the others are not due

    page = await in_browser(open_page, driver, f"{base_url}/dashboard/", "anonymous")
    assert "/dashboard" in page  # the login hint, not the overview
    assert await in_browser(status_of, driver, "/dashboard/") == 401

    link = await login_link(world, world.supervisor)
    await in_browser(open_page, driver, base_url + link, "overview")
    assert driver.current_url == f"{base_url}/dashboard/"
    assert await in_browser(text_of, driver, "open-count") == "3"
    assert await in_browser(text_of, driver, "overdue-count") == "1"

    await in_browser(open_page, driver, f"{base_url}/dashboard/cases", "cases")
    listed = await in_browser(filter_overdue, driver)
    assert listed == [mediation]

    page = await in_browser(open_case, driver, mediation)
    assert driver.current_url.endswith(f"/dashboard/cases/{mediation}")
    # 5 working days from Mon 03-02: the weekend is skipped, and the page says so.
    assert "2026-03-09" in page and "跳过的日期（2 天）" in page
    assert "2026-03-07（" in page and "2026-03-08（" in page
    notice = await in_browser(urge, driver, "请尽快受理")
    assert "已督办" in notice
    assert "请尽快受理" in await in_browser(text_of, driver, "timeline")
    unit_chat = int(world.unit((await case_of(world, mediation)).unit_id)["chat_id"])
    await world.bot_says(unit_chat, lambda m: "请尽快受理" in (m.get("text") or ""))

    # The XLSX of the filtered list (overdue only): the mediation alone.
    await in_browser(open_page, driver, f"{base_url}/dashboard/cases?overdue=1", "cases-export")
    data = await in_browser(download, driver, downloads, "export-xlsx", "cases.xlsx")
    numbers = [row[0] for row in sheet_of(data).iter_rows(min_row=3, values_only=True)]
    assert numbers == [mediation]
    assert petition not in str(numbers) and disclosure not in str(numbers)

    page = await in_browser(open_page, driver, f"{base_url}/dashboard/report/2026", "report")
    assert "一 + 二 = 三(七) + 四" in await in_browser(text_of, driver, "check")
    assert "勾稽关系平衡" in page
    data = await in_browser(download, driver, downloads, "report-xlsx", "report-2026.xlsx")
    sheet = sheet_of(data)
    assert str(sheet["A1"].value).startswith("2026")
    # Row 5: 一、本年新收申请数量 — the one disclosure request, by a natural person (column B);
    # H is the total. The petition and the mediation are no disclosure requests.
    assert sheet["A5"].value == "一、本年新收申请数量"
    assert (sheet["B5"].value, sheet["H5"].value) == (1, 1)
    assert [sheet.cell(5, c).value for c in range(3, 8)] == [0, 0, 0, 0, 0]

    # The link, used once, is refused when opened again (a fresh browser session).
    await in_browser(driver.delete_all_cookies)
    page = await in_browser(open_page, driver, base_url + link, "reused-link")
    assert "链接无效" in page or "已被使用" in page
    assert await in_browser(status_of, driver, link) == 403
    assert await in_browser(status_of, driver, "/dashboard/") == 401


async def test_staff_browser_gets_404_on_another_units_case(
    driver: webdriver.Chrome, world: World, base_url: str
) -> None:
    petition = await file_petition(world, world.citizen, PETITION)
    mediation = await file_mediation(world)
    unit = (await case_of(world, petition)).unit_id
    assert (await case_of(world, mediation)).unit_id != unit
    staff = int(world.unit(unit)["staff_user_id"])

    link = await login_link(world, staff)
    await in_browser(open_page, driver, base_url + link, "staff-overview")
    assert await in_browser(text_of, driver, "open-count") == "1"
    page = await in_browser(open_page, driver, f"{base_url}/dashboard/cases", "staff-cases")
    assert petition in page and mediation not in page

    page = await in_browser(
        open_page, driver, f"{base_url}/dashboard/cases/{mediation}", "staff-other-unit"
    )
    assert "未找到" in page and mediation not in page
    assert await in_browser(status_of, driver, f"/dashboard/cases/{mediation}") == 404
    assert await in_browser(status_of, driver, f"/dashboard/cases/{petition}") == 200
