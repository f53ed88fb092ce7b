"""``huiyin classify``: JSON Lines in, one decision per line out, in order.

Input lines are ``{"id": …, "text": …}``. A malformed line gets ``{"id": …, "error": …}``
(``id`` null when it cannot be read) and the run goes on: one bad line never costs the rest.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import IO, Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify JSON Lines {id, text} from stdin into path, topic, district and unit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="DIR", help="config folder (default: config/)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from routing.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"huiyin classify: {exc}", file=sys.stderr)
        return 2
    classify_stream(config, sys.stdin, sys.stdout)
    return 0


def classify_stream(config: Any, source: IO[str], sink: IO[str]) -> int:
    """Classify every line of ``source``; return how many lines were malformed."""
    from routing.classifier import Classifier
    from routing.router import route

    classifier = Classifier.from_config(config)
    errors = 0
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        item_id, text, problem = _parse(line)
        if problem is not None:
            errors += 1
            log.warning("classify: line %d: %s", number, problem)
            out: dict[str, Any] = {"id": item_id, "error": problem}
        else:
            decision = classifier.classify(text)
            unit = route(config, decision.path, decision.topic, decision.district).unit
            out = {"id": item_id, **decision.to_dict(), "unit": unit}
            out = {k: out[k] for k in _FIELDS}
        sink.write(json.dumps(out, ensure_ascii=False) + "\n")
    sink.flush()
    return errors


_FIELDS = ("id", "path", "topic", "district", "unit", "confidence", "reasons")


def _parse(line: str) -> tuple[Any, str, str | None]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, "", f"not valid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(item, dict):
        return None, "", "expected a JSON object with id and text"
    item_id = item.get("id")
    text = item.get("text")
    if not isinstance(text, str):
        return item_id, "", "missing or non-string field 'text'"
    return item_id, text, None
