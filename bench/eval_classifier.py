"""Classifier quality on a labelled JSON Lines corpus: per-path precision/recall and more.

    python -m bench.eval_classifier tests/data/corpus.jsonl tests/data/holdout.jsonl
    python -m bench.eval_classifier --errors tests/data/holdout.jsonl   # list the misses

Prints a Markdown table (the README's table is pasted from here).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routing.classifier import Classifier
from routing.config import PathCode, load_config


@dataclass(frozen=True)
class Report:
    total: int
    path_correct: int
    topic_correct: int
    district_correct: int
    hard_total: int
    hard_path_correct: int
    per_path: dict[str, tuple[int, int, int]]  # true positives, predicted, actual
    errors: list[dict[str, Any]]

    @property
    def path_accuracy(self) -> float:
        return self.path_correct / self.total

    @property
    def topic_accuracy(self) -> float:
        return self.topic_correct / self.total

    @property
    def district_accuracy(self) -> float:
        return self.district_correct / self.total


def load_corpus(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def evaluate(classifier: Classifier, items: list[dict[str, Any]]) -> Report:
    tp: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    actual: Counter[str] = Counter()
    path_ok = topic_ok = district_ok = hard = hard_ok = 0
    errors = []
    for item in items:
        got = classifier.classify(item["text"])
        predicted[got.path.value] += 1
        actual[item["path"]] += 1
        hit = got.path.value == item["path"]
        path_ok += hit
        tp[item["path"]] += hit
        topic_ok += got.topic.value == item["topic"]
        district_ok += got.district == item.get("district")
        if item.get("hard"):
            hard += 1
            hard_ok += hit
        if not hit or got.topic.value != item["topic"] or got.district != item.get("district"):
            errors.append({"item": item, "got": got.to_dict()})
    per_path = {p.value: (tp[p.value], predicted[p.value], actual[p.value]) for p in PathCode}
    return Report(len(items), path_ok, topic_ok, district_ok, hard, hard_ok, per_path, errors)


def markdown(name: str, report: Report) -> str:
    lines = [
        f"**{name}** — {report.total} messages ({report.hard_total} hard): "
        f"path {report.path_accuracy:.1%}, topic {report.topic_accuracy:.1%}, "
        f"district {report.district_accuracy:.1%}, hard cases' path "
        f"{report.hard_path_correct / max(report.hard_total, 1):.1%}",
        "",
        "| path | messages | precision | recall |",
        "|---|---:|---:|---:|",
    ]
    for path, (tp, predicted, actual) in report.per_path.items():
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        lines.append(f"| {path} | {actual} | {precision:.1%} | {recall:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--config", default=None)
    parser.add_argument("--errors", action="store_true", help="list every miss")
    args = parser.parse_args()
    classifier = Classifier.from_config(load_config(args.config))
    for corpus in args.corpora:
        report = evaluate(classifier, load_corpus(corpus))
        print(markdown(corpus.name, report))
        print()
        if args.errors:
            for error in report.errors:
                item, got = error["item"], error["got"]
                print(
                    f"{item['id']}: want {item['path']}/{item['topic']}/{item.get('district')} "
                    f"got {got['path']}/{got['topic']}/{got['district']} :: {item['text'][:160]}"
                )
                print(f"      reasons: {'; '.join(got['reasons'][:3])} | note: {item.get('note')}")


if __name__ == "__main__":
    main()
