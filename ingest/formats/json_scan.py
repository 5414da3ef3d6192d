"""The compiled fast path of JSON extraction: a format's JSON paths as a trie for ``_json.c``.

``compile_paths`` turns the columns of an extraction (each a list of candidate paths, the
first present one wins) into the trie that ``json_scan_lines`` follows through each line's
objects, in one call per chunk. The scanner accepts a line only when it reads it exactly as
DuckDB's ``json_extract_string`` does; ``scan_json`` reports which lines it left to DuckDB.
Paths other than plain object keys (array indexes, wildcards) have no trie: such a format is
decoded by DuckDB alone, as it is when the extension is not built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from conflictlens.ingest.arrow import to_series
from conflictlens.ingest.formats.scan import (
    address,
    library,
    row_addresses,
    string_views,
    view_buffers,
)

# Raw fields that are converted to numbers or times: a number in one of them may be taken as
# written (DuckDB writes 0.120 back as 0.12, and both convert to the same value, or both fail
# to parse as a time). Any other field takes only plain integers from the scanner.
NUMERIC_FIELDS = frozenset(
    {
        "status",
        "bytes",
        "latency_s",
        "latency_ms",
        "latency_us",
        "latency_ns",
        "time_epoch",
        "time_epoch_ms",
        "time_iso",
        "time_clf",
        "time_nozone",
    }
)

MAX_COLUMNS = 128  # as in _json.c
MAX_EDGES = 64

_KEY = re.compile(r'\.(?:([A-Za-z_][A-Za-z0-9_]*)|"([^"\\]+)")')


@dataclass(frozen=True)
class PathTrie:
    """The flat arrays json_scan_lines reads (see _json.c) and the columns they fill."""

    nodes: np.ndarray  # int32 [node, 4]: first edge, edges, first leaf, leaves
    edges: np.ndarray  # int32 [edge, 4]: key offset, key length, child node, key signature
    keys: np.ndarray  # uint8
    leaves: np.ndarray  # int32 [leaf, 2]: column, rank
    numeric: np.ndarray  # uint8 [column]
    lookup: np.ndarray  # int16 [node, 256]: by key_hash, the edge (from the node's first),
    # NO_EDGE or MANY_EDGES
    columns: tuple[str, ...]
    # An object where a value is wanted counts as no value (DuckDB gives its JSON text): for
    # callers that discard objects (error codes from a body), so such lines need no DuckDB.
    objects_absent: bool = False


def path_keys(path: str) -> list[str] | None:
    """``$.request.headers."user-agent"`` → its keys; None for anything but plain keys."""
    if not path.startswith("$"):
        return None
    keys, at = [], 1
    while at < len(path):
        match = _KEY.match(path, at)
        if match is None:
            return None
        keys.append(match.group(1) if match.group(1) is not None else match.group(2))
        at = match.end()
    return keys or None


def key_signature(key: bytes) -> int:
    """A key's length, first and last byte in one int32, as _json.c computes it."""
    value = (len(key) & 0xFFFF) | key[0] << 16 | key[-1] << 24
    return value - (1 << 32) if value >= 1 << 31 else value


NO_EDGE, MANY_EDGES = -1, -2  # as in _json.c


def key_hash(key: bytes) -> int:
    """A key's slot in its node's lookup, as _json.c computes it."""
    return ((len(key) & 0xFF) * 0x9E + key[0] * 0x3B + key[-1] * 0x55) & 0xFF


def compile_paths(
    columns: dict[str, tuple[str, ...]], *, objects_absent: bool = False
) -> PathTrie | None:
    """The trie of ``columns`` (name → candidate paths, in order), or None when a path is not
    plain keys or the trie is too wide for the scanner."""
    children: list[dict[str, int]] = [{}]
    leaves: list[list[tuple[int, int]]] = [[]]
    for column, paths in enumerate(columns.values()):
        for rank, path in enumerate(paths):
            keys = path_keys(path)
            if keys is None:
                return None
            node = 0
            for key in keys:
                if key not in children[node]:
                    children[node][key] = len(children)
                    children.append({})
                    leaves.append([])
                node = children[node][key]
            leaves[node].append((column, rank))
    if len(columns) > MAX_COLUMNS or any(len(c) > MAX_EDGES for c in children):
        return None
    nodes: list[tuple[int, int, int, int]] = []
    edges: list[tuple[int, int, int, int]] = []
    leaf_rows: list[tuple[int, int]] = []
    key_bytes = bytearray()
    lookup = np.full((len(children), 256), NO_EDGE, dtype=np.int16)
    for node, (node_children, node_leaves) in enumerate(zip(children, leaves, strict=True)):
        nodes.append((len(edges), len(node_children), len(leaf_rows), len(node_leaves)))
        for index, (key, child) in enumerate(node_children.items()):
            data = key.encode()
            edges.append((len(key_bytes), len(data), child, key_signature(data)))
            key_bytes += data
            slot = key_hash(data)
            lookup[node, slot] = index if lookup[node, slot] == NO_EDGE else MANY_EDGES
        leaf_rows += node_leaves
    return PathTrie(
        np.array(nodes, dtype=np.int32).reshape(-1, 4),
        np.array(edges, dtype=np.int32).reshape(-1, 4),
        np.frombuffer(bytes(key_bytes) or b"\0", dtype=np.uint8).copy(),
        np.array(leaf_rows, dtype=np.int32).reshape(-1, 2),
        np.array([name in NUMERIC_FIELDS for name in columns], dtype=np.uint8),
        lookup,
        tuple(columns),
        objects_absent,
    )


def scan_json(texts: pl.Series, trie: PathTrie) -> tuple[dict[str, pl.Series], np.ndarray]:
    """Each column of ``texts`` (null where the scanner left the line to DuckDB), and which
    lines it read. The columns are string views into one scratch buffer, where the scanner
    writes the values side by side (decoding those with escapes), so that the passes over them
    read dense memory and not the whole chunk."""
    functions = library()
    lines = string_views(texts)
    count, width = len(lines), len(trie.columns)
    views, data, addresses = view_buffers(lines)
    # Decoded or copied values are never longer than their line (the scanner checks).
    scratch = np.empty(max(int(views.view(np.int32)[: 4 * count : 4].sum()), 1), dtype=np.uint8)
    addresses = np.append(addresses[: len(data)], np.uint64(scratch.ctypes.data))
    accepted = np.empty(count, dtype=np.uint8)
    views_out = np.empty((width, 16 * count), dtype=np.uint8)
    validity = np.empty((width, (count + 7) // 8), dtype=np.uint8)
    view_rows, validity_rows = row_addresses(views_out), row_addresses(validity)  # alive
    status = functions.json_scan_views(
        address(views),
        count,
        address(addresses),
        len(data),
        *(
            address(a)
            for a in (trie.nodes, trie.edges, trie.keys, trie.leaves, trie.numeric, trie.lookup)
        ),
        width,
        int(trie.objects_absent),
        address(scratch),
        len(scratch),
        *(address(a) for a in (view_rows, validity_rows, accepted)),
    )
    if status != 0:
        raise ValueError("JSON paths too wide for the scanner")
    buffers = [*data, pa.py_buffer(scratch)]
    columns = {}
    for index, name in enumerate(trie.columns):
        # Whole values of valid UTF-8, cut at quotes, or decoded from escapes: valid again.
        array = pa.Array.from_buffers(
            pa.string_view(),
            count,
            [pa.py_buffer(validity[index]), pa.py_buffer(views_out[index]), *buffers],
        )
        columns[name] = to_series(array).alias(name)
    return columns, accepted.view(bool)
