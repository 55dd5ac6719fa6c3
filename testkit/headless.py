"""The dashboard's routes (``/metrics``, ``/api/verify``, health) without the Streamlit pages,
served in a background thread: tests of the exporter need no browser and no Streamlit server."""

from __future__ import annotations

from dashboard.web.routes import headless_app
from dashboard.web.service import Service
from gateway.server import ServerThread

__all__ = ["headless_server"]


def headless_server(service: Service, host: str = "127.0.0.1", port: int = 0) -> ServerThread:
    """The server of :func:`~dashboard.web.routes.headless_app` for ``service``, bound at once
    (its URL is known before :meth:`~gateway.server.ServerThread.start`), the service not
    started (the test starts it when it wants the monitor running)."""
    return ServerThread(headless_app(service), (host, port), name="kw-headless", lifespan="off")
