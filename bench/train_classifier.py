"""Train the classifier's learned layer and write ``config/classifier_model.json``.

    python -m bench.train_classifier            # train on every corpus but the held-out one
    python -m bench.train_classifier --check    # cross-check: train on some, score the rest

Deterministic: the same corpora and lexicon give byte-identical weights. The held-out set
(tests/data/holdout.jsonl) is never trained on, so its score stays an honest estimate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.eval_classifier import evaluate, load_corpus
from routing.classifier import MODEL_FILE, Classifier
from routing.config import PathCode, Topic, load_config
from routing.learned import LinearModel, stack, train

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
HELD_OUT = "holdout.jsonl"


def training_files() -> list[Path]:
    return sorted(p for p in DATA.glob("*.jsonl") if p.name != HELD_OUT)


def fit(rules: Classifier, items: list[dict[str, Any]]) -> LinearModel:
    examples = []
    for item in sorted(items, key=lambda i: str(i["id"])):
        examples.append((rules.features(item["text"]), item))
    return stack(
        {
            "path": train([(f, i["path"]) for f, i in examples], [p.value for p in PathCode]),
            "topic": train([(f, i["topic"]) for f, i in examples], [t.value for t in Topic]),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=None)
    parser.add_argument("--check", action="store_true", help="cross-check instead of writing")
    parser.add_argument(
        "--mix", type=float, nargs="*", default=None, help="with --check: path weights to try"
    )
    args = parser.parse_args()
    config = load_config(args.config)
    rules = Classifier.from_config(config, learned=False)
    files = training_files()
    if args.check:
        for held in [*files, DATA / HELD_OUT]:
            train_items = [i for f in files if f != held for i in load_corpus(f)]
            model = fit(rules, train_items)
            test = load_corpus(held)
            plain = evaluate(rules, test)
            line = f"{held.name:16} rules only: path {plain.path_accuracy:.1%} topic "
            line += f"{plain.topic_accuracy:.1%} | with learned layer:"
            for mix in args.mix or [None]:
                both = Classifier(config.classifier, config.units, model)
                if mix is not None:
                    both.path_mix = both.topic_mix = mix
                mixed = evaluate(both, test)
                line += f" [{mix}] path {mixed.path_accuracy:.1%} topic {mixed.topic_accuracy:.1%}"
            print(line)
        return
    items = [i for f in files for i in load_corpus(f)]
    model = fit(rules, items)
    out = {
        "trained_on": [f.name for f in files],
        "examples": len(items),
        "model": model.to_json(),
    }
    target = config.directory / MODEL_FILE
    text = json.dumps(out, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    target.write_text(text + "\n", "utf-8")
    print(f"wrote {target} ({len(items)} examples from {len(files)} corpora)")


if __name__ == "__main__":
    main()
