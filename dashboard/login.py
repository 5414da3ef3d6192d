"""The login gate: when a password hash is configured, nothing is shown before it is given."""

from __future__ import annotations

import os

import streamlit as st

from conflictlens.dashboard.passwords import verify_password


def signed_in() -> bool:
    """True when no password is set or the user gave it in this session."""
    return not _stored_hash() or bool(st.session_state.get("signed_in"))


def require_login() -> None:
    """Stop the page with a login form unless no password is set or the user gave it."""
    if signed_in():
        return
    st.title("conflictlens")
    with st.form("login"):
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            if verify_password(password, _stored_hash()):
                st.session_state["signed_in"] = True
                st.rerun()
            st.error("Wrong password.")
    st.stop()


def _stored_hash() -> str:
    return os.environ.get("CONFLICTLENS_DASHBOARD_PASSWORD_HASH", "")
