"""Routing tables for both organisations, and the hand-over model (转办、退回、首接负责)."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from routing.config import (
    DEFAULT_CONFIG_DIR,
    PathCode,
    RoutingFile,
    RoutingRule,
    Topic,
    UnitsFile,
    load_file,
)
from routing.router import (
    Assignment,
    HandBack,
    HandoverError,
    RouteDecision,
    RoutingError,
    RoutingTables,
    Transfer,
    UnknownUnit,
    canonical_district,
    hand_back,
    route,
    transfer,
)

ROOT = Path(__file__).resolve().parents[2]
BAOSHAN_DIR = DEFAULT_CONFIG_DIR / "examples" / "baoshan"


def tables(directory: Path) -> RoutingTables:
    """Only the two files routing reads, so these tests do not wait on the other files."""
    return RoutingTables(
        units=load_file(directory / "units.yaml", UnitsFile),
        routing=load_file(directory / "routing.yaml", RoutingFile),
    )


ANSHUN = tables(DEFAULT_CONFIG_DIR)
BAOSHAN = tables(BAOSHAN_DIR)

P, T = PathCode, Topic

ANSHUN_CASES = [
    # disclosure → the disclosure office, whatever the subject or place
    (P.DISCLOSURE, T.SOCIAL_ASSISTANCE, "西秀区", "disclosure_office"),
    (P.DISCLOSURE, T.OTHER, None, "disclosure_office"),
    # reconsideration and litigation → the legal section
    (P.RECONSIDERATION, T.SOCIAL_ASSISTANCE, "西秀区", "legal"),
    (P.RECONSIDERATION, T.MARRIAGE_ADOPTION, None, "legal"),
    (P.LITIGATION, T.FUNERAL, "平坝区", "legal"),
    # the legal channel comes before the subject: in court and not civil affairs is litigation
    (P.LITIGATION, T.OTHER, None, "legal"),
    # petition / mediation with a known district → the county bureau
    (P.PETITION, T.SOCIAL_ASSISTANCE, "西秀区", "xixiu"),
    (P.PETITION, T.ELDERLY_CARE, "紫云县", "ziyun"),
    (P.MEDIATION, T.FUNERAL, "关岭县", "guanling"),
    (P.PETITION, T.COMMUNITY, "普定县", "puding"),
    (P.MEDIATION, T.PLACE_NAMES, "平坝区", "pingba"),
    (P.PETITION, T.CHILD_WELFARE, "黄果树", "huangguoshu"),
    (P.PETITION, T.DISABILITY, "经开区", "jingkai"),
    # … named by its full name or an alias
    (P.PETITION, T.DISABILITY, "镇宁布依族苗族自治县", "zhenning"),
    (P.PETITION, T.DISABILITY, "镇宁", "zhenning"),
    # unknown district → the city section for the topic
    (P.PETITION, T.SOCIAL_ASSISTANCE, None, "social_assistance"),
    (P.PETITION, T.ELDERLY_CARE, None, "elderly_care"),
    (P.PETITION, T.MARRIAGE_ADOPTION, None, "social_affairs"),
    (P.MEDIATION, T.FUNERAL, None, "social_affairs"),
    (P.PETITION, T.DISABILITY, None, "social_affairs"),
    (P.PETITION, T.CHILD_WELFARE, None, "child_welfare"),
    (P.MEDIATION, T.PLACE_NAMES, None, "place_names"),
    (P.PETITION, T.COMMUNITY, None, "community"),
    (P.PETITION, T.SOCIAL_ORG, None, "social_org"),
    (P.PETITION, T.CHARITY, None, "charity"),
    # district known but the zone bureau does not handle the topic → the city section
    (P.PETITION, T.MARRIAGE_ADOPTION, "经开区", "social_affairs"),
    (P.PETITION, T.SOCIAL_ORG, "黄果树", "social_org"),
    (P.MEDIATION, T.PLACE_NAMES, "经开区", "place_names"),
    # not civil affairs → the fallback desk, district or not
    (P.PETITION, T.OTHER, "西秀区", "general_desk"),
    (P.MEDIATION, T.OTHER, None, "general_desk"),
]

BAOSHAN_CASES = [
    (P.DISCLOSURE, T.ELDERLY_CARE, "大场镇", "office"),
    (P.RECONSIDERATION, T.SOCIAL_ASSISTANCE, "顾村镇", "office"),
    (P.LITIGATION, T.OTHER, None, "office"),
    (P.PETITION, T.OTHER, "吴淞街道", "office"),
    (P.PETITION, T.SOCIAL_ASSISTANCE, "大场镇", "dachang"),
    (P.PETITION, T.SOCIAL_ASSISTANCE, "大场", "dachang"),
    (P.PETITION, T.DISABILITY, "宝山城市工业园区", "industrial_park"),
    (P.PETITION, T.ELDERLY_CARE, "宝山工业园区", "industrial_park"),
    (P.PETITION, T.CHILD_WELFARE, "友谊路街道", "youyilu"),
    # mediation is never done at the 街镇 centres in this organisation
    (P.MEDIATION, T.ELDERLY_CARE, "大场镇", "elderly_care"),
    # topics the centres do not handle → the district bureau's sections
    (P.PETITION, T.MARRIAGE_ADOPTION, "顾村镇", "social_affairs"),
    (P.PETITION, T.PLACE_NAMES, "罗店镇", "community"),
    (P.PETITION, T.CHARITY, "罗泾镇", "social_org"),
    (P.PETITION, T.SOCIAL_ASSISTANCE, None, "social_assistance"),
]


@pytest.mark.parametrize(("path", "topic", "district", "unit"), ANSHUN_CASES)
def test_anshun_routes(path: PathCode, topic: Topic, district: str | None, unit: str) -> None:
    assert route(ANSHUN, path, topic, district).unit == unit


@pytest.mark.parametrize(("path", "topic", "district", "unit"), BAOSHAN_CASES)
def test_baoshan_routes(path: PathCode, topic: Topic, district: str | None, unit: str) -> None:
    assert route(BAOSHAN, path, topic, district).unit == unit


@pytest.mark.parametrize("data", [ANSHUN, BAOSHAN], ids=["anshun", "baoshan"])
def test_every_combination_lands_on_a_known_unit(data: RoutingTables) -> None:
    ids = {u.id for u in data.units.units}
    districts = [None, "某地", *(d.name for d in data.units.districts)]
    for path in PathCode:
        for topic in Topic:
            for district in districts:
                decision = route(data, path, topic, district)
                assert decision.unit in ids, (path, topic, district)
                assert decision.explanation


def test_decision_names_the_rule_and_explains_in_chinese() -> None:
    decision = route(ANSHUN, "petition", "social_assistance", "西秀区")
    rules = ANSHUN.routing.rules
    assert isinstance(decision.rule, int)
    assert rules[decision.rule].unit == "by_district"
    assert decision.note == rules[decision.rule].note
    assert decision.explanation == (
        f"信访·社会救助·西秀区 → 西秀区民政局（第{decision.rule + 1}条规则）"
    )


def test_strings_are_accepted_for_path_and_topic() -> None:
    assert route(ANSHUN, "disclosure", "other", None) == route(
        ANSHUN, PathCode.DISCLOSURE, Topic.OTHER, None
    )


def test_unknown_path_or_topic_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="complaint"):
        route(ANSHUN, "complaint", "other", None)
    with pytest.raises(ValueError, match="weather"):
        route(ANSHUN, "petition", "weather", None)


def test_unknown_district_is_treated_as_unknown_and_said_so() -> None:
    decision = route(ANSHUN, PathCode.PETITION, Topic.SOCIAL_ASSISTANCE, "火星")
    assert decision.unit == "social_assistance"
    assert "县区“火星”未识别" in decision.explanation
    blank = route(ANSHUN, PathCode.PETITION, Topic.SOCIAL_ASSISTANCE, "  ")
    assert blank.unit == "social_assistance"
    assert "县区不明" in blank.explanation


def test_explanation_uses_the_organisation_word_for_its_subdivisions() -> None:
    decision = route(BAOSHAN, PathCode.PETITION, Topic.SOCIAL_ASSISTANCE, None)
    assert decision.explanation == "信访·社会救助·街道/镇不明 → 社会救助科（第5条规则）"


def test_canonical_district() -> None:
    assert canonical_district(ANSHUN, "关岭布依族苗族自治县") == "关岭县"
    assert canonical_district(ANSHUN, " 开发区 ") == "经开区"
    assert canonical_district(ANSHUN, "黄果树") == "黄果树"
    assert canonical_district(ANSHUN, "大场镇") is None  # Baoshan's, not Anshun's
    assert canonical_district(BAOSHAN, "大场") == "大场镇"
    assert canonical_district(ANSHUN, None) is None


def _with_rules(*rules: RoutingRule, fallback: str = "general_desk") -> RoutingTables:
    return RoutingTables(ANSHUN.units, RoutingFile(fallback=fallback, rules=list(rules)))


def test_nothing_matched_goes_to_the_fallback() -> None:
    data = _with_rules(RoutingRule(path=[PathCode.DISCLOSURE], unit="disclosure_office"))
    decision = route(data, PathCode.PETITION, Topic.FUNERAL, "西秀区")
    assert decision == RouteDecision(
        "general_desk", "fallback", "信访·殡葬·西秀区 → 办公室（信访接待）（无适用规则，兜底）"
    )


def test_by_district_rule_does_not_apply_without_a_unit_for_the_topic() -> None:
    data = _with_rules(
        RoutingRule(unit="by_district"),
        RoutingRule(topic=[Topic.SOCIAL_ORG], unit="social_org"),
    )
    assert route(data, PathCode.PETITION, Topic.SOCIAL_ORG, "西秀区").rule == 0
    skipped = route(data, PathCode.PETITION, Topic.SOCIAL_ORG, "经开区")
    assert (skipped.unit, skipped.rule) == ("social_org", 1)
    assert route(data, PathCode.PETITION, Topic.SOCIAL_ORG, None).rule == 1


def test_rules_by_named_district_and_district_known() -> None:
    data = _with_rules(
        RoutingRule(district=["平坝区"], unit="community"),
        RoutingRule(district_known=False, unit="legal"),
    )
    assert route(data, PathCode.PETITION, Topic.FUNERAL, "平坝").unit == "community"
    assert route(data, PathCode.PETITION, Topic.FUNERAL, "西秀区").rule == "fallback"
    assert route(data, PathCode.PETITION, Topic.FUNERAL, None).unit == "legal"


def test_first_matching_rule_wins() -> None:
    data = _with_rules(
        RoutingRule(topic=[Topic.OTHER], unit="general_desk"),
        RoutingRule(path=[PathCode.LITIGATION], unit="legal"),
    )
    assert route(data, PathCode.LITIGATION, Topic.OTHER, None).unit == "general_desk"


# --------------------------------------------------------------------------- hand-overs

AT = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def test_first_assignment_leads() -> None:
    first = Assignment.first("xixiu")
    assert (first.unit, first.lead_unit, first.hops, first.hop_count) == ("xixiu", "xixiu", (), 0)


def test_transfer_records_the_hop_and_keeps_the_lead() -> None:
    first = Assignment.first("xixiu")
    moved = transfer(first, "social_affairs", " 属婚姻登记事项 ", ANSHUN, at=AT)
    assert moved.unit == "social_affairs"
    assert moved.lead_unit == "xixiu"  # 首接负责
    assert moved.hops == (Transfer("xixiu", "social_affairs", "属婚姻登记事项", AT),)
    assert moved.hop_count == 1


def test_transfer_may_reassign_the_lead_explicitly() -> None:
    moved = transfer(
        Assignment.first("general_desk"), "xixiu", "属地办理", ANSHUN, reassign_lead=True
    )
    assert (moved.unit, moved.lead_unit) == ("xixiu", "xixiu")
    assert moved.hops[0] == Transfer("general_desk", "xixiu", "属地办理", None, True)


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_transfer_without_a_reason_is_refused(reason: str) -> None:
    with pytest.raises(HandoverError, match="理由"):
        transfer(Assignment.first("xixiu"), "legal", reason, ANSHUN)


def test_transfer_to_an_unknown_unit_is_refused() -> None:
    with pytest.raises(UnknownUnit, match="nowhere") as caught:
        transfer(Assignment.first("xixiu"), "nowhere", "不属本单位", ANSHUN)
    assert isinstance(caught.value, RoutingError)
    assert isinstance(caught.value, KeyError)
    assert caught.value.unit_id == "nowhere"


def test_transfer_to_itself_is_refused() -> None:
    with pytest.raises(HandoverError, match="本单位"):
        transfer(Assignment.first("xixiu"), "xixiu", "再看看", ANSHUN)


def test_hand_back_goes_to_the_fallback_unit() -> None:
    back = hand_back(Assignment.first("xixiu"), "不属民政职责", ANSHUN, at=AT)
    assert back.unit == ANSHUN.routing.fallback == "general_desk"
    assert back.lead_unit == "xixiu"
    assert back.hops == (HandBack("xixiu", "general_desk", "不属民政职责", AT),)
    assert back.hand_backs == 1


def test_hand_back_follows_the_organisation_config() -> None:
    back = hand_back(Assignment.first("dachang"), "需区局协调", BAOSHAN)
    assert back.unit == "office"


@pytest.mark.parametrize("reason", ["", "  "])
def test_hand_back_without_a_reason_is_refused(reason: str) -> None:
    with pytest.raises(HandoverError, match="理由"):
        hand_back(Assignment.first("xixiu"), reason, ANSHUN)


def test_the_fallback_unit_cannot_hand_back_to_itself() -> None:
    with pytest.raises(HandoverError, match="兜底"):
        hand_back(Assignment.first("general_desk"), "不归我们", ANSHUN)


def test_hops_are_counted_across_a_chain() -> None:
    decision = route(ANSHUN, PathCode.PETITION, Topic.SOCIAL_ASSISTANCE, "西秀区")
    a = Assignment.first(decision.unit)
    a = transfer(a, "pingba", "申请人户籍在平坝", ANSHUN)
    a = hand_back(a, "申请人已迁出本区", ANSHUN)
    a = transfer(a, "social_assistance", "跨县区，由市局协调", ANSHUN)
    assert a.hop_count == 3
    assert a.hand_backs == 1
    assert a.lead_unit == "xixiu"
    assert a.units_involved == ("xixiu", "pingba", "general_desk", "social_assistance")
    assert all(isinstance(h, Transfer | HandBack) for h in a.hops)


def test_assignments_are_immutable() -> None:
    first = Assignment.first("xixiu")
    transfer(first, "legal", "涉及复议", ANSHUN)
    assert first.hops == ()


# --------------------------------------------------------------------------- no place hard-coded


def _code_strings(source: str) -> list[str]:
    """String literals of a module, docstrings excluded."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize(
    "module", ["routing/router.py", "routing/lifecycle.py", "bot/cli/check_config.py"]
)
def test_no_organisation_is_hard_coded(module: str) -> None:
    names: set[str] = set()
    for data in (ANSHUN, BAOSHAN):
        org = data.units.organisation
        names |= {org.id, org.name}
        for district in data.units.districts:
            names |= {district.name, *district.aliases, *district.towns}
        names |= {u.name for u in data.units.units}  # ids are plain words: legal, office…
    literals = _code_strings((ROOT / module).read_text(encoding="utf-8"))
    found = sorted({n for n in names for s in literals if n and n in s and len(n) > 1})
    assert found == [], f"{module} hard-codes {found}"
