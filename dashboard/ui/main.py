"""krakenwatch: the page router (``st.navigation``).

The pages live in ``screens/``, not ``pages/``: Streamlit treats a ``pages/`` folder beside the
entry script as a multipage app of its own, and serves a deep link (``/balances``) on a fresh
server from that folder, without this router (file names for navigation, no wide layout).
"""

from pathlib import Path

import streamlit as st

st.set_page_config(
    page_title="krakenwatch",
    # a file of ours, served by this server: a material icon would be fetched from Google's
    # servers, missing offline
    page_icon=str(Path(__file__).with_name("favicon.png")),
    layout="wide",
    menu_items={
        "Get help": None,
        "Report a bug": None,
        "About": "krakenwatch: Kraken accounts, nonces and the post-deploy checklist.",
    },
)

pages = [
    st.Page("screens/overview.py", title="Overview", icon=":material/fact_check:", default=True),
    st.Page("screens/timeline.py", title="Timeline", icon=":material/timeline:"),
    st.Page("screens/trading.py", title="Trading", icon=":material/candlestick_chart:"),
    st.Page("screens/deploys.py", title="Deploys", icon=":material/rocket_launch:"),
    st.Page("screens/balances.py", title="Balances", icon=":material/account_balance_wallet:"),
    st.Page("screens/nonce.py", title="Nonce & clock", icon=":material/schedule:"),
    st.Page("screens/gateway.py", title="Gateway", icon=":material/alt_route:"),
    st.Page("screens/settings.py", title="Settings", icon=":material/settings:"),
]
st.navigation(pages).run()
