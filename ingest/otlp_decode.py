"""OTLP/HTTP log requests (``ExportLogsServiceRequest``, protobuf or JSON) → two flat frames.

Decoding walks the messages once and keeps only what the mapping reads (ingest/otlp.py):
per log record its resource, times and string body; per attribute (of a record, of a record's
map body, of a resource) its owner, key and scalar value. Everything after that is Polars
over the whole request. The protobuf walk is the compiled one (``otlp_walk`` in
ingest/_otlp.c) when the extension is built, else the same walk in Python below: both give
the same frames (tests/test_otlp.py compares them), the compiled one only faster.

The wire format is read by hand (it is small: varints, fixed 64-bit values and
length-delimited fields), so serve needs no protobuf runtime. A request that is not what it
claims to be (truncated, invalid UTF-8 in a string, a wire type OTLP never uses) is an
``OtlpError`` with a one-line reason, answered as HTTP 400.
"""

from __future__ import annotations

import base64
import ctypes
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from conflictlens._errors import InputError
from conflictlens.ingest.arrow import to_series
from conflictlens.ingest.formats import scan

# Where an attribute was found.
RECORD, BODY, RESOURCE = 0, 1, 2
# What its value is: OTLP's AnyValue cases, with every non-scalar one as OTHER.
EMPTY, STRING, BOOL, INT, DOUBLE, OTHER = 0, 1, 2, 3, 4, 5

RECORD_SCHEMA = {
    "resource": pl.Int32,
    "time_ns": pl.Int64,
    "observed_ns": pl.Int64,
    "body": pl.String,  # a string body; null for none or a structured one
}
ATTRIBUTE_SCHEMA = {
    "owner": pl.Int32,  # the record (RECORD, BODY) or the resource (RESOURCE) index
    "where": pl.Int8,
    "key": pl.String,
    "kind": pl.Int8,
    "text": pl.String,  # a string value
    "integer": pl.Int64,  # an int or a bool value
    "real": pl.Float64,  # a double value
}


class OtlpError(InputError, ValueError):
    """A request that cannot be decoded; the message is one line."""


@dataclass(frozen=True)
class Decoded:
    records: pl.DataFrame  # RECORD_SCHEMA, in request order
    attributes: pl.DataFrame  # ATTRIBUTE_SCHEMA

    @property
    def count(self) -> int:
        return self.records.height


def compiled() -> bool:
    """Whether the extension with ``otlp_walk`` was built."""
    return scan.available() and hasattr(scan.library(), "otlp_walk")


def decode_protobuf(data: bytes) -> Decoded:
    return _compiled_walk(data) if compiled() else python_walk(data)


# --- protobuf, in Python ---------------------------------------------------------------------


class _Columns:
    """The frames' columns as Python lists while walking."""

    def __init__(self) -> None:
        self.records: dict[str, list[Any]] = {name: [] for name in RECORD_SCHEMA}
        self.attributes: dict[str, list[Any]] = {name: [] for name in ATTRIBUTE_SCHEMA}

    def attribute(self, owner: int, where: int, key: str, value: tuple[int, Any]) -> None:
        kind, scalar = value
        row = self.attributes
        row["owner"].append(owner)
        row["where"].append(where)
        row["key"].append(key)
        row["kind"].append(kind)
        row["text"].append(scalar if kind == STRING else None)
        row["integer"].append(scalar if kind in (INT, BOOL) else None)
        row["real"].append(scalar if kind == DOUBLE else None)

    def decoded(self) -> Decoded:
        return Decoded(
            pl.DataFrame(self.records, schema=RECORD_SCHEMA),
            pl.DataFrame(self.attributes, schema=ATTRIBUTE_SCHEMA),
        )


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise OtlpError("protobuf: truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise OtlpError("protobuf: varint longer than 10 bytes")


Field = tuple[int, int, int, int, int]  # number, wire type, varint or fixed value, start, stop


def _fields(buf: memoryview, pos: int, end: int) -> list[Field]:
    """The fields of the message in buf[pos:end]: a length-delimited one as its span."""
    found = []
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise OtlpError("protobuf: field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            found.append((number, wire, value, 0, 0))
            continue
        size = {1: 8, 5: 4}.get(wire)
        if wire == 2:
            size, pos = _varint(buf, pos, end)
        if size is None:
            raise OtlpError(f"protobuf: wire type {wire} is not used by OTLP")
        if size > end - pos:
            raise OtlpError("protobuf: a field runs past the end of its message")
        value = int.from_bytes(buf[pos : pos + size], "little") if wire != 2 else size
        found.append((number, wire, value, pos, pos + size))
        pos += size
    return found


def _text(buf: memoryview, start: int, stop: int) -> str:
    try:
        return bytes(buf[start:stop]).decode("utf-8")
    except UnicodeDecodeError:
        raise OtlpError("protobuf: a string is not valid UTF-8") from None


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _any_value(buf: memoryview, start: int, stop: int) -> tuple[int, Any]:
    """An AnyValue as (kind, scalar); the last case set wins, as protobuf has it."""
    value: tuple[int, Any] = (EMPTY, None)
    for number, wire, raw, begin, end in _fields(buf, start, stop):
        if number == 1 and wire == 2:
            value = (STRING, _text(buf, begin, end))
        elif number == 2 and wire == 0:
            value = (BOOL, int(raw != 0))
        elif number == 3 and wire == 0:
            value = (INT, _signed(raw))
        elif number == 4 and wire == 1:
            value = (DOUBLE, struct.unpack("<d", raw.to_bytes(8, "little"))[0])
        elif number in (5, 6, 7) and wire == 2:
            value = (OTHER, None)
    return value


def _key_value(buf: memoryview, start: int, stop: int) -> tuple[str, tuple[int, Any]]:
    key, value = "", (EMPTY, None)
    for number, wire, _, begin, end in _fields(buf, start, stop):
        if number == 1 and wire == 2:
            key = _text(buf, begin, end)
        elif number == 2 and wire == 2:
            value = _any_value(buf, begin, end)
    return key, value


def _times(value: int) -> int:
    return value if value < 1 << 63 else 0  # past 2262: no time (a reject says so)


def _log_record(buf: memoryview, start: int, stop: int, resource: int, out: _Columns) -> None:
    index = len(out.records["resource"])
    times = [0, 0]
    body: str | None = None
    for number, wire, raw, begin, end in _fields(buf, start, stop):
        if number in (1, 11) and wire == 1:
            times[number == 11] = _times(raw)
        elif number == 5 and wire == 2:
            body = None
            for part, kind, _, at, to in _fields(buf, begin, end):
                if part == 1 and kind == 2:
                    body = _text(buf, at, to)
                elif part == 6 and kind == 2:  # a map body: its entries are attributes too
                    body = None
                    for entry, wire_type, _, a, b in _fields(buf, at, to):
                        if entry == 1 and wire_type == 2:
                            out.attribute(index, BODY, *_key_value(buf, a, b))
                elif part in (2, 3, 4, 5, 7):
                    body = None
        elif number == 6 and wire == 2:
            out.attribute(index, RECORD, *_key_value(buf, begin, end))
    out.records["resource"].append(resource)
    out.records["time_ns"].append(times[0])
    out.records["observed_ns"].append(times[1])
    out.records["body"].append(body)


def python_walk(data: bytes) -> Decoded:
    """The protobuf walk in Python (the reference; used when the extension is not built)."""
    buf = memoryview(data)
    out = _Columns()
    for resource, (number, wire, _, start, stop) in enumerate(
        f for f in _fields(buf, 0, len(buf)) if f[0] == 1 and f[1] == 2
    ):
        del number, wire
        for part, kind, _, begin, end in _fields(buf, start, stop):
            if part == 1 and kind == 2:  # Resource
                for entry, wire_type, _, a, b in _fields(buf, begin, end):
                    if entry == 1 and wire_type == 2:
                        out.attribute(resource, RESOURCE, *_key_value(buf, a, b))
            elif part == 2 and kind == 2:  # ScopeLogs
                for entry, wire_type, _, a, b in _fields(buf, begin, end):
                    if entry == 2 and wire_type == 2:
                        _log_record(buf, a, b, resource, out)
    return out.decoded()


# --- protobuf, compiled ----------------------------------------------------------------------

_COUNTS = 2  # records, attributes


def _compiled_walk(data: bytes) -> Decoded:
    """``otlp_walk`` (ingest/_otlp.c): a counting pass sizes the arrays, the second fills them;
    strings are Arrow string views into ``data`` itself (no copy)."""
    library = scan.library()
    raw = np.frombuffer(data, dtype=np.uint8) if data else np.zeros(1, dtype=np.uint8)
    counts = np.zeros(_COUNTS, dtype=np.int64)
    error = ctypes.create_string_buffer(200)
    null = ctypes.c_void_p(0)
    if library.otlp_walk(raw.ctypes.data, len(data), counts.ctypes.data, *[null] * 10, error) != 0:
        raise OtlpError(error.value.decode("utf-8", "replace"))
    records, attributes = int(counts[0]), int(counts[1])
    resource = np.empty(records, dtype=np.int32)
    times = np.empty((records, 2), dtype=np.int64)
    bodies = np.empty((records, 16), dtype=np.uint8)
    has_body = np.empty(records, dtype=np.uint8)
    owner = np.empty(attributes, dtype=np.int32)
    where = np.empty(attributes, dtype=np.int8)
    keys = np.empty((attributes, 16), dtype=np.uint8)
    kind = np.empty(attributes, dtype=np.int8)
    texts = np.empty((attributes, 16), dtype=np.uint8)
    numbers = np.empty(attributes, dtype=np.int64)  # an int, a bool, or a double's bits
    arrays = (resource, times, bodies, has_body, owner, where, keys, kind, texts, numbers)
    counts[:] = 0
    status = library.otlp_walk(
        raw.ctypes.data, len(data), counts.ctypes.data, *(a.ctypes.data for a in arrays), error
    )
    if status != 0:
        raise OtlpError(error.value.decode("utf-8", "replace"))
    buffer = pa.py_buffer(data)
    kind_series = pl.Series("kind", kind)
    record_frame = pl.DataFrame(
        {
            "resource": pl.Series(resource),
            "time_ns": pl.Series(times[:, 0]),
            "observed_ns": pl.Series(times[:, 1]),
            "body": _views(bodies, has_body.view(bool), buffer),
        }
    )
    is_string = kind == STRING
    attribute_frame = pl.DataFrame(
        {
            "owner": pl.Series(owner),
            "where": pl.Series(where),
            "key": _views(keys, None, buffer),
            "kind": kind_series,
            "text": _views(texts, is_string, buffer),
            "integer": pl.Series(np.where((kind == INT) | (kind == BOOL), numbers, 0)),
            "real": pl.Series(numbers.view(np.float64)),
        }
    ).with_columns(
        integer=pl.when(pl.col("kind").is_in([INT, BOOL])).then(pl.col("integer")),
        real=pl.when(pl.col("kind") == DOUBLE).then(pl.col("real")),
    )
    return Decoded(record_frame.cast(RECORD_SCHEMA), attribute_frame.cast(ATTRIBUTE_SCHEMA))  # type: ignore[arg-type]


def _views(views: np.ndarray, valid: np.ndarray | None, buffer: pa.Buffer) -> pl.Series:
    """Arrow string views written by the walk, as a Polars String column."""
    validity = None
    if valid is not None:
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    array = pa.Array.from_buffers(
        pa.string_view(), len(views), [validity, pa.py_buffer(views), buffer]
    )
    return to_series(array).cast(pl.String)


# --- JSON ------------------------------------------------------------------------------------


def decode_json(data: bytes) -> Decoded:
    """OTLP/JSON: the protobuf JSON mapping with lowerCamelCase keys (the snake_case ones
    are read too), 64-bit integers as numbers or strings."""
    try:
        request = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OtlpError(f"not valid JSON: {exc}".splitlines()[0]) from None
    except RecursionError:
        raise OtlpError("JSON nested too deeply") from None
    out = _Columns()
    for resource, resource_logs in enumerate(_list(request, "resourceLogs", "resource_logs")):
        attributes = _list(_object(resource_logs, "resource"), "attributes")
        for entry in attributes:
            out.attribute(resource, RESOURCE, *_json_key_value(entry))
        for scope_logs in _list(resource_logs, "scopeLogs", "scope_logs"):
            for record in _list(scope_logs, "logRecords", "log_records"):
                _json_record(record, resource, out)
    return out.decoded()


def _get(value: Any, *names: str) -> Any:
    if not isinstance(value, dict):
        raise OtlpError("JSON: expected an object where OTLP has a message")
    for name in names:
        if name in value:
            return value[name]
    return None


def _list(value: Any, *names: str) -> list[Any]:
    found = _get(value, *names) if value is not None else None
    if found is None:
        return []
    if not isinstance(found, list):
        raise OtlpError(f"JSON: {names[0]} must be a list")
    return found


def _object(value: Any, name: str) -> Any:
    found = _get(value, name)
    return found if isinstance(found, dict) else None


def _json_record(record: Any, resource: int, out: _Columns) -> None:
    index = len(out.records["resource"])
    body = _get(record, "body")
    text: str | None = None
    if isinstance(body, dict):
        kind, scalar = _json_any_value(body)
        text = scalar if kind == STRING else None
        entries = body.get("kvlistValue", body.get("kvlist_value"))
        for entry in _list(entries, "values") if isinstance(entries, dict) else []:
            out.attribute(index, BODY, *_json_key_value(entry))
    for entry in _list(record, "attributes"):
        out.attribute(index, RECORD, *_json_key_value(entry))
    out.records["resource"].append(resource)
    out.records["time_ns"].append(_json_time(_get(record, "timeUnixNano", "time_unix_nano")))
    out.records["observed_ns"].append(
        _json_time(_get(record, "observedTimeUnixNano", "observed_time_unix_nano"))
    )
    out.records["body"].append(text)


def _json_time(value: Any) -> int:
    number = _json_int(value)
    return number if number is not None and 0 <= number < 1 << 63 else 0


def _json_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise OtlpError(f"JSON: {json.dumps(value)[:40]} is not an integer")


def _json_key_value(entry: Any) -> tuple[str, tuple[int, Any]]:
    key = _get(entry, "key")
    if not isinstance(key, str):
        raise OtlpError("JSON: an attribute without a string key")
    value = _get(entry, "value")
    return key, _json_any_value(value) if isinstance(value, dict) else (EMPTY, None)


_DOUBLE_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _json_any_value(value: dict[str, Any]) -> tuple[int, Any]:
    for name, kind in (("stringValue", STRING), ("string_value", STRING)):
        if name in value:
            if not isinstance(value[name], str):
                raise OtlpError(f"JSON: {name} must be a string")
            return kind, value[name]
    for name in ("boolValue", "bool_value"):
        if name in value:
            return BOOL, int(bool(value[name]))
    for name in ("intValue", "int_value"):
        if name in value:
            number = _json_int(value[name])
            if number is None or not -(1 << 63) <= number < 1 << 63:
                raise OtlpError("JSON: intValue out of range")
            return INT, number
    for name in ("doubleValue", "double_value"):
        if name in value:
            raw = value[name]
            if isinstance(raw, str) and raw in _DOUBLE_WORDS:
                return DOUBLE, _DOUBLE_WORDS[raw]
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise OtlpError("JSON: doubleValue must be a number")
            try:
                return DOUBLE, float(raw)
            except ValueError:
                raise OtlpError("JSON: doubleValue must be a number") from None
    for name in ("bytesValue", "bytes_value"):
        if name in value:
            try:
                base64.b64decode(str(value[name]), validate=True)
            except ValueError:
                raise OtlpError("JSON: bytesValue must be base64") from None
            return OTHER, None
    if any(n in value for n in ("arrayValue", "array_value", "kvlistValue", "kvlist_value")):
        return OTHER, None
    return EMPTY, None
