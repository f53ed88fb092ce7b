"""The shipped config folders, config errors that name file and key, and ``check-config``."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import pytest
import yaml

from bot.cli import check_config
from routing.config import (
    DEFAULT_CONFIG_DIR,
    ConfigError,
    RoutingFile,
    Topic,
    UnitsFile,
    load_config,
    load_file,
)
from routing.router import RoutingTables

BAOSHAN_DIR = DEFAULT_CONFIG_DIR / "examples" / "baoshan"
CONFIG_FILES = ("paths.yaml", "units.yaml", "routing.yaml", "holidays.yaml", "classifier.yaml")


# --------------------------------------------------------------------------- the shipped data


def tables(directory: Path) -> RoutingTables:
    """units.yaml and routing.yaml alone: the data checks here need no other file."""
    return RoutingTables(
        units=load_file(directory / "units.yaml", UnitsFile),
        routing=load_file(directory / "routing.yaml", RoutingFile),
    )


def test_anshun_is_the_default_organisation() -> None:
    config = load_config()
    assert config.units.organisation.name == "安顺市民政局"
    assert config.units.organisation.subdivision_kind == "县区"
    full = {d.name: d.full_name for d in config.units.districts}
    assert list(full) == [
        *("西秀区", "平坝区", "普定县", "镇宁县"),
        *("关岭县", "紫云县", "经开区", "黄果树"),
    ]
    assert full["镇宁县"] == "镇宁布依族苗族自治县"
    assert full["关岭县"] == "关岭布依族苗族自治县"
    assert full["紫云县"] == "紫云苗族布依族自治县"
    assert full["经开区"] == "安顺经济技术开发区"


def test_anshun_units() -> None:
    config = load_config()
    kinds = {u.id: u.kind for u in config.units.units}
    subdivisions = ["xixiu", "pingba", "puding", "zhenning", "guanling", "ziyun", "jingkai"]
    for unit_id in [*subdivisions, "huangguoshu"]:
        assert kinds[unit_id] == "subdivision"
    assert kinds["disclosure_office"] == "office"
    assert kinds["legal"] == "section"
    assert config.routing.fallback == "general_desk"
    assert config.unit("social_affairs").topics == [
        Topic.MARRIAGE_ADOPTION,
        Topic.FUNERAL,
        Topic.DISABILITY,
    ]


@pytest.mark.parametrize("directory", [DEFAULT_CONFIG_DIR, BAOSHAN_DIR], ids=["anshun", "baoshan"])
def test_subdivision_units_serve_each_district_once(directory: Path) -> None:
    config = tables(directory)
    served = [d for u in config.units.units if u.kind == "subdivision" for d in u.districts]
    assert sorted(served) == sorted(d.name for d in config.units.districts)


@pytest.mark.parametrize("directory", [DEFAULT_CONFIG_DIR, BAOSHAN_DIR], ids=["anshun", "baoshan"])
def test_every_civil_affairs_topic_has_a_bureau_section(directory: Path) -> None:
    """With the district unknown, some section of the bureau itself must take each topic."""
    config = tables(directory)
    handled = {t for u in config.units.units if u.kind != "subdivision" for t in u.topics}
    assert handled >= set(Topic)


@pytest.mark.parametrize("directory", [DEFAULT_CONFIG_DIR, BAOSHAN_DIR], ids=["anshun", "baoshan"])
def test_no_place_name_belongs_to_two_districts(directory: Path) -> None:
    config = tables(directory)
    owner: dict[str, str] = {}
    for district in config.units.districts:
        for name in {district.name, district.full_name, *district.aliases, *district.towns} - {""}:
            assert owner.setdefault(name, district.name) == district.name, name


def test_baoshan_is_a_different_organisation() -> None:
    config = tables(BAOSHAN_DIR)
    assert config.units.organisation.name == "上海市宝山区民政局"
    assert config.units.organisation.subdivision_kind == "街道/镇"
    names = {d.name for d in config.units.districts}
    assert {"友谊路街道", "吴淞街道", "张庙街道", "大场镇", "顾村镇", "宝山城市工业园区"} <= names
    assert {u.id: u.name for u in config.units.units}["office"] == "办公室（法制办）"
    assert config.routing.fallback == "office"


# --------------------------------------------------------------------------- config errors


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the project's config folder, to break one file at a time."""
    target = tmp_path / "config"
    target.mkdir()
    for name in CONFIG_FILES:
        shutil.copy(DEFAULT_CONFIG_DIR / name, target / name)
    return target


def _edit(path: Path, change: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    return caught.value


def test_missing_key(folder: Path) -> None:
    _edit(folder / "routing.yaml", lambda d: d.pop("fallback"))
    error = _error(folder)
    assert error.file.endswith("routing.yaml")
    assert error.key == "fallback"
    assert "required" in error.problem.lower()


def test_wrong_type(folder: Path) -> None:
    _edit(folder / "units.yaml", lambda d: d["units"][3].update(chat_id="the elderly group"))
    error = _error(folder)
    assert error.file.endswith("units.yaml")
    assert error.key == "units.3.chat_id"
    assert "integer" in error.problem


def test_unknown_unit_in_routing(folder: Path) -> None:
    _edit(folder / "routing.yaml", lambda d: d["rules"][5].update(unit="welfare_dept"))
    error = _error(folder)
    assert error.file.endswith("routing.yaml")
    assert error.key == "rules.5.unit"
    assert "welfare_dept" in error.problem


def test_unknown_fallback_unit(folder: Path) -> None:
    _edit(folder / "routing.yaml", lambda d: d.update(fallback="nobody"))
    error = _error(folder)
    assert (error.key, "nobody" in error.problem) == ("fallback", True)


def test_unknown_district_in_routing(folder: Path) -> None:
    _edit(folder / "routing.yaml", lambda d: d["rules"][4].update(district=["火星区"]))
    error = _error(folder)
    assert (error.key, "火星区" in error.problem) == ("rules.4.district", True)


def test_duplicate_unit_id(folder: Path) -> None:
    def duplicate(data: dict[str, list[dict[str, object]]]) -> None:
        data["units"][12]["id"] = data["units"][11]["id"]

    _edit(folder / "units.yaml", duplicate)
    error = _error(folder)
    assert error.file.endswith("units.yaml")
    assert error.key == "units"
    expected = r"units\.12\.id: duplicate unit id '\w+' \(first at units\.11\.id\)"
    assert re.search(expected, str(error))


def test_unit_serving_an_unknown_district(folder: Path) -> None:
    _edit(folder / "units.yaml", lambda d: d["units"][11].update(districts=["火星区"]))
    error = _error(folder)
    assert error.key == "units"
    assert "units.11.districts" in error.problem
    assert "火星区" in error.problem


def test_invalid_yaml(folder: Path) -> None:
    (folder / "routing.yaml").write_text("fallback: general_desk\nrules: [\n  - {unit: x\n")
    error = _error(folder)
    assert error.file.endswith("routing.yaml")
    assert error.key.startswith("line ")
    assert "not valid YAML" in error.problem


def test_missing_file(folder: Path) -> None:
    (folder / "units.yaml").unlink()
    error = _error(folder)
    assert error.file.endswith("units.yaml")
    assert error.problem == "file not found"


# --------------------------------------------------------------------------- check-config


def check(*argv: str) -> int:
    """Run ``huiyin check-config`` through its own parser, as the CLI does."""
    parser = argparse.ArgumentParser(prog="huiyin")
    check_config.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check-config", *argv])
    status: int = args.handler(args)
    return status


def test_huiyin_check_config_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["check-config", str(DEFAULT_CONFIG_DIR)]) == 0
    assert "OK: " in capsys.readouterr().out


def test_check_config_default_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert check() == 0
    out = capsys.readouterr().out
    assert re.search(r"^OK: .*安顺市民政局 \(anshun\): 8 县区, 19 units", out, re.M)
    assert "5×11" not in out  # counts, not formulas
    assert "495 path×topic×district combinations all land on a unit" in out
    # A real ambiguity the admin should know about: 猴场 is in two counties.
    assert "warning: the short form '猴场' names towns in 普定县, 紫云县" in out
    assert "units have no chat_id yet" in out


def test_check_config_baoshan_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(str(BAOSHAN_DIR)) == 0
    out = capsys.readouterr().out
    assert re.search(r"^OK: .*上海市宝山区民政局 \(baoshan\): 13 街道/镇", out, re.M)


def test_check_config_reports_a_broken_folder(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(folder / "routing.yaml", lambda d: d["rules"][0].update(unit="nowhere"))
    assert check(str(folder)) == 1
    captured = capsys.readouterr()
    assert "OK" not in captured.out
    expected = r"ERROR: .*routing\.yaml: rules\.0\.unit: unknown unit id 'nowhere'"
    assert re.search(expected, captured.err)


def test_check_config_refuses_a_town_in_two_districts(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(folder / "units.yaml", lambda d: d["districts"][1]["towns"].append("旧州镇"))
    assert check(str(folder)) == 1
    err = capsys.readouterr().err
    expected = r"units\.yaml: districts\.1\.towns\.\d+: '旧州镇' is also listed under 西秀区"
    assert re.search(expected, err)


def test_check_config_warns_about_unruled_topics(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(folder / "routing.yaml", lambda d: d["rules"].pop())  # the charity rule
    assert check(str(folder)) == 0
    out = capsys.readouterr().out
    assert "petition × charity reaches the fallback unit only because no rule names it" in out
    assert "no path/topic/district routes to charity" in out
    assert "OK: " in out


def test_check_config_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(str(tmp_path / "absent")) == 1
    assert "not a folder" in capsys.readouterr().err
