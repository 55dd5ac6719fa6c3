"""The dashboard's routes (``/metrics``, ``/api/verify``, health) without the Streamlit pages,
served in a background thread: tests of the exporter need no browser and no Streamlit server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dashboard.config import load_settings
from dashboard.web.routes import headless_app
from dashboard.web.service import Service
from gateway.server import ServerThread

__all__ = ["headless_server", "serving"]


def headless_server(service: Service, host: str = "127.0.0.1", port: int = 0) -> ServerThread:
    """The server of :func:`~dashboard.web.routes.headless_app` for ``service``, bound at once
    (its URL is known before :meth:`~gateway.server.ServerThread.start`), the service not
    started (the test starts it when it wants the monitor running)."""
    return ServerThread(headless_app(service), (host, port), name="kw-headless", lifespan="off")


@contextmanager
def serving(
    env: dict[str, str], data_dir: Path, *, start: bool = True, **extra: str
) -> Iterator[tuple[Service, str]]:
    """The service for ``env`` (polling every second unless ``env`` says otherwise; ``extra``
    variables last), its data in ``data_dir``, started unless ``start`` is false, and the URL of
    its routes; both stopped after the block."""
    settings = load_settings(
        {"KRAKENWATCH_POLL_INTERVAL": "1", **env, "KRAKENWATCH_DATA_DIR": str(data_dir), **extra},
        use_dotenv=False,
    )
    service = Service.create(settings)
    server = headless_server(service).start()
    if start:
        service.start()
    try:
        yield service, server.url
    finally:
        server.stop()
        service.stop()
