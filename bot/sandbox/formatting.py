"""parse_mode=HTML as Telegram understands it: a small tag set, strictly nested.

Telegram turns the markup into plain text plus MessageEntity objects whose offsets and
lengths count UTF-16 code units, and refuses the whole message ("can't parse entities")
on an unknown tag, an unclosed tag or a mismatched end tag, citing UTF-8 byte offsets.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.errors import BotApiError, bad_request

# The supported tags, from the Bot API "HTML style" formatting section.
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_ATTR_TAGS = {"a", "span", "tg-emoji", "blockquote"}
# Only these named entities are decoded; numeric ones always are (Bot API docs).
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>")
_ATTR = re.compile(r"""([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);")


def utf16_len(text: str) -> int:
    """Entity offsets are in UTF-16 code units (Bot API, MessageEntity)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    tag: str
    entity: dict[str, Any] | None
    start: int


@dataclass
class _Parser:
    source: str
    text: list[str] = field(default_factory=list)
    length: int = 0
    stack: list[_Open] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)

    def byte_offset(self, index: int) -> int:
        return len(self.source[:index].encode("utf-8"))

    def fail(self, reason: str) -> BotApiError:
        return bad_request(f"can't parse entities: {reason}")

    def append(self, chunk: str) -> None:
        self.text.append(chunk)
        self.length += utf16_len(chunk)

    def open_tag(self, name: str, attrs: dict[str, str], index: int) -> None:
        entity = self.entity_for(name, attrs, index)
        if name == "code" and self.stack and self.stack[-1].tag == "pre":
            language = attrs.get("class", "")
            parent = self.stack[-1].entity
            if language.startswith("language-") and parent is not None:
                parent["language"] = language.removeprefix("language-")
                entity = None  # <pre><code class="language-x"> is one pre entity
        self.stack.append(_Open(name, entity, self.length))

    def entity_for(self, name: str, attrs: dict[str, str], index: int) -> dict[str, Any] | None:
        if name in _SIMPLE_TAGS:
            return {"type": _SIMPLE_TAGS[name]}
        if name == "a":
            href = attrs.get("href")
            if not href:
                return None  # Telegram keeps the text of an <a> without href as plain text
            match = re.fullmatch(r"tg://user\?id=(\d+)", href)
            if match:
                return {"type": "text_mention", "user": {"id": int(match.group(1))}}
            return {"type": "text_link", "url": href}
        if name == "span":
            if attrs.get("class") != "tg-spoiler":
                raise self.fail(
                    f'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{self.byte_offset(index)}"
                )
            return {"type": "spoiler"}
        if name == "tg-emoji":
            return {"type": "custom_emoji", "custom_emoji_id": attrs.get("emoji-id", "")}
        if name == "blockquote":
            kind = "expandable_blockquote" if "expandable" in attrs else "blockquote"
            return {"type": kind}
        raise self.fail(f'Unsupported start tag "{name}" at byte offset {self.byte_offset(index)}')

    def close_tag(self, name: str, index: int) -> None:
        if not self.stack:
            raise self.fail(f"Unexpected end tag at byte offset {self.byte_offset(index)}")
        opened = self.stack.pop()
        if opened.tag != name:
            raise self.fail(
                f"Unmatched end tag at byte offset {self.byte_offset(index)}, "
                f'expected "</{opened.tag}>", found "</{name}>"'
            )
        if opened.entity is not None and self.length > opened.start:
            entity = {"offset": opened.start, "length": self.length - opened.start}
            self.entities.append({**opened.entity, **entity})


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities of an HTML-formatted text, or 400 like Telegram."""
    parser = _Parser(source)
    position = 0
    while position < len(source):
        lt = source.find("<", position)
        chunk_end = len(source) if lt == -1 else lt
        parser.append(_decode_entities(source[position:chunk_end]))
        if lt == -1:
            break
        match = _TAG.match(source, lt)
        if match is None:
            raise parser.fail(f'Unsupported start tag "" at byte offset {parser.byte_offset(lt)}')
        closing, name = match.group(1) == "/", match.group(2).lower()
        if name not in _SIMPLE_TAGS and name not in _ATTR_TAGS:
            raise parser.fail(
                f'Unsupported start tag "{name}" at byte offset {parser.byte_offset(lt)}'
            )
        if closing:
            parser.close_tag(name, lt)
        else:
            parser.open_tag(name, _attributes(match.group(3)), lt)
        position = match.end()
    if parser.stack:
        raise parser.fail(
            f'Can\'t find end tag corresponding to start tag "{parser.stack[-1].tag}"'
        )
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.text), entities


def _attributes(raw: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for match in _ATTR.finditer(raw.rstrip("/")):
        value = match.group(2) or match.group(3) or match.group(4) or ""
        attrs[match.group(1).lower()] = html.unescape(value)
    return attrs


def _decode_entities(chunk: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED_ENTITIES.get(name, match.group(0))

    return _ENTITY.sub(replace, chunk)


_RENDER_TAGS = {
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "spoiler": ('<span class="spoiler">', "</span>"),
    "code": ("<code>", "</code>"),
    "pre": ("<pre>", "</pre>"),
    "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ("<blockquote>", "</blockquote>"),
}


def entities_to_html(text: str, entities: list[dict[str, Any]]) -> str:
    """Safe HTML for the sandbox page: text escaped, known entities rendered."""
    units = text.encode("utf-16-le")
    opens: dict[int, list[str]] = {}
    closes: dict[int, list[str]] = {}
    for entity in entities:
        start, end = entity["offset"], entity["offset"] + entity["length"]
        if entity["type"] == "text_link":
            url = html.escape(str(entity.get("url", "")), quote=True)
            tags = (f'<a href="{url}" target="_blank" rel="noopener">', "</a>")
        else:
            tags = _RENDER_TAGS.get(entity["type"], ("", ""))
        opens.setdefault(start, []).append(tags[0])
        closes.setdefault(end, []).insert(0, tags[1])
    out: list[str] = []
    for unit in range(len(units) // 2 + 1):
        out.extend(closes.get(unit, []))
        out.extend(opens.get(unit, []))
        if unit < len(units) // 2:
            out.append(_unit_char(units, unit))
    return "".join(out)


def _unit_char(units: bytes, index: int) -> str:
    # Each UTF-16 unit is emitted on its own; a surrogate pair is joined by decoding the
    # pair when its first half is seen, and the second half contributes nothing.
    code = int.from_bytes(units[index * 2 : index * 2 + 2], "little")
    if 0xD800 <= code < 0xDC00:
        return html.escape(units[index * 2 : index * 2 + 4].decode("utf-16-le"))
    if 0xDC00 <= code < 0xE000:
        return ""
    return html.escape(chr(code))
