"""The Gateway page's trading guard (``up --gateway``): the halts in force with their Resume
buttons, the dead man's switches, the modelled trading counters, the other writers seen, and the
halt form. The page's data comes from :mod:`dashboard.views.guard`.

The buttons act in callbacks, on the page's script thread (the gateway's ``halt`` and ``resume``
block until they took effect, so never on the gateway's own loop): the halts in force are drawn
by a fragment that refreshes itself, and a click reruns that fragment after its callback, so it
shows the halt lifted at once. The halt form lives outside the refreshing fragment (a refresh
never disturbs a reason being typed); a halt reruns the whole page. What a button did is kept
in the session for :data:`SAID_FOR_S` and shown beside it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import streamlit as st

from dashboard.views.guard import (
    EVERY_CALLER,
    HaltRow,
    client_choices,
    client_of,
    counters_frame,
    dead_man_frame,
    dead_man_warnings,
    foreign_writers_frame,
    halt_problem,
    halt_rows,
    halted_message,
    resumed_message,
)
from dashboard.views.markdown import escape

if TYPE_CHECKING:
    from gateway import Gateway
    from gateway.guardview import GuardSnapshot

__all__ = ["ACCOUNT_KEY", "CONFIRM_KEY", "REASON_KEY", "client_key", "guard_status", "halt_form"]

log = logging.getLogger(__name__)

ACCOUNT_KEY = "kw-halt-account"
REASON_KEY = "kw-halt-reason"
CONFIRM_KEY = "kw-halt-confirm"
#: the halt (its row key) whose Resume waits for a confirmation
ASKING_KEY = "kw-resume-asking"
HALT_SAID, RESUME_SAID = "kw-halt-said", "kw-resume-said"
#: how long what a button did stays on the page
SAID_FOR_S = 60.0
#: who asks, as the guard records it
ORIGIN = "dashboard"
_TONES = {"success": st.success, "warning": st.warning, "error": st.error}


def client_key(account: str) -> str:
    """The halt form's client choice, one per account (their options differ)."""
    return f"kw-halt-client:{account}"


def _say(key: str, tone: str, text: str) -> None:
    st.session_state[key] = (tone, text, time.time())


def _show(key: str) -> None:
    said = st.session_state.get(key)
    if said is not None and time.time() - said[2] < SAID_FOR_S:
        _TONES[said[0]](said[1])


def _failed(action: str, exc: Exception) -> str:
    """A failure in one line, never a traceback (that goes to the log)."""
    if isinstance(exc, ValueError):
        return str(exc)
    log.error("%s from the dashboard failed", action, exc_info=exc)
    return f"The {action} failed: {type(exc).__name__}: {' '.join(str(exc).split())}"


# -- the halts in force ---------------------------------------------------------------------------


def _ask(row: HaltRow) -> None:
    st.session_state[ASKING_KEY] = row.key


def _forget() -> None:
    st.session_state.pop(ASKING_KEY, None)


def _resume(gateway: Gateway, row: HaltRow) -> None:
    _forget()
    try:
        resumed = gateway.resume(row.account, client=row.client, origin=ORIGIN)
    except Exception as exc:  # shown in one line
        _say(RESUME_SAID, "error", _failed("resume", exc))
        return
    _say(RESUME_SAID, "success", resumed_message(row.scope, resumed))


def _halt_row(gateway: Gateway, row: HaltRow) -> None:
    with st.container(border=True):
        text, action = st.columns([4, 1])
        text.markdown(
            f":red[:material/block:] **{escape(row.scope)}** halted at {row.since} "
            f"({row.age} ago) by {escape(row.origin)}  \nReason: {escape(row.reason)}"
        )
        if st.session_state.get(ASKING_KEY) == row.key:
            text.warning(
                f"Resume {row.scope}? The gateway passes its orders again at once.",
                icon=":material/help:",
            )
            action.button(
                "Confirm resume",
                key=f"kw-resume-yes:{row.key}",
                type="primary",
                on_click=_resume,
                args=(gateway, row),
            )
            action.button("Cancel", key=f"kw-resume-no:{row.key}", on_click=_forget)
        else:
            action.button(
                "Resume…",
                key=f"kw-resume:{row.key}",
                help=f"Lift this halt (asks for a confirmation); or `{row.command}`",
                on_click=_ask,
                args=(row,),
            )


def _halts(gateway: Gateway, guard: GuardSnapshot, now: float) -> None:
    st.markdown("**Halts in force**")
    _show(RESUME_SAID)
    rows = halt_rows(guard, now)
    if not rows:
        st.caption(
            "No halt in force: the gateway passes every account's orders. A halt refuses the "
            "calls that open or change orders (`EGeneral:Permission denied:halted`); cancels "
            "and queries pass."
        )
    for row in rows:
        _halt_row(gateway, row)


# -- what the guard watches -----------------------------------------------------------------------


def _dead_man(guard: GuardSnapshot, now: float) -> None:
    st.markdown("**Dead man's switch**")
    frame = dead_man_frame(guard, now)
    if frame.empty:
        st.caption(
            "No account has one. With `KRAKEN_<ACCOUNT>_CANCEL_AFTER=S` (15-86400) the gateway "
            "keeps Kraken's `CancelAllOrdersAfter` armed from the bots' calls: Kraken cancels "
            "the account's open orders at most S seconds after its bots' last call."
        )
        return
    for warning in dead_man_warnings(guard, now):
        st.warning(warning, icon=":material/timer:")
    st.dataframe(frame, hide_index=True, width="stretch")
    st.caption(
        "A bot's call re-arms the switch once the last re-arm is older than a quarter of the "
        "timeout: bots must call at least every three quarters of it to keep their orders."
    )


def _counters(guard: GuardSnapshot) -> None:
    st.markdown("**Trading counters (modelled per pair)**")
    frame = counters_frame(guard)
    if frame.empty:
        st.caption("No order through the gateway and no counter from a stream yet.")
        return
    st.dataframe(frame, hide_index=True, width="stretch")
    st.caption(
        "From the orders through the gateway, and Kraken's own counter when the account's "
        "stream reports it (the higher of the two). An order that would overflow waits, then "
        "the gateway refuses it with `EOrder:Rate limit exceeded`, nothing sent."
    )


def _foreign_writers(guard: GuardSnapshot, now: float) -> None:
    st.markdown("**Other writers on the keys**")
    frame = foreign_writers_frame(guard, now)
    if frame.empty:
        st.caption("Kraken has refused none of the gateway's own nonces since it started.")
        return
    st.error(
        "Another program signs with these keys: Kraken refused nonces the gateway issued above "
        "its own high-water mark. Find it, or give it its own key.",
        icon=":material/group_off:",
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def guard_status(gateway: Gateway) -> None:
    """The guard as it stands: the halts (with Resume), the dead man's switches, the counters,
    the other writers."""
    guard = gateway.guard_snapshot()
    now = time.time()
    st.subheader("Trading guard")
    _halts(gateway, guard, now)
    _dead_man(guard, now)
    _counters(guard)
    _foreign_writers(guard, now)


# -- the halt form --------------------------------------------------------------------------------


def _halt(gateway: Gateway) -> None:
    state = st.session_state
    account = str(state.get(ACCOUNT_KEY) or "")
    client = client_of(state.get(client_key(account)))
    reason = str(state.get(REASON_KEY) or "")
    problem = halt_problem(reason, bool(state.get(CONFIRM_KEY)))
    if problem is not None:
        _say(HALT_SAID, "warning", problem)
        return
    try:
        record = gateway.halt(account, reason.strip(), client=client, origin=ORIGIN)
    except Exception as exc:  # shown in one line
        _say(HALT_SAID, "error", _failed("halt", exc))
        return
    _say(HALT_SAID, "success", halted_message(record))
    state[CONFIRM_KEY] = False
    state[REASON_KEY] = ""


def halt_form(gateway: Gateway) -> None:
    """Halt an account, or one client credential of it: a reason and a confirmation first."""
    with st.container(border=True):
        st.markdown("**Halt trading**")
        accounts = [a.label for a in gateway.accounts]
        left, right = st.columns(2)
        account = left.selectbox("Account", accounts, key=ACCOUNT_KEY)
        clients = gateway.credentials.table.clients if gateway.credentials is not None else ()
        right.selectbox(
            "Client",
            client_choices(clients, str(account)),
            key=client_key(str(account)),
            help=f"{EVERY_CALLER}: the whole account; else one gateway client credential",
        )
        st.text_input(
            "Reason (required)",
            key=REASON_KEY,
            placeholder="why: shown with the halt, on the timeline and in alerts",
        )
        st.checkbox(
            "I understand: the gateway refuses this scope's new orders and order changes until "
            "it is resumed (open orders stay; cancels pass)",
            key=CONFIRM_KEY,
        )
        st.button("Halt", key="kw-halt", type="primary", on_click=_halt, args=(gateway,))
        _show(HALT_SAID)
        st.caption(
            "Also: `krakenwatch gateway halt ACCOUNT [--client NAME] --reason TEXT`, or "
            "`POST /admin/halt` on the gateway (bearer `KRAKENWATCH_ADMIN_TOKEN`)."
        )
