"""Constants and small helpers shared by the service modules."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from routing.config import PathCode
from routing.lifecycle import SETTLED_STATES, State

UNIT_LANGUAGE = "zh"  # the bureau's groups work in Chinese
CARD_TEXT_LIMIT = 1500  # the card must stay under Telegram's 4096 characters with its header

# The first statutory period the citizen is told about when filing (the confirm screen).
FIRST_RULE: Mapping[str, str] = {
    PathCode.PETITION: "petition.acknowledge",  # 信访工作条例 Art 23: accepted or not, 15 days
    PathCode.LITIGATION: "litigation.guidance",
    PathCode.MEDIATION: "mediation.accept",
    PathCode.RECONSIDERATION: "reconsideration.guidance",
    PathCode.DISCLOSURE: "disclosure.reply",  # 条例 Art 33: 20 working days
}
# The period the answer (办结) meets, per path.
ANSWER_RULE: Mapping[str, str] = {
    PathCode.PETITION: "petition.respond",
    PathCode.LITIGATION: "litigation.guidance",
    PathCode.MEDIATION: "mediation.conclude",
    PathCode.RECONSIDERATION: "reconsideration.guidance",
    PathCode.DISCLOSURE: "disclosure.reply",
}
# Periods met by acceptance (受理告知), and the period acceptance starts.
ACCEPT_MEETS: Mapping[str, str] = {
    PathCode.PETITION: "petition.acknowledge",
    PathCode.MEDIATION: "mediation.accept",
}
ACCEPT_STARTS: Mapping[str, str] = {
    PathCode.PETITION: "petition.respond",  # 信访工作条例 Art 34: 60 days from acceptance
    PathCode.MEDIATION: "mediation.conclude",  # 人民调解工作若干规定 Art 33: one month
}
# Extensions: the running period → the rule that extends it (with the cap in paths.yaml).
EXTENSION_OF: Mapping[str, str] = {
    "petition.respond": "petition.extension",  # Art 34: ≤ 30 days, head's approval, reason told
    "disclosure.reply": "disclosure.extension",  # 条例 Art 33: ≤ 20 working days, applicant told
}
# Not duties of the bureau: the citizen's own windows, and the latest day a 补正 notice may
# go out (only needed when the application is unclear). Never "overdue" for a unit.
NOT_DUTIES = frozenset(
    {
        "reconsideration.application_window",
        "litigation.filing_window",
        "disclosure.supplement_notice",
    }
)
OPEN_STATES = frozenset(State) - SETTLED_STATES - {State.ANSWERED}


def esc(text: object) -> str:
    """User-provided text into an HTML message."""
    return html.escape(str(text), quote=False)


def clip(text: str, limit: int) -> str:
    """Plain text cut to ``limit`` characters (for HTML, :func:`clip_html`)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^<>]*>")
_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


def clip_html(markup: str, limit: int) -> str:
    """An HTML message cut to ``limit`` characters as Telegram counts them: after parsing,
    tags gone and entities decoded (Bot API sendMessage: 1-4096 characters "after entities
    parsing"; a caption 1024). Never cut inside a tag or an entity, and the tags left open
    are closed again: Telegram refuses the whole message otherwise ("can't parse
    entities"), and an escaped text can be several times longer than what it shows."""
    if len(markup) <= limit or len(html.unescape(_TAG.sub("", markup))) <= limit:
        return markup
    kept: list[str] = []
    open_tags: list[str] = []
    shown, position = 0, 0
    while position < len(markup) and shown < limit - 1:  # room for the "…"
        if tag := _TAG.match(markup, position):
            closing, name = tag.group(1), tag.group(2).lower()
            if not closing:
                open_tags.append(name)
            elif open_tags and open_tags[-1] == name:
                open_tags.pop()
            piece = tag.group()
        elif entity := _ENTITY.match(markup, position):
            piece, shown = entity.group(), shown + 1
        else:
            piece, shown = markup[position], shown + 1
        kept.append(piece)
        position += len(piece)
    return "".join(kept) + "…" + "".join(f"</{name}>" for name in reversed(open_tags))
