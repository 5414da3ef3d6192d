"""The floor a first visit pays on this machine, whatever the data: Streamlit pages with no data
work at all (a title; a title and one three-point Plotly chart; a title and a three-row
table; both), each opened in a browser of its own with an empty profile, as the dashboard
benchmark's first visits are. A view of the dashboard cannot open faster than the peer page
that draws the same kinds of elements with nothing to compute.

    .venv/bin/python bench/dashboard_floor.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import OUT, child_env, free_port, write_json
from bench.dashboard_browser import browser, open_view, wait_for
from bench.dashboard_views import FIRST_VISIT_BAR_S, View

HEAD = 'import streamlit as st\n\nst.set_page_config(page_title="peer", layout="wide")\nst.title("Peer")\n'
CHART = (
    "import plotly.graph_objects as go\n"
    "st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])))\n"
)
TABLE = 'st.dataframe({"a": [1, 2, 3], "b": ["x", "y", "z"]})\n'
PAGES = {
    "a title": (HEAD, View("Peer", [])),
    "a title and a chart": (HEAD + CHART, View("Peer", [], charts=1)),
    "a title and a table": (HEAD + TABLE, View("Peer", [], tables=1)),
    "a title, a chart and a table": (HEAD + CHART + TABLE, View("Peer", [], charts=1, tables=1)),
}


def start(name: str, source: str, port: int) -> subprocess.Popen[bytes]:
    from conflictlens.dashboard_process import streamlit_command

    app = OUT / f"floor_{name.replace(' ', '_').replace(',', '')}.py"
    app.write_text(source, encoding="utf-8")
    return subprocess.Popen(
        streamlit_command("127.0.0.1", port, script=app),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    servers, urls = [], {}
    try:
        for name, (source, _) in PAGES.items():
            port = free_port()
            servers.append(start(name, source, port))
            urls[name] = f"http://127.0.0.1:{port}/"
        for url in urls.values():
            wait_for(url)
        for name, (_, view) in PAGES.items():  # one untimed visit: the servers' own warm-up
            driver = browser()
            open_view(driver, urls[name], view)
            driver.quit()
        times: dict[str, list[float]] = {name: [] for name in PAGES}
        for _ in range(args.rounds):  # interleaved: the machine's drift hits every page alike
            for name, (_, view) in PAGES.items():
                driver = browser()
                try:
                    times[name].append(open_view(driver, urls[name], view))
                finally:
                    driver.quit()
    finally:
        for server in servers:
            server.terminate()
    rows = []
    print(f"first visit in a fresh browser, {args.rounds} rounds (bar {FIRST_VISIT_BAR_S} s)")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(
            f"  {name:<30} median {median:5.2f} s  min {min(seconds):5.2f}  max {max(seconds):5.2f}"
        )
        rows.append(
            {"page": name, "median_s": round(median, 3), "visits_s": [round(s, 3) for s in seconds]}
        )
    write_json(OUT / "dashboard_floor.json", {"bar_s": FIRST_VISIT_BAR_S, "pages": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
