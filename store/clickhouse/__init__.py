"""The ClickHouse store: for a fleet of gateways shipping to one place. The embedded DuckDB
store stays the default; this package is imported only when a ClickHouse store is configured
(it needs ``pip install 'conflictlens[clickhouse]'``)."""
