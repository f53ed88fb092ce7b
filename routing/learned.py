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

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+|[a-z]+|\d+")


def text_features(clean: str, signals: Iterable[str]) -> list[str]:
    """Features of a normalised text: its signals and its character 2- and 3-grams."""
    features = [f"s:{name}" for name in signals]
    seen: set[str] = set()
    for run in _CJK_RUN.findall(clean):
        if run.isascii():
            gram = f"w:{run}" if not run.isdigit() else "w:<num>"
            if gram not in seen:
                seen.add(gram)
                features.append(gram)
            continue
        for n in (2, 3):
            for i in range(len(run) - n + 1):
                gram = run[i : i + n]
                if gram not in seen:
                    seen.add(gram)
                    features.append(gram)
    return features


@dataclass(frozen=True)
class LinearModel:
    """Weights per feature per label, and a bias per label."""

    labels: tuple[str, ...]
    weights: Mapping[str, Mapping[str, float]]
    bias: Mapping[str, float]

    def logits(self, features: Sequence[str]) -> dict[str, float]:
        scores = dict(self.bias)
        for feature in features:
            row = self.weights.get(feature)
            if row is not None:
                for label, weight in row.items():
                    scores[label] += weight
        return scores

    def probabilities(self, features: Sequence[str]) -> dict[str, float]:
        return softmax(self.logits(features))

    def to_json(self) -> dict[str, object]:
        return {
            "labels": list(self.labels),
            "bias": {k: round(v, 5) for k, v in self.bias.items()},
            "weights": {
                f: {k: round(v, 5) for k, v in row.items() if abs(v) >= 1e-4}
                for f, row in sorted(self.weights.items())
                if any(abs(v) >= 1e-4 for v in row.values())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LinearModel:
        labels = tuple(str(x) for x in data["labels"])  # type: ignore[attr-defined]
        bias = {str(k): float(v) for k, v in data["bias"].items()}  # type: ignore[attr-defined]
        weights = {
            str(f): {str(k): float(v) for k, v in row.items()}
            for f, row in data["weights"].items()  # type: ignore[attr-defined]
        }
        return cls(labels, weights, bias)


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
        for feature in features:
            counts[feature] = counts.get(feature, 0) + 1
    keep = {f for f, n in counts.items() if n >= min_count}
    weights: dict[str, dict[str, float]] = {f: dict.fromkeys(labels, 0.0) for f in sorted(keep)}
    bias = dict.fromkeys(labels, 0.0)
    model = LinearModel(tuple(labels), weights, bias)
    for epoch in range(epochs):
        step = rate / (1.0 + epoch * 0.2)
        for features, label in examples:
            active = [f for f in features if f in keep]
            probs = model.probabilities(active)
            for name in labels:
                gradient = probs[name] - (1.0 if name == label else 0.0)
                bias[name] -= step * gradient
                for feature in active:
                    row = weights[feature]
                    row[name] -= step * (gradient + l2 * row[name])
    return model
