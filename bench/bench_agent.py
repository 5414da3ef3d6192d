"""Agent benchmark: combined (nginx) lines parsed and shipped to ClickHouse on one core.

Run as ``.venv/bin/python bench/bench_agent.py [--lines 3000000]``. The log is written up
front with the project's generator. Then, on the same file and pinned to the same core
(``taskset -c --cpu``):

* the peer, ``wc -l``: the least any tool must do to read the lines;
* ``conflictlens agent`` on a fresh state file, shipping to a ClickHouse store (chDB behind
  ClickHouse's HTTP interface, tests/chdb_http.py, pinned to ``--store-cpu``): the time from
  starting the process to the first poll (every 50 ms) that finds every line's request
  counted in the store (``sum(requests)`` of ``request_rollups``) and every conflict event
  stored. That includes the interpreter's start, format detection and the last ship
  interval (1 s, the shortest the agent takes).

Bar: at least 300,000 lines/s end to end. Figures go to the terminal and to
``bench/out/bench_agent.json``; exit status 1 when the bar is missed or the store does not
hold exactly the lines written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import (  # noqa: E402
    OUT,
    BenchError,
    machine,
    positive_int,
    script_parser,
    summary_row,
    write_json,
)

BAR_LINES_S = 300_000
DATABASE = "bench"


def _pinned(cpu: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *command]


def time_wc(log: Path, cpu: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(_pinned(cpu, ["wc", "-l", str(log)]), capture_output=True, check=True)
    elapsed = time.perf_counter() - started
    if not done.stdout.split():
        raise BenchError("wc -l printed nothing")
    return elapsed


def run_agent(
    work: Path, log: Path, truth: dict[str, Any], cpu: int, store_cpu: int
) -> dict[str, Any]:
    from conflictlens.store.clickhouse import schema
    from tests.chdb_http import StoreServer

    store = StoreServer(work, cpu=store_cpu)
    store.start()
    try:
        setup = store.client()
        schema.apply(setup, DATABASE)
        setup.close()
        client = store.client(DATABASE)
        config = work / "agent.toml"
        config.write_text(
            f'[store]\nbackend = "clickhouse"\nurl = "{store.url}"\ndatabase = "{DATABASE}"\n\n'
            f'[agent]\nname = "bench"\nstate = "{work / "state.duckdb"}"\n'
            f"ship_interval_ms = 1000\n\n"
            f'[[sources]]\npath = "{log}"\nformat = "nginx-combined"\n'
        )
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        command = [sys.executable, "-m", "conflictlens", "agent", "--config", str(config)]
        started = time.perf_counter()
        agent = subprocess.Popen(
            _pinned(cpu, command), env=env, cwd=work, stderr=(work / "agent.err").open("wb")
        )
        try:
            elapsed = _wait_stored(client, truth, started, agent)
        finally:
            agent.terminate()
            agent.wait(60)
        events = client.query("SELECT count() FROM conflict_events").result_rows
        bytes_on_disk = client.query(
            "SELECT sum(bytes_on_disk) FROM system.parts "
            "WHERE database = {db:String} AND table = 'conflict_events' AND active",
            parameters={"db": DATABASE},
        ).result_rows
        client.close()
    finally:
        store.stop()
    return {
        "seconds": round(elapsed, 3),
        "lines_per_s": round(truth["lines"] / elapsed),
        "events": int(events[0][0]),
        "event_bytes_on_disk": int(bytes_on_disk[0][0] or 0),
    }


def _wait_stored(
    client: Any, truth: dict[str, Any], started: float, agent: subprocess.Popen[bytes]
) -> float:
    requests = "SELECT sum(requests) FROM request_rollups"
    events = "SELECT count() FROM conflict_events"
    deadline = started + 600
    while time.perf_counter() < deadline:
        if agent.poll() is not None:
            raise BenchError(f"the agent stopped (status {agent.returncode})")
        stored = client.query(requests).result_rows[0][0] or 0
        if (
            stored >= truth["lines"]
            and client.query(events).result_rows[0][0] >= truth["conflicts"]
        ):
            elapsed = time.perf_counter() - started
            if stored != truth["lines"]:
                raise BenchError(f"the store counts {stored} requests, {truth['lines']} written")
            return elapsed
        time.sleep(0.05)
    raise BenchError("the store did not get every line within 600 s")


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--lines", type=positive_int, default=3_000_000)
    parser.add_argument("--cpu", type=int, default=0, help="the core the agent and wc run on")
    parser.add_argument("--store-cpu", type=int, default=1, help="the core of the store")
    args = parser.parse_args(argv)
    from conflictlens.sample_logs.generator import write_log

    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    try:
        log = work / "access.log"
        truth = write_log(log, args.lines, style="nginx-combined")
        wc_s = time_wc(log, args.cpu)
        agent = run_agent(work, log, truth, args.cpu, args.store_cpu)
    except BenchError as exc:
        print(f"bench_agent: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = agent["lines_per_s"] >= BAR_LINES_S and agent["events"] == truth["conflicts"]
    results = {
        "machine": machine(cpu=str(args.cpu), store_cpu=str(args.store_cpu)),
        "lines": truth["lines"],
        "conflicts": truth["conflicts"],
        "agent": agent,
        "bytes_per_stored_event": round(agent["event_bytes_on_disk"] / max(1, agent["events"]), 1),
        "wc_l": {"seconds": round(wc_s, 3), "lines_per_s": round(truth["lines"] / wc_s)},
        "bar_lines_per_s": BAR_LINES_S,
        "met": ok,
        "summary": [
            summary_row(
                f"agent: {truth['lines']:,} combined lines parsed and shipped on one core, "
                "end to end into ClickHouse (chDB)",
                f"{agent['lines_per_s']:,} lines/s",
                f">= {BAR_LINES_S:,} lines/s, every event stored once",
                ok,
                peer=f"wc -l {round(truth['lines'] / wc_s):,} lines/s",
            ),
            summary_row(
                "agent: bytes per stored conflict event (ClickHouse parts on disk)",
                f"{round(agent['event_bytes_on_disk'] / max(1, agent['events']), 1)}",
                "none",
                None,
            ),
        ],
    }
    out = write_json(OUT / "bench_agent.json", results)
    print(
        f"agent, {truth['lines']:,} combined lines on one core, end to end into ClickHouse: "
        f"{agent['seconds']} s, {agent['lines_per_s']:,} lines/s "
        f"(bar {BAR_LINES_S:,}: {'met' if ok else 'MISSED'}); "
        f"wc -l {results['wc_l']['seconds']} s ({results['wc_l']['lines_per_s']:,} lines/s); "
        f"{results['bytes_per_stored_event']} bytes per stored event -> {out}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
