"""Everything a person reads, in Chinese (the default) and English: ``config/texts.yaml``.

``Texts.get(key, lang, **fmt)`` looks the key up in the person's language (falling back to
Chinese) and fills ``{placeholders}`` with ``str.format``. A value may be a :class:`Ref` to
another key, rendered in the same language: a service can say "state {state}" without
knowing who will read it. Values are inserted as given: escape user text (``html.escape``)
before passing it, since messages are sent with ``parse_mode=HTML``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from routing.config import DEFAULT_CONFIG_DIR

DEFAULT_LANGUAGE = "zh"
LANGUAGES = ("zh", "en")
TEXTS_FILE = "texts.yaml"


@dataclass(frozen=True)
class Ref:
    """Another text, by key, in the reader's language (e.g. ``Ref("state.accepted")``)."""

    key: str
    fmt: Mapping[str, Any] | None = None


class TextsError(ValueError):
    """texts.yaml is malformed; the message names the key."""


def _flatten(node: Mapping[str, Any], prefix: str, into: dict[str, dict[str, str]]) -> None:
    for name, value in node.items():
        key = f"{prefix}{name}"
        if not isinstance(value, Mapping):
            raise TextsError(f"{TEXTS_FILE}: {key}: expected a mapping")
        if set(value) <= set(LANGUAGES) and all(isinstance(v, str) for v in value.values()):
            into[key] = {lang: text.rstrip("\n") for lang, text in value.items()}
        else:
            _flatten(value, f"{key}.", into)


def placeholders(template: str) -> set[str]:
    """The ``{names}`` in a template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class Texts:
    """The loaded texts; keys are dotted paths into texts.yaml (``citizen.start``)."""

    def __init__(self, table: Mapping[str, Mapping[str, str]]) -> None:
        self._table = {key: dict(value) for key, value in table.items()}

    @classmethod
    def load(cls, path: Path | str | None = None) -> Texts:
        """A texts file, or ``texts.yaml`` in a config folder (default: the project's)."""
        file = Path(path) if path is not None else DEFAULT_CONFIG_DIR
        if file.is_dir():
            file = file / TEXTS_FILE
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        table: dict[str, dict[str, str]] = {}
        _flatten(raw, "", table)
        return cls(table)

    @property
    def keys(self) -> list[str]:
        return sorted(self._table)

    def has(self, key: str) -> bool:
        return key in self._table

    def raw(self, key: str, lang: str) -> str:
        """The template itself; KeyError for an unknown key."""
        entry = self._table[key]
        return entry.get(lang) or entry[DEFAULT_LANGUAGE]

    def get(self, key: str, lang: str | None = DEFAULT_LANGUAGE, /, **fmt: Any) -> str:
        """The text ``key`` in ``lang`` (Chinese when that language lacks it), formatted."""
        language = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        template = self.raw(key, language)
        if not fmt:
            return template
        values = {
            name: self.get(value.key, language, **(value.fmt or {}))
            if isinstance(value, Ref)
            else value
            for name, value in fmt.items()
        }
        return template.format(**values)

    def label(self, group: str, code: str | None, lang: str) -> str:
        """``label("path", "petition", "zh")`` → 信访; an unknown code is shown as is."""
        if code is None:
            return "—"
        key = f"{group}.{code}"
        return self.get(key, lang) if key in self._table else code
