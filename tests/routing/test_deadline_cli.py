"""``huiyin deadline RULE FROM_DATE`` through the real entry point, in and out of process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from routing.config import DEFAULT_CONFIG_DIR

PROJECT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["deadline", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "disclosure.reply", "2025-09-26")
    assert (status, err) == (0, "")
    assert out.count("\n") == 1
    result = json.loads(out)
    assert list(result) == [
        "rule", "from", "due", "unit", "length", "basis", "provisional", "skipped",
    ]  # fmt: skip
    assert result["rule"] == "disclosure.reply"
    assert result["from"] == "2025-09-26"
    assert result["due"] == "2025-10-30"
    assert (result["unit"], result["length"], result["provisional"]) == ("working_days", 20, False)
    assert "第三十三条" in result["basis"]
    assert result["skipped"][1] == {"date": "2025-10-01", "reason": "国庆节"}
    assert "国庆节" in out  # ensure_ascii=False: staff read it as it is


@pytest.mark.parametrize(
    "written",
    ["2026-12-28", "2026/12/28", "2026年12月28日", "２０２６年１２月２８日", " 2026.12.28 "],
)
def test_date_formats(capsys: pytest.CaptureFixture[str], written: str) -> None:
    status, out, _ = run(capsys, "disclosure.reply", written)
    assert status == 0
    result = json.loads(out)
    assert (result["from"], result["due"], result["provisional"]) == (
        "2026-12-28",
        "2027-01-26",
        True,
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("disclosure.replay", "did you mean disclosure.reply"),
        ("respond", "did you mean petition.respond"),
        ("nonsense", "known rules: disclosure.extension, disclosure.reply"),
    ],
)
def test_unknown_rule(capsys: pytest.CaptureFixture[str], rule: str, expected: str) -> None:
    status, out, err = run(capsys, rule, "2025-09-26")
    assert (status, out) == (2, "")
    assert err.startswith("huiyin deadline: unknown deadline rule")
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2025-02-30", "day is out of range"),
        ("26/09/2025", "expected YYYY-MM-DD"),
        ("tomorrow", "expected YYYY-MM-DD"),
        ("2025-13-01", "month must be in 1..12"),
    ],
)
def test_bad_date(capsys: pytest.CaptureFixture[str], written: str, expected: str) -> None:
    status, out, err = run(capsys, "disclosure.reply", written)
    assert (status, out) == (2, "")
    assert f"bad date {written!r}" in err
    assert expected in err


def test_missing_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["deadline", "disclosure.reply"])
    assert caught.value.code == 2
    assert "FROM_DATE" in capsys.readouterr().err


def test_config_folder_needs_only_paths_and_holidays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(DEFAULT_CONFIG_DIR / "paths.yaml", tmp_path)
    holidays = (DEFAULT_CONFIG_DIR / "holidays.yaml").read_text(encoding="utf-8")
    official_2027 = "years:\n  2027:\n    holidays:\n      - {date: 2027-01-01, name: 元旦}\n"
    (tmp_path / "holidays.yaml").write_text(
        holidays.replace("years: {}\n", official_2027), encoding="utf-8"
    )
    status, out, _ = run(capsys, "disclosure.reply", "2026-12-28", "--config", str(tmp_path))
    assert status == 0
    assert json.loads(out)["provisional"] is False


def test_broken_config_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "disclosure.reply", "2025-09-26", "--config", str(tmp_path))
    assert (status, out) == (1, "")
    assert "config error" in err
    assert "paths.yaml" in err


def test_as_a_process_without_aiogram() -> None:
    """The real command in a fresh interpreter: same answer, and no aiogram paid for."""
    probe = (
        "import sys; from bot.cli import main; status = main(sys.argv[1:]); "
        "assert 'aiogram' not in sys.modules, 'aiogram imported'; sys.exit(status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "deadline", "petition.acknowledge", "2026-04-20"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["due"] == "2026-05-06"


def test_as_a_process_bad_input_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "deadline", "petition.acknowledge", "2026-04-31"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert "huiyin deadline: bad date '2026-04-31'" in done.stderr
    assert "Traceback" not in done.stderr
