"""config/texts.yaml: every key in both languages with the same placeholders, and every key
the code asks for exists."""

from __future__ import annotations

import re
from pathlib import Path

from bot.services.intake import QUESTIONS
from bot.services.reply_types import REPLY_GROUPS, REPLY_TYPES
from bot.texts import LANGUAGES, Ref, Texts, placeholders
from routing.config import PathCode, Topic
from routing.deadlines import DeadlineRules
from routing.lifecycle import Action, State

ROOT = Path(__file__).resolve().parents[2]


def test_every_key_has_both_languages_and_the_same_placeholders(texts: Texts) -> None:
    for key in texts.keys:
        assert {lang: bool(texts.raw(key, lang).strip()) for lang in LANGUAGES} == {
            "zh": True,
            "en": True,
        }, key
        assert placeholders(texts.raw(key, "zh")) == placeholders(texts.raw(key, "en")), key
        # The English text must not be a copy of the Chinese (a forgotten translation).
        if re.search(r"[\u4e00-\u9fff]{4}", texts.raw(key, "zh")):
            assert texts.raw(key, "en") != texts.raw(key, "zh"), key


def test_labels_for_every_code(texts: Texts) -> None:
    groups = {
        "path": [p.value for p in PathCode],
        "topic": [t.value for t in Topic],
        "state": [s.value for s in State],
        "action": [a.value for a in Action],
        "rule": list(DeadlineRules.load()),
        "reply_type": [*REPLY_GROUPS, *REPLY_TYPES],
        "remedy": [p.value for p in PathCode],
        "next": [p.value for p in PathCode],
        "receipt.due": [p.value for p in PathCode],
        "ask": sorted({spec.key for specs in QUESTIONS.values() for spec in specs}),
    }
    for group, codes in groups.items():
        for code in codes:
            assert texts.has(f"{group}.{code}"), f"{group}.{code}"
    for specs in QUESTIONS.values():
        for spec in specs:
            for choice in spec.choices:
                assert texts.has(f"choice.{spec.key}.{choice}")


def test_every_literal_key_in_the_code_exists(texts: Texts) -> None:
    pattern = re.compile(
        r'"((?:citizen|staff|supervisor|admin|error|invalid|post|receipt|card|deadline|menu'
        r"|review|answer)\.[a-z_.]+[a-z_])\""
    )
    sources = [
        *ROOT.joinpath("bot", "services").glob("*.py"),
        *ROOT.joinpath("handlers").glob("*.py"),
    ]
    found = {key for path in sources for key in pattern.findall(path.read_text(encoding="utf-8"))}
    assert found, "the pattern no longer finds keys"
    missing = sorted(key for key in found if not texts.has(key) and not key.endswith("."))
    assert missing == []


def test_get_formats_and_resolves_refs(texts: Texts) -> None:
    text = texts.get(
        "error.illegal_transition", "en", state=Ref("state.routed"), action=Ref("action.answer")
    )
    assert text == "This matter is “Assigned”; it cannot be “answer” now."
    assert texts.get("state.routed", "fr") == "已分办"  # unknown language → Chinese
    assert texts.label("path", None, "zh") == "—"
    assert texts.label("field", "unknown", "zh") == "unknown"
