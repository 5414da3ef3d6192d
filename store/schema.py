"""Schema and migrations. Each migration runs once, in order, inside one transaction.

Timestamps are stored as plain TIMESTAMP values that always mean UTC: keeping the zone out of
the column type keeps Arrow, Polars and bound parameters free of time-zone conversions.
"""

from __future__ import annotations

import duckdb

from conflictlens._errors import StoreError

MIGRATIONS: tuple[str, ...] = (
    # 1: the foundation tables.
    """
    CREATE TABLE sources (
        source_id       INTEGER PRIMARY KEY,
        device          UBIGINT NOT NULL,
        inode           UBIGINT NOT NULL,
        fingerprint     VARCHAR NOT NULL,   -- sha1 of the first fingerprint_len bytes
        fingerprint_len INTEGER NOT NULL,
        path            VARCHAR NOT NULL,   -- last path the file was seen at
        format          VARCHAR,
        log_format      VARCHAR,            -- the user's format string, when one was given
        "offset"        BIGINT NOT NULL DEFAULT 0,  -- bytes consumed (uncompressed stream)
        lines           BIGINT NOT NULL DEFAULT 0,
        rejects         BIGINT NOT NULL DEFAULT 0,
        conflicts       BIGINT NOT NULL DEFAULT 0,
        first_seen      TIMESTAMP NOT NULL,
        updated_at      TIMESTAMP NOT NULL
    );
    CREATE SEQUENCE source_ids START 1;

    CREATE TABLE conflict_events (
        ts           TIMESTAMP NOT NULL,     -- UTC
        method       VARCHAR,
        path         VARCHAR,                -- without the query string
        query        VARCHAR,                -- only when keep_query is configured
        route        VARCHAR,                -- templated path
        resource_ids VARCHAR[],              -- the ids templating removed, in path order
        status       SMALLINT NOT NULL,
        error_code   VARCHAR,
        kind         VARCHAR,
        kind_rule    VARCHAR,                -- which rule decided the kind
        client       VARCHAR,
        user_agent   VARCHAR,
        bytes        BIGINT,
        latency_ms   DOUBLE,
        service      VARCHAR,
        upstream     VARCHAR,
        request_id   VARCHAR,
        source_id    INTEGER NOT NULL,
        "offset"     BIGINT NOT NULL         -- byte offset of the line in its source
    );

    -- Partial per-minute aggregates, appended once per committed batch; queries sum them.
    CREATE TABLE request_rollups (
        minute         TIMESTAMP NOT NULL,   -- UTC, truncated to the minute
        service        VARCHAR,
        method         VARCHAR,
        route          VARCHAR,
        status         SMALLINT NOT NULL,
        requests       BIGINT NOT NULL,
        bytes          BIGINT NOT NULL,
        latency_ms_sum DOUBLE NOT NULL,
        latency_count  BIGINT NOT NULL
    );

    CREATE TABLE rejects (
        source_id INTEGER NOT NULL,
        "offset"  BIGINT NOT NULL,
        reason    VARCHAR NOT NULL,
        sample    BLOB NOT NULL,            -- the first 512 bytes of the line
        seen_at   TIMESTAMP NOT NULL
    );
    """,
    # 2: the route map: stored routes rewritten to learned or declared (OpenAPI) templates.
    """
    CREATE TABLE route_map (
        route      VARCHAR PRIMARY KEY,     -- a route as templating stored it
        mapped     VARCHAR NOT NULL,        -- its template; equal to route: keep it literal
        origin     VARCHAR NOT NULL CHECK (origin IN ('learned', 'openapi')),
        updated_at TIMESTAMP NOT NULL
    );
    """,
    # 3: alerts: the state of each rule's groups, silences, and the outbox that notify/
    # delivers from (rows are written in the same transaction as the state change).
    """
    CREATE SEQUENCE alert_outbox_ids START 1;
    CREATE TABLE alert_outbox (
        id              BIGINT PRIMARY KEY DEFAULT nextval('alert_outbox_ids'),
        created_at      TIMESTAMP NOT NULL,       -- UTC, naive like every timestamp in the store
        channel         VARCHAR NOT NULL,         -- the channel name from the config
        rule            VARCHAR NOT NULL,
        fingerprint     VARCHAR NOT NULL,         -- stable hash of rule + group labels
        status          VARCHAR NOT NULL,         -- firing | resolved | test
        payload         VARCHAR NOT NULL,         -- JSON
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMP NOT NULL,
        delivered_at    TIMESTAMP,
        last_error      VARCHAR
    );

    CREATE TABLE alert_state (
        rule              VARCHAR NOT NULL,
        fingerprint       VARCHAR NOT NULL,
        labels            VARCHAR NOT NULL,     -- JSON object
        state             VARCHAR NOT NULL
                          CHECK (state IN ('normal', 'pending', 'firing', 'resolved', 'nodata')),
        active_since      TIMESTAMP,            -- the condition began to hold (pending)
        firing_since      TIMESTAMP,
        last_condition_at TIMESTAMP,            -- the condition last held
        resolved_at       TIMESTAMP,
        last_value        DOUBLE,
        last_notified_at  TIMESTAMP,            -- the last firing/resolved notification enqueued
        updated_at        TIMESTAMP NOT NULL,
        PRIMARY KEY (rule, fingerprint)
    );

    CREATE SEQUENCE alert_silence_ids START 1;
    CREATE TABLE alert_silences (
        id         BIGINT PRIMARY KEY DEFAULT nextval('alert_silence_ids'),
        matchers   VARCHAR NOT NULL,            -- JSON object: rule and labels, all must equal
        starts_at  TIMESTAMP NOT NULL,
        ends_at    TIMESTAMP NOT NULL,
        comment    VARCHAR NOT NULL DEFAULT '',
        created_at TIMESTAMP NOT NULL
    );
    """,
    # 4: summaries of conflicts and requests per hour and per 5 minutes (store/summaries.py):
    # weeks of history for baselines read from these instead of millions of raw rows.
    """
    CREATE TABLE conflict_hours (
        slot TIMESTAMP NOT NULL, service VARCHAR, method VARCHAR, route VARCHAR,
        error_code VARCHAR, kind VARCHAR, conflicts BIGINT NOT NULL
    );
    CREATE TABLE request_hours (
        slot TIMESTAMP NOT NULL, service VARCHAR, method VARCHAR, route VARCHAR,
        requests BIGINT NOT NULL
    );
    CREATE TABLE conflict_slots (
        slot TIMESTAMP NOT NULL, service VARCHAR, method VARCHAR, route VARCHAR,
        error_code VARCHAR, kind VARCHAR, conflicts BIGINT NOT NULL
    );
    CREATE TABLE request_slots (
        slot TIMESTAMP NOT NULL, service VARCHAR, method VARCHAR, route VARCHAR,
        requests BIGINT NOT NULL
    );
    CREATE TABLE hours_watermark (complete_before TIMESTAMP NOT NULL);
    INSERT INTO hours_watermark VALUES ('1970-01-01');
    CREATE TABLE hour_invalidations (hour TIMESTAMP NOT NULL);
    """,
    # 5: annotations: changes (a deploy, a config push) that incidents can name as the one
    # that preceded them (store/annotations.py).
    """
    CREATE SEQUENCE annotation_ids START 1;
    CREATE TABLE annotations (
        id         BIGINT PRIMARY KEY DEFAULT nextval('annotation_ids'),
        "at"       TIMESTAMP NOT NULL,      -- UTC, when the change happened ("at" is a keyword)
        text       VARCHAR NOT NULL,
        service    VARCHAR,                 -- NULL: the change concerns every service
        created_at TIMESTAMP NOT NULL
    );
    """,
    # 6: each conflict event's log line as read (the query string cut from the request target
    # unless keep_query is on); NULL for rows imported before, and for non-conflict rows.
    # zstd: lines share little with each other, and FSST kept 78 % of their size, zstd 35 %.
    """
    ALTER TABLE conflict_events ADD COLUMN raw_line VARCHAR USING COMPRESSION zstd;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchema(StoreError):
    """The database was written by a newer conflictlens."""


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of the open database; 0 for a new, empty one."""
    # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses other work.
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchall()
    if not exists[0][0]:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchall()
    return int(row[0][0]) if row[0][0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to date; return the version now in force."""
    version = current_version(con)
    if version > SCHEMA_VERSION:
        raise NewerSchema(
            f"database schema version {version} is newer than this conflictlens "
            f"({SCHEMA_VERSION}); upgrade conflictlens"
        )
    if version == SCHEMA_VERSION:
        return SCHEMA_VERSION
    # All pending migrations in one transaction: a process killed halfway leaves the file as
    # it was, never at a version in between that no conflictlens could read.
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            con.execute(MIGRATIONS[number - 1])
            con.execute("INSERT INTO schema_version VALUES (?)", [number])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
