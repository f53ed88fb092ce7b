"""Smoke test of the end-to-end benchmark (bench/e2e): its real entry point, tiny numbers.

Huiyin on SQLite and the echo floor, both polling: a few citizens file whole petitions over
HTTP, and a small backlog is drained. Only completeness and order are checked — the
benchmark's numbers are for people to read, never asserted (they depend on the machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_runs_every_conversation_and_prints_the_ratio(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.e2e",
            "--citizens",
            "2",
            "--backlog",
            "24",
            "--backlog-messages",
            "3",
            "--only",
            "huiyin-polling-sqlite,echo-polling",
            "--json",
            str(rows_file),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio/echo" in result.stdout
    assert "Targets (issue 6" in result.stdout
    rows = {(row["name"], row["kind"]): row for row in json.loads(rows_file.read_text())}
    assert set(rows) == {
        ("huiyin-polling-sqlite", "closed"),
        ("huiyin-polling-sqlite", "backlog"),
        ("echo-polling", "closed"),
        ("echo-polling", "backlog"),
    }
    for row in rows.values():
        assert row["problems"] == [], row  # the echo floor's order is reported, not owed
        assert row["completed"] == row["conversations"] > 0, row
        assert row["peak_rss_mb"] > 0, row
    closed = rows["huiyin-polling-sqlite", "closed"]
    # 2 citizens × one petition of 5 steps (describe, confirm, name, phone, request).
    assert closed["updates"] == 10
    assert closed["ratio"] is not None and closed["ratio"] > 0
    assert closed["p95_ms"] is not None
    backlog = rows["huiyin-polling-sqlite", "backlog"]
    assert (backlog["citizens"], backlog["updates"]) == (8, 24)
    assert backlog["out_of_order"] == 0
    assert f"{closed['ratio']:.2f}" in result.stdout
