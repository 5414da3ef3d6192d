"""The CLF family: nginx and Apache access logs, from a preset or the user's own format string.

A format string (nginx ``log_format`` or Apache ``LogFormat``) is compiled once into one regex
with a named group per useful variable; a chunk of lines is then parsed by a single
``str.extract_groups`` over the whole chunk.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from conflictlens._errors import InputError
from conflictlens.ingest.arrow import int64_array, to_series
from conflictlens.ingest.formats import scan
from conflictlens.ingest.formats.fields import convert, reject_reason


class FormatError(InputError, ValueError):
    """A format string that cannot be compiled; the message names the offending part."""


# nginx variables → canonical raw fields. Variables not listed are matched but not kept.
NGINX_VARIABLES: dict[str, str] = {
    "remote_addr": "client",
    "realip_remote_addr": "client",
    "http_x_forwarded_for": "forwarded_for",
    "time_local": "time_clf",
    "time_iso8601": "time_iso",
    "msec": "time_epoch",
    "request": "request",
    "request_method": "method",
    "request_uri": "target",
    "uri": "path",
    "document_uri": "path",
    "args": "query",
    "query_string": "query",
    "status": "status",
    "body_bytes_sent": "bytes",
    "bytes_sent": "bytes",
    "http_user_agent": "user_agent",
    "request_time": "latency_s",
    "upstream_addr": "upstream",
    "proxy_host": "service",
    "host": "host",
    "server_name": "host",
    "request_id": "request_id",
    "http_x_request_id": "request_id",
    "http_if_match": "if_match",
    "http_if_unmodified_since": "if_unmodified_since",
}

# A response header that carries the service's machine-readable error code, e.g.
# $sent_http_x_error_code or $upstream_http_x_error_code.
ERROR_CODE_HEADER = re.compile(
    r"^(?:x[-_])?(?:[a-z]+[-_])*(?:error[-_]?code|err[-_]?code|error)$", re.I
)
NGINX_HEADER_VARIABLE = re.compile(r"^(?:sent_http|upstream_http)_(?P<header>\w+)$")

APACHE_DIRECTIVES: dict[str, str] = {
    "h": "client",
    "a": "client",
    "t": "time_clf",
    "r": "request",
    "s": "status",
    "b": "bytes",
    "B": "bytes",
    "D": "latency_us",
    "T": "latency_s",
    "m": "method",
    "U": "path",
    "q": "query",
    "v": "host",
    "V": "host",
    "L": "request_id",
}
APACHE_TIME_UNITS = {"ms": "latency_ms", "us": "latency_us", "s": "latency_s"}
APACHE_REQUEST_HEADERS = {
    "user-agent": "user_agent",
    "x-forwarded-for": "forwarded_for",
    "x-request-id": "request_id",
    "if-match": "if_match",
    "if-unmodified-since": "if_unmodified_since",
}

# nginx writes these as plain numbers, never "-" (Apache's %b does): telling the two apart
# in detection depends on it.
EXACT_VARIABLES = {"body_bytes_sent": r"\d+", "bytes_sent": r"\d+"}
# Time fields are bare numbers (or "-"): one that starts with a quote is another layout's
# quoted field in that place (Harbor's nginx appends "-" "https" to combined, which nginx-
# extended's $request_time and error-code header would otherwise take, "https" as the code).
LATENCY_RAW = ("latency_s", "latency_ms", "latency_us")
QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'
ADDRESS_LIST = r"[^\s,]*(?:, [^\s,]+)*"
BRACKETED_TIME = r"[^\]]*"
LENIENT_TAIL = r"(?s:\s.*)?$"  # what may follow a whole layout (see compile_tokens)


@dataclass(frozen=True)
class Token:
    """One piece of a format string: literal text, or a variable with its canonical field."""

    literal: str = ""
    variable: str = ""
    field: str | None = None


@dataclass(frozen=True)
class ClfFormat:
    """A compiled CLF-family format."""

    name: str
    source: str  # the format string it was compiled from
    regex: str
    fields: tuple[str, ...]  # canonical raw fields, in group order
    # For lines the regex misses: the same format after a free-form client prefix (a vhost,
    # "host:port", quoted or unquoted address lists), as operators often prepend.
    fallback: str | None = None
    unescape: tuple[str, ...] = ("request", "target", "path", "user_agent", "error_code")
    # For lines still missed: the referer's closing quote missing ('"ref "ua"': exactly three
    # quotes after the bytes), as some published logs have; the last quoted string is still
    # the user agent. Tried before ``shorter``, which would take the line without it.
    unclosed_referer: str | None = None
    # For lines still missed: a shorter format the same server writes beside this one (a
    # common line in a combined log: a vhost or a module that logs without the headers).
    shorter: str | None = None
    # For lines still missed: raw quotes inside the request (Apache before 2.0.46 did not
    # escape them, and proxies in front of nginx log what they saw): the request runs to the
    # last quote before the status.
    quotes: str | None = None

    # The compiled scanner's program for the same format (None: the regex does it all).
    program: scan.Program | None = field(default=None, compare=False, repr=False)

    def parse(
        self, lines: pl.DataFrame, *, detail_statuses: Collection[int] | None = None
    ) -> pl.DataFrame:
        """Parse a frame with columns ``line`` and ``offset`` into parsed columns + ``reject``."""
        frame = self._extract(lines)
        frame = frame.with_columns(self._matched().alias("_matched"))
        if self.fallback is not None:
            frame = self._retry_with_prefix(frame, self.fallback)
        if self.unclosed_referer is not None:
            frame = self._retry_with_prefix(frame, self.unclosed_referer)
        if self.shorter is not None:
            frame = self._retry_with_prefix(frame, self.shorter)
        if self.quotes is not None:
            frame = self._retry_with_prefix(frame, self.quotes)
        frame = self._forget_unmatched(frame)
        frame = convert(frame, set(self.fields), list(self.unescape))
        return frame.with_columns(reject=reject_reason(pl.col("_matched"), self.name))

    def _extract(self, lines: pl.DataFrame) -> pl.DataFrame:
        """``lines`` with a column per field: by the compiled scanner where it is built, and
        by the regex for the lines the scanner leaves to it (or for all of them)."""
        if self.program is None or not scan.available():
            groups = pl.col("line").str.extract_groups(self.regex)
            return lines.with_columns(groups.alias("_groups")).unnest("_groups")
        columns, matched = scan.scan(lines["line"], self.program)
        frame = lines.with_columns(**columns)
        if matched.all():
            return frame
        rows = to_series(int64_array(np.flatnonzero(~matched)))  # (not via numpy.ma: 20 ms)
        retry = frame["line"].gather(rows).str.extract_groups(self.regex).struct.unnest()
        return frame.with_columns([frame[name].scatter(rows, retry[name]) for name in self.fields])

    def _retry_with_prefix(self, frame: pl.DataFrame, fallback: str) -> pl.DataFrame:
        """Re-parse only the lines the main regex missed, with the free-form client prefix."""
        missed = ~frame["_matched"]
        if not missed.any():
            return frame
        rows = missed.arg_true()
        retry = frame["line"].gather(rows).str.extract_groups(fallback).struct.unnest()
        updates = [frame[name].scatter(rows, retry[name]) for name in retry.columns]
        frame = frame.with_columns(updates)
        return frame.with_columns(self._matched().alias("_matched"))

    def _forget_unmatched(self, frame: pl.DataFrame) -> pl.DataFrame:
        """A line refused for a quoted time field keeps nothing the scanner read from it (as a
        line the regex missed)."""
        if not any(f in self.fields for f in LATENCY_RAW):
            return frame
        missed = ~frame["_matched"]
        if not missed.any():
            return frame
        read = [c for c in frame.columns if c not in ("line", "offset", "_matched")]
        return frame.with_columns(
            [pl.when(pl.col("_matched")).then(pl.col(name)).alias(name) for name in read]
        )

    def _matched(self) -> pl.Expr:
        """A line the layout read: its first field found, and no time field quoted."""
        found = pl.col(self.fields[0]).is_not_null()
        for name in (f for f in LATENCY_RAW if f in self.fields):
            found = found & ~pl.col(name).str.starts_with('"').fill_null(False)
        return found


def tokenize_nginx(fmt: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    pattern = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
    seen: set[str] = set()
    for match in pattern.finditer(fmt):
        if match.start() > pos:
            tokens.append(Token(literal=fmt[pos : match.start()]))
        name = match.group(1) or match.group(2)
        field = nginx_field(name)
        if field in seen:
            field = None  # the first variable that fills a field wins
        if field:
            seen.add(field)
        tokens.append(Token(variable=name, field=field))
        pos = match.end()
    if pos < len(fmt):
        tokens.append(Token(literal=fmt[pos:]))
    if not any(t.variable for t in tokens):
        raise FormatError(f"log format has no $variables: {fmt!r}")
    return tokens


def nginx_field(variable: str) -> str | None:
    if variable in NGINX_VARIABLES:
        return NGINX_VARIABLES[variable]
    header = NGINX_HEADER_VARIABLE.match(variable)
    if header and ERROR_CODE_HEADER.match(header.group("header")):
        return "error_code"
    return None


def tokenize_apache(fmt: str) -> list[Token]:
    tokens: list[Token] = []
    pattern = re.compile(
        r"%(?P<cond>!?[0-9,]*)?(?P<mod>[<>])?(?:\{(?P<arg>[^}]*)\})?(?P<d>[a-zA-Z%])"
    )
    pos = 0
    seen: set[str] = set()
    for match in pattern.finditer(fmt):
        if match.start() > pos:
            tokens.append(Token(literal=fmt[pos : match.start()]))
        directive, arg = match.group("d"), match.group("arg")
        pos = match.end()
        if directive == "%":
            tokens.append(Token(literal="%"))
            continue
        field = apache_field(directive, arg)
        if directive == "t" and not arg:
            # %t writes its own brackets: [10/Oct/2000:13:55:36 -0700]
            tokens += [
                Token(literal="["),
                Token(variable="%t", field="time_clf"),
                Token(literal="]"),
            ]
            seen.add("time_clf")
            continue
        if field == "unsupported":
            raise FormatError(f"unsupported Apache directive {match.group(0)!r} in {fmt!r}")
        if field in seen:
            field = None
        if field:
            seen.add(field)
        tokens.append(Token(variable=match.group(0), field=field))
    if pos < len(fmt):
        tokens.append(Token(literal=fmt[pos:]))
    if not any(t.variable for t in tokens):
        raise FormatError(f"log format has no %directives: {fmt!r}")
    return tokens


def apache_field(directive: str, arg: str | None) -> str | None:
    if directive == "t" and arg:
        return "unsupported"  # a custom strftime time format
    if directive == "T" and arg:
        return APACHE_TIME_UNITS.get(arg, "unsupported")
    if directive == "i" and arg:
        return APACHE_REQUEST_HEADERS.get(arg.lower())
    if directive == "o" and arg:
        return "error_code" if ERROR_CODE_HEADER.match(arg) else None
    if directive == "a" and arg:
        return "client" if arg == "c" else None
    return APACHE_DIRECTIVES.get(directive)


def variable_regex(tokens: list[Token], index: int) -> str:
    """The narrowest safe regex for the variable at ``index``, from what surrounds it."""
    return variable_shape(tokens, index)[0]


def variable_shape(tokens: list[Token], index: int) -> tuple[str, int | None, int]:
    """The variable's regex, and the scanner operation that reads the same (None: only the
    regex can) with its stop byte."""
    token = tokens[index]
    before = tokens[index - 1].literal if index > 0 else ""
    after = tokens[index + 1].literal if index + 1 < len(tokens) else ""
    if before.endswith('"') and after.startswith('"'):
        return QUOTED, scan.QUOTED, 0
    if token.variable in EXACT_VARIABLES:
        return EXACT_VARIABLES[token.variable], scan.DIGITS, 0
    if token.field == "time_clf":
        if after.startswith("]"):
            return BRACKETED_TIME, scan.UNTIL_BYTE, ord("]")
        return r"\S+ [+-]\d{4}", scan.TIME_ZONE, 0
    if not after:
        return r"\S*", scan.NONSPACE, 0
    if index == 0 and after.startswith(" "):
        # A leading client field may be an address list ("10.0.0.2, 10.0.0.1"). Every
        # variable regex is kept one-pass (no lazy or overlapping repeats): Rust's regex
        # then extracts groups in one linear scan, about three times faster.
        return ADDRESS_LIST, scan.ADDRESS_LIST, 0
    stop = after[0]
    if stop == " ":
        return r"\S*", scan.NONSPACE, 0
    return f"[^{re.escape(stop)}]*", (scan.UNTIL_BYTE if stop.isascii() else None), ord(stop)


def compile_tokens(
    name: str, source: str, tokens: list[Token], *, client_prefix: bool
) -> ClfFormat:
    parts = ["^"]
    fields: list[str] = []
    program: scan.ProgramBuilder | None = scan.ProgramBuilder()
    for index, token in enumerate(tokens):
        if not token.variable:
            parts.append(re.escape(token.literal))
            if program is not None:
                program.literal(token.literal)
            continue
        regex, operation, stop = variable_shape(tokens, index)
        if program is not None and operation is not None:
            program.variable(operation, token.field, stop)
        else:
            program = None
        if token.field:
            parts.append(f"(?P<{token.field}>{regex})")
            fields.append(token.field)
        else:
            parts.append(f"(?:{regex})")
    # Extra trailing fields after the whole layout are accepted and not read: operators often
    # append some to a preset ($http_x_forwarded_for, timings), and newer versions of a
    # gateway append some to its documented format (APISIX's AI fields). They must begin
    # with white space: the last declared field ends where it ends in the layout.
    parts.append(LENIENT_TAIL)
    if "status" not in fields:
        raise FormatError(f"log format has no status variable: {source!r}")
    if not fields or not {"time_clf", "time_iso", "time_epoch"} & set(fields):
        raise FormatError(
            f"log format has no time variable ($time_local, $time_iso8601, $msec, %t): {source!r}"
        )
    fallback = None
    if client_prefix and tokens[0].field == "client" and len(tokens) > 1 and tokens[1].literal:
        # parts[1] is the client group: let the client be anything up to the next literal.
        fallback = "".join(["^", "(?P<client>.*?)", *parts[2:]])
    return ClfFormat(
        name=name,
        source=source,
        regex="".join(parts),
        fields=tuple(fields),
        fallback=fallback,
        program=program.end(lenient=True) if program is not None else None,
    )


def compile_log_format(fmt: str, *, name: str = "custom", client_prefix: bool = False) -> ClfFormat:
    """Compile an nginx ``log_format`` (``$var``) or Apache ``LogFormat`` (``%x``) string;
    with ``client_prefix`` (the presets), lines missed are tried again after a free-form
    client prefix."""
    fmt = fmt.strip()
    if not fmt:
        raise FormatError("empty log format")
    dialect = "nginx" if "$" in fmt else "apache"
    tokens = tokenize_nginx(fmt) if dialect == "nginx" else tokenize_apache(fmt)
    return compile_tokens(name, fmt, tokens, client_prefix=client_prefix)


NGINX_COMBINED = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'
NGINX_COMMON = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent'
APACHE_COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"'
APACHE_COMMON = '%h %l %u %t "%r" %>s %b'

# combined + $request_time + the error-code header: a common way to log why a 409 happened.
NGINX_EXTENDED = NGINX_COMBINED + ' $request_time "$sent_http_x_error_code"'
# The log_format "main" of nginx's own default nginx.conf (and of its Docker image).
NGINX_MAIN = NGINX_COMBINED + ' "$http_x_forwarded_for"'
# What a combined layout adds to the common one: the referer, then the user agent.
COMBINED_TAILS = (
    NGINX_COMBINED.removeprefix(NGINX_COMMON),
    APACHE_COMBINED.removeprefix(APACHE_COMMON),
)


def quotes_regex(*, user_agent: bool, dash_bytes: bool) -> str:
    """A CLF line whose request holds raw quotes, with or without the referrer and user agent;
    bytes as the dialect writes them (Apache's %b may be "-", nginx's $body_bytes_sent not)."""
    size = "[0-9]+|-" if dash_bytes else "[0-9]+"
    head = (
        r'^(?P<client>\S+) \S+ \S+ \[(?P<time_clf>[^\]]+)\] "(?P<request>.*)" '
        rf"(?P<status>[0-9]{{3}}) (?P<bytes>{size})"
    )
    tail = r'(?: "[^"]*" "(?P<user_agent>[^"]*)")?' if user_agent else ""
    return head + tail + r"(?:\s.*)?$"


def unclosed_referer_regex(shorter: ClfFormat) -> str:
    """A combined line whose referer is not a closed quoted string: the layout of ``shorter``
    (its common part), then exactly '"referer "user agent"' (the closing quote missing; the
    space before the second quote is the separator the layout puts there) or '- "user agent"'
    (an absent referer written as a bare -, as MarkLogic and Couchbase write it), and nothing
    else."""
    if not shorter.regex.endswith(LENIENT_TAIL):
        raise FormatError(f"no layout to extend in {shorter.regex!r}")
    head = shorter.regex.removesuffix(LENIENT_TAIL)
    return head + f'(?: "{QUOTED}| -) "(?P<user_agent>{QUOTED})"\\s*$'


def _preset(fmt: str, name: str, shorter: str | None = None) -> ClfFormat:
    """A preset: extra trailing fields accepted, the lines of ``shorter`` too, and lines with
    raw quotes in the request; a combined preset also reads a line whose referer is not
    closed."""
    preset = compile_log_format(fmt, name=name, client_prefix=True)
    quotes = quotes_regex(user_agent="user_agent" in preset.fields, dash_bytes="$" not in fmt)
    if shorter is None:
        return replace(preset, quotes=quotes)
    short = compile_log_format(shorter, name=name, client_prefix=True)
    unclosed = None
    if fmt.removeprefix(shorter) in COMBINED_TAILS:
        unclosed = unclosed_referer_regex(short)
    return replace(preset, shorter=short.regex, quotes=quotes, unclosed_referer=unclosed)


PRESETS: dict[str, ClfFormat] = {
    "nginx-extended": _preset(NGINX_EXTENDED, "nginx-extended"),
    "nginx-main": _preset(NGINX_MAIN, "nginx-main", NGINX_COMBINED),
    "nginx-combined": _preset(NGINX_COMBINED, "nginx-combined", NGINX_COMMON),
    "apache-combined": _preset(APACHE_COMBINED, "apache-combined", APACHE_COMMON),
    "nginx-common": _preset(NGINX_COMMON, "nginx-common"),
    "apache-common": _preset(APACHE_COMMON, "apache-common"),
}
