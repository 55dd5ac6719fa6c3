"""The one-process app: Streamlit pages + ``/metrics`` + ``/api/verify`` + the monitor.

``build_app()`` returns an ``st.App`` whose lifespan builds the :class:`~dashboard.service.Service`
from the environment and starts the monitor when the server starts, with no browser connected.
The pages (which run in the same process) reach it through :func:`current_service`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import streamlit as st

from .config import Settings, load_settings
from .routes import create_routes
from .service import Service

__all__ = ["ENV_FILE_VARIABLE", "build_app", "current_service", "set_service"]

log = logging.getLogger(__name__)
ENV_FILE_VARIABLE = "KRAKENWATCH_ENV_FILE"
PAGES = Path(__file__).with_name("ui") / "main.py"

_service: Service | None = None


def current_service() -> Service | None:
    """The running service of this process (``None`` before the lifespan has started it)."""
    return _service


def set_service(service: Service | None) -> None:
    """Install the service the pages show (the lifespan does this; tests do it for AppTest)."""
    global _service
    _service = service


def settings_from_environment() -> Settings:
    """The default: the process environment over ``$KRAKENWATCH_ENV_FILE`` or ``./.env``."""
    return load_settings(env_file=os.environ.get(ENV_FILE_VARIABLE) or None)


def make_lifespan(
    settings_factory: Callable[[], Settings] = settings_from_environment,
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[dict[str, Any]]]:
    """The lifespan: build the service when the server starts, start the monitor, stop it after."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        service = Service.create(settings_factory())
        service.start()
        set_service(service)
        log.info("krakenwatch monitor started for %d account(s)", len(service.settings.accounts))
        try:
            yield {"service": service}
        finally:
            set_service(None)
            service.stop()

    return lifespan


def build_app(settings_factory: Callable[[], Settings] = settings_from_environment) -> st.App:
    """The ``st.App``; settings are built, and the monitor started, only when the server starts."""
    return st.App(
        str(PAGES), routes=create_routes(current_service), lifespan=make_lifespan(settings_factory)
    )
