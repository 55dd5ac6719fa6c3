"""Re-reading the client file while the gateway serves: when it changes (checked every
``reload_interval_s``), and at once on SIGHUP when the gateway serves from the main thread.

A reload that fails keeps the previous credentials (:meth:`~gateway.credentials.Credentials.reload`
reports it); nothing a reload does stops the watching, or the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading

from .credentials import Credentials

__all__ = ["ClientFileReloader"]

log = logging.getLogger("krakenwatch.gateway")


class ClientFileReloader:
    """Keeps ``credentials`` in step with their file while started."""

    def __init__(self, credentials: Credentials, interval_s: float):
        self.credentials = credentials
        self.interval_s = interval_s
        self._watch: asyncio.Task[None] | None = None
        self._sighup_loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch the file from ``loop`` (the running loop); take SIGHUP from the main thread."""
        self._watch = loop.create_task(self._watch_file())
        if threading.current_thread() is threading.main_thread():
            loop.add_signal_handler(signal.SIGHUP, self.credentials.reload)
            self._sighup_loop = loop

    async def stop(self) -> None:
        """Stop watching, and give SIGHUP back."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._sighup_loop is not None:
            self._sighup_loop.remove_signal_handler(signal.SIGHUP)
            self._sighup_loop = None

    async def _watch_file(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)  # the file offers no event to wait on
            try:
                self.credentials.reload_if_changed()
            except Exception:  # never let a reload stop the watching, or the gateway
                log.exception("reloading the client credentials failed; the previous ones stay")
