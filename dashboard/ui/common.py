"""Small pieces shared by the pages."""

from __future__ import annotations

import streamlit as st

from dashboard.config import NO_ACCOUNT, NO_ACCOUNT_HELP
from dashboard.monitor.status import AccountState
from dashboard.web.auth import FREE_FAILURES, MAX_DELAY_S, Attempt, password_ok
from dashboard.web.service import Service
from dashboard.web.streamlit_app import current_service

REFRESH_EVERY = "5s"
SLOWED_DOWN = (
    f"Failed attempts are slowed down: after {FREE_FAILURES} in a row from one address, each "
    f"further attempt waits 1 s, 2 s, 4 s ... up to {MAX_DELAY_S:g} s."
)
STATE_BADGES = {
    AccountState.CONNECTED: ":green-badge[:material/check_circle: connected]",
    AccountState.DEGRADED: ":orange-badge[:material/warning: degraded]",
    AccountState.DISCONNECTED: ":red-badge[:material/cancel: disconnected]",
    AccountState.CONNECTING: ":gray-badge[:material/sync: connecting]",
    AccountState.INVALID_CONFIG: ":violet-badge[:material/settings_alert: invalid config]",
}

#: the Streamlit alert of each banner tone (:class:`~dashboard.views.deploys.DeployBanner`)
ALERTS = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}


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
        _require_password(service, service.settings.password)
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


def _require_password(service: Service, password: str) -> None:
    """A login form until this browser session has given the right password (attempts slowed
    down per client address, with the HTTP routes)."""
    if st.session_state.get("krakenwatch_authenticated"):
        return
    st.title("krakenwatch")
    with st.form("login"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    st.caption(SLOWED_DOWN)
    if submitted:
        attempt = service.password_throttle.attempt(
            client_address(), lambda: password_ok(given, password)
        )
        if attempt.ok:
            st.session_state["krakenwatch_authenticated"] = True
            st.rerun()
        st.error(login_refusal(attempt))
    st.stop()


def client_address() -> str | None:
    """The browser's address; ``None`` when it has none (Streamlit gives a loopback connection
    none, and AppTest's stand-in runtime gives something other than a string)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else None


def login_refusal(attempt: Attempt) -> str:
    """What the login form says to a refused attempt."""
    wait = f"Too many failed attempts; try again in {attempt.retry_after} s."
    if attempt.throttled:
        return wait
    return f"Wrong password. {wait}" if attempt.retry_after else "Wrong password."


def state_badge(state: AccountState) -> str:
    return STATE_BADGES.get(state, str(state))


def how_to_configure() -> str:
    """What the pages say when no account is configured (markdown)."""
    headline = NO_ACCOUNT[:1].upper() + NO_ACCOUNT[1:]
    return f"**{headline}.** {NO_ACCOUNT_HELP} To see everything working first, run `make demo`."
