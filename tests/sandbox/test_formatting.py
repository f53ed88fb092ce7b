"""parse_mode=HTML → text and entities, and back to safe HTML for the page."""

from __future__ import annotations

import pytest

from bot.sandbox.errors import BotApiError
from bot.sandbox.formatting import entities_to_html, parse_html


def test_nested_tags_and_pre_language() -> None:
    text, entities = parse_html(
        '<b>办理<i>时限</i></b>\n<pre><code class="language-python">x = 1</code></pre>'
    )

    assert text == "办理时限\nx = 1"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 4},
        {"type": "italic", "offset": 2, "length": 2},
        {"type": "pre", "language": "python", "offset": 5, "length": 5},
    ]


def test_spoiler_blockquote_and_numeric_entities() -> None:
    text, entities = parse_html(
        '<span class="tg-spoiler">密</span><blockquote expandable>&#x4E2D;&#25991;</blockquote>'
    )

    assert text == "密中文"
    assert [e["type"] for e in entities] == ["spoiler", "expandable_blockquote"]


def test_error_cites_utf8_byte_offset() -> None:
    with pytest.raises(BotApiError) as caught:
        parse_html("你好<p>x</p>")

    assert caught.value.description == (
        'Bad Request: can\'t parse entities: Unsupported start tag "p" at byte offset 6'
    )


def test_span_needs_the_spoiler_class() -> None:
    with pytest.raises(BotApiError, match='must have class "tg-spoiler"'):
        parse_html("<span>x</span>")


def test_rendering_escapes_text_and_keeps_surrogate_pairs() -> None:
    html = entities_to_html("😀 <x> & 加粗", [{"type": "bold", "offset": 9, "length": 2}])

    assert html == "😀 &lt;x&gt; &amp; <b>加粗</b>"
