"""Filters switched off by a NULL parameter, taken out of the text before ClickHouse sees it.

The catalog's optional filters read ``($service IS NULL OR service = $service)``: with the
parameter's value known to be NULL or not, each such test is TRUE or FALSE, and the AND/OR
around it folds (``TRUE OR x`` is TRUE, ``FALSE OR x`` is x, ``TRUE AND x`` is x, ``FALSE AND
x`` is FALSE: exact in SQL's three-valued logic). DuckDB folds these itself at no cost;
ClickHouse's analyzer spends milliseconds on every parameter it resolves, and a query with a
few UNIONs of eight optional filters each spent more time being planned than run.
"""

from __future__ import annotations

from typing import Any


def fold_null_tests(tree: Any, nulls: frozenset[str], exp: Any) -> None:
    """Fold, in place, every ``{name} IS NULL`` whose parameter is (not) in ``nulls``, and
    the boolean operators above it; a WHERE or HAVING left TRUE is dropped."""
    _fold(tree, nulls, exp)


def _fold(node: Any, nulls: frozenset[str], exp: Any) -> None:
    for child in list(node.iter_expressions()):
        _fold(child, nulls, exp)
    folded = _folded(node, nulls, exp)
    if folded is None:
        node.pop()
    elif folded is not node:
        node.replace(folded)


def _truth(node: Any, exp: Any) -> bool | None:
    return bool(node.this) if isinstance(node, exp.Boolean) else None


def _folded(node: Any, nulls: frozenset[str], exp: Any) -> Any:
    """The node's replacement: itself, a simpler node, or None to remove it."""
    placeholder = isinstance(node, exp.Is) and isinstance(node.this, exp.Placeholder)
    if placeholder and isinstance(node.expression, exp.Null):
        return exp.Boolean(this=node.this.name in nulls)
    if isinstance(node, exp.Paren) and _truth(node.this, exp) is not None:
        return node.this.copy()
    if isinstance(node, exp.Not) and _truth(node.this, exp) is not None:
        return exp.Boolean(this=not _truth(node.this, exp))
    if isinstance(node, (exp.And, exp.Or)):
        absorbing = isinstance(node, exp.Or)  # TRUE decides an OR, FALSE an AND
        left, right = _truth(node.left, exp), _truth(node.right, exp)
        if absorbing in (left, right):
            return exp.Boolean(this=absorbing)
        if left is not None:
            return node.right.copy()
        if right is not None:
            return node.left.copy()
    if isinstance(node, (exp.Where, exp.Having)) and _truth(node.this, exp) is True:
        return None
    return node
