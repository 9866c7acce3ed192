"""ECR's tag patterns — lifecycle ``tagPatternList`` and tag-mutability exclusion filters — where '*' matches any
run of characters and nothing else is special (pure).

``meets(pattern, language)`` answers whether a pattern matches *any* tag of a language (a tag namespace imagectl
writes, for every environment name), with the shortest such tag as the example: so a repository's exclusion
filters are judged against everything imagectl claims, not against a few sample tags. A language is a sequence of
``Part``s (a set of characters repeated between ``low`` and ``high`` times); the answer is a search over pairs of
positions in the pattern and in the language, which is finite because a part's count only matters up to its
``low`` once it has no upper bound.
"""

from __future__ import annotations

import fnmatch
import string
from collections import deque
from dataclasses import dataclass


def ecr_wildcard(pattern: str, tag: str) -> bool:
    """Does ``pattern`` match ``tag``: '*' is any characters, every other character stands for itself."""
    return fnmatch.fnmatchcase(tag, pattern.replace("[", "[[]").replace("?", "[?]"))


@dataclass(frozen=True)
class Part:
    chars: frozenset[str]
    low: int
    high: int | None  # None: no upper bound

    def example(self) -> str:
        return min(self.chars)


def literal(text: str) -> tuple[Part, ...]:
    return tuple(Part(frozenset(c), 1, 1) for c in text)


def chars(alphabet: str, low: int, high: int | None) -> tuple[Part, ...]:
    return (Part(frozenset(alphabet), low, high),)


DIGITS = string.digits
HEX = string.digits + "abcdef"
LOWER = string.ascii_lowercase
TAG_CHARS = string.ascii_letters + string.digits + "_.-"  # Docker tag characters


def meets(pattern: str, language: tuple[Part, ...]) -> str | None:
    """The shortest tag of ``language`` that ``pattern`` matches, or None when it matches none."""
    # State: (position in pattern, part index, count of that part used). Breadth first, so the example is short.
    start = (0, 0, 0)
    parent: dict[tuple[int, int, int], tuple[tuple[int, int, int], str] | None] = {start: None}
    queue = deque([start])

    def closure_moves(state: tuple[int, int, int]) -> list[tuple[tuple[int, int, int], str]]:
        p, j, k = state
        moves: list[tuple[tuple[int, int, int], str]] = []
        if p < len(pattern) and pattern[p] == "*":
            moves.append(((p + 1, j, k), ""))  # the star matches nothing more
        if j < len(language) and k >= language[j].low:
            moves.append(((p, j + 1, 0), ""))  # this part is done
        if j < len(language):
            part = language[j]
            if part.high is None or k < part.high:
                nk = k + 1 if part.high is not None else min(k + 1, part.low)
                if p < len(pattern) and pattern[p] == "*":
                    moves.append(((p, j, nk), part.example()))  # the star takes one character of the part
                elif p < len(pattern) and pattern[p] in part.chars:
                    moves.append(((p + 1, j, nk), pattern[p]))
        return moves

    while queue:
        state = queue.popleft()
        p, j, _ = state
        if p == len(pattern) and j == len(language):
            out = []
            node: tuple[int, int, int] | None = state
            while node is not None and parent[node] is not None:
                previous, char = parent[node]  # type: ignore[misc]
                out.append(char)
                node = previous
            return "".join(reversed(out))
        for nxt, char in closure_moves(state):
            if nxt not in parent:
                parent[nxt] = (state, char)
                queue.append(nxt)
    return None
