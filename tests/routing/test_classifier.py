"""The classifier: diversion rules, robustness, and quality on the labelled corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.eval_classifier import evaluate, load_corpus
from routing.classifier import Classifier
from routing.config import PathCode, Topic, load_config

DATA = Path(__file__).resolve().parent.parent / "data"
CORPORA = sorted(p for p in DATA.glob("*.jsonl"))


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.from_config(load_config())


# --------------------------------------------------------------------------- diversion rules


@pytest.mark.parametrize(
    ("text", "path"),
    [
        # 条例 Art 39: a complaint dressed as a disclosure request is a petition ...
        ("我申请信息公开，公开村主任优亲厚友吃低保的名单，要求严肃查处", PathCode.PETITION),
        # ... but records about oneself are disclosure even when the person is unhappy.
        (
            "我对取消低保很不满，但先要你们把我家的入户调查记录和审批表复印给我",
            PathCode.DISCLOSURE,
        ),
        ("申请公开2024年西秀区临时救助资金使用情况", PathCode.DISCLOSURE),
        # 信访工作条例 Art 31: a matter in court is litigation, whatever it is called.
        ("我要信访！法院判了两年了赔偿款一分没拿到，执行局也不管", PathCode.LITIGATION),
        ("投诉：养老院的纠纷我们已经起诉到法院了，下周开庭", PathCode.LITIGATION),
        ("调解？不用了，低保的事我已经在法院立案了", PathCode.LITIGATION),
        ("我要告民政局，行政诉讼怎么立案", PathCode.LITIGATION),
        # Contesting a decision is reconsideration, even without the word 复议 ...
        ("我家低保无缘无故被取消了，要求恢复", PathCode.RECONSIDERATION),
        ("民政局不予登记我们协会，我们不服，要求撤销这个决定", PathCode.RECONSIDERATION),
        # ... while accepting it and asking for new help is a petition.
        ("低保取消了我认了，确实超标，那还能申请临时救助吗", PathCode.PETITION),
        # A dispute with another party inside civil affairs is mediation.
        ("养老院收了押金不退，我们两边谈不拢，请民政局调解", PathCode.MEDIATION),
        ("我们村和隔壁村的界线吵了好多年，界桩都被挪了", PathCode.MEDIATION),
        # A plain complaint about service, with nothing to settle, is a petition.
        ("敬老院伙食太差了，护工态度不好，希望你们管一管", PathCode.PETITION),
        # Outside civil affairs and not in court: a petition about "other".
        ("包工头拖欠工资三个月了怎么办", PathCode.PETITION),
        # Court only as background, new help wanted: a petition.
        ("法院判离婚以后我一个人带孩子，生活困难，想申请低保", PathCode.PETITION),
        # Negated: the person says they do not want to sue.
        ("我不想打官司，就想请你们帮忙调解和公墓的纠纷", PathCode.MEDIATION),
    ],
)
def test_diversion_rules(classifier: Classifier, text: str, path: PathCode) -> None:
    got = classifier.classify(text)
    assert got.path is path, (text, got.reasons)


def test_outside_civil_affairs_is_other(classifier: Classifier) -> None:
    got = classifier.classify("我要行政复议！交警罚了我两百块，我没超载")
    assert (got.path, got.topic) == (PathCode.PETITION, Topic.OTHER)


@pytest.mark.parametrize(
    ("text", "topic", "district"),
    [
        ("旧州镇的低保什么时候发", Topic.SOCIAL_ASSISTANCE, "西秀区"),
        ("镇宁布依族苗族自治县敬老院收费太高", Topic.ELDERLY_CARE, "镇宁县"),
        ("安顺经济技术开发区的结婚登记在哪里办", Topic.MARRIAGE_ADOPTION, "经开区"),
        ("黄果树景区附近乱埋乱葬", Topic.FUNERAL, "黄果树"),
        ("關嶺縣某協會亂收會費", Topic.SOCIAL_ORG, "关岭县"),
        ("留守儿童没人管", Topic.CHILD_WELFARE, None),
        ("村委会换届选举不公开", Topic.COMMUNITY, None),
        ("残疾人两项补贴怎么申请", Topic.DISABILITY, None),
        ("慈善募捐是不是要备案", Topic.CHARITY, None),
        ("我们小区门牌号编错了", Topic.PLACE_NAMES, None),
    ],
)
def test_topic_and_district(
    classifier: Classifier, text: str, topic: Topic, district: str | None
) -> None:
    got = classifier.classify(text)
    assert (got.topic, got.district) == (topic, district)


def test_shared_short_town_name_names_no_district(classifier: Classifier) -> None:
    # 猴场 is a township of 普定县 and a town of 紫云县: only the full name places it.
    assert classifier.classify("猴场的低保").district is None
    assert classifier.classify("猴场镇的低保").district == "紫云县"


def test_reasons_name_the_cues(classifier: Classifier) -> None:
    got = classifier.classify("我已经起诉了，下个月开庭，低保的事")
    assert got.path is PathCode.LITIGATION
    assert any("诉讼" in r and "起诉" in r for r in got.reasons)
    assert any(r.startswith("事项类别：社会救助") for r in got.reasons)


# --------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😡😡😡",
        "\u200f\u202e低保\u202c被取消了\x00\x07",
        "Hi, my 低保 was cancelled, I want it restored!!",
        "低保" * 60_000,
        "ＡＢＣ１２３，全角的字",
    ],
)
def test_never_raises_and_stays_in_range(classifier: Classifier, text: str) -> None:
    got = classifier.classify(text)
    assert got.path in PathCode
    assert 0.0 < got.confidence <= 1.0
    assert got.reasons


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gets_a_decision(text: str) -> None:
    got = _shared_classifier().classify(text)
    assert got.path in PathCode
    assert got.topic in Topic
    assert 0.0 < got.confidence <= 1.0


_CACHE: dict[str, Classifier] = {}


def _shared_classifier() -> Classifier:
    if "c" not in _CACHE:
        _CACHE["c"] = Classifier.from_config(load_config())
    return _CACHE["c"]


def test_traditional_and_typos_are_normalised(classifier: Classifier) -> None:
    assert classifier.normalise("申請政府資訊公開，底保被取消") == "申请政府信息公开,低保被取消"


def test_classifier_is_deterministic(classifier: Classifier) -> None:
    text = "平坝区养老院收了押金不退，请民政局调解"
    assert classifier.classify(text) == classifier.classify(text)


# --------------------------------------------------------------------------- quality


def test_corpora_exist_and_are_well_formed() -> None:
    assert CORPORA, "no labelled corpora in tests/data"
    for corpus in CORPORA:
        items = load_corpus(corpus)
        assert len({i["id"] for i in items}) == len(items), corpus
        for item in items:
            assert PathCode(item["path"])
            assert Topic(item["topic"])


def test_training_corpus_meets_the_issue_size() -> None:
    items = load_corpus(DATA / "corpus.jsonl")
    assert len(items) >= 300
    assert sum(bool(i.get("hard")) for i in items) >= len(items) / 3
    assert {i["path"] for i in items} == {p.value for p in PathCode}


@pytest.mark.parametrize("corpus", CORPORA, ids=lambda p: p.name)
def test_quality_bar(classifier: Classifier, corpus: Path) -> None:
    """≥ 95 % path and ≥ 90 % topic accuracy (issue #2), on every labelled corpus."""
    report = evaluate(classifier, load_corpus(corpus))
    assert report.path_accuracy >= 0.95, f"{corpus.name}: path {report.path_accuracy:.1%}"
    assert report.topic_accuracy >= 0.90, f"{corpus.name}: topic {report.topic_accuracy:.1%}"


# --------------------------------------------------------------------------- CLI


def test_classify_cli_keeps_order_and_survives_bad_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from bot.cli import main

    lines = [
        json.dumps({"id": "a", "text": "申请公开2024年低保名单"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "c"}),
        json.dumps({"id": 4, "text": "养老院押金不退，请调解，平坝区"}, ensure_ascii=False),
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["classify"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == ["a", None, "c", 4]
    assert out[0]["path"] == "disclosure"
    assert out[0]["unit"] == "disclosure_office"
    assert "error" in out[1]
    assert "error" in out[2]
    assert set(out[3]) == {"id", "path", "topic", "district", "unit", "confidence", "reasons"}
    assert (out[3]["path"], out[3]["district"]) == ("mediation", "平坝区")
