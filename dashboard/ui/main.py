"""krakenwatch: the page router (``st.navigation``)."""

import streamlit as st

st.set_page_config(
    page_title="krakenwatch",
    page_icon=":material/monitor_heart:",
    layout="wide",
    menu_items={
        "Get help": None,
        "Report a bug": None,
        "About": "krakenwatch: Kraken accounts, nonces and the post-deploy checklist.",
    },
)

pages = [
    st.Page("pages/overview.py", title="Overview", icon=":material/fact_check:", default=True),
    st.Page("pages/timeline.py", title="Timeline", icon=":material/timeline:"),
    st.Page("pages/balances.py", title="Balances", icon=":material/account_balance_wallet:"),
    st.Page("pages/nonce.py", title="Nonce & clock", icon=":material/schedule:"),
    st.Page("pages/gateway.py", title="Gateway", icon=":material/alt_route:"),
    st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
]
st.navigation(pages).run()
