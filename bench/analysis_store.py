"""A synthetic conflictlens store for the analysis benchmark, and its "raw events" peer.

Both are built with DuckDB SQL alone (no log parsing), reproducibly (every draw is a hash
of the row's identity and a fixed seed), and cached under ``bench/out``: a file is reused when
the small ``<file>.meta.json`` beside it names the same parameters.

* The **store** (``analysis-store-<size>.duckdb``): ``store.schema.migrate`` on a new file, then

  - ``request_rollups``: ``requests`` requests over ``days`` days ending at ``end``, per minute
    x (service, method, route, status) for ~60 endpoints with Zipf-like traffic, a diurnal
    and weekly cycle, statuses 200/201/204/404/409/412/422/423/428/500, and a few planted
    conflict incidents (a multiplier on one endpoint's conflicts for an hour or three). The
    store appends *partial* per-minute rows, one set per committed batch, so a key-minute
    with two or more requests is split into two rows often enough to average ~1.5 rows per
    key-minute. ``sum(requests)`` is exactly ``requests``.
  - ``conflict_events``: exactly ``conflicts`` rows, as many per minute x (service, method,
    route, status) as the rollups' 409/412/423/428 counts, with an error code drawn from the
    endpoint's list (kind and kind_rule as conflictlens's classifier decides them), a time
    spread within the minute, resource ids (1-2 per route with placeholders, Zipf so a few
    resources are hot), the path rebuilt from route and ids, clients (some hundreds, a few
    heavy), latency, user agent, bytes, upstream, request id, ``source_id`` 1 and an
    increasing ``offset``. Inside an incident its extra conflicts come from one client on
    one resource, seconds apart (a retry storm). Rows are in time order, as an import
    appends them.
  - one ``sources`` row that accounts for all of it;
  - then what ``conflictlens ingest`` does at its end: the hourly and 5-minute summaries
    (``store.refresh_summaries``). A cached file is migrated and its summaries refreshed when
    the schema has moved on since it was built.

* The **raw peer** (``analysis-raw-<size>.duckdb``): one row per request (``requests`` rows:
  ts, service, method, route, status, error_code, kind, latency_ms, client), what a tool that
  keeps every line would query. Non-conflict requests are unnested from the store's rollups,
  conflict-family requests are the store's events themselves, so both files describe the
  same traffic and the same questions have the same answers. Rows are in time order.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from bench.analysis_catalog import ENDPOINTS, ID_SQL, INCIDENTS, endpoint_rows
from conflictlens.store import refresh_summaries, summarised_before
from conflictlens.store.schema import SCHEMA_VERSION, current_version, migrate

GENERATOR_VERSION = 2  # bump when the data a spec produces changes
CONFLICT_STATUSES = (409, 412, 423, 428)
ROWS_PER_KEY_MINUTE = 1.5  # partial rollup rows per minute x (service, method, route, status)
LINE_BYTES = 237  # average line length, for the events' offsets and the source's offset


@dataclass(frozen=True)
class Spec:
    """What a synthetic store holds; equal specs build equal files."""

    requests: int = 50_000_000
    conflicts: int = 2_000_000
    days: int = 30
    end: str = "2026-11-20T00:00:00"  # UTC, exclusive
    seed: int = 20261120

    @property
    def end_time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.end)

    @property
    def start_time(self) -> dt.datetime:
        return self.end_time - dt.timedelta(days=self.days)

    @property
    def label(self) -> str:
        return f"{short(self.requests)}-{short(self.conflicts)}-{self.days}d"

    def key(self) -> dict[str, Any]:
        return {**asdict(self), "generator": GENERATOR_VERSION, "duckdb": duckdb.__version__}


def short(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# --- building ---------------------------------------------------------------------------

U = "(hash({args}, $seed::BIGINT) / 18446744073709551616.0)"


def u(*args: str) -> str:
    """A uniform draw in [0, 1) from the hash of ``args`` and the seed."""
    return U.format(args=", ".join(args))


def meta_path(db: Path) -> Path:
    return Path(f"{db}.meta.json")


def cached(db: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The meta of ``db`` when it exists and was built from ``key``."""
    try:
        meta: dict[str, Any] = json.loads(meta_path(db).read_text())
    except (OSError, ValueError):
        return None
    if meta.get("key") != key or not db.exists():
        return None
    return meta


def _fresh(db: Path) -> Path:
    tmp = Path(f"{db}.building")
    for path in (tmp, Path(f"{tmp}.wal"), db, Path(f"{db}.wal"), meta_path(db)):
        path.unlink(missing_ok=True)
    return tmp


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection to build with: UTC, no progress bar."""
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


def _finish(
    tmp: Path, db: Path, key: dict[str, Any], seconds: float, extra: dict[str, Any]
) -> dict[str, Any]:
    os.replace(tmp, db)
    meta = {
        "key": key,
        "built_seconds": round(seconds, 1),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "bytes": db.stat().st_size,
        **extra,
    }
    meta_path(db).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _upkeep(con: duckdb.DuckDBPyConnection) -> None:
    """What ``conflictlens ingest`` does after importing: migrate, refresh the summaries."""
    migrate(con)
    refresh_summaries(con)


def _needs_upkeep(db: Path) -> bool:
    con = duckdb.connect(str(db), read_only=True)
    try:
        if current_version(con) < SCHEMA_VERSION:
            return True
        newest = con.execute("SELECT max(minute) FROM request_rollups").fetchall()[0][0]
        if not isinstance(newest, dt.datetime):
            return False
        return summarised_before(con) < newest.replace(minute=0, second=0, microsecond=0)
    finally:
        con.close()


def ensure_store(db: Path, spec: Spec, log: Any = print) -> dict[str, Any]:
    """Reuse or build the synthetic store at ``db``; return its meta (key, build time, size)."""
    key = spec.key()
    meta = cached(db, key)
    if meta is not None:
        log(f"reusing {db} (built in {meta['built_seconds']} s on {meta['built_at']})")
        # A newer conflictlens may have added migrations or summaries since: bring the file up
        # to date as an import would (only then: a write lock shuts out other readers).
        if _needs_upkeep(db):
            log("  migrating and refreshing its summaries, as an import would ...")
            try:
                con = duckdb.connect(str(db))
            except duckdb.IOException as exc:  # held by another process (serve, a benchmark)
                log(f"  WARNING: left as it is, {str(exc).splitlines()[0]}")
            else:
                try:
                    _upkeep(con)
                finally:
                    con.close()
        return meta
    log(
        f"building {db} ({spec.requests:,} requests, {spec.conflicts:,} conflicts, {spec.days} days) ..."
    )
    tmp = _fresh(db)
    start = time.perf_counter()
    con = _connect(tmp)
    try:
        migrate(con)
        extra = _fill_store(con, spec, log)
        t = time.perf_counter()
        _upkeep(con)
        log(f"  summaries in {time.perf_counter() - t:.1f} s")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return _finish(tmp, db, key, time.perf_counter() - start, extra)


def _fill_store(con: duckdb.DuckDBPyConnection, spec: Spec, log: Any) -> dict[str, Any]:
    eps, shares, codes = endpoint_rows()
    con.execute(
        """CREATE TEMP TABLE ep (ep_id INTEGER, service VARCHAR, method VARCHAR, route VARCHAR,
        path_tpl VARCHAR, p1 VARCHAR, p2 VARCHAR, nids INTEGER, population INTEGER,
        avg_bytes DOUBLE, avg_latency DOUBLE)"""
    )
    con.executemany("INSERT INTO ep VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", eps)
    con.execute(
        "CREATE TEMP TABLE ep_status (ep_id INTEGER, status SMALLINT, conflict BOOLEAN, x0 DOUBLE)"
    )
    con.executemany("INSERT INTO ep_status VALUES (?, ?, ?, ?)", shares)
    con.execute(
        """CREATE TEMP TABLE ep_code (ep_id INTEGER, status SMALLINT, error_code VARCHAR,
        kind VARCHAR, kind_rule VARCHAR, lo DOUBLE, hi DOUBLE)"""
    )
    con.executemany("INSERT INTO ep_code VALUES (?, ?, ?, ?, ?, ?, ?)", codes)
    end = spec.end_time
    incidents = [
        (ep, end - dt.timedelta(hours=before), end - dt.timedelta(hours=before - hours), factor)
        for ep, before, hours, factor in INCIDENTS
        if before <= spec.days * 24
    ]
    con.execute(
        "CREATE TEMP TABLE incident (ep_id INTEGER, t0 TIMESTAMP, t1 TIMESTAMP, factor DOUBLE)"
    )
    if incidents:
        con.executemany("INSERT INTO incident VALUES (?, ?, ?, ?)", incidents)
    seed = {"seed": spec.seed}

    t = time.perf_counter()
    # Minutes with a diurnal (peak 15:00 UTC, trough 03:00 at a fifth of it) and weekly cycle.
    con.execute(
        """CREATE TEMP TABLE minutes AS
        SELECT minute,
               (1 + 0.67 * cos(2 * pi() * (hour(minute) + minute(minute) / 60.0 - 15) / 24))
               * CASE WHEN isodow(minute) >= 6 THEN 0.65 ELSE 1.0 END AS f
        FROM range($start::TIMESTAMP, $end::TIMESTAMP, INTERVAL 1 MINUTE) t(minute)""",
        {"start": spec.start_time, "end": end},
    )
    # Expected requests per minute x endpoint x status, with noise and the incidents.
    con.execute(
        f"""CREATE TEMP TABLE cells AS
        SELECT m.minute, s.ep_id, s.status, s.conflict,
               m.f * s.x0 * coalesce(i.factor, 1.0)
               * (0.7 + 0.6 * {u("m.minute", "s.ep_id", "s.status", "1")}) AS x
        FROM minutes m CROSS JOIN ep_status s
        LEFT JOIN incident i
          ON i.ep_id = s.ep_id AND s.conflict AND m.minute >= i.t0 AND m.minute < i.t1""",  # noqa: S608
        seed,
    )
    # Whole counts: scaled to the targets, rounded with a hashed dither, zeros dropped.
    con.execute(
        f"""CREATE TEMP TABLE counts AS
        SELECT * FROM (
            SELECT minute, ep_id, status, conflict,
                   floor(x * CASE WHEN conflict THEN $conflicts ELSE $others END
                         / sum(x) OVER (PARTITION BY conflict)
                         + {u("minute", "ep_id", "status", "2")})::BIGINT AS n
            FROM cells
        ) WHERE n > 0""",  # noqa: S608
        {**seed, "conflicts": spec.conflicts, "others": spec.requests - spec.conflicts},
    )
    con.execute("DROP TABLE cells")
    # The dither leaves the totals a few hundred off: the busiest cells of each side take it,
    # one request each (a cell of one may drop to none).
    for conflict, target in ((True, spec.conflicts), (False, spec.requests - spec.conflicts)):
        while True:
            total = con.execute(
                "SELECT coalesce(sum(n), 0) FROM counts WHERE conflict = ?", [conflict]
            ).fetchall()[0][0]
            diff = target - int(total)
            if diff == 0:
                break
            changed = con.execute(
                """UPDATE counts SET n = n + $step
                FROM (SELECT minute, ep_id, status FROM counts
                      WHERE conflict = $conflict AND n + $step >= 0
                      ORDER BY n DESC, minute, ep_id, status LIMIT $k) f
                WHERE counts.minute = f.minute AND counts.ep_id = f.ep_id
                  AND counts.status = f.status""",
                {"step": 1 if diff > 0 else -1, "conflict": conflict, "k": abs(diff)},
            ).fetchall()[0][0]
            if not changed:
                raise RuntimeError(
                    f"cannot bring the {'conflict' if conflict else 'other'} total to {target}"
                )
    con.execute("DELETE FROM counts WHERE n = 0")
    key_minutes, splittable = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE n >= 2) FROM counts"
    ).fetchall()[0]
    split_p = min(1.0, (ROWS_PER_KEY_MINUTE - 1) * key_minutes / max(splittable, 1))
    log(f"  counts: {key_minutes:,} key-minutes in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    con.execute(
        f"""INSERT INTO request_rollups
        WITH parts AS (
            SELECT c.minute, c.ep_id, c.status,
                   unnest(CASE WHEN c.n >= 2 AND {u("c.minute", "c.ep_id", "c.status", "3")} < $split_p
                          THEN [a, c.n - a] ELSE [c.n] END) AS requests
            FROM (SELECT *, 1 + floor((n - 1) * {u("minute", "ep_id", "status", "4")})::BIGINT AS a
                  FROM counts) c
        )
        SELECT p.minute, e.service, e.method, e.route, p.status, p.requests,
               round(p.requests * e.avg_bytes * CASE WHEN p.status >= 400 THEN 0.1 ELSE 1 END
                     * (0.8 + 0.4 * {u("p.minute", "p.ep_id", "p.status", "p.requests", "5")}))::BIGINT,
               p.requests * e.avg_latency * CASE WHEN p.status = 500 THEN 4 ELSE 1 END
                     * (0.7 + 0.6 * {u("p.minute", "p.ep_id", "p.status", "p.requests", "6")}),
               p.requests
        FROM parts p JOIN ep e USING (ep_id)
        ORDER BY p.minute""",  # noqa: S608
        {**seed, "split_p": split_p},
    )
    log(f"  request_rollups in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    id_case = "CASE p " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in ID_SQL.items()) + " END"
    con.execute(f"CREATE TEMP MACRO fmt_id(p, r) AS {id_case}")
    con.execute(
        f"""INSERT INTO conflict_events BY NAME
        WITH ev AS (
            SELECT c.minute, c.ep_id, c.status, t.i,
                   {u("c.minute", "c.ep_id", "c.status", "t.i", "10")} AS u_code,
                   {u("c.minute", "c.ep_id", "c.status", "t.i", "11")} AS u_ts,
                   {u("c.minute", "c.ep_id", "c.status", "t.i", "12")} AS u_id1,
                   {u("c.minute", "c.ep_id", "c.status", "t.i", "13")} AS u_id2,
                   {u("c.minute", "c.ep_id", "c.status", "t.i", "14")} AS u_client,
                   {u("c.minute", "c.ep_id", "c.status", "t.i", "15")} AS u_latency,
                   -- inside an incident, its extra conflicts are one client retrying one resource
                   {u("c.minute", "c.ep_id", "c.status", "t.i", "16")}
                       < 1 - 1 / coalesce(inc.factor, 1.0) AS storm
            FROM counts c
            CROSS JOIN range(c.n) t(i)
            LEFT JOIN incident inc
              ON inc.ep_id = c.ep_id AND c.minute >= inc.t0 AND c.minute < inc.t1
            WHERE c.conflict
        ), drawn AS (
            SELECT ev.*, e.service, e.method, e.route, e.path_tpl, e.p1, e.p2, e.nids, e.avg_latency,
                   k.error_code, k.kind, k.kind_rule,
                   CASE WHEN storm THEN 1
                        ELSE floor(exp(u_id1 * ln(e.population)))::BIGINT END AS r1,
                   CASE WHEN storm THEN 1
                        ELSE floor(exp(u_id2 * ln(e.population)))::BIGINT END AS r2,
                   CASE WHEN storm THEN 1000 + ev.ep_id
                        ELSE floor(exp(u_client * ln(800)))::INTEGER END AS c
            FROM ev JOIN ep e USING (ep_id)
            JOIN ep_code k ON k.ep_id = ev.ep_id AND k.status = ev.status
                          AND ev.u_code >= k.lo AND ev.u_code < k.hi
        ), ids AS (
            SELECT *, fmt_id(p1, r1) AS id1, fmt_id(p2, r2) AS id2,
                   minute + to_microseconds(floor(u_ts * 60000000)::BIGINT) AS ts
            FROM drawn
        )
        SELECT ts,
               method,
               replace(replace(path_tpl, '{{1}}', coalesce(id1, '')), '{{2}}', coalesce(id2, '')) AS path,
               NULL AS query,
               route,
               CASE nids WHEN 0 THEN []::VARCHAR[] WHEN 1 THEN [id1] ELSE [id1, id2] END AS resource_ids,
               status, error_code, kind, kind_rule,
               '10.' || (c >> 8) || '.' || (c & 255) || '.' || ((c * 7) % 250 + 1) AS client,
               CASE c % 4 WHEN 0 THEN 'okhttp/4.12.0' WHEN 1 THEN 'python-requests/2.32.3'
                    WHEN 2 THEN 'MyShopApp/5.12.1 (iOS 17.6; iPhone15,2)'
                    ELSE 'Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0' END
                 AS user_agent,
               (90 + floor(u_code * 160))::BIGINT AS bytes,
               round(avg_latency * (0.2 - ln(1 - u_latency)) , 3) AS latency_ms,
               service,
               '10.20.' || (hash(service) % 200) || '.' || (1 + (c % 3)) || ':8080' AS upstream,
               md5(minute::VARCHAR || ep_id || status || i)[1:32] AS request_id,
               1 AS source_id,
               row_number() OVER (ORDER BY ts, ep_id, i) * {LINE_BYTES} AS "offset"
        FROM ids
        ORDER BY ts""",  # noqa: S608
        seed,
    )
    log(f"  conflict_events in {time.perf_counter() - t:.1f} s")

    con.execute("SELECT nextval('source_ids')").fetchall()
    con.execute(
        """INSERT INTO sources VALUES (1, 2049, 1310723, sha1('conflictlens-bench'), 1024,
        '/var/log/nginx/access.log', 'nginx-extended', NULL, ?, ?, 0, ?, ?, ?)""",
        [spec.requests * LINE_BYTES, spec.requests, spec.conflicts, spec.start_time, spec.end_time],
    )
    counts = con.execute(
        """SELECT (SELECT count(*) FROM request_rollups), (SELECT sum(requests) FROM request_rollups),
                  (SELECT sum(requests) FROM request_rollups WHERE status IN (409, 412, 423, 428)),
                  (SELECT count(*) FROM conflict_events)"""
    ).fetchall()[0]
    rollup_rows, requests, conflict_requests, events = (int(v) for v in counts)
    if (requests, conflict_requests, events) != (spec.requests, spec.conflicts, spec.conflicts):
        raise RuntimeError(
            f"synthetic store is off: {requests} requests, {conflict_requests} conflict requests, "
            f"{events} events (wanted {spec.requests}, {spec.conflicts}, {spec.conflicts})"
        )
    return {
        "rows": {"request_rollups": rollup_rows, "conflict_events": events, "sources": 1},
        "key_minutes": int(key_minutes),
        "rows_per_key_minute": round(rollup_rows / max(int(key_minutes), 1), 3),
        "endpoints": len(ENDPOINTS),
    }


def ensure_raw(db: Path, store: Path, spec: Spec, log: Any = print) -> dict[str, Any]:
    """Reuse or build the one-row-per-request peer of ``store``; return its meta."""
    key = {**spec.key(), "peer_of": store.name}
    meta = cached(db, key)
    if meta is not None:
        log(f"reusing {db} (built in {meta['built_seconds']} s on {meta['built_at']})")
        return meta
    log(f"building {db} (one row per request, {spec.requests:,} rows, a day at a time) ...")
    tmp = _fresh(db)
    start = time.perf_counter()
    con = _connect(tmp)
    try:
        con.execute(f"ATTACH '{store}' AS s (READ_ONLY)")
        con.execute(
            """CREATE TABLE raw_requests (
                ts TIMESTAMP NOT NULL, service VARCHAR, method VARCHAR, route VARCHAR,
                status SMALLINT NOT NULL, error_code VARCHAR, kind VARCHAR,
                latency_ms DOUBLE, client VARCHAR)"""
        )
        for day in range(spec.days):
            d0 = spec.start_time + dt.timedelta(days=day)
            con.execute(
                f"""INSERT INTO raw_requests
                WITH x AS (
                    SELECT r.*,
                           {u("r.minute", "r.route", "r.method", "r.status", "r.bytes", "t.i", "1")} AS u1,
                           {u("r.minute", "r.route", "r.method", "r.status", "r.bytes", "t.i", "2")} AS u2,
                           floor(exp({u("r.minute", "r.route", "r.method", "r.status", "r.bytes", "t.i", "3")}
                                     * ln(6000)))::INTEGER AS c
                    FROM s.request_rollups r, range(r.requests) t(i)
                    WHERE r.minute >= $d0 AND r.minute < $d1 AND r.status NOT IN (409, 412, 423, 428)
                )
                SELECT * FROM (
                    SELECT minute + to_microseconds(floor(u1 * 60000000)::BIGINT) AS ts,
                           service, method, route, status,
                           CASE status WHEN 404 THEN 'NOT_FOUND' WHEN 422 THEN 'VALIDATION_FAILED'
                                WHEN 500 THEN 'INTERNAL_ERROR' END AS error_code,
                           NULL AS kind,
                           round(latency_ms_sum / latency_count * (0.2 - ln(1 - u2)), 3) AS latency_ms,
                           '10.' || (c >> 8) || '.' || (c & 255) || '.' || ((c * 7) % 250 + 1) AS client
                    FROM x
                    UNION ALL
                    SELECT ts, service, method, route, status, error_code, kind, latency_ms, client
                    FROM s.conflict_events
                    WHERE ts >= $d0 AND ts < $d1
                ) ORDER BY ts""",  # noqa: S608
                {"seed": spec.seed, "d0": d0, "d1": d0 + dt.timedelta(days=1)},
            )
            if day % 10 == 9 or day == spec.days - 1:
                log(f"  {day + 1} of {spec.days} days in {time.perf_counter() - start:.1f} s")
        rows = int(con.execute("SELECT count(*) FROM raw_requests").fetchall()[0][0])
        if rows != spec.requests:
            raise RuntimeError(f"raw peer has {rows} rows, wanted {spec.requests}")
        con.execute("DETACH s")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return _finish(tmp, db, key, time.perf_counter() - start, {"rows": {"raw_requests": rows}})
