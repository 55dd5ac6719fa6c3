"""The one-process app: Streamlit pages + ``/metrics`` + ``/api/verify`` + the monitor.

:func:`build_app` returns an ``st.App`` whose lifespan starts the service's monitor when the server
starts, with no browser connected, and stops it when the server stops. The pages (which run in the
same process) reach the service through :func:`current_service`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import streamlit as st

from .config import load_settings
from .routes import create_routes
from .service import Service
from .sockets import no_delay_on_listening_sockets

__all__ = ["PAGES", "build_app", "current_service", "make_lifespan", "set_service"]

log = logging.getLogger(__name__)
PAGES = Path(__file__).with_name("ui") / "main.py"

_service: Service | None = None


def current_service() -> Service | None:
    """The running service of this process (``None`` before the lifespan has started it)."""
    return _service


def set_service(service: Service | None) -> None:
    """Install the service the pages show (the lifespan does this; tests do it for AppTest)."""
    global _service
    _service = service


def make_lifespan(
    service: Service | None = None,
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[dict[str, Any]]]:
    """The lifespan: start ``service`` when the server starts, show it to the pages, stop it after.

    Without a service (``streamlit run dashboard/app.py``), it is built from
    :func:`~dashboard.config.load_settings` when the server starts.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        running = service if service is not None else Service.create(load_settings())
        running.start()
        set_service(running)
        log.info("krakenwatch monitor started for %d account(s)", len(running.settings.accounts))
        # the server's socket is bound and listening by now (see dashboard.sockets)
        no_delay_on_listening_sockets()
        # what start-up loaded (Streamlit, pandas, ...) lives as long as the process: keep it out
        # of the collector's full passes, which otherwise run over it during scrapes
        gc.collect()
        gc.freeze()
        try:
            yield {"service": running}
        finally:
            set_service(None)
            running.stop()

    return lifespan


def build_app(service: Service) -> st.App:
    """The ``st.App`` serving ``service``; its monitor starts only when the server starts."""
    return st.App(
        str(PAGES), routes=create_routes(current_service), lifespan=make_lifespan(service)
    )
