"""What the tail benchmark prints: the latency run, the table of rate steps, and its rows of
``make bench``'s closing table."""

from __future__ import annotations

import argparse
from typing import Any

from bench.common import summary_row, verdict
from bench.tail_figures import END_LAG_BAR_S, GROWTH_SLOPE_PCT, LATENCY_BAR_S
from bench.tail_load import DRAIN_TIMEOUT_S, POLL_S


def secs(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "never"


def spread(lat: dict[str, Any]) -> str:
    return (
        f"p50 {secs(lat['p50_s'])}  p90 {secs(lat['p90_s'])}  p99 {secs(lat['p99_s'])}  "
        f"max {secs(lat['max_s'])}"
    )


def print_latency(figures: dict[str, Any], warmup: float) -> bool:
    lat = figures["latency"]
    ok = lat["p99_s"] is not None and lat["p99_s"] <= LATENCY_BAR_S
    measured = figures["seconds_written"] - warmup
    print()
    print(
        f"latency at {figures['rate']:,} lines/s for {measured:.0f} s after {warmup:g} s of "
        f"warm-up ({lat['batches']:,} batches; written at {figures['written_rate']:,}/s)"
    )
    print(f"  os.write to stored (queryable), seconds: {spread(lat)}")
    print(f"  bar: p99 <= {LATENCY_BAR_S:g} s  {verdict(ok)}")
    if lat["never_stored"]:
        print(f"  {lat['never_stored']:,} batches not stored within {DRAIN_TIMEOUT_S:.0f} s")
    if lat["new_file"]["batches"]:
        print(f"  first {warmup:g} s of the new file: {spread(lat['new_file'])}")
    print(
        f"  (polled every {POLL_S * 1000:.0f} ms: each figure is up to {POLL_S * 1000:.0f} ms "
        f"+ one request late; requests took {figures['sources_request_ms']['mean']} ms on "
        f"average, p99 {figures['sources_request_ms']['p99']} ms)"
    )
    print(
        f"  serve used {figures['serve_cpu_cores']} cores (this benchmark "
        f"{figures['bench_cpu_cores']}; machine load average {figures['load_average_1m']}); "
        f"flush_ms {figures['flush_ms']}; "
        f"lag over the last second {figures['lag']['end_lag_lines']:,} lines "
        f"({figures['lag']['end_lag_s']:.2f} s)"
    )
    return ok


def print_step_header(step_seconds: float, warmup: float) -> None:
    print()
    print(f"max sustained rate, steps of {step_seconds:g} s, each on a new file")
    print(
        f"  growing: the lag's envelope rises > {GROWTH_SLOPE_PCT:g} % of the rate per s over "
        f"the second half (and significantly: t-test, 95 %), or the lag over the last second "
        f"is > {END_LAG_BAR_S:g} s of input, or the file is not stored within "
        f"{DRAIN_TIMEOUT_S:.0f} s of the last write"
    )
    print(
        f"  latency after the first {warmup:g} s; cores: serve's CPU while writing (answering "
        "the polls included); load: the machine's 1-minute load average"
    )
    print(
        f"{'rate/s':>9} {'written/s':>10} {'p50 s':>6} {'p99 s':>6} {'end lag':>9} "
        f"{'lag s':>6} {'slope/s':>15} {'drain s':>7} {'cores':>6} {'load':>5}  verdict"
    )


def slope_text(lag: dict[str, Any]) -> str:
    error = lag["envelope_slope_stderr"]
    value = f"{lag['envelope_slope_lines_per_s']:,.0f}"
    return f"{value} +/- {error:,.0f}" if error is not None else value


def print_step(figures: dict[str, Any]) -> None:
    lag, lat = figures["lag"], figures["latency"]
    state = "GROWING" if lag["growing"] else "steady"
    if not figures["writer_kept_rate"]:
        state += " (the writer fell short of the rate)"
    cores = figures["serve_cpu_cores"]
    print(
        f" {figures['written_rate']:>10,} {secs(lat['p50_s']):>6} "
        f"{secs(lat['p99_s']):>6} {lag['end_lag_lines']:>9,} {lag['end_lag_s']:>6.2f} "
        f"{slope_text(lag):>15} {secs(figures['drain_s']):>7} "
        f"{cores if cores is not None else 'n/a':>6} {figures['load_average_1m'] or 0:>5.1f}  "
        f"{state}" + (f": {lag['why']}" if lag["why"] else ""),
        flush=True,
    )


def summary_rows(results: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The latency bar and the highest steady rate, for ``make bench``'s table."""
    rows = []
    latency = results.get("latency")
    if latency is not None:
        p99 = latency["latency"]["p99_s"]
        rows.append(
            summary_row(
                f"tail: appended to queryable, p99 at {args.rate:,} lines/s for {args.seconds:g} s",
                f"{secs(p99)} s",
                f"<= {LATENCY_BAR_S:g} s",
                latency["bar_met"],
            )
        )
    sustained = results.get("sustained")
    if sustained is not None:
        best = sustained["max_sustained_rate"]
        rows.append(
            summary_row(
                f"tail: highest rate without growing lag, steps of {args.step_seconds:g} s",
                f"{best:,} lines/s" if best else "none",
                "none",
                None,
            )
        )
    return rows
