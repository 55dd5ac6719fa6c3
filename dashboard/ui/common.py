"""Small pieces shared by the pages."""

from __future__ import annotations

import streamlit as st

from dashboard.auth import password_ok
from dashboard.config import NO_ACCOUNT, NO_ACCOUNT_HELP
from dashboard.runtime import current_service
from dashboard.service import Service
from dashboard.status import AccountState

REFRESH_EVERY = "5s"
STATE_BADGES = {
    AccountState.CONNECTED: ":green-badge[:material/check_circle: connected]",
    AccountState.DEGRADED: ":orange-badge[:material/warning: degraded]",
    AccountState.DISCONNECTED: ":red-badge[:material/cancel: disconnected]",
    AccountState.CONNECTING: ":gray-badge[:material/sync: connecting]",
    AccountState.INVALID_CONFIG: ":violet-badge[:material/settings_alert: invalid config]",
}


def require_service() -> Service:
    service = current_service()
    if service is None:
        st.warning(
            "The krakenwatch monitor is not running in this process. Start the dashboard with `krakenwatch up` (or `make demo`)."
        )
        st.stop()
    assert service is not None
    if _oidc_configured():
        _require_oidc_login()
    elif service.settings.password is not None:
        _require_password(service.settings.password)
    return service


def _oidc_configured() -> bool:
    """Streamlit's OIDC login is configured (an ``[auth]`` section in ``.streamlit/secrets.toml``)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def _require_oidc_login() -> None:
    if st.user.get("is_logged_in"):
        with st.sidebar:
            st.caption(f"Logged in as {st.user.get('email') or st.user.get('name') or 'you'}")
            st.button("Log out", on_click=st.logout)
        return
    st.title("krakenwatch")
    st.button("Log in", on_click=st.login, type="primary")
    st.stop()


def _require_password(password: str) -> None:
    """A login form until this browser session has given the right password."""
    if st.session_state.get("krakenwatch_authenticated"):
        return
    st.title("krakenwatch")
    with st.form("login"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        if password_ok(given, password):
            st.session_state["krakenwatch_authenticated"] = True
            st.rerun()
        st.error("Wrong password.")
    st.stop()


def state_badge(state: AccountState) -> str:
    return STATE_BADGES.get(state, str(state))


def how_to_configure() -> str:
    """What the pages say when no account is configured (markdown)."""
    headline = NO_ACCOUNT[:1].upper() + NO_ACCOUNT[1:]
    return f"**{headline}.** {NO_ACCOUNT_HELP} To see everything working first, run `make demo`."
