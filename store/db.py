"""Opening the store: one file, migrations on open, and a clear error when another process owns it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from conflictlens._errors import StoreError as StoreError
from conflictlens._errors import first_line
from conflictlens.store.schema import SCHEMA_VERSION, NewerSchema, current_version, migrate

DEFAULT_DB = "conflictlens.duckdb"


class DatabaseLocked(StoreError):
    """Another process holds the database file."""


def default_db_path() -> Path:
    return Path(os.environ.get("CONFLICTLENS_DB") or DEFAULT_DB)


_PID = re.compile(r"\(PID (\d+)\)")

# DuckDB checkpoints (writes the WAL into the file, compressing it) at the first commit after
# the WAL has outgrown checkpoint_threshold, 16 MB by default. In a batch import the last such
# checkpoint fell after the last commit, once the parsing workers were done: 0.15 s alone at
# the end of a 1M-line Traefik import. At 4 MB the checkpoints run while the workers parse,
# and the last one is small. (serve's small, frequent commits keep the default.) Since conflict
# events keep their log lines the WAL grows faster (2M nginx lines: 12 MB of lines more), and
# each checkpoint compresses the events' unfinished row group again: at 6 MB the checkpoints
# come as often per line as at 4 MB before, and the import costs the same (median of 5, CPU
# 1.79 s against 1.80 s at 4 MB without the lines; 2.09 s with the lines at 4 MB).
BATCH_IMPORT_CHECKPOINT = "6MB"


def prepare_batch_import(con: duckdb.DuckDBPyConnection) -> None:
    """Settings for a process that only imports files and exits (``conflictlens ingest``)."""
    con.execute(f"SET checkpoint_threshold = '{BATCH_IMPORT_CHECKPOINT}'")


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the store. A writable open creates the file and migrates the schema.

    A read-only open of a missing file is an error rather than an empty answer, so that a
    mistyped --db never looks like "no conflicts".
    """
    path = Path(path)
    if read_only and not path.exists():
        raise StoreError(
            f"no database at {path} (import logs first: conflictlens ingest --db {path} FILE)"
        )
    if not read_only and path.parent and not path.parent.exists():
        raise StoreError(f"cannot create {path}: folder {path.parent} does not exist")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = _PID.search(text)
            owner = f" (PID {pid.group(1)})" if pid else ""
            raise DatabaseLocked(
                f"database {path} is in use by another process{owner}; "
                "if that is `conflictlens serve`, ask it instead of opening the file"
            ) from None
        raise StoreError(f"cannot open database {path}: {first_line(exc)}") from None
    except duckdb.Error as exc:
        raise StoreError(f"cannot open database {path}: {first_line(exc)}") from None
    try:
        con.execute("SET TimeZone = 'UTC'")
        if read_only:
            version = current_version(con)
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"database {path} has schema version {version}, this conflictlens expects "
                    f"{SCHEMA_VERSION}; open it once for writing (conflictlens ingest) to migrate"
                )
        else:
            migrate(con)
    except NewerSchema as exc:
        con.close()
        raise StoreError(f"{path}: {exc}") from None
    except BaseException:
        con.close()
        raise
    return con
