"""Settings & about: the accounts, every variable the settings were built from (keys masked,
secrets never shown), the endpoints, a Prometheus snippet."""

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
        [(a.label, a.masked_key, a.nonce_unit, a.tier or settings.tier) for a in settings.accounts],
        columns=["account", "key (masked)", "nonce unit", "tier"],
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

st.subheader("Variables")
st.dataframe(
    pd.DataFrame(settings.variables(), columns=["variable", "value"]),
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
