"""Text → legal path, topic and district, with a confidence and the reasons that decided.

The lexicon is data (``config/classifier.yaml``) so staff can read and extend it:

- *signals* are named groups of cues, each one idea (``court_pending``: the matter is
  already before a court; ``contest_decision``: the person wants a decision undone);
- *rules* turn signals into evidence for paths, and carry the diversion rules of
  domain.md: a complaint dressed as a disclosure request is a petition (政府信息公开条例
  第三十九条); a matter before a court is litigation even when called 信访 (信访工作条例
  第三十一条); contesting a decision is reconsideration; a dispute with another party is
  mediation;
- *topics* are weighted cues per subject code;
- districts come from the organisation's gazetteer (``units.yaml``), not from code.

Text is normalised first: full-width forms folded (NFKC), traditional characters converted
to simplified (OpenCC ``t2s``), common typos mapped (``normalise``), emoji and control
characters dropped. Nothing is downloaded and nothing is trained at run time.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from routing.config import (
    ClassifierFile,
    Config,
    Cue,
    District,
    PathCode,
    Topic,
    UnitsFile,
)
from routing.learned import LinearModel, Vector, log_softmax, text_features

MODEL_FILE = "classifier_model.json"
LOG_FLOOR = -6.0
K = TypeVar("K", bound=str)

# Characters that never carry meaning for the classifier: controls, format marks
# (RLM/LRM, zero-width joiners) and the symbol planes where emoji live.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "So", "Sk"})
# A cheap test for the characters worth the per-character check above: controls, format
# marks, private use, surrogates, and the symbol blocks where emoji and dingbats live.
_MAYBE_DROPPED = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00a6\u00a9\u00ae\u00b0\u02c2-\u02ff\u200b-\u200f"
    "\u2028-\u202e\u2060-\u206f\u2100-\u2bff\u3200-\u33ff\ud800-\uf8ff\ufe00-\ufe0f"
    "\ufeff\ufff0-\uffff\U00010000-\U0010ffff]"
)
_CONTROLS = re.compile("[\x00-\x1f\x7f]")
MAX_CHARS = 20_000
"""Very long input is cut here: a petition letter is long, but not this long."""

TOWN_SUFFIXES = (
    "苗族仡佬族乡",
    "布依族苗族乡",
    "苗族布依族乡",
    "苗族乡",
    "布依族乡",
    "街道",
    "镇",
    "乡",
)


@dataclass(frozen=True)
class Classification:
    """What the classifier understood, and why."""

    path: PathCode
    topic: Topic
    district: str | None
    confidence: float
    reasons: tuple[str, ...]
    scores: Mapping[PathCode, float] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path.value,
            "topic": self.topic.value,
            "district": self.district,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    weights: Mapping[str, float]


@dataclass(frozen=True)
class _Owner:
    """Who a literal cue speaks for: a signal, or a topic with a weight."""

    signal: str | None
    topic: Topic | None
    weight: float
    offset: int  # where this cue starts inside the longer phrase that matched
    phrase: str


class _CueIndex:
    """Every plain-phrase cue of the lexicon in one Aho–Corasick automaton (pyahocorasick),
    scanned once per message: all occurrences of all phrases, overlapping ones included
    (养老 inside 养老院), in time linear in the text — a regex alternation of a thousand
    phrases tries them one by one at every position, ten times slower."""

    def __init__(self, owners: Mapping[str, list[_Owner]]) -> None:
        import ahocorasick  # C extension; imported here so importing routing stays cheap

        self.owners = dict(owners)
        self.automaton: Any = None
        if owners:
            self.automaton = ahocorasick.Automaton()
            for phrase in owners:
                self.automaton.add_word(phrase, phrase)
            self.automaton.make_automaton()

    def scan(self, text: str) -> list[tuple[int, _Owner]]:
        """(position, owner) for every cue occurrence in ``text``."""
        if self.automaton is None or not text:
            return []
        hits: list[tuple[int, _Owner]] = []
        for end, phrase in self.automaton.iter(text):
            start = end - len(phrase) + 1
            hits.extend((start, owner) for owner in self.owners[phrase])
        return hits


@lru_cache(maxsize=1)
def _converter() -> Any:
    import opencc  # C++ library; imported lazily so importing routing stays cheap

    return opencc.OpenCC("t2s")


class Classifier:
    """A classifier built from one organisation's config (lexicon + gazetteer)."""

    def __init__(
        self,
        lexicon: ClassifierFile,
        units: UnitsFile,
        learned: LinearModel | None = None,
    ) -> None:
        self.lexicon = lexicon
        # The learned layer: one model whose labels are "path:…" and "topic:…" (stack()).
        self.learned = learned
        labels = learned.labels if learned is not None else ()
        self._path_rows = [i for i, label in enumerate(labels) if label.startswith("path:")]
        self._topic_rows = [i for i, label in enumerate(labels) if label.startswith("topic:")]
        self._path_slots = [PathCode(labels[i].split(":", 1)[1]) for i in self._path_rows]
        self._topic_slots = [Topic(labels[i].split(":", 1)[1]) for i in self._topic_rows]
        self.path_mix = float(lexicon.settings.get("model_weight_path", 1.0))
        self.topic_mix = float(lexicon.settings.get("model_weight_topic", 1.0))
        self._normalise = (
            re.compile("|".join(re.escape(k) for k in sorted(lexicon.normalise, key=len)[::-1]))
            if lexicon.normalise
            else None
        )
        self._negators_re = _phrases_regex(lexicon.negators)
        self._near_negators = frozenset(lexicon.settings.get("near_negators", ()))
        breaks = str(lexicon.settings.get("clause_breaks", "，。！？；,.!?;\n"))
        self._clause_regex = re.compile(f"[{re.escape(breaks)}]")
        self._not_negation_re = _phrases_regex(lexicon.settings.get("not_negation", ()))
        self._negation_window = int(lexicon.settings.get("negation_window", 3))
        owners: dict[str, list[_Owner]] = {}
        self._signal_regexes: list[tuple[str, re.Pattern[str]]] = []
        for name, signal in lexicon.signals.items():
            for cue in signal.cues:
                if isinstance(cue, Cue) and cue.regex:
                    self._signal_regexes.append((name, re.compile(cue.text)))
                else:
                    phrase = (cue.text if isinstance(cue, Cue) else cue).lower()
                    owners.setdefault(phrase, []).append(_Owner(name, None, 1.0, 0, phrase))
        self._topic_regexes: list[tuple[Topic, re.Pattern[str], float, str]] = []
        for topic, lex in lexicon.topics.items():
            for cue in lex.cues:
                weight = cue.weight if isinstance(cue, Cue) else 1.0
                if isinstance(cue, Cue) and cue.regex:
                    self._topic_regexes.append((topic, re.compile(cue.text), weight, cue.text))
                else:
                    phrase = (cue.text if isinstance(cue, Cue) else cue).lower()
                    owners.setdefault(phrase, []).append(_Owner(None, topic, weight, 0, phrase))
        self._index = _CueIndex(owners)
        self._rules = [
            (index, frozenset(rule.when), frozenset(rule.unless), rule.add)
            for index, rule in enumerate(lexicon.rules)
        ]
        self._other_topic_paths = dict(lexicon.settings.get("other_topic_paths", {}))
        self._topic_min = float(lexicon.settings.get("topic_min_score", 0.5))
        self._temperature = float(lexicon.settings.get("confidence_temperature", 1.0))
        self._gazetteer, self._district_regex = _gazetteer(units.districts)

    @classmethod
    def from_config(cls, config: Config, *, learned: bool = True) -> Classifier:
        """The classifier of a config folder, with its learned layer when the folder has one."""
        model = load_learned(config.directory / MODEL_FILE) if learned else None
        return cls(config.classifier, config.units, model)

    # ------------------------------------------------------------------ normalising

    def normalise(self, text: str) -> str:
        """Fold widths, convert traditional to simplified, drop emoji, fix known typos."""
        text = unicodedata.normalize("NFKC", text[:MAX_CHARS])
        if not text.isascii() and _MAYBE_DROPPED.search(text):
            text = "".join(
                " " if unicodedata.category(ch) in _DROPPED_CATEGORIES else ch for ch in text
            )
        else:
            text = _CONTROLS.sub(" ", text)
        text = _converter().convert(text).lower()
        if self._normalise is not None:
            mapping = self.lexicon.normalise
            text = self._normalise.sub(lambda m: mapping[m.group(0)], text)
        return text

    # ------------------------------------------------------------------ signals

    def _negated(self, text: str, start: int, breaks: Sequence[int]) -> bool:
        """A cue is negated by a negating phrase earlier in its clause (我不是要打官司),
        or by a bare negator right before it (没起诉). Questions are not negations (能不能).

        ``breaks`` are the positions of clause-ending punctuation in ``text``, ascending."""
        index = bisect.bisect_left(breaks, start)
        clause_start = breaks[index - 1] + 1 if index else 0
        window = text[max(clause_start, start - self._negation_window) : start]
        if not window:
            return False
        if self._not_negation_re is not None and self._not_negation_re.search(window):
            return False
        if self._negators_re is not None and self._negators_re.search(window):
            return True
        return window[-1] in self._near_negators

    def signals(
        self, text: str, hits: Sequence[tuple[int, _Owner]] | None = None
    ) -> dict[str, str]:
        """The signals present in normalised ``text``, each with the phrase that showed it.

        A phrase the writer negated once counts nowhere in the message: in "我们不想打官司，
        打官司费时间" the second 打官司 is still the one they do not want.
        """
        if hits is None:
            hits = self._index.scan(text)
        occurrences: list[tuple[int, str, str]] = [
            (pos, owner.signal, owner.phrase) for pos, owner in hits if owner.signal is not None
        ]
        for name, regex in self._signal_regexes:
            occurrences.extend((m.start(), name, m.group(0)) for m in regex.finditer(text))
        if not occurrences:
            return {}
        breaks = [m.start() for m in self._clause_regex.finditer(text)]
        kept: dict[str, list[str]] = {}
        negated: dict[str, set[str]] = {}
        for pos, name, phrase in sorted(occurrences):
            if self._negated(text, pos, breaks):
                negated.setdefault(name, set()).add(phrase)
            else:
                kept.setdefault(name, []).append(phrase)
        found: dict[str, str] = {}
        for name in self.lexicon.signals:  # config order, so reasons read in a stable order
            for phrase in kept.get(name, ()):
                if phrase not in negated.get(name, ()):
                    found[name] = phrase
                    break
        return found

    # ------------------------------------------------------------------ parts

    def path_scores(self, found: Mapping[str, str]) -> tuple[dict[PathCode, float], list[int]]:
        """Sum the evidence of every rule whose ``when`` signals are all present and whose
        ``unless`` signals are all absent; return the scores and the rules that fired."""
        scores = dict.fromkeys(PathCode, 0.0)
        scores[self.lexicon.default_path] = float(self.lexicon.settings.get("default_bias", 0.5))
        present = found.keys()
        fired: list[int] = []
        for index, when, unless, add in self._rules:
            if when <= present and unless.isdisjoint(present):
                fired.append(index)
                for path, weight in add.items():
                    scores[path] += weight
        return scores, fired

    def topic_scores(
        self, text: str, hits: Sequence[tuple[int, _Owner]] | None = None
    ) -> tuple[dict[Topic, float], dict[Topic, str]]:
        """Sum of cue weights per topic (each cue once), and the strongest cue of each.
        ``other`` starts at ``topic_min_score``: a message with no civil-affairs cue is not a
        civil-affairs matter."""
        if hits is None:
            hits = self._index.scan(text)
        matched: dict[tuple[Topic, str], float] = {}
        for _, owner in hits:
            if owner.topic is not None:
                matched[(owner.topic, owner.phrase)] = owner.weight
        for topic, regex, weight, label in self._topic_regexes:
            if regex.search(text):
                matched[(topic, label)] = weight
        scores = dict.fromkeys(Topic, 0.0)
        scores[Topic.OTHER] = self._topic_min
        cues: dict[Topic, str] = {}
        strongest: dict[Topic, float] = {}
        for (topic, label), weight in matched.items():
            scores[topic] += weight
            if weight > strongest.get(topic, 0.0):
                cues[topic], strongest[topic] = label, weight
        return scores, cues

    def district(self, text: str) -> tuple[str | None, str | None]:
        """The first place named in the text, mapped to its district (a town names its county)."""
        if self._district_regex is None:
            return None, None
        match = self._district_regex.search(text)
        if match is None:
            return None, None
        return self._gazetteer[match.group(0)], match.group(0)

    # ------------------------------------------------------------------ the whole

    def classify(self, text: str) -> Classification:
        """Decide path, topic and district of one message (any length, any script)."""
        clean = self.normalise(text or "")
        hits = self._index.scan(clean)
        found = self.signals(clean, hits)
        scores, fired = self.path_scores(found)
        topics, topic_cues = self.topic_scores(clean, hits)
        rule_path = _best(scores, self.lexicon.default_path)
        rule_topic = _best_topic(topics)
        if self.learned is not None:
            phrases = [owner.phrase for _, owner in hits]
            logits = self.learned.scores(text_features(clean, found, phrases))
            _mix_in(scores, self._path_slots, log_softmax(logits[self._path_rows]), self.path_mix)
            _mix_in(
                topics, self._topic_slots, log_softmax(logits[self._topic_rows]), self.topic_mix
            )
        path = _best(scores, self.lexicon.default_path)
        topic = _best_topic(topics)
        if topic is Topic.OTHER and Topic.OTHER in topic_cues:
            # Outside civil affairs: ours neither to review nor to mediate (domain.md).
            diverted = self._other_topic_paths.get(path.value)
            rule_path = path = PathCode(diverted) if diverted else path
        district, place = self.district(clean)
        reasons = self._reasons(path, found, fired, topic, topic_cues.get(topic), district, place)
        if self.learned is not None and (path != rule_path or topic != rule_topic):
            reasons.insert(0, "措辞与已标注的同类事项相近（学习层）")
        return Classification(
            path=path,
            topic=topic,
            district=district,
            confidence=_confidence(scores, path, self._temperature),
            reasons=tuple(reasons[:6]),
            scores=scores,
        )

    def features(self, text: str) -> list[str]:
        """What the learned layer sees of ``text`` (used to train it, too)."""
        clean = self.normalise(text or "")
        hits = self._index.scan(clean)
        return text_features(clean, self.signals(clean, hits), [o.phrase for _, o in hits])

    def classify_many(self, texts: Iterable[str]) -> list[Classification]:
        return [self.classify(t) for t in texts]

    def _reasons(
        self,
        path: PathCode,
        found: Mapping[str, str],
        fired: Sequence[int],
        topic: Topic,
        topic_cue: str | None,
        district: str | None,
        place: str | None,
    ) -> list[str]:
        reasons: list[str] = []
        for index in fired:
            rule = self.lexicon.rules[index]
            if rule.add.get(path, 0.0) <= 0:
                continue
            for name in rule.when:
                text = f"{self.lexicon.signals[name].reason}（“{found[name]}”）"
                if text not in reasons:
                    reasons.append(text)
        if not reasons:
            reasons.append("未见特别程序线索，按信访事项处理")
        topic_name = self.lexicon.topics[topic].name
        if topic_cue is not None:
            reasons.append(f"事项类别：{topic_name}（“{topic_cue}”）")
        else:
            reasons.append(f"事项类别：{topic_name}")
        if district is not None and place is not None:
            reasons.append(f"属地：{district}（“{place}”）")
        return reasons


def _best(scores: Mapping[K, float], preferred: K) -> K:
    """The highest score; on a tie, ``preferred``, then the first in order."""
    top = max(scores.values())
    if scores[preferred] == top:
        return preferred
    return next(k for k, v in scores.items() if v == top)


def _phrases_regex(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One search for any of ``phrases`` (longest first), or None when there are none."""
    ordered = sorted((p.lower() for p in phrases), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _best_topic(scores: Mapping[Topic, float]) -> Topic:
    """The highest-scoring topic; a tie goes to a civil-affairs topic over ``other``."""
    return max(scores, key=lambda t: (scores[t], t is not Topic.OTHER))


def _mix_in(scores: dict[K, float], slots: Sequence[K], log_probs: Vector, mix: float) -> None:
    """Add the learned layer's log-probabilities (floored, so one model cannot veto)."""
    if mix == 0.0:
        return
    for key, value in zip(slots, np.maximum(log_probs, LOG_FLOOR).tolist(), strict=True):
        scores[key] += mix * value


def _confidence(scores: Mapping[PathCode, float], path: PathCode, temperature: float) -> float:
    """Softmax probability of the chosen path: close scores mean low confidence."""
    top = scores[path]
    total = sum(math.exp((s - top) / temperature) for s in scores.values())
    return round(1.0 / total, 3)


def _gazetteer(districts: Sequence[District]) -> tuple[dict[str, str], re.Pattern[str] | None]:
    """Every way of naming a place → its district. A short town name (旧州 for 旧州镇) that
    two districts share (猴场) names neither: only its full form counts."""
    names: dict[str, str] = {}
    short_forms: dict[str, set[str]] = {}
    for district in districts:
        for form in (district.name, district.full_name, *district.aliases, *district.towns):
            if form:
                names.setdefault(form.lower(), district.name)
        for town in district.towns:
            short = _strip_suffix(town)
            if short != town and len(short) >= 2:
                short_forms.setdefault(short.lower(), set()).add(district.name)
    for short, owners in short_forms.items():
        if len(owners) == 1 and short not in names:
            names[short] = next(iter(owners))
    if not names:
        return names, None
    alternation = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return names, re.compile(alternation)


def _strip_suffix(town: str) -> str:
    for suffix in TOWN_SUFFIXES:
        if town.endswith(suffix):
            return town[: -len(suffix)]
    return town


def load_learned(path: Path) -> LinearModel | None:
    """The learned layer (``classifier_model.json``), or None when the folder has none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return LinearModel.from_json(data["model"])
