"""Overview: the verdict and checklist first, then one card per account, then the clock."""

import streamlit as st

from dashboard.checklist import build_checklist
from dashboard.ui.common import REFRESH_EVERY, how_to_configure, require_service, state_badge
from dashboard.views.overview import Card, account_cards, checks_frame, verdict

service = require_service()
st.title("Post-deploy verification")


def account_card(card: Card) -> None:
    st.markdown(f"**{card.label}** {state_badge(card.state)}")
    st.caption(f"since {card.since} · {card.reason}")
    st.markdown(f"**Balance:** {card.balance}")
    st.markdown(
        f"Last successful call: {card.last_success}  \n"
        f"Invalid nonces: **{card.invalid_nonces}** · nonce unit `{card.nonce_unit}` · key `{card.key}`"
    )
    if card.can_retry:
        st.markdown(f"**What to do:** {card.remedy or 'see the timeline for details'}")
        st.button(
            "Retry now",
            key=f"retry-{card.label}",
            help="Call Kraken for this account now (after fixing the key, secret or permission)",
            on_click=service.monitor.retry_now,
            args=(card.label,),
        )


@st.fragment(run_every=REFRESH_EVERY)
def overview() -> None:
    snapshot = service.monitor.snapshot()
    checks = build_checklist(snapshot, service.settings)
    result = verdict(checks)
    if result.ok:
        st.success(f"**{result.headline}**", icon="✅")
    elif result.failing:
        st.error(f"**{result.headline}**", icon="❌")
    else:
        st.info(f"**{result.headline}**", icon="⏳")
    for check in result.failing:
        where = f" ({check.account})" if check.account else ""
        with st.expander(f"❌ {check.name}{where}: {check.detail}"):
            st.markdown(f"**What to do:** {check.remedy or 'see the timeline for details'}")
    if not service.settings.accounts:
        st.markdown(how_to_configure())

    st.subheader("Checklist")
    st.dataframe(checks_frame(checks), hide_index=True, width="stretch")

    st.subheader("Accounts")
    cards = account_cards(snapshot.accounts, snapshot.taken_at)
    columns = st.columns(3) if cards else []
    for i, card in enumerate(cards):
        with columns[i % 3].container(border=True):
            account_card(card)

    st.subheader("Clock")
    skew = snapshot.skew
    if skew is None:
        st.caption("No clock sample yet.")
    else:
        st.metric(
            "Clock skew (local − Kraken)",
            f"{skew.offset_s:+.3f} s",
            help=f"± {skew.uncertainty_s:.3f} s from {skew.probes} probes",
        )
        st.caption(
            f"± {skew.uncertainty_s:.3f} s · Kraken status: {snapshot.system_status or 'unknown'}"
        )


overview()
