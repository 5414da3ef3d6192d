"""Tail benchmark: how soon an appended line is queryable, and the highest rate serve keeps up with.

Run by ``make bench`` as ``.venv/bin/python bench/bench_tail.py``. It starts a real
``conflictlens serve`` on a fresh store in ``<workdir>`` that follows ``<workdir>/logs/*.log``,
appends nginx "combined" lines (made up front with the project's generator) at a steady rate
from a thread of this process (a batch every 10 ms, ``os.write`` on an O_APPEND descriptor,
paced against a monotonic clock, each run on a new file), and polls serve every 50 ms for
the lines its store holds for the file (``GET /api/queries/sources``, the lines committed
with their rows, so queryable; ``GET /api/status`` once a second for the follower's view):

* latency: at ``--rate`` lines/s (20,000) for ``--seconds`` (30), after ``--warmup`` seconds
  (3) in which serve picks the new file up and recognises its format (reported apart), the
  time from each batch's ``os.write`` to the first poll that finds its last line stored:
  p50, p90, p99, max; bar: p99 <= 1 s;
* the highest sustained rate: steps of ``--step-seconds`` (60) at 1, 2, 3, 4, 6, 8, 12, ...
  times ``--rate`` until one grows a lag (lines written - lines stored): the lower envelope
  of the lag (its minimum per second) over the second half of the step rises by more than
  1 % of the rate per second, the lag over the last second of writing is more than 2 s of
  input, or the file is not stored in full within 60 s of the last write.

Figures go to the terminal and to ``bench/out/bench_tail.json``, with the rows of ``make
bench``'s table. Exit status 1 when the latency bar is missed, or when serve fails to start or
dies, or a request keeps failing (the run ends there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import (  # noqa: E402
    BenchError,
    machine,
    positive_int,
    script_parser,
    write_json,
)
from bench.line_writer import STYLE, WRITE_TICK_S, LinePool, make_pool  # noqa: E402
from bench.tail_figures import LATENCY_BAR_S, load_figures  # noqa: E402
from bench.tail_load import POLL_S, STATUS_EVERY, run_load  # noqa: E402
from bench.tail_report import (  # noqa: E402
    print_latency,
    print_step,
    print_step_header,
    summary_rows,
)
from bench.tail_serve import SOURCES_PATH, STATUS_PATH, Server  # noqa: E402

SEED = 7
POOL_LINES = 200_000  # distinct lines, written over and over (about 36 MB)
POOL_MINUTES = 10.0  # their timestamps span the ten minutes before the run
STEP_FACTORS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
DEFAULT_WORKDIR = REPO_ROOT / "bench" / "out" / "tail"
DEFAULT_OUT = REPO_ROOT / "bench" / "out" / "bench_tail.json"


# --- arguments -------------------------------------------------------------------------


def seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument(
        "--rate",
        type=positive_int,
        default=20_000,
        help="lines/s of the latency run and of the first step (default: 20000)",
    )
    parser.add_argument(
        "--seconds",
        type=seconds_arg,
        default=None,
        help="measured length of the latency run (default: 30; 10 with --quick)",
    )
    parser.add_argument(
        "--warmup",
        type=seconds_arg,
        default=3.0,
        help="seconds written to the new file before the latency run measures; their latency "
        "is reported apart; also left out of each step's latency (default: 3)",
    )
    parser.add_argument(
        "--step-seconds",
        type=seconds_arg,
        default=None,
        help="length of each rate step (default: 60; 10 with --quick)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=len(STEP_FACTORS),
        help=f"rate steps at most, 0 skips them (default: {len(STEP_FACTORS)}: "
        f"{', '.join(f'{f}x' for f in STEP_FACTORS)} the rate)",
    )
    parser.add_argument(
        "--flush-ms",
        type=positive_int,
        default=500,
        help="serve.flush_ms written to the config (default: 500, serve's default)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="store, config, logs and serve's output (default: bench/out/tail)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where the figures go as JSON (default: bench/out/bench_tail.json)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 10 s of latency, steps of 10 s"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the store when done (logs are always deleted)"
    )
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 10.0 if args.quick else 30.0
    if args.step_seconds is None:
        args.step_seconds = 10.0 if args.quick else 60.0
    if args.seconds < 1 or args.step_seconds < 2:
        parser.error("--seconds must be at least 1 and --step-seconds at least 2")
    if not 0 <= args.max_steps <= len(STEP_FACTORS):
        parser.error(f"--max-steps must be between 0 and {len(STEP_FACTORS)}")
    if args.flush_ms < 10:
        parser.error("--flush-ms must be at least 10 (serve refuses less)")
    return args


# --- the runs --------------------------------------------------------------------------


def latency_run(server: Server, pool: LinePool, args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"latency run: {args.rate:,} lines/s for {args.warmup:g} + {args.seconds:g} s ...",
        flush=True,
    )
    seconds = args.warmup + args.seconds
    load = run_load(server, 0, "latency", args.rate, seconds, pool, args.warmup)
    figures = load_figures(load)
    figures["flush_ms"] = args.flush_ms
    figures["bar_p99_s"] = LATENCY_BAR_S
    figures["bar_met"] = print_latency(figures, args.warmup)
    return figures


def step_runs(server: Server, pool: LinePool, args: argparse.Namespace) -> dict[str, Any]:
    """Rates up from ``args.rate`` until the lag grows; the highest steady one."""
    steps: list[dict[str, Any]] = []
    best: int | None = None
    stopped = "all steps steady"
    warmup = min(args.warmup, args.step_seconds / 2)
    print_step_header(args.step_seconds, warmup)
    for number, factor in enumerate(STEP_FACTORS[: args.max_steps], start=1):
        rate = args.rate * factor
        print(f"{rate:>9,}", end="", flush=True)
        label = f"step-{number:02d}-{rate}"
        load = run_load(server, number, label, rate, args.step_seconds, pool, warmup)
        figures = load_figures(load)
        steps.append(figures)
        print_step(figures)
        if figures["lag"]["growing"]:
            stopped = f"the lag grew at {rate:,} lines/s"
            break
        if not figures["writer_kept_rate"]:
            stopped = f"the writer could not keep {rate:,} lines/s"
            break
        best = rate
    if best is None:
        print(f"no step was sustained without growing lag ({stopped})")
    else:
        print(
            f"highest rate sustained for {args.step_seconds:g} s without growing lag: "
            f"{best:,} lines/s ({stopped})"
        )
    return {
        "step_seconds": args.step_seconds,
        "max_sustained_rate": best,
        "stopped": stopped,
        "steps": steps,
    }


def interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, interrupt)
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "args": {key: str(value) for key, value in vars(args).items()},
        "method": {
            "style": STYLE,
            "pool_lines": POOL_LINES,
            "write_tick_s": WRITE_TICK_S,
            "poll_s": POLL_S,
            "probe": f"{SOURCES_PATH} (lines of the file's row), {STATUS_PATH} every "
            f"{STATUS_EVERY} polls",
        },
    }
    server = Server(args.workdir, args.flush_ms)
    code = 0
    try:
        print(f"generating {POOL_LINES:,} {STYLE} lines ...", flush=True)
        now = dt.datetime.now(dt.UTC)
        pool = make_pool(POOL_LINES, seed=SEED, end=now, hours=POOL_MINUTES / 60)
        server.start()
        print(f"conflictlens serve on 127.0.0.1:{server.port}, store {server.db}", flush=True)
        results["latency"] = latency_run(server, pool, args)
        if not results["latency"]["bar_met"]:
            code = 1
        if args.max_steps:
            results["sustained"] = step_runs(server, pool, args)
    except BenchError as exc:
        print(f"\nbench_tail: {exc}", file=sys.stderr)
        results["error"] = str(exc)
        code = 1
    except KeyboardInterrupt:
        print("\nbench_tail: interrupted", file=sys.stderr)
        results["error"] = "interrupted"
        code = 130
    finally:
        results["serve_stop_s"] = server.stop()
        shutil.rmtree(server.logs, ignore_errors=True)
        if not args.keep:
            for path in (server.db, Path(f"{server.db}.wal")):
                path.unlink(missing_ok=True)
    results["summary"] = summary_rows(results, args)
    print(f"\nfigures written to {write_json(args.out, results)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
