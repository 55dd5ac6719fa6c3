"""The one-process app: Streamlit pages + ``/metrics`` + ``/api/verify`` + the monitor.

:func:`build_app` returns an ``st.App`` whose lifespan starts the service's monitor when the server
starts, with no browser connected, and stops it when the server stops. The pages (which run in the
same process) reach the service through :func:`current_service`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import views
from dashboard.config import load_settings
from dashboard.web.routes import create_routes
from dashboard.web.service import Service
from dashboard.web.sockets import no_delay_on_listening_sockets

__all__ = [
    "PAGES",
    "build_app",
    "current_service",
    "freeze_start_up",
    "make_lifespan",
    "set_service",
]

log = logging.getLogger(__name__)
PAGES = Path(__file__).parent.parent / "ui" / "main.py"

_service: Service | None = None


def current_service() -> Service | None:
    """The running service of this process (``None`` before the lifespan has started it)."""
    return _service


def set_service(service: Service | None) -> None:
    """Install the service the pages show (the lifespan does this; tests do it for AppTest)."""
    global _service
    _service = service


def make_lifespan(
    service: Service | None = None, on_start: Callable[[], object] | None = None
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[dict[str, Any]]]:
    """The lifespan: start ``service`` when the server starts, show it to the pages, stop it after.

    Without a service (``streamlit run dashboard/app.py``), it is built from
    :func:`~dashboard.config.load_settings` when the server starts. ``on_start`` is called once the
    service runs (the server's socket is bound by then; it accepts connections right after).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        running = service if service is not None else Service.create(load_settings())
        running.start()
        set_service(running)
        log.info("krakenwatch monitor started for %d account(s)", len(running.settings.accounts))
        # the server's socket is bound and listening by now (see dashboard.web.sockets)
        no_delay_on_listening_sockets()
        freeze_start_up()
        if on_start is not None:
            on_start()
        try:
            yield {"service": running}
        finally:
            set_service(None)
            running.stop()

    return lifespan


def freeze_start_up() -> None:
    """Load what the pages will need, then move everything loaded so far out of the garbage
    collector's way: it lives as long as the process, and the collector's full passes over it
    (Streamlit, pandas, Altair: 30-75 ms each, with 200 accounts) otherwise land in the middle of
    scrapes. A collection runs first, so no garbage is frozen; what is frozen is never collected,
    which suits modules and the service; everything made later is collected as usual."""
    for module in pkgutil.iter_modules(views.__path__, f"{views.__name__}."):
        importlib.import_module(module.name)
    gc.collect()
    gc.freeze()


def build_app(service: Service, on_start: Callable[[], object] | None = None) -> st.App:
    """The ``st.App`` serving ``service``; its monitor starts only when the server starts (then
    ``on_start`` is called)."""
    return st.App(
        str(PAGES),
        routes=create_routes(current_service),
        lifespan=make_lifespan(service, on_start),
    )
