"""The login gate: when a password hash is configured, nothing is shown before it is given."""

from __future__ import annotations

import os

import streamlit as st

from dashboard.passwords import verify_password


def require_login() -> None:
    """Stop the page with a login form unless no password is set or the user gave it."""
    stored = os.environ.get("CONFLICTLENS_DASHBOARD_PASSWORD_HASH")
    if not stored or st.session_state.get("signed_in"):
        return
    st.title("conflictlens")
    with st.form("login"):
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            if verify_password(password, stored):
                st.session_state["signed_in"] = True
                st.rerun()
            st.error("Wrong password.")
    st.stop()
