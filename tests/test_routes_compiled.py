"""The compiled route templater (ingest/_routes.c) gives every path the route and resource ids
that the numpy and regex implementation gives it.

The paths are the samples' own, and generated ones whose segments sit on every edge of every
segment class (a UUID with one character off, a ULID with an I in it, a date with a zone, an
address written with %40, 0x hex, prefixed ids, tokens one character short), then mutated.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from conflictlens.ingest.formats import get_format, scan
from conflictlens.ingest.lines import Chunk, split_lines
from conflictlens.ingest.routes import MAX_TEMPLATED_SEGMENTS, _compiled, _Segments
from tests.mutations import mutate

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_logs"


def sample_paths() -> list[str]:
    paths: list[str] = []
    for log in sorted(SAMPLE_DIR.glob("*.log")):
        data = log.read_bytes()
        lines = split_lines(Chunk(data, 0, len(data), 0)).lines
        parsed = get_format(log.stem).parse(lines)
        paths += parsed["path"].drop_nulls().to_list()
    return paths


def segment(rng: random.Random) -> str:
    """One segment near the edge of some class."""
    hexdigits = "0123456789abcdefABCDEF"
    crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz"
    pick = rng.randrange(16)
    if pick == 0:
        return str(rng.randrange(10 ** rng.randint(1, 12)))
    if pick == 1:
        parts = [8, 4, 4, 4, 12]
        text = "-".join("".join(rng.choice(hexdigits) for _ in range(n)) for n in parts)
        return text if rng.random() < 0.6 else mutate(text, rng, "g-0Z", truncate=False)
    if pick == 2:
        text = rng.choice("012345678") + "".join(rng.choice(crockford) for _ in range(25))
        return text if rng.random() < 0.6 else mutate(text, rng, "ILOUilou8z", truncate=False)
    if pick == 3:
        date = f"{rng.randrange(10000):04d}-{rng.randrange(100):02d}-{rng.randrange(100):02d}"
        time = rng.choice(["", "T10:00:00", " 10:00", "T10:00:00.5Z", "T1+02:00", "T-1", "T"])
        zone = rng.choice(["", "", "Z", "+01:00", "-5", "+", "ZZ", "x"])
        return date + time + (zone if time else "")
    if pick == 4:
        local = rng.choice(["a", "jo.doe", "user1", "", "x@y", "1%40"])
        sep = rng.choice(["@", "%40", "%4", "@@"])
        domain = rng.choice(
            ["example.com", "b.co", "c.d", "ex.c0m", "mail.example.org", ".com", "a."]
        )
        return local + sep + domain
    if pick == 5:
        body = "".join(rng.choice(hexdigits) for _ in range(rng.randint(6, 20)))
        return rng.choice(["", "0x", "0X", "x"]) + body
    if pick == 6:
        letters = "".join(rng.choice("abcXYZ") for _ in range(rng.randint(0, 10)))
        rest = "".join(rng.choice("ab12Z9") for _ in range(rng.randint(2, 8)))
        return letters + rng.choice(["_", "-", "", "."]) + rest
    if pick == 7:
        alphabet = "abcXYZ0129_~.=-"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(12, 24)))
    if pick == 8:
        return rng.choice(["", "api", "v1", "v2", "users", "2fa", "12ab", "é1234", "a b 1", "%401"])
    if pick == 9:
        return "".join(rng.choice("aé€😀1 %@.-_~=") for _ in range(rng.randint(1, 20)))
    return rng.choice(["orders", "items", "accounts", "cart", "{id}", "health", "abcde1"])


def generated_paths(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    paths = []
    for _ in range(count):
        depth = rng.choice([1, 2, 3, 4, 5, 6, MAX_TEMPLATED_SEGMENTS + rng.randint(-1, 3)])
        path = rng.choice(["/", "", "//"]) + "/".join(segment(rng) for _ in range(depth))
        if rng.random() < 0.2:
            path = mutate(path, rng, "/@%40x1é", truncate=False)
        paths.append(path)
    return paths


def test_the_templater_is_built():
    assert scan.available(), "ingest/_routes.c was not built: is a C compiler installed?"


@pytest.mark.parametrize("source", ["samples", "generated"])
def test_compiled_and_numpy_templating_agree(source):
    paths = sample_paths() if source == "samples" else generated_paths(60_000, seed=11)
    series = pl.Series("path", [*paths, None], dtype=pl.String)
    routes, ids = _compiled(series, with_ids=True)
    segments = _Segments.of(series)
    assert routes.equals(segments.routes(), check_names=False)
    assert ids is not None
    assert ids.equals(segments.resource_ids(), check_names=False)
    templated = int((routes != series).sum())
    assert templated > len(paths) // 10  # the classes are reached, not only kept segments
