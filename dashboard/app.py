"""The conflictlens dashboard: one entry point, one file per page under app_pages/.

Run it with ``conflictlens dashboard`` (or let ``conflictlens serve`` start it).

The folder must not be called ``pages/``: beside the entry point, Streamlit takes that name
for its legacy multipage mode, in which a page's address runs the page's file directly, without
this script, until some session reaches ``st.navigation`` below. A login that stops before
that point would then guard ``/`` alone; every other page would open without it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from conflictlens.dashboard.data import pin_version
from conflictlens.dashboard.login import require_login, signed_in

PAGES = Path(__file__).parent / "app_pages"

st.set_page_config(page_title="conflictlens", page_icon=":material/sync_problem:", layout="wide")

# The navigation comes before the login so that the page asked for (an alert's link, with its
# filters) is the one shown after signing in; it stays hidden until then.
navigation = st.navigation(
    [
        st.Page(PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(PAGES / "hotspots.py", title="Hot spots", icon=":material/local_fire_department:"),
        st.Page(PAGES / "resources.py", title="Resources", icon=":material/description:"),
        st.Page(PAGES / "explore.py", title="Explore", icon=":material/search:"),
        st.Page(PAGES / "alerts.py", title="Alerts", icon=":material/notifications_active:"),
        st.Page(PAGES / "reports.py", title="Reports", icon=":material/summarize:"),
        st.Page(PAGES / "ingest.py", title="Ingest", icon=":material/input:"),
        # Opened from an incident (its window and clusters in the link), not from the menu.
        st.Page(
            PAGES / "incident.py",
            title="Incident",
            icon=":material/crisis_alert:",
            visibility="hidden",
        ),
    ],
    position="sidebar" if signed_in() else "hidden",
)
require_login()
pin_version()  # every full run of any page answers for one version of the store
navigation.run()
