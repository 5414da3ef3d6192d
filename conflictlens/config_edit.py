"""Editing the config file's alert rules in place: what the dashboard's Alerts page saves.

The file is edited with tomlkit, so its comments, blank lines and the order of tables and
keys stay as the user wrote them; a changed rule keeps its place (and the comments around
its keys). The edited text must pass the same validation as a config loaded from disk
before it replaces the file, atomically: a running serve reloads it (its watcher sees the
rename) and never reads half a file.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from conflictlens.config import Config, ConfigError, parse_config

__all__ = ["delete_rule", "save_rule"]


def save_rule(path: Path, rule: Mapping[str, Any], replaces: str | None = None) -> Config:
    """Write ``rule`` (a [[alerts.rules]] table) into the config at ``path``: in place of the
    rule named ``replaces`` (or of the one with its own name), else after the last rule. The
    file is created when missing. Returns the config as it now is; ConfigError (naming the
    key) when the result would not load, and then the file is left untouched."""
    document = _read(path)
    rules = _rules(document)
    target = replaces or str(rule.get("name", ""))
    index = _position(rules, target)
    if index is None and replaces is not None:
        raise ConfigError(f"{path}: no alert rule named {replaces!r} to change")
    if index is None:
        rules.append(_table(rule))
    else:
        _update(rules[index], rule)
    return _write(path, document)


def delete_rule(path: Path, name: str) -> Config:
    """Remove the rule named ``name`` from the config at ``path``."""
    document = _read(path)
    rules = _rules(document)
    index = _position(rules, name)
    if index is None:
        raise ConfigError(f"{path}: no alert rule named {name!r}")
    del rules[index]
    return _write(path, document)


def _read(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _rules(document: tomlkit.TOMLDocument) -> AoT:
    alerts = document.get("alerts")
    if alerts is None:
        alerts = tomlkit.table(is_super_table=True)
        document.append("alerts", alerts)
    if not isinstance(alerts, Table):
        raise ConfigError("alerts: expected a table ([alerts])")
    rules = alerts.get("rules")
    if rules is None:
        rules = tomlkit.aot()
        alerts.append("rules", rules)
    if not isinstance(rules, AoT):
        raise ConfigError("alerts.rules: expected [[alerts.rules]] entries")
    return rules


def _position(rules: AoT, name: str) -> int | None:
    return next((i for i, table in enumerate(rules) if table.get("name") == name), None)


def _table(rule: Mapping[str, Any]) -> Table:
    table = tomlkit.table()
    for key, value in rule.items():
        table.add(key, _item(value))
    table.add(tomlkit.nl())  # a blank line before whatever table follows
    return table


def _item(value: Any) -> Any:
    """Tables inside a rule (match, labels, annotations) as inline tables: one line each,
    beside the rule's other keys, instead of sub-tables after them."""
    if isinstance(value, Mapping):
        inline = tomlkit.inline_table()
        inline.update(value)
        return inline
    return value


def _update(table: Table, rule: Mapping[str, Any]) -> None:
    """Keys the rule no longer has go; changed ones are set where they are, new ones added
    at the end: comments beside unchanged keys stay."""
    for key in [k for k in table if k not in rule]:
        del table[key]
    for key, value in rule.items():
        if key not in table or _plain(table[key]) != value:
            table[key] = _item(value)


def _plain(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


def _write(path: Path, document: tomlkit.TOMLDocument) -> Config:
    text = tomlkit.dumps(document)
    try:
        config = parse_config(tomllib.loads(text), path)
    except tomllib.TOMLDecodeError as exc:  # tomlkit wrote what tomllib refuses
        raise ConfigError(f"{path}: the edit would not be valid TOML: {exc}") from None
    _replace(path, text.encode("utf-8"))
    return config


def _replace(path: Path, data: bytes) -> None:
    """Write beside the file, then rename over it, keeping its permission bits. A symlinked
    config is written through its link: the real file changes, the link stays a link."""
    path = path.resolve()
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
