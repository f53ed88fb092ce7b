"""routing/ stays pure: no Telegram, database, web or event loop, and no clock reads.

STYLE.md: "routing/ … Pure Python: no aiogram, no SQLAlchemy, no asyncio, no clock reads
(time comes in as an argument)". A plain AST scan of every module keeps it so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted((ROOT / "routing").rglob("*.py"))

FORBIDDEN_IMPORTS = {"aiogram", "sqlalchemy", "aiohttp", "asyncio", "bot", "handlers"}

# Calls that read the clock. `now` must come in as an argument instead.
CLOCK_CALLS = {
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "date.today",
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.date.today",
    "dt.datetime.now",
    "dt.datetime.utcnow",
    "dt.datetime.today",
    "dt.date.today",
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "time.localtime",
    "time.gmtime",
    "time.strftime",
}


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _clock_calls(tree: ast.AST) -> list[str]:
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in CLOCK_CALLS:
                calls.append(f"line {node.lineno}: {name}()")
    return calls


def test_there_are_modules_to_scan() -> None:
    names = {m.name for m in MODULES}
    assert {"__init__.py", "config.py", "router.py", "lifecycle.py"} <= names


@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(ROOT)))
def test_routing_imports_nothing_impure(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"), filename=str(module))
    bad = sorted(m for m in _imports(tree) if m.split(".")[0] in FORBIDDEN_IMPORTS)
    assert bad == [], f"{module.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(ROOT)))
def test_routing_does_not_read_the_clock(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"), filename=str(module))
    calls = _clock_calls(tree)
    assert calls == [], f"{module.relative_to(ROOT)} reads the clock: {calls}"


def test_the_scan_catches_what_it_should() -> None:
    sample = ast.parse(
        "import asyncio\n"
        "from aiogram.types import Message\n"
        "from bot.db import x\n"
        "import datetime as dt\n"
        "from datetime import date\n"
        "a = dt.datetime.now()\n"
        "b = date.today()\n"
        "c = dt.datetime.now\n"  # a reference is not a call
        "def f(now): return now\n"
    )
    imports = {m.split(".")[0] for m in _imports(sample)}
    assert imports & FORBIDDEN_IMPORTS == {"asyncio", "aiogram", "bot"}
    assert _clock_calls(sample) == ["line 6: dt.datetime.now()", "line 7: date.today()"]
