"""Silences in a ClickHouse store, added and expired by any serve replica.

Adding: the id is a hash of the silence (matchers, window, comment), also the insert's
``insert_deduplication_token``, so a retried POST stores one row. Expiring: a newer version
of the row, with ``ends_at`` moved to now. The only change a silence ever takes is an earlier
end, so the newest version of an id is the one that ends first: readers take ``min(ends_at)``
per id, which needs no version column and does not depend on merges or on the order in which
replicas' inserts land.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from conflictlens.store.clickhouse.annotations import content_id, utc
from conflictlens.store.clickhouse.state import READ_SETTINGS

_COLUMNS = ["id", "matchers", "starts_at", "ends_at", "comment", "created_at"]
_LATEST = """
    SELECT id, any(matchers), min(starts_at), min(ends_at) AS ends, any(comment), min(created_at)
    FROM alert_silences
    WHERE {id:Nullable(Int64)} IS NULL OR id = {id:Nullable(Int64)}
    GROUP BY id
    HAVING {now:Nullable(DateTime64(6, 'UTC'))} IS NULL
        OR (min(starts_at) <= {now:Nullable(DateTime64(6, 'UTC'))}
            AND ends > {now:Nullable(DateTime64(6, 'UTC'))})
    ORDER BY id
"""


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _latest(client: Any, silence_id: int | None, active_at: dt.datetime | None) -> list[Any]:
    parameters = {"id": silence_id, "now": utc(active_at) if active_at else None}
    return list(client.query(_LATEST, parameters=parameters, settings=READ_SETTINGS).result_rows)


# (id, matchers, starts_at, ends_at, comment), times naive UTC: the fields of a Silence
# (the store knows nothing of rules: conflictlens.api_clickhouse builds them).
StoredSilence = tuple[int, dict[str, str], dt.datetime, dt.datetime, str]


def read_silences(client: Any, active_at: dt.datetime | None = None) -> list[StoredSilence]:
    """The newest version of every silence stored, or of those active at ``active_at``."""
    return [
        (int(r[0]), json.loads(r[1]), _naive(r[2]), _naive(r[3]), str(r[4]))
        for r in _latest(client, None, active_at)
    ]


def add_silence(
    client: Any,
    matchers: Mapping[str, str],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    comment: str,
    now: dt.datetime,
) -> int:
    """Store a silence once, however often it is sent; its id."""
    text = json.dumps(dict(matchers), sort_keys=True)
    number = content_id("silence", text, starts_at.isoformat(), ends_at.isoformat(), comment)
    row = [number, text, utc(starts_at), utc(ends_at), comment, utc(now)]
    client.insert(
        "alert_silences",
        [row],
        column_names=_COLUMNS,
        settings={"insert_deduplication_token": f"silence|{number}"},
    )
    return number


def expire_silence(client: Any, silence_id: int, now: dt.datetime) -> bool:
    """End a silence now (a newer version of its row); False when there is no such silence
    or it has ended already."""
    found = _latest(client, silence_id, None)
    if not found or _naive(found[0][3]) <= _naive(now):
        return False
    number, matchers, starts, _, comment, created = found[0]
    ends = max(utc(starts), utc(now))
    client.insert(
        "alert_silences",
        [[number, matchers, utc(starts), ends, comment, utc(created)]],
        column_names=_COLUMNS,
        settings={"insert_deduplication_token": f"expire|{number}|{ends.isoformat()}"},
    )
    return True
