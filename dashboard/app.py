"""The conflictlens dashboard: one entry point, one file per page under pages/.

Run it with ``conflictlens dashboard`` (or let ``conflictlens serve`` start it).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.login import require_login

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="conflictlens", page_icon=":material/sync_problem:", layout="wide")

require_login()

navigation = st.navigation(
    [
        st.Page(PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(PAGES / "hotspots.py", title="Hot spots", icon=":material/local_fire_department:"),
        st.Page(PAGES / "resources.py", title="Resources", icon=":material/description:"),
        st.Page(PAGES / "explore.py", title="Explore", icon=":material/search:"),
        st.Page(PAGES / "alerts.py", title="Alerts", icon=":material/notifications_active:"),
        st.Page(PAGES / "reports.py", title="Reports", icon=":material/summarize:"),
        st.Page(PAGES / "ingest.py", title="Ingest", icon=":material/input:"),
    ]
)
navigation.run()
