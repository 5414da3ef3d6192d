"""The conflictlens dashboard: one entry point, one file per page under app_pages/.

Run it with ``conflictlens dashboard`` (or let ``conflictlens serve`` start it).

The folder must not be called ``pages/``: beside the entry point, Streamlit takes that name
for its legacy multipage mode, in which a page's address runs the page's file directly, without
this script, until some session reaches ``st.navigation`` below. A login that stops before
that point would then guard ``/`` alone; every other page would open without it.
"""

from __future__ import annotations

import streamlit as st

from conflictlens.dashboard.data import pin_version
from conflictlens.dashboard.login import require_login
from conflictlens.dashboard.state import MENU, page_path

st.set_page_config(page_title="conflictlens", page_icon=":material/sync_problem:", layout="wide")

# The navigation comes before the login so that the page asked for (an alert's link, with its
# filters) is the one shown after signing in. Streamlit's own menu is hidden: each page draws
# the menu as links that carry the range and filters (page.menu), so that a page switch is one
# entry in the browser's history (Streamlit's menu drops the query, and putting it back made
# a second entry, at which Back stopped).
navigation = st.navigation(
    [
        st.Page(page_path(name), title=title, icon=icon, default=name == MENU[0][0])
        for name, title, icon in MENU
    ]
    # Opened from an incident (its window and clusters in the link), not from the menu.
    + [st.Page(page_path("incident"), title="Incident", icon=":material/crisis_alert:")],
    position="hidden",
)
require_login()
pin_version()  # every full run of any page answers for one version of the store
navigation.run()
