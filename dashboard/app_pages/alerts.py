"""Alerts, a tab each: the rules with their groups' states, a rule editor with a backtest chart
of when the rule would have fired over the selected range, silences, the notifications sent."""

from __future__ import annotations

import polars as pl
import streamlit as st

from conflictlens.dashboard import figures_time, page
from conflictlens.dashboard.alerts_data import (
    add_silence,
    alerts_overview,
    delete_rule,
    expire_silence,
    preview_rule,
    save_rule,
)
from conflictlens.dashboard.data import DataError, ask
from conflictlens.dashboard.filters import describe
from conflictlens.dashboard.rule_form import rule_fields

NEW_RULE = "New rule"
view = page.start("Alerts")


def rules() -> None:
    overview = alerts_overview()
    if not overview["rules"]:
        st.info("No alert rules yet: create one in the next tab; it is saved in the config file.")
        return
    st.dataframe(
        pl.DataFrame(
            [
                {
                    "rule": r["name"],
                    "condition": r["condition"],
                    "window": r["window"],
                    "severity": r["severity"],
                    "firing": sum(g["state"] == "firing" for g in r["groups"]),
                    "pending": sum(g["state"] == "pending" for g in r["groups"]),
                    "channels": ", ".join(r["channels"]),
                }
                for r in overview["rules"]
            ]
        ),
        hide_index=True,
        key="rules",
    )
    groups = [{"rule": r["name"], **g} for r in overview["rules"] for g in r["groups"]]
    if groups:
        st.caption("Their groups' states")
        columns = ["rule", "labels", "state", "active_since", "firing_since", "last_value"]
        rows = [{**{c: g[c] for c in columns}, "labels": _text(g["labels"])} for g in groups]
        st.dataframe(pl.DataFrame(rows), hide_index=True, key="groups")


def notifications() -> None:
    sent = ask("alert_notifications", None, None, limit=200)
    if sent.height == 0:
        st.info("No notifications yet.")
        return
    st.dataframe(sent, hide_index=True, key="notifications")


def editor() -> None:
    overview = alerts_overview()
    tables = {r["name"]: r["table"] for r in overview["rules"]}
    chosen = st.selectbox("Rule", [NEW_RULE, *tables], key="edit")
    start = tables.get(chosen, {})
    with st.form(f"rule-{chosen}"):
        table = rule_fields(start, overview["channels"], key=chosen)
        left, middle, right = st.columns(3)
        tested = left.form_submit_button("Backtest", icon=":material/history:")
        saved = middle.form_submit_button("Save", type="primary", icon=":material/save:")
        deleted = chosen != NEW_RULE and right.form_submit_button(
            "Delete", icon=":material/delete:"
        )
    if deleted:
        st.success(delete_rule(chosen))
        return
    if not (tested or saved):
        st.caption(f"Backtest replays the rule over {describe(view)}, saved or not.")
        return
    try:
        result = preview_rule(table, view.since, view.until)  # validates it too
        if saved:
            st.success(save_rule(table, None if chosen == NEW_RULE else chosen))
    except DataError as exc:
        st.error(str(exc))
        return
    st.plotly_chart(
        figures_time.backtest_chart(result.series, result.episodes, table["metric"]), key="backtest"
    )
    st.caption(f"{result.episodes.height} time(s) it would have fired in this range")
    st.dataframe(result.episodes.drop("rule", "fingerprint"), hide_index=True, key="episodes")


def silences() -> None:
    names = [r["name"] for r in alerts_overview()["rules"]]
    with st.form("silence"):
        left, middle, right = st.columns(3)
        rule = left.selectbox("Rule", names or ["-"])
        labels = middle.text_input("and labels (key=value, comma-separated)")
        duration = right.text_input("for", "2h")
        comment = st.text_input("Comment")
        if st.form_submit_button("Silence"):
            matchers = {"rule": rule, **_pairs(labels)}
            st.success(f"silence {add_silence(matchers, duration, comment)} added")
    known = alerts_overview()["silences"]  # read after the form: a new one shows at once
    if known:
        rows = [{**s, "matchers": _text(s["matchers"])} for s in known]
        st.dataframe(pl.DataFrame(rows), hide_index=True, key="silences")
    active = [s["id"] for s in known if s["active"] and s["id"] is not None]
    if active:
        left, right = st.columns([3, 1])
        ending = left.selectbox("End a silence now", active, key="expire-id")
        if right.button("Expire", key="expire"):
            expire_silence(int(ending))
            st.rerun()  # the table above shows it ended


def _text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items())


def _pairs(text: str) -> dict[str, str]:
    pairs = [part.split("=", 1) for part in text.split(",") if "=" in part]
    return {k.strip(): v.strip() for k, v in pairs if k.strip() and v.strip()}


page.sections(
    {
        "Rules": page.live(lambda: page.guarded(rules)),
        "Create or edit": editor,
        "Silences": silences,
        "Notifications": notifications,
    }
)
