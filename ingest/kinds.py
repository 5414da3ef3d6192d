"""The conflict taxonomy: why a conflict-family response happened.

Kinds: version (optimistic locking, ETag, If-Match), uniqueness (duplicate, already exists,
taken), state (invalid transition, already shipped or cancelled), dependency (has children,
in use), lock (423, locked), precondition (412, 428), unknown.

Decided in this order, and the event records which rule decided (``kind_rule``):
1. the user's rules (a regex over the error code → a kind), first match wins: ``rule:<pattern>``;
2. the built-in dictionary of code words, kinds in the order above: ``word:<WORD>``;
3. request evidence: If-Match or If-Unmodified-Since was sent: ``evidence:if-match``;
4. the status alone: 423 → lock, 412/428 → precondition: ``status:<code>``;
5. otherwise unknown: ``none``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

KINDS = ("version", "uniqueness", "state", "dependency", "lock", "precondition", "unknown")

# Word → kind, tested in this order over the normalised code (upper case, _ separated).
CODE_WORDS: tuple[tuple[str, str], ...] = (
    ("VERSION", "version"),
    ("ETAG", "version"),
    ("STALE", "version"),
    ("MODIFIED", "version"),
    ("CONCURRENT", "version"),
    ("EXISTS", "uniqueness"),
    ("DUPLICATE", "uniqueness"),
    ("TAKEN", "uniqueness"),
    ("UNIQUE", "uniqueness"),
    ("ALREADY_REGISTERED", "uniqueness"),
    ("_LEASE_", "lock"),  # a lease is a lock held for a time (Azure Storage)
    ("ALREADY_", "state"),
    ("INVALID_STATE", "state"),
    ("TRANSITION", "state"),
    ("STATUS", "state"),
    ("HAS_", "dependency"),
    ("IN_USE", "dependency"),
    ("DEPENDEN", "dependency"),
    ("CHILD", "dependency"),
    ("LOCK", "lock"),
    ("PRECONDITION", "precondition"),
    ("CONDITION_NOT_MET", "precondition"),
    # A code that is only "conflict" is most often an optimistic-concurrency clash (CouchDB's
    # document update conflict, Kubernetes' "the object has been modified").
    ("=CONFLICT", "version"),
)
STATUS_KINDS = {423: "lock", 412: "precondition", 428: "precondition"}


@dataclass(frozen=True)
class KindRule:
    """A user rule: error codes matching ``pattern`` (a regex, searched) are of ``kind``."""

    pattern: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        try:
            re.compile(self.pattern)
            pl.Series([""]).str.contains(self.pattern)
        except (re.error, pl.exceptions.ComputeError) as exc:
            raise ValueError(f"invalid regex {self.pattern!r}: {exc}") from None


def normalised_code(code: pl.Expr) -> pl.Expr:
    """``https://example.com/problems/version-conflict`` → ``VERSION_CONFLICT``;
    ``emailTaken`` → ``EMAIL_TAKEN``: problem+json type URIs keep their last segment, and
    camelCase, dashes, dots and spaces become underscores."""
    last = code.str.replace(r"^[A-Za-z][A-Za-z0-9+.-]*://.*/([^/]+)/?$", "$1")
    snake = last.str.replace_all(r"([a-z0-9])([A-Z])", "${1}_${2}")
    return snake.str.replace_all(r"[^A-Za-z0-9]+", "_").str.strip_chars("_").str.to_uppercase()


# The decision depends on the rules, the code, the status and whether If-Match was sent, and a
# log holds few of those: decisions are kept, so a chunk's events cost a lookup and a join
# instead of the rule chain's dozens of expressions (most of a small chunk's fixed cost).
_Key = tuple[tuple[KindRule, ...], str | None, int | None, bool]
_DECIDED: dict[_Key, tuple[str, str]] = {}
DECISIONS_KEPT = 10_000
_KEYS = ["error_code", "status", "_evidence"]


def classify(frame: pl.DataFrame, rules: tuple[KindRule, ...] = ()) -> pl.DataFrame:
    """Add ``kind`` and ``kind_rule`` from ``error_code``, ``status`` and ``if_match``."""
    frame = frame.with_columns(_evidence=pl.col("if_match").is_not_null())
    keys = frame.select(_KEYS).unique()
    unknown = [key for key in keys.iter_rows() if (rules, *key) not in _DECIDED]
    if unknown:
        sample = pl.DataFrame(unknown, schema=keys.schema, orient="row")
        sample = sample.with_columns(
            if_match=pl.when(pl.col("_evidence")).then(pl.lit("*")).otherwise(None)
        )
        if len(_DECIDED) > DECISIONS_KEPT:
            _DECIDED.clear()
        for code, status, evidence, kind, rule in (
            _decide(sample, rules).select(*_KEYS, "kind", "kind_rule").iter_rows()
        ):
            _DECIDED[(rules, code, status, evidence)] = (kind, rule)
    decided = pl.DataFrame(
        [(*key, *_DECIDED[(rules, *key)]) for key in keys.iter_rows()],
        schema={**keys.schema, "kind": pl.String, "kind_rule": pl.String},
        orient="row",
    )
    return frame.join(decided, on=_KEYS, how="left", nulls_equal=True, maintain_order="left").drop(
        "_evidence"
    )


def _has_word(code: pl.Expr, word: str) -> pl.Expr:
    """Does the normalised code hold ``word``: anywhere; as a whole word when it is written
    ``_WORD_`` (so that LEASE is not found in RELEASE); as the whole code when ``=WORD``."""
    if word.startswith("="):
        return code == word[1:]
    if word.startswith("_") and word.endswith("_"):
        return pl.concat_str(pl.lit("_"), code, pl.lit("_")).str.contains(word, literal=True)
    return code.str.contains(word, literal=True)


def _decide(frame: pl.DataFrame, rules: tuple[KindRule, ...]) -> pl.DataFrame:
    """``kind`` and ``kind_rule`` by the rule chain, row by row of ``frame``."""
    frame = frame.with_columns(normalised_code(pl.col("error_code")).alias("_code"))
    code, raw = pl.col("_code"), pl.col("error_code")
    decisions: list[tuple[pl.Expr, str, str]] = []
    decisions += [(raw.str.contains(r.pattern), r.kind, f"rule:{r.pattern}") for r in rules]
    decisions += [(_has_word(code, word), kind, f"word:{word}") for word, kind in CODE_WORDS]
    decisions.append((pl.col("if_match").is_not_null(), "version", "evidence:if-match"))
    decisions += [(pl.col("status") == s, kind, f"status:{s}") for s, kind in STATUS_KINDS.items()]
    kind: pl.Expr = pl.lit("unknown")
    rule: pl.Expr = pl.lit("none")
    for condition, name, why in reversed(decisions):
        decided = condition.fill_null(False)
        kind = pl.when(decided).then(pl.lit(name)).otherwise(kind)
        rule = pl.when(decided).then(pl.lit(why)).otherwise(rule)
    return frame.with_columns(kind=kind, kind_rule=rule).drop("_code")
