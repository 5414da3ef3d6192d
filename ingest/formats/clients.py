"""The client of a request, from what a format logs: X-Forwarded-For's first public address
(else its first), else the client address; brackets and ports removed; host names, ``unix:``
and ``-`` become null. Vectorised over a batch; the rare values that need a parser (IPv6,
lists, ports) are worked out once per distinct value."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Set as AbstractSet

import numpy as np
import polars as pl

from conflictlens.ingest.formats.scan import byte_set, with_bytes


def absent(expr: pl.Expr) -> pl.Expr:
    """``-`` and the empty string mean "no value" in every CLF-like format."""
    # (two comparisons: five times cheaper than is_in, which hashes every value)
    return pl.when((expr == "-") | (expr == "")).then(None).otherwise(expr)


CLIENT_FIELDS = ("forwarded_for", "client")


def client_expression(raw: AbstractSet[str]) -> pl.Expr:
    sources = [absent(pl.col(c)) for c in CLIENT_FIELDS if c in raw]
    if "client_hostport" in raw:
        sources.append(pl.col("_client_host"))  # see client_hosts
    if not sources:
        return pl.lit(None, dtype=pl.String)
    return pl.coalesce(sources)


def client_hosts(frame: pl.DataFrame, raw: set[str]) -> pl.DataFrame:
    """``_client_host``: client_hostport without its port, where the client comes from it.

    Only lines without a value in the fields before it (CLIENT_FIELDS, which the coalesce
    prefers) need it: the port's regexes then run on those lines alone, not on every line of
    a log that carries both (Traefik: ClientHost and ClientAddr).
    """
    if "client_hostport" not in raw:
        return frame
    before = [absent(pl.col(c)).is_null() for c in CLIENT_FIELDS if c in raw]
    # (and only lines with a value: the others are null either way; in a JSON log, which
    # decodes the client only on the lines that become events, that is most of them)
    needed = frame.select(pl.all_horizontal([*before, pl.col("client_hostport").is_not_null()]))
    host = absent(strip_port(pl.col("client_hostport"))).alias("_client_host")
    rows = needed.to_series().arg_true()
    if len(rows) == frame.height:  # no other client field: HAProxy, load balancers
        return frame.with_columns(host)
    stripped = frame.select(pl.col("client_hostport").gather(rows)).select(host).to_series()
    column = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    return frame.with_columns(column.scatter(rows, stripped).alias("_client_host"))


def strip_port(address: pl.Expr) -> pl.Expr:
    """``1.2.3.4:5678`` → ``1.2.3.4``, ``[::1]:80`` → ``[::1]``: the brackets stay, so that
    normalise_clients knows the port is gone (an unbracketed IPv6 address keeps its port)."""
    bracketed = address.str.replace(r"^(\[[^\]]*\])(?::\d+)?$", "$1")
    return bracketed.str.replace(r"^([^:\[\]]+):\d+$", "$1")


_ADDRESS_SEPARATORS = re.compile(r'[\s,"]+')
# What may make a client field a list: white space, a comma, a quote. Every byte beyond ASCII
# too (Unicode white space): pick_client keeps a value without separators as it is.
_LIST_BYTES = byte_set(b' \t\n\v\f\r,"', non_ascii=True)


def pick_client(text: str) -> str | None:
    """The client in an address list or a prefixed client field, as Filebeat picks it: the
    first public IP address, else the first address, else the last token.

    ``10.0.0.2, 10.0.0.1, 81.2.69.143`` → ``81.2.69.143``; ``example.com 10.0.0.2`` →
    ``10.0.0.2``; ``"10.5.102.222, 175.16.199.1" 10.2.1.185`` → ``175.16.199.1``.
    """
    tokens = [t for t in _ADDRESS_SEPARATORS.split(text) if t and t != "-"]
    addresses = []
    for token in tokens:
        try:
            addresses.append(ipaddress.ip_address(token.strip("[]")))
        except ValueError:
            continue
    public = [a for a in addresses if a.is_global]
    if public:
        return str(public[0])
    if addresses:
        return str(addresses[0])
    return tokens[-1] if tokens else None


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# A plain IPv4 address, as most clients are: such values are kept without a Python call.
_IPV4 = rf"^(?:{_OCTET}\.){{3}}{_OCTET}$"
_PORT = re.compile(r"^[0-9]{1,5}$")


def ip_address_of(text: str, with_port: bool = False) -> str | None:
    """The IP address ``text`` names, normalised (``[::1]:80`` → ``::1``, ``1.2.3.4:80`` →
    ``1.2.3.4``), or None when it names none (a host name, ``unix:``, ``-``): nothing invented.

    ``with_port``: the field always carries a port (ALB's and HAProxy's unbracketed
    ``2001:db8::1:54321``), so a last ``:digits`` is a port even where the whole would read
    as an IPv6 address too.
    """
    text = text.strip()
    bracketed = re.fullmatch(r"\[([^\]]*)\](?::[0-9]{1,5})?", text)
    candidates = [bracketed.group(1)] if bracketed else []
    if not bracketed:
        head, colon, port = text.rpartition(":")
        split = [head] if colon and _PORT.match(port) else []
        candidates = [*split, text] if with_port else [text, *split]
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        # (a dual-stack listener logs an IPv4 client as ::ffff:a.b.c.d: the same client)
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return str(mapped or address)
    return None


def normalise_addresses(column: pl.Series, with_port: bool = False) -> pl.Series:
    """Each value as ip_address_of gives it; plain IPv4 values (nearly all) stay as they are
    and the rest are looked up once per distinct value."""
    odd = column.is_not_null() & ~column.str.contains(_IPV4)
    if not odd.any():
        return column
    rows = odd.arg_true()
    values = column.gather(rows)
    unique = values.unique().to_list()
    mapping = pl.DataFrame(
        {"value": unique, "ip": [ip_address_of(v, with_port) for v in unique]},
        schema={"value": pl.String, "ip": pl.String},
    )
    fixed = values.to_frame("value").join(mapping, on="value", how="left", maintain_order="left")
    return column.scatter(rows, fixed["ip"])


def normalise_clients(frame: pl.DataFrame, raw: set[str]) -> pl.DataFrame:
    """Every client source holds a bare, valid IP address or null (see ip_address_of), so that
    the coalesce in _client passes over an X-Forwarded-For without an address."""
    names = [n for n in ("forwarded_for", "client") if n in raw and n in frame.columns]
    columns = [normalise_addresses(frame[n]) for n in names]
    if "_client_host" in frame.columns:
        columns.append(normalise_addresses(frame["_client_host"], with_port=True))
    return frame.with_columns(columns) if columns else frame


def pick_clients(frame: pl.DataFrame, raw: set[str]) -> pl.DataFrame:
    """Resolve address lists and prefixes in the client fields (only rows that have them)."""
    for name in ("client", "forwarded_for"):
        if name not in raw:
            continue
        column = frame[name]
        rows = np.flatnonzero(with_bytes(column, _LIST_BYTES))
        if len(rows):
            picked = [pick_client(v) for v in column.gather(rows).to_list()]
            frame = frame.with_columns(column.scatter(rows, pl.Series(picked, dtype=pl.String)))
    return frame
