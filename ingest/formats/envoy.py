"""Envoy's default text access-log format, with the Istio variants and an error-code field;
Istio's default as a format of its own (istio-text, at the end).

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
    %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
    %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
    "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"

Accepted around it, in one pass:

* an ``ACCESS `` prefix (Ambassador, Emissary);
* Istio's trailing fields, whose ``%DOWNSTREAM_REMOTE_ADDRESS%`` is the client where
  ``X-Forwarded-For`` is ``-`` (brackets and port removed);
* Istio's fields between the response flags and the byte counts: ``"%DYNAMIC_METADATA(...)%"``
  (Istio 1.1-1.5) or ``%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
  "%UPSTREAM_TRANSPORT_FAILURE_REASON%"`` (Istio 1.9+), and Istio's unquoted fields after the
  upstream host (cluster, addresses, server name, route);
* the service's error code as one more quoted field right after ``"%UPSTREAM_HOST%"``
  (`` "%RESP(X-ERROR-CODE)%"``; ``-`` is none).

TCP-proxy lines (``"- - -"``, status 0) are events without method or path. Envoy does not escape
quotes inside header values: a line whose user agent holds one is re-parsed on its own.
"""

from __future__ import annotations

from conflictlens.ingest.formats.clf import ClfFormat

ENVOY_DEFAULT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" ["%RESP(X-ERROR-CODE)%"]'
)

# (leading blanks: a line pasted with an indent)
_START = r"^[ \t]*(?:ACCESS )?\[(?P<time_iso>[^\]\s]*)\] "
# Response flags, then nothing (Envoy), one quoted field (Istio 1.1-1.5) or two unquoted
# fields and a quoted one (Istio 1.9+; response code details never start with a digit), then
# bytes received, bytes sent, duration, upstream service time.
_ISTIO_1_9 = r'[^\s"0-9][^\s"]* [^\s"]+ "[^"]*" '
# Or %RESPONSE_CODE_DETAILS% alone, which operators add after the flags.
_DETAILS = r'[^\s"0-9][^\s"]* '
_COUNTS = (
    r'[^\s"]+ (?:"[^"]*" |'
    + _ISTIO_1_9
    + "|"
    + _DETAILS
    + r")?"
    + r'[0-9]+ (?P<bytes>[0-9]+) (?P<latency_ms>[0-9]+) [^\s"]+ '
)
# After the upstream host: the error-code field; or Istio's six unquoted fields (upstream
# cluster, upstream local address, downstream local address, downstream remote address,
# requested server name, route; Istio 1.1 has no route), of which the downstream remote address is the client when
# X-Forwarded-For is "-"; or other unquoted fields; or nothing. Anything else after them (a
# quote) is not Envoy's.
_ISTIO_TAIL = r'(?:[^\s"]+ ){3}(?P<client_hostport>[^\s"]+) [^\s"]+(?: [^\s"]*)?\r?\n?$'
_END = (
    r'(?: (?:"(?P<error_code>[^"\r\n]*)"(?: [^"\r\n]*)?\r?\n?$|'
    + _ISTIO_TAIL
    + r'|[^"\r\n]*\r?\n?$)|\r?\n?$)'
)

_MAIN = (
    _START
    + r'"(?P<request>[^"]*)" (?P<status>[0-9]+) '
    + _COUNTS
    + r'"(?P<forwarded_for>[^"]*)" "(?P<user_agent>[^"]*)" "(?P<request_id>[^"]*)" '
    + r'"(?P<host>[^"]*)" "(?P<upstream>[^"]*)"'
)
# Only for the lines the main regex missed: raw quotes in the request, X-Forwarded-For or
# user agent (the user agent takes the most; the request id, authority and upstream host
# cannot hold quotes).
_QUOTES = (
    _START
    + r'"(?P<request>.*?)" (?P<status>[0-9]+) '
    + r'[^\s"]+ (?:".*?" |[^\s"0-9][^\s"]* [^\s"]+ ".*?" |[^\s"0-9][^\s"]* )?'
    + r'[0-9]+ (?P<bytes>[0-9]+) (?P<latency_ms>[0-9]+) [^\s"]+ '
    + r'"(?P<forwarded_for>[^"]*)" "(?P<user_agent>.*?)" "(?P<request_id>[^"]*)" '
    + r'"(?P<host>[^"]*)" "(?P<upstream>[^"]*)"'
)
ENVOY_REGEX = _MAIN + _END
ENVOY_QUOTES_REGEX = _QUOTES + _END

ENVOY_FIELDS = (
    "time_iso",
    "request",
    "status",
    "bytes",
    "latency_ms",
    "forwarded_for",
    "user_agent",
    "request_id",
    "host",
    "upstream",
    "error_code",
    "client_hostport",
)

# Envoy writes header values verbatim: nothing to unescape.
ENVOY_TEXT = ClfFormat(
    name="envoy-text",
    source=ENVOY_DEFAULT,
    regex=ENVOY_REGEX,
    fields=ENVOY_FIELDS,
    fallback=ENVOY_QUOTES_REGEX,
    unescape=(),
)

# Istio's default (meshConfig.accessLogEncoding TEXT): Envoy's fields with Istio's in the middle
# and its six after the upstream host, all required, so that detection names Istio for its
# files (envoy-text reads them as well, declaring one field more: the error code).
ISTIO_DEFAULT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%"
)
ISTIO_TEXT = ClfFormat(
    name="istio-text",
    source=ISTIO_DEFAULT,
    regex=_MAIN + " " + _ISTIO_TAIL,
    fields=tuple(f for f in ENVOY_FIELDS if f != "error_code"),
    fallback=_QUOTES + " " + _ISTIO_TAIL,
    unescape=(),
)
