"""Launcher: ``streamlit run dashboard/app.py`` (or ``python dashboard/app.py``).

``krakenwatch up`` serves the same app with its own options. The ``st.App(...)`` call stays
literal here: ``streamlit run`` finds the app by reading this file.
"""

import streamlit as st

from dashboard.web.routes import create_routes
from dashboard.web.streamlit_app import PAGES, current_service, make_lifespan

app = st.App(str(PAGES), routes=create_routes(current_service), lifespan=make_lifespan())

if __name__ == "__main__":
    app.run()
