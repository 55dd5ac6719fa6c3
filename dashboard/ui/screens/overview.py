"""Overview: the latest deploy and its verdict, the live verdict, failing checks with what to do,
the checklist (counted from the deploy's marker), one card per account, the clock."""

import time

import streamlit as st

from dashboard.checks.checklist import Check, CheckStatus, build_checklist
from dashboard.checks.item import counted
from dashboard.history.deploy_book import Deploy
from dashboard.monitor import events as ev
from dashboard.monitor.valuation import held_assets
from dashboard.ui.common import (
    ALERTS,
    REFRESH_EVERY,
    how_to_configure,
    require_service,
    state_badge,
)
from dashboard.views.deploys import HOW_TO_MARK, deploy_banner, live_verdict, scope_note
from dashboard.views.markdown import escape
from dashboard.views.overview import (
    STATUS_ICONS,
    Card,
    account_cards,
    attention_card,
    checklist_table,
    ordered_checks,
)

service = require_service()
st.title("Post-deploy verification")


def account_card(card: Card) -> None:
    st.markdown(f"**{card.label}** {state_badge(card.state)}")
    st.caption(f"since {card.since} · {card.reason}")
    st.markdown(f"**Balance:** {escape(card.balance)}")
    st.markdown(
        f"Last successful call: {card.last_success}  \n"
        f"Invalid nonces {card.counted}: **{card.invalid_nonces}** · nonce unit `{card.nonce_unit}` · key `{card.key}`"
    )
    st.markdown(card.stream)
    if card.can_retry:
        st.markdown(f"**What to do:** {card.remedy or 'see the timeline for details'}")
        st.button(
            "Retry now",
            key=f"retry-{card.label}",
            help="Call Kraken for this account now (after fixing the key, secret or permission)",
            on_click=service.monitor.retry_now,
            args=(card.label,),
        )


def needs_attention(checks: list[Check]) -> None:
    """Failing items first, each with its remedy in full; then what is still pending."""
    for check in checks:
        if check.status == CheckStatus.FAIL:
            what, remedy = attention_card(check)
            with st.container(border=True):
                st.markdown(what)
                st.markdown(remedy)
    pending = [c for c in checks if c.status == CheckStatus.PENDING]
    if pending:
        st.markdown(f"**Waiting for {counted(len(pending), 'check')}**")
        st.markdown(checklist_table(pending))


def latest_deploy() -> Deploy | None:
    """The latest deploy and its verdict (judged now), or how to mark one."""
    deploy = service.deploys.judge()
    if deploy is None:
        st.caption(HOW_TO_MARK)
        return None
    banner = deploy_banner(deploy, time.time())
    ALERTS[banner.tone](banner.body, icon=banner.icon)
    note = scope_note(deploy, [a.label for a in service.settings.accounts])
    if note:
        st.caption(note)
    return deploy


@st.fragment(run_every=REFRESH_EVERY)
def overview() -> None:
    deploy = latest_deploy()
    snapshot = service.snapshot()
    checks = build_checklist(snapshot, service.settings)
    result = live_verdict(checks, deploy)  # /api/verify's
    if result.ok:
        st.success(f"**{result.headline}**", icon=STATUS_ICONS[CheckStatus.PASS].icon)
    elif result.failing:
        st.error(f"**{result.headline}**", icon=STATUS_ICONS[CheckStatus.FAIL].icon)
    else:
        st.info(f"**{result.headline}**", icon=STATUS_ICONS[CheckStatus.PENDING].icon)
    if not service.settings.accounts:
        st.markdown(how_to_configure())
    checks = ordered_checks(checks)
    needs_attention(checks)

    st.subheader("Accounts")
    prices = service.prices.usd_prices(held_assets(snapshot.accounts))
    last_orders = {
        a.label: e for a in snapshot.accounts if (e := service.store.latest(ev.ORDER, a.label))
    }
    cards = account_cards(snapshot.accounts, snapshot.taken_at, prices, last_orders)
    columns = st.columns(3) if cards else []
    for i, card in enumerate(cards):
        with columns[i % 3].container(border=True):
            account_card(card)

    st.subheader("Checklist")
    st.markdown(checklist_table(checks))

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
