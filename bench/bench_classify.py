"""Classifier throughput on one core: messages per second over the labelled corpora.

    python -m bench.bench_classify [--repeat N]

Prints the in-process rate (Classifier.classify) and the rate of the whole
`huiyin classify` command (JSON Lines through a pipe, start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from routing.classifier import Classifier
from routing.config import load_config

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def texts() -> list[str]:
    out: list[str] = []
    for corpus in sorted(DATA.glob("*.jsonl")):
        with corpus.open(encoding="utf-8") as handle:
            out.extend(json.loads(line)["text"] for line in handle if line.strip())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the issue asks

    started = time.perf_counter()
    classifier = Classifier.from_config(load_config())
    load_seconds = time.perf_counter() - started
    corpus = texts()
    classifier.classify_many(corpus[:50])  # warm the regex and OpenCC caches

    started = time.perf_counter()
    for _ in range(args.repeat):
        classifier.classify_many(corpus)
    elapsed = time.perf_counter() - started
    count = len(corpus) * args.repeat
    mean_chars = sum(map(len, corpus)) / len(corpus)
    print(f"corpus: {len(corpus)} messages, mean {mean_chars:.0f} characters")
    print(f"load config + build classifier: {load_seconds * 1000:.0f} ms")
    print(f"in process: {count / elapsed:,.0f} messages/s ({elapsed / count * 1e6:.0f} µs each)")

    lines = "".join(
        json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
        for i, t in enumerate(corpus * args.repeat)
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "classify"],
        input=lines,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    outputs = result.stdout.count("\n")
    rate = outputs / elapsed
    print(f"`huiyin classify` ({outputs} lines, start-up included): {rate:,.0f} messages/s")


if __name__ == "__main__":
    main()
