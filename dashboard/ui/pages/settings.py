"""Settings & about: the configuration (keys masked), the endpoints, a Prometheus snippet."""

import pandas as pd
import streamlit as st

from dashboard import __version__
from dashboard.ui.common import require_service

service = require_service()
settings = service.settings
st.title("Settings")

st.subheader("Accounts")
st.dataframe(
    pd.DataFrame(
        [
            (a.label, a.masked_key, a.nonce_unit, f"KRAKEN_{a.prefix}_API_KEY")
            for a in settings.accounts
        ],
        columns=["account", "key (masked)", "nonce unit", "variable"],
    ),
    hide_index=True,
    width="stretch",
)
if settings.all_problems:
    st.subheader("Configuration problems")
    for problem in settings.all_problems:
        (st.error if problem.severity == "error" else st.warning)(
            f"`{problem.variable}`: {problem.message}"
        )

st.subheader("Monitor")
st.dataframe(
    pd.DataFrame(
        [
            ("KRAKEN_API_URL", settings.api_url),
            ("KRAKENWATCH_DATA_DIR", str(settings.data_dir)),
            ("KRAKENWATCH_TIER", settings.tier),
            ("KRAKENWATCH_POLL_INTERVAL", f"{settings.poll_interval_s:g} s"),
            ("KRAKENWATCH_FRESHNESS", f"{settings.freshness_s:g} s"),
            ("KRAKENWATCH_SKEW_INTERVAL", f"{settings.skew_interval_s:g} s"),
            ("KRAKENWATCH_MAX_SKEW", f"{settings.max_skew_s:g} s"),
            ("KRAKENWATCH_PROBE_TRADE", str(settings.probe_trade)),
            ("KRAKENWATCH_BALANCE_METRICS", str(settings.balance_metrics)),
            ("KRAKENWATCH_RETENTION_DAYS", f"{settings.retention_days:g}"),
            ("KRAKENWATCH_BOT_LOG", str(settings.bot_log or "-")),
        ],
        columns=["setting", "value"],
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("Endpoints")
st.markdown(
    "- `/metrics`: Prometheus text exposition\n"
    "- `/api/verify`: the verify document; HTTP 200 when every required check passes, else 503\n"
    "- `/_stcore/health`: liveness"
)
st.subheader("Prometheus scrape config")
st.code(
    """scrape_configs:
  - job_name: krakenwatch
    scrape_interval: 30s
    static_configs:
      - targets: ["krakenwatch-host:8501"]
""",
    language="yaml",
)
st.caption(f"krakenwatch {__version__}")
