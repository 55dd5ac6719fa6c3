"""krakenwatch: the page router (``st.navigation``)."""

import streamlit as st

st.set_page_config(page_title="krakenwatch", page_icon="🦑", layout="wide")

pages = [
    st.Page("pages/overview.py", title="Overview", icon="✅", default=True),
    st.Page("pages/timeline.py", title="Timeline", icon="📈"),
    st.Page("pages/balances.py", title="Balances", icon="💰"),
    st.Page("pages/nonce.py", title="Nonce & clock", icon="⏱️"),
    st.Page("pages/gateway.py", title="Gateway", icon="🔀"),
    st.Page("pages/settings.py", title="Settings", icon="⚙️"),
]
st.navigation(pages).run()
