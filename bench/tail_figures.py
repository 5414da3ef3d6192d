"""The tail benchmark's figures from one load: each batch's latency (from its ``os.write`` to
the first poll that finds it stored), the lag's trend and end, serve's requests and CPU."""

from __future__ import annotations

import math
from typing import Any

from bench.common import percentile
from bench.tail_load import DRAIN_TIMEOUT_S, Load

LATENCY_BAR_S = 1.0  # p99, at most
GROWTH_SLOPE_PCT = 1.0  # lag envelope slope, lines/s, at most this % of the rate
END_LAG_BAR_S = 2.0  # lag over the last second of writing, at most this many seconds of input
ENVELOPE_BIN_S = 1.0
# Student's t, two-sided 95 %, by degrees of freedom (1..30; 2.0 beyond): a slope counts as
# rising only when it is this many standard errors above zero.
T95: tuple[float, ...] = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20)
T95 += (2.18, 2.16, 2.14, 2.13, 2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06)
T95 += (2.06, 2.05, 2.05, 2.05, 2.04)
WRITER_SHORTFALL = 0.98  # a writer below this share of its target rate could not keep it


def batch_latencies(load: Load) -> list[tuple[float, float]]:
    """Per write batch: (seconds after the first write, latency): the first poll at or after
    the batch's write that finds all its lines stored, minus the write time; inf if none did."""
    polls = load.polls
    result: list[tuple[float, float]] = []
    p = 0
    for written_at, count in zip(load.writer.times, load.writer.counts, strict=True):
        while p < len(polls) and (polls[p].at < written_at or polls[p].stored < count):
            p += 1
        latency = polls[p].at - written_at if p < len(polls) else math.inf
        result.append((written_at - load.write_start, latency))
    return result


def rounded(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def distribution(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    figures: dict[str, Any] = {f"p{p}_s": rounded(percentile(ordered, p)) for p in (50, 90, 99)}
    figures["max_s"] = rounded(ordered[-1]) if ordered else None
    figures["batches"] = len(ordered)
    figures["never_stored"] = sum(1 for x in ordered if not math.isfinite(x))
    return figures


def latency_figures(load: Load) -> dict[str, Any]:
    """The latency of the batches written after ``measure_from_s``, and of those before."""
    pairs = batch_latencies(load)
    figures = distribution([lat for t, lat in pairs if t >= load.measure_from_s])
    figures["measured_from_s"] = load.measure_from_s
    figures["new_file"] = distribution([lat for t, lat in pairs if t < load.measure_from_s])
    return figures


def slope(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of y over x, and its standard error (inf with under 3 points)."""
    n = len(points)
    if n < 2:
        return 0.0, math.inf
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx <= 0:
        return 0.0, math.inf
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    if n < 3:
        return b, math.inf
    residual = sum((y - my - b * (x - mx)) ** 2 for x, y in points) / (n - 2)
    return b, math.sqrt(residual / sxx)


def lag_figures(load: Load) -> dict[str, Any]:
    """The lag (lines written - lines stored) while writing: its envelope's trend and its end."""
    span = load.write_end - load.write_start
    lags = [
        (p.at - load.write_start, p.written - p.stored)
        for p in load.polls
        if load.write_start <= p.at <= load.write_end
    ]
    bins: dict[int, int] = {}
    for t, lag in lags:
        if t >= span / 2:
            index = int(t // ENVELOPE_BIN_S)
            bins[index] = min(lag, bins.get(index, lag))
    envelope = [((i + 0.5) * ENVELOPE_BIN_S, float(lag)) for i, lag in sorted(bins.items())]
    trend, error = slope(envelope)
    last = [lag for t, lag in lags if t >= span - 1.0]
    end_lag = sum(last) / len(last) if last else 0.0
    reasons = []
    # Rising: faster than the bar, and by more than the noise of the fit (the flushes make
    # the lag a saw-tooth whose low points scatter, which a short step cannot average out).
    t = T95[len(envelope) - 3] if 3 <= len(envelope) <= len(T95) + 2 else 2.0
    if trend > GROWTH_SLOPE_PCT / 100 * load.rate and trend > t * error:
        reasons.append(f"envelope rises {trend:,.0f} +/- {error:,.0f} lines/s")
    if end_lag > END_LAG_BAR_S * load.rate:
        reasons.append(f"lag at end {end_lag / load.rate:.1f} s of input")
    if not load.drained:
        reasons.append(f"not stored within {DRAIN_TIMEOUT_S:.0f} s of the last write")
    return {
        "envelope_slope_lines_per_s": round(trend, 1),
        "envelope_slope_stderr": rounded(error),
        "end_lag_lines": round(end_lag),
        "end_lag_s": round(end_lag / load.rate, 3),
        "max_lag_lines": max((lag for _, lag in lags), default=0),
        "growing": bool(reasons),
        "why": "; ".join(reasons),
    }


def request_ms(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"mean": None, "p99": None}
    return {
        "mean": round(1000 * sum(seconds) / len(seconds), 1),
        "p99": round(1000 * percentile(seconds, 99), 1),
    }


def load_figures(load: Load) -> dict[str, Any]:
    span = load.write_end - load.write_start
    following = load.following or {}
    cores = load.serve_cpu_s / span if load.serve_cpu_s is not None and span > 0 else None
    own = load.bench_cpu_s / span if load.bench_cpu_s is not None and span > 0 else None
    return {
        "label": load.label,
        "rate": load.rate,
        "seconds_written": round(span, 2),
        "lines_written": load.writer.written,
        "written_rate": round(load.written_rate),
        "writer_kept_rate": load.written_rate >= WRITER_SHORTFALL * load.rate,
        "lines_stored": load.polls[-1].stored if load.polls else 0,
        "drained": load.drained,
        "drain_s": round(load.drain_s, 3) if load.drain_s is not None else None,
        "latency": latency_figures(load),
        "lag": lag_figures(load),
        "polls": len(load.polls),
        "sources_request_ms": request_ms([p.request_s for p in load.polls if not p.status]),
        "status_request_ms": request_ms([p.request_s for p in load.polls if p.status]),
        "serve_cpu_cores": round(cores, 2) if cores is not None else None,
        "bench_cpu_cores": round(own, 2) if own is not None else None,
        "load_average_1m": load.load_average,
        "follower_states_first_seen_s": load.states,
        "follower_near_end": {
            k: following.get(k) for k in ("state", "lines_per_second", "lag_bytes", "last_error")
        },
    }
