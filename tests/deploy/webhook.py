"""A webhook receiver for Alertmanager: a small HTTP server on 127.0.0.1 that records every POST.

Alertmanager's webhook body (version 4): ``status`` ("firing"/"resolved"), ``groupLabels``,
``commonLabels``, ``commonAnnotations`` and ``alerts`` (each with ``status``, ``labels``,
``annotations``, ``startsAt``, ``endsAt``, ``fingerprint``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from testkit.net import eventually

__all__ = ["Notification", "WebhookReceiver", "notification_for", "webhook_receiver"]

Notification = dict[str, Any]


class WebhookReceiver:
    """Records the JSON documents POSTed to it, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Notification] = []
        self._errors: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    doc = json.loads(body)
                except ValueError:
                    receiver._record_error(f"{self.path}: not JSON: {body[:200]!r}")
                    self.send_response(400)
                else:
                    receiver._record(doc)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _record(self, doc: Notification) -> None:
        with self._lock:
            self._received.append(doc)

    def _record_error(self, error: str) -> None:
        with self._lock:
            self._errors.append(error)

    def count(self) -> int:
        with self._lock:
            return len(self._received)

    def received(self, since: int = 0) -> list[Notification]:
        """The notifications received so far (from index ``since``); fails on a malformed POST."""
        with self._lock:
            assert not self._errors, self._errors
            return list(self._received[since:])

    def wait_for(
        self,
        match: Callable[[Notification], bool],
        what: str,
        *,
        since: int = 0,
        timeout: float = 30,
        context: Callable[[], str] = str,
    ) -> Notification:
        """The first notification from index ``since`` on that ``match`` accepts."""

        def found() -> Notification | None:
            return next((n for n in self.received(since) if match(n)), None)

        def explain() -> str:
            summary = [
                (n["status"], n["groupLabels"], [a["status"] for a in n["alerts"]])
                for n in self.received(since)
            ]
            return f"received: {json.dumps(summary)}\n{context()}"

        return eventually(found, timeout, 0.1, what=what, on_timeout=explain)


def notification_for(status: str, alertname: str, **labels: str) -> Callable[[Notification], bool]:
    """A matcher: a notification of ``status`` with an alert named ``alertname`` and ``labels``."""

    def match(doc: Notification) -> bool:
        return doc["status"] == status and any(
            alert["labels"].get("alertname") == alertname
            and all(alert["labels"].get(k) == v for k, v in labels.items())
            for alert in doc["alerts"]
        )

    return match


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
