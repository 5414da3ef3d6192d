"""The stores the dashboard benchmark opens: the analysis benchmark's 30-day store (or a smaller
one), or ``make demo``'s; and the working copy serve follows a log into."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from bench.common import OUT, PROJECT, child_env, conflictlens_exe


def store_path(quick: bool) -> Path:
    """The analysis benchmark's store (built when missing), refreshed summaries included."""
    from bench.analysis_store import Spec, ensure_store
    from conflictlens.store import connect, refresh_summaries

    spec = Spec(requests=5_000_000, conflicts=200_000) if quick else Spec()
    db = OUT / f"analysis-store-{spec.label}.duckdb"
    ensure_store(db, spec)
    con = connect(db)
    try:
        refresh_summaries(con)
    finally:
        con.close()
    return db


def demo_store() -> Path:
    """``make demo``'s store: 8 days of the bad-day sample (1.6M lines), imported once (the
    Makefile's demo target writes the same)."""
    work = OUT / "demo-bad-day"
    work.mkdir(parents=True, exist_ok=True)
    db, log = work / "conflictlens.duckdb", work / "access.log"
    if not db.exists():
        exe = str(conflictlens_exe())
        sample = [
            *("--format", "nginx-extended", "--scenario", "bad-day"),
            *("--hours", "192", "--lines", "1600000"),
        ]
        for command in (
            [exe, "sample", *sample, "--out", str(log)],
            [exe, "ingest", "--db", str(db), str(log)],
        ):
            subprocess.run(command, env=child_env(), check=True, capture_output=True)
    return db


def working_copy(db: Path) -> tuple[Path, Path]:
    """A copy of ``db`` that serve may append to (the analysis and report benchmarks reuse the
    original) and the config that makes serve follow ``logs/*.log`` beside it, with the
    demo's alert rule (so that the Alerts view has a rule to list)."""
    work = OUT / "dashboard-live"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    copy = work / "store.duckdb"
    shutil.copyfile(db, copy)
    if Path(f"{db}.wal").exists():
        shutil.copyfile(f"{db}.wal", f"{copy}.wal")
    demo = (PROJECT / "sample_logs" / "demo.toml").read_text(encoding="utf-8")
    alerts = demo[demo.index("[alerts]") :]
    config = work / "conflictlens.toml"
    config.write_text(
        f"db = {json.dumps(copy.name)}\n\n"
        f"[[sources]]\npath = {json.dumps(str(work / 'logs' / '*.log'))}\n\n{alerts}",
        encoding="utf-8",
    )
    return copy, config


def data_end(db: Path) -> str:
    """Where the store's data ends (the pages' default range ends there)."""
    meta = Path(f"{db}.meta.json")
    if meta.exists():
        return str(json.loads(meta.read_text())["key"]["end"])
    from conflictlens.store import connect

    con = connect(db, read_only=True)
    try:
        end = con.execute("SELECT max(minute) + INTERVAL 1 MINUTE FROM request_rollups").fetchall()
    finally:
        con.close()
    return str(end[0][0].isoformat())
