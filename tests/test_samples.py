"""Every sample in sample_logs/: detected as its own format, imported with no rejects, and every
conflict with the error code and kind of the generator's ground truth."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from conflictlens.analysis import run_query
from conflictlens.ingest import IngestOptions, import_source
from conflictlens.ingest.formats import detect_format
from conflictlens.store import Writer, connect

SAMPLES = Path(__file__).resolve().parents[1] / "sample_logs"
LOGS = sorted(p for p in SAMPLES.glob("*.log*") if not p.name.endswith(".truth.json"))


def sample_format(log: Path) -> str:
    return log.name.removesuffix(".gz").removesuffix(".log")


def first_lines(log: Path, count: int = 200) -> pl.DataFrame:
    opener = gzip.open if log.suffix == ".gz" else open
    with opener(log, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        lines = [line for _, line in zip(range(count), handle, strict=False)]
    return pl.DataFrame({"line": lines, "offset": list(range(len(lines)))})


def test_there_is_a_sample_of_every_registered_format():
    from conflictlens.ingest.formats import FORMATS

    assert {sample_format(p) for p in LOGS} >= set(FORMATS) - {"json"}


@pytest.mark.parametrize("log", LOGS, ids=sample_format)
def test_detection_picks_the_samples_own_format(log):
    assert detect_format(first_lines(log)).name == sample_format(log)


@pytest.mark.parametrize("log", LOGS, ids=sample_format)
def test_every_conflict_has_the_true_error_code_and_kind(log, tmp_path):
    truth = json.loads(Path(f"{log}.truth.json").read_text())
    with connect(tmp_path / "t.duckdb") as con:
        summary = import_source(str(log), Writer(con), IngestOptions())
        clusters = run_query(con, "clusters")
        requests = con.execute(
            "SELECT method, route, sum(requests)::BIGINT FROM request_rollups GROUP BY ALL"
        ).fetchall()
    assert (summary.format, summary.lines, summary.rejected) == (
        sample_format(log),
        truth["lines"],
        0,
    )
    keys = ("method", "route", "status", "error_code", "kind")
    got = sorted((*(r[k] for k in keys), r["conflicts"]) for r in clusters.iter_rows(named=True))
    want = sorted((*(c[k] for k in keys), c["conflicts"]) for c in truth["conflicts_by_cluster"])
    assert got == want
    assert sorted(requests) == sorted(
        (r["method"], r["route"], r["requests"]) for r in truth["requests_by_route"]
    )
