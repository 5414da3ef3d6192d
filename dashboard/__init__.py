"""The Streamlit dashboard (issue: "The Streamlit dashboard"); reads only through serve's API."""
