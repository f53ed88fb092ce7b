"""A small learned layer beside the hand-written rules: multinomial logistic regression.

The rules in ``classifier.yaml`` say *why*; this layer catches the wordings the rules have
not been taught yet. Its features are the signals found (the same ideas the rules use)
and character bigrams and trigrams of the normalised text. It trains deterministically —
fixed example order, fixed epochs, no random numbers — from the labelled corpora in
``tests/data/``, and its weights are written to ``config/classifier_model.json`` by
``python -m bench.train_classifier``, so nothing is trained or downloaded at run time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+|[a-z]+|\d+")

Vector = npt.NDArray[np.float64]


def text_features(clean: str, signals: Iterable[str], phrases: Iterable[str] = ()) -> list[str]:
    """Features of a normalised text: its signals, the lexicon phrases found in it, its
    character 2- and 3-grams (each once), ASCII words, and one token for any number."""
    features = [f"s:{name}" for name in signals]
    features.extend(f"c:{phrase}" for phrase in phrases)
    for run in _CJK_RUN.findall(clean):
        if run.isascii():
            features.append("w:<num>" if run.isdigit() else f"w:{run}")
        else:
            features.extend([run[i : i + 2] for i in range(len(run) - 1)])
            features.extend([run[i : i + 3] for i in range(len(run) - 2)])
    return list(dict.fromkeys(features))


@dataclass(frozen=True)
class LinearModel:
    """A weight row per feature (one weight per label, in ``labels`` order) and a bias."""

    labels: tuple[str, ...]
    index: Mapping[str, int]
    weights: Vector  # shape (features, labels)
    bias: Vector  # shape (labels,)

    def logits(self, features: Iterable[str]) -> dict[str, float]:
        rows = [i for i in map(self.index.get, features) if i is not None]
        total = self.bias + self.weights[rows].sum(axis=0) if rows else self.bias
        return dict(zip(self.labels, total.tolist(), strict=True))

    def scores(self, features: Iterable[str]) -> Vector:
        """The logits as one vector in ``labels`` order (the fast path: no dicts)."""
        rows = [i for i in map(self.index.get, features) if i is not None]
        if not rows:
            return self.bias
        result: Vector = self.bias + self.weights[rows].sum(axis=0)
        return result

    def probabilities(self, features: Iterable[str]) -> dict[str, float]:
        return softmax(self.logits(features))

    def to_json(self, *, digits: int = 3, prune: float = 0.02) -> dict[str, object]:
        """Compact form: rounded weights, one flat list; features whose every weight is
        tiny are dropped."""
        keep = np.abs(self.weights).max(axis=1) >= prune
        features = sorted(f for f, row in self.index.items() if keep[row])
        rows = [self.index[f] for f in features]
        return {
            "labels": list(self.labels),
            "bias": np.round(self.bias, digits).tolist(),
            "features": features,
            "weights": np.round(self.weights[rows], digits).ravel().tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LinearModel:
        labels = tuple(str(x) for x in data["labels"])
        features: list[str] = list(data["features"])
        weights = np.array(data["weights"], dtype=np.float64).reshape(len(features), len(labels))
        return cls(
            labels=labels,
            index={f: i for i, f in enumerate(features)},
            weights=weights,
            bias=np.array(data["bias"], dtype=np.float64),
        )


def stack(models: Mapping[str, LinearModel]) -> LinearModel:
    """Several models as one, labels prefixed ``name:``: one lookup per feature instead of
    one per model. Split the logits again with :func:`unstack`."""
    names = list(models)
    features = sorted(set().union(*(models[n].index for n in names)))
    position = {f: i for i, f in enumerate(features)}
    blocks = []
    for name in names:
        model = models[name]
        block = np.zeros((len(features), len(model.labels)))
        targets = [position[f] for f in model.index]
        block[targets] = model.weights[list(model.index.values())]
        blocks.append(block)
    return LinearModel(
        labels=tuple(f"{n}:{label}" for n in names for label in models[n].labels),
        index=position,
        weights=np.hstack(blocks),
        bias=np.concatenate([models[n].bias for n in names]),
    )


def unstack(logits: Mapping[str, float]) -> dict[str, dict[str, float]]:
    parts: dict[str, dict[str, float]] = {}
    for key, value in logits.items():
        name, label = key.split(":", 1)
        parts.setdefault(name, {})[label] = value
    return parts


def log_softmax(scores: Vector) -> Vector:
    shifted = scores - scores.max()
    result: Vector = shifted - np.log(np.exp(shifted).sum())
    return result


def softmax(scores: Mapping[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exps = {k: math.exp(v - top) for k, v in scores.items()}
    total = sum(exps.values())
    return {k: v / total for k, v in exps.items()}


def train(
    examples: Sequence[tuple[Sequence[str], str]],
    labels: Sequence[str],
    *,
    epochs: int = 25,
    rate: float = 0.2,
    l2: float = 1e-4,
    min_count: int = 2,
) -> LinearModel:
    """Fit by plain stochastic gradient descent, in the given order: same data, same weights.

    Features seen in fewer than ``min_count`` examples are dropped (they only memorise).
    """
    counts: dict[str, int] = {}
    for features, _ in examples:
        for feature in set(features):
            counts[feature] = counts.get(feature, 0) + 1
    kept = sorted(f for f, n in counts.items() if n >= min_count)
    index = {f: i for i, f in enumerate(kept)}
    weights = np.zeros((len(kept), len(labels)))
    bias = np.zeros(len(labels))
    targets = np.eye(len(labels))
    label_row = {label: i for i, label in enumerate(labels)}
    encoded = [
        (np.array(sorted({index[f] for f in features if f in index}), dtype=np.intp), label)
        for features, label in examples
    ]
    for epoch in range(epochs):
        step = rate / (1.0 + epoch * 0.2)
        for rows, label in encoded:
            scores = bias + weights[rows].sum(axis=0)
            exps = np.exp(scores - scores.max())
            gradient = exps / exps.sum() - targets[label_row[label]]
            bias -= step * gradient
            weights[rows] -= step * (gradient + l2 * weights[rows])
    return LinearModel(tuple(labels), index, weights, bias)
