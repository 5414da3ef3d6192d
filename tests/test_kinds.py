"""The conflict taxonomy: the decision order, and that remembered decisions (classify) are the
rule chain's (the uncached _decide) for every code, status and If-Match combination."""

from __future__ import annotations

import random

import polars as pl
import pytest

from conflictlens.ingest.kinds import CODE_WORDS, KindRule, _decide, classify

RULES = (KindRule(r"^ACME-9\d\d$", "lock"), KindRule("TAKEN", "state"))


def events(count: int, seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    words = [word for word, _ in CODE_WORDS]
    codes = [
        None,
        "",
        "ACME-901",
        "ACME-9011",
        "emailTaken",
        "https://example.com/problems/version-conflict",
        "Order.AlreadyShipped",
        "SOMETHING_ELSE",
        *[f"X_{word}_Y" for word in words],
    ]
    return pl.DataFrame(
        {
            "error_code": [rng.choice(codes) for _ in range(count)],
            "status": pl.Series(
                [rng.choice([409, 412, 423, 428]) for _ in range(count)], dtype=pl.Int16
            ),
            "if_match": [rng.choice([None, None, '"abc"', "*"]) for _ in range(count)],
            "offset": range(count),
        }
    )


@pytest.mark.parametrize("rules", [(), RULES], ids=["built-in", "with rules"])
def test_remembered_decisions_are_the_rule_chains(rules):
    frame = events(3_000, seed=len(rules))
    expected = _decide(frame, rules).select("offset", "kind", "kind_rule")
    for _ in range(2):  # the second time every decision is remembered
        got = classify(frame, rules)
        assert got.columns == [*frame.columns, "kind", "kind_rule"]
        assert got.select("offset", "kind", "kind_rule").equals(expected)


def test_the_decision_order():
    frame = pl.DataFrame(
        {
            "error_code": ["ACME-901", "EMAIL_TAKEN", "emailTaken", None, None, "WHATEVER"],
            "status": pl.Series([409, 409, 423, 409, 412, 409], dtype=pl.Int16),
            "if_match": [None, None, None, '"v1"', None, None],
        }
    )
    rows = classify(frame, RULES).select("kind", "kind_rule").rows()
    assert rows == [
        ("lock", r"rule:^ACME-9\d\d$"),
        ("state", "rule:TAKEN"),
        ("uniqueness", "word:TAKEN"),  # rules see the code as logged, the words normalised
        ("version", "evidence:if-match"),
        ("precondition", "status:412"),
        ("unknown", "none"),
    ]
    built_in = classify(frame).select("kind", "kind_rule").rows()
    assert built_in[1] == ("uniqueness", "word:TAKEN")
    assert built_in[2] == ("uniqueness", "word:TAKEN")  # camelCase is normalised first


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("LeaseIdMissing", "lock"),  # Azure Storage: a lease is a lock
        ("RELEASE_PENDING", "unknown"),  # LEASE only as a whole word
        ("conflict", "version"),  # CouchDB's document update conflict
        ("Conflict", "version"),  # Kubernetes' Status reason
        ("IDEMPOTENCY_CONFLICT", "unknown"),  # "conflict" alone, not within a code
        ("ConditionNotMet", "precondition"),
    ],
)
def test_whole_word_and_whole_code_words(code: str, kind: str) -> None:
    frame = pl.DataFrame(
        {"error_code": [code], "status": pl.Series([409], dtype=pl.Int16), "if_match": [None]}
    )
    assert classify(frame).item(0, "kind") == kind
