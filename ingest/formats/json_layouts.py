"""An nginx JSON layout given as ``--log-format``: the ``log_format ... escape=json '{...}'`` an
operator wrote, as the JSON object it produces, its values nginx variables:

    {"log_time":"$time_iso8601","lan_ip":"$remote_addr","http_code":"$status", ...}

Each key whose value is one variable conflictlens knows (``NGINX_VARIABLES``, an error-code
header) is read as that variable's field, whatever the key is called; values that combine
variables or text are not read. A layout without ``$status`` is accepted: its lines are
rejects, as lines without a status are under any format.
"""

from __future__ import annotations

import json
import re

from conflictlens.ingest.formats.clf import (
    ERROR_CODE_HEADER,
    NGINX_HEADER_VARIABLE,
    NGINX_VARIABLES,
    FormatError,
)
from conflictlens.ingest.formats.jsonl import JsonFormat

_ONE_VARIABLE = re.compile(r"^\$\{?(?P<name>[a-z_][a-z0-9_]*)\}?$")
# nginx writes "$status" unquoted in some layouts ("status": $status): quoted before parsing.
_BARE_VARIABLE = re.compile(r"(:\s*)(\$[a-z_][a-z0-9_]*)(\s*[,}])")


def is_nginx_json_layout(text: str) -> bool:
    """Whether ``text`` is an nginx JSON layout rather than a field mapping of JSON paths
    (``"$.a.b"``, which no nginx variable can be)."""
    layout = _parse(text)
    return layout is not None and any(_ONE_VARIABLE.match(v.strip()) for v in layout.values())


def nginx_json_layout_format(text: str) -> JsonFormat:
    layout = _parse(text)
    if layout is None:
        raise FormatError(f"not an nginx JSON layout: {text[:80]!r}")
    paths: dict[str, tuple[str, ...]] = {}
    for key, value in layout.items():
        field = _field(value)
        if field is not None:
            path = '$."' + key.replace('"', '\\"') + '"'
            paths[field] = (*paths.get(field, ()), path)
    if not any(f.startswith("time") for f in paths):
        raise FormatError(
            f"the layout logs no time ($time_local, $time_iso8601, $msec): {text[:80]!r}"
        )
    # No $status: a key no nginx layout writes, so that every line is a reject for its
    # status (as a line without one is under any format) and the file is still imported.
    paths.setdefault("status", ('$."$status"',))
    return JsonFormat("custom", paths, required=("status",))


def _parse(text: str) -> dict[str, str] | None:
    try:
        layout = json.loads(_BARE_VARIABLE.sub(r'\1"\2"\3', text))
    except ValueError:
        return None
    if not isinstance(layout, dict) or not all(isinstance(v, str) for v in layout.values()):
        return None
    return layout


def _field(value: str) -> str | None:
    """The raw field of a value that is one variable, else None."""
    match = _ONE_VARIABLE.match(value.strip())
    if match is None:
        return None
    name = match["name"]
    header = NGINX_HEADER_VARIABLE.match(name)
    if header and ERROR_CODE_HEADER.match(header["header"]):
        return "error_code"
    return NGINX_VARIABLES.get(name)
