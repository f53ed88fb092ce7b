"""What a deadline costs: per call in process, and one ``huiyin deadline`` process.

The classifier computes deadlines for every message, so the in-process cost matters; staff
run the command by hand, so its start-up time matters too.

    .venv/bin/python bench/bench_deadline.py
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from routing.calendar import WorkCalendar  # noqa: E402
from routing.config import DEFAULT_CONFIG_DIR, HolidaysFile, load_file  # noqa: E402
from routing.deadlines import DeadlineRules, due_date  # noqa: E402

CALLS = 20_000
PROCESS_RUNS = 7


def per_call_us(calendar: WorkCalendar, rules: DeadlineRules, starts: list[dt.date]) -> float:
    keys = sorted(rules)
    began = time.perf_counter()
    for index, start in enumerate(starts):
        due_date(rules[keys[index % len(keys)]], start, calendar)
    return (time.perf_counter() - began) / len(starts) * 1e6


def main() -> None:
    holidays = load_file(DEFAULT_CONFIG_DIR / "holidays.yaml", HolidaysFile)
    rules = DeadlineRules.load()
    rng = random.Random(2025)
    first = dt.date(2025, 1, 1)
    starts = [first + dt.timedelta(days=rng.randrange(730)) for _ in range(CALLS)]

    calendar = WorkCalendar.from_holidays(holidays)
    cold = per_call_us(calendar, rules, starts[:200])
    warm = per_call_us(calendar, rules, starts)
    print(f"due_date, all {len(rules)} rules, starts in 2025–2026:")
    print(f"  first 200 calls (empty day cache):   {cold:8.1f} µs/call")
    print(f"  {CALLS} calls (warm day cache):      {warm:8.1f} µs/call")
    for key in ("disclosure.reply", "petition.respond", "litigation.filing_window"):
        one = rules[key]
        began = time.perf_counter()
        for start in starts[:5000]:
            due_date(one, start, calendar)
        cost = (time.perf_counter() - began) / 5000 * 1e6
        print(f"  {key:<28} {cost:8.1f} µs/call")

    began = time.perf_counter()
    fresh = WorkCalendar.from_holidays(holidays)
    due_date(rules["disclosure.reply"], dt.date(2030, 12, 20), fresh)
    print(
        f"first deadline in a forecast year (lunar data computed): "
        f"{(time.perf_counter() - began) * 1e3:.1f} ms"
    )

    command = [sys.executable, "-m", "bot", "deadline", "disclosure.reply", "2025-09-26"]
    walls = []
    for _ in range(PROCESS_RUNS):
        began = time.perf_counter()
        done = subprocess.run(command, cwd=PROJECT, capture_output=True, check=False)
        walls.append(time.perf_counter() - began)
        if done.returncode != 0:
            print(f"`huiyin deadline` failed ({done.returncode}): {done.stderr.decode()}")
            return
    print(
        f"one `huiyin deadline` process (python -m bot deadline), {PROCESS_RUNS} runs: "
        f"median {statistics.median(walls) * 1e3:.0f} ms, "
        f"min {min(walls) * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main()
