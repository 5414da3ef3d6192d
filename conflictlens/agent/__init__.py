"""``conflictlens agent``: on each gateway node, follow the logs and ship conflict events,
per-minute rollups and rejects (never raw lines) to a central ClickHouse store.

- ``state``: the local DuckDB file (checkpoints, and the ``outbound`` disk buffer the
  store's Writer fills in the transaction that moves each offset);
- ``runner``: the follower and the ship loop (store/clickhouse/shipper.py sends each batch
  with its deduplication tokens), the buffer's bound, outages and stop;
- ``config``: from ``[agent]`` and ``[[sources]]`` to the runner's options.

It runs from the core install: clickhouse-connect is imported when the agent connects.
"""
