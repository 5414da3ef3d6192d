"""Random edits of real lines, for the tests that compare a compiled fast path with the
reference it stands for (scanners, templater, timestamp reader)."""

from __future__ import annotations

import random
from collections.abc import Sequence


def mutate(text: str, rng: random.Random, pieces: Sequence[str], *, truncate: bool) -> str:
    """``text`` with a piece inserted at a random place, or put in place of one character, or
    cut there (the rest of it with ``truncate``, else one character)."""
    at = rng.randrange(len(text) + 1)
    piece = rng.choice(pieces)
    action = rng.random()
    if action < 0.45:
        return text[:at] + piece + text[at:]
    if action < 0.8:
        return text[:at] + piece + text[at + 1 :]
    return text[:at] if truncate else text[:at] + text[at + 1 :]


def mutations(
    lines: Sequence[str], count: int, seed: int, pieces: Sequence[str], *, most_edits: int = 2
) -> list[str]:
    """``count`` lines picked at random, each edited one to ``most_edits`` times."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        line = rng.choice(lines)
        for _ in range(rng.randint(1, most_edits)):
            line = mutate(line, rng, pieces, truncate=True)
        out.append(line)
    return out


def truncations(lines: Sequence[str]) -> list[str]:
    """Every line cut at every byte."""
    return [line[:cut] for line in lines for cut in range(len(line) + 1)]
