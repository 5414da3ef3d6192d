"""What every settings model shares (the config file's tables, alert rules, API bodies): the
strict base class, the one duration type, and the first problem of a validation said as
``key.path: reason``.

A leaf module: it imports nothing of conflictlens but the leaf _errors, so every layer may
use it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Collection
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, WithJsonSchema

from conflictlens._errors import ConfigError


class Section(BaseModel):
    """A table of the config file: unknown keys are refused, values are not coerced (a port
    written as "8409" is a mistake worth saying, not a number)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_PART = re.compile(r"(\d+)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = dt.timedelta(days=366)


def shown(value: Any) -> str:
    """A value as JSON for an error message, cut short: the message stays one short line."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def duration(value: Any, *, at_most: dt.timedelta | None = MAX_DURATION) -> dt.timedelta:
    """``30s``, ``5m``, ``1h30m``, ``2w``: whole numbers of s, m, h, d, w (a setting up to a
    year). The one grammar of every duration: rule windows, silences, ``--since 1h30m``."""
    if isinstance(value, dt.timedelta):
        return value
    if not isinstance(value, str) or len(value) > 40 or not is_duration(value):
        raise ValueError(f"{shown(value)} is not a duration (e.g. 30s, 5m, 2h)")
    seconds = sum(int(n) * _UNIT[u] for n, u in _PART.findall(value))
    if at_most is not None and seconds > at_most.total_seconds():
        raise ValueError(f"{shown(value)} is longer than {at_most.days} days")
    try:
        return dt.timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{shown(value)} is too long") from None


def one_of(choices: Collection[str]) -> Callable[[Any], Any]:
    """A check that a value is one of ``choices``, saying which they are."""

    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"{shown(value)} is not one of {', '.join(choices)}")
        return value

    return check


def is_duration(text: str) -> bool:
    return bool(_DURATION.match(text.strip()))


Duration = Annotated[
    dt.timedelta,
    BeforeValidator(duration),
    WithJsonSchema({"type": "string", "pattern": _DURATION.pattern, "examples": ["5m", "1h30m"]}),
]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of the table ``model`` declares, with its sub-tables written in place:
    for a request body that is taken as a plain table (to be saved as written) but must still
    show its shape in /openapi.json."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(
                    {
                        **defs[node["$ref"].rsplit("/", 1)[-1]],
                        **{k: v for k, v in node.items() if k != "$ref"},
                    }
                )
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


class KeyedError(ConfigError):
    """A problem with one key of a table-valued setting (``labels.alertname``): the error then
    names that key, not only the table."""

    def __init__(self, key: str | int, reason: str) -> None:
        super().__init__(reason)
        self.key = key


# pydantic's error types, said as the config reference says them.
_PLAIN = {
    "bool_type": "expected true or false",
    "int_type": "expected a whole number",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "missing": "required",
}


def first_error(
    exc: ValidationError, model: type[BaseModel], *, prefix: str = "", first_index: int = 1
) -> str:
    """The first problem of a validation as ``key.path: reason``, the path under ``prefix``.
    List entries are counted from ``first_index`` (1 as a reader of [[tables]] counts them;
    [alerts] has always said ``rules[0]``)."""
    error = exc.errors(include_url=False)[0]
    loc = [part for part in error["loc"] if not _is_union_branch(part)]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, KeyedError):
        loc.append(cause.key)
    key = _dotted([prefix, *loc] if prefix else loc, first_index)
    if error["type"] == "extra_forbidden":
        known = ", ".join(sorted(_fields_at(model, loc[:-1])))
        if not prefix and len(loc) == 1:
            return f"unknown key {loc[0]!r} (known: {known})"
        return f"{key}: unknown key (known: {known})"
    if error["type"] == "literal_error":
        return f"{key}: expected {error['ctx']['expected']}"
    reason = _PLAIN.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
    return f"{key}: {reason}" if key else reason


def _is_union_branch(part: Any) -> bool:
    # A union's error names the branch tried (``str``, ``function-after[...]``): not a key.
    return isinstance(part, str) and (part in ("str", "int", "none") or "[" in part)


def _dotted(loc: list[Any], first_index: int = 1) -> str:
    text = ""
    for part in loc:
        text += (
            f"[{part + first_index}]"
            if isinstance(part, int)
            else (f".{part}" if text else str(part))
        )
    return text


def _fields_at(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """The keys a table at ``loc`` takes (by their names in the file: ``for``, not pending_for)."""
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = _field_named(model, part).annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return [info.alias or name for name, info in model.model_fields.items()]


def _field_named(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    raise KeyError(key)
