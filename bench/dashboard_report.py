"""What the dashboard benchmark prints: a table per phase, and its rows of ``make bench``'s
closing table."""

from __future__ import annotations

import statistics
from typing import Any

from bench.common import summary_row
from bench.dashboard_views import FIRST_VISIT_BAR_S, LIVE_P95_BAR_S, WARM_BAR_S


def print_results(results: dict[str, Any]) -> None:
    first, warm, live = results["first_visit"], results["warm"], results["live_append"]
    after_restart = results["after_restart"]
    print(
        f"\nfirst visit, fresh browser (no bar: see dashboard_floor.py); peer {first['peer_s']:.2f} s"
    )
    print(
        f"  {'view':<26} {'fresh s':>8} {'after restart s':>16}  (bar {FIRST_VISIT_BAR_S:g} s: after serve restarted)"
    )
    for row, again in zip(first["views"], after_restart["views"], strict=True):
        print(
            f"  {row['view']:<26} {row['seconds']:8.2f} {again['seconds']:16.2f}  {verdict(again['pass'])}"
        )
    peers = warm["peer_visits_s"]
    print(
        f"\nwarm visits (bar {WARM_BAR_S:g} s, the slowest); peer after each timed visit: median "
        f"{statistics.median(peers):.3f} s, max {max(peers):.3f} s"
    )
    print(
        f"  {'view':<26} {'warm-up loads s':>17} {'median s':>9} {'peer s':>7} {'max s':>7} "
        f"{'its queries s':>14} {'queries/page':>13}"
    )
    for row in warm["views"]:
        share = row["queries_s"] / row["median_s"] if row["median_s"] else 0
        print(
            f"  {row['view']:<26} {' '.join(f'{t:.2f}' for t in row['warmup_s']):>17} "
            f"{row['median_s']:>9.3f} {row['peer_s']:>7.3f} {row['max_s']:>7.3f} "
            f"{row['queries_s']:>14.3f} {share:>12.0%}  {verdict(row['pass'])}"
        )
    print(
        f"\nduring a live append of {live['append_rate']:,} lines/s (bar p95 {LIVE_P95_BAR_S:g} s); "
        f"{live['lines_written']:,} lines written, {live['lines_stored']:,} stored"
    )
    print(f"  {'view':<26} {'visits s':>34} {'p95 s':>7} {'peer s':>7}")
    for row in live["views"]:
        print(
            f"  {row['view']:<26} {' '.join(f'{t:.2f}' for t in row['visits_s']):>34} "
            f"{row['p95_s']:>7.2f} {row['peer_s']:>7.3f}  {verdict(row['pass'])}"
        )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per phase the slowest view (passing when every view does), then each other view that
    failed."""
    first, warm, live = results["first_visit"], results["warm"], results["live_append"]
    after_restart = results["after_restart"]
    live_peer = statistics.median(live["peer_visits_s"])
    warm_peer = statistics.median(warm["peer_visits_s"])
    phases = (
        ("dashboard first visit of each view after serve restarted", after_restart["views"],
         "seconds", first["peer_s"], f"<= {FIRST_VISIT_BAR_S:g} s"),
        (f"dashboard warm visit, max of {results['visits']}", warm["views"], "max_s", warm_peer,
         f"<= {WARM_BAR_S:g} s"),
        (f"dashboard visit during a {live['append_rate']:,} lines/s append, p95 of "
         f"{results['visits']}", live["views"], "p95_s", live_peer,
         f"p95 <= {LIVE_P95_BAR_S:g} s"),
    )  # fmt: skip
    rows = []
    for metric, views, key, peer, bar in phases:
        slowest = max(views, key=lambda row: row[key])
        passed = sum(row["pass"] for row in views)
        rows.append(
            summary_row(
                f"{metric}: slowest of {len(views)} ({slowest['view']}); {passed} pass",
                f"{slowest[key]:.2f} s",
                bar,
                passed == len(views),
                peer=f"{peer:.2f} s",
            )
        )
        rows += [
            summary_row(f"{metric}: {row['view']}", f"{row[key]:.2f} s", bar, False)
            for row in views
            if not row["pass"] and row is not slowest
        ]
    slowest = max(first["views"], key=lambda row: row["seconds"])
    rows.append(
        summary_row(
            f"dashboard first visit, fresh browser profile: slowest of {len(first['views'])} "
            f"({slowest['view']}); Streamlit's own floor 0.9-2.2 s (dashboard_floor.py)",
            f"{slowest['seconds']:.2f} s",
            "none",
            None,
            peer=f"{first['peer_s']:.2f} s",
        )
    )
    return rows
