"""JSON from outside (servers, files, --conf) parsed with bounds: a size and a nesting depth (pure).

``json.loads`` recurses: a document 30,000 levels deep raises RecursionError, and a huge one eats memory. Every
JSON imagectl did not write itself goes through ``parse_json``, which turns both into one ValueError.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_BYTES = 16 << 20  # a JSON answer larger than this is not one imagectl expects
MAX_JSON_DEPTH = 64


def _depth(value: Any, limit: int) -> bool:
    """Is ``value`` nested no deeper than ``limit``? (Iterative: a hostile document cannot exhaust the stack here.)"""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def parse_json(text: str | bytes, limit: int = MAX_JSON_BYTES, depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON no larger than ``limit`` bytes and no deeper than ``depth``; ValueError otherwise (never RecursionError)."""
    if len(text) > limit:
        raise ValueError(f"larger than {limit} bytes")
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not _depth(value, depth):
        raise ValueError(f"nested deeper than {depth} levels")
    return value
