"""The optional bot-log watcher: follows the bot's log file like ``tail -F`` and turns matching
lines into ``log_match`` events for the checklist's bot-side items.

It starts at the end of the file (or its start), reads complete lines only, follows rotation (the
path now names a new file: the old one is read to its end first) and truncation, and waits for a
missing file to appear. :meth:`LogWatcher.poll` does one read step, so tests need no threads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from dashboard.history.redact import Redactor
from dashboard.logpatterns import LogPattern
from dashboard.monitor.events import LOG_MATCH, Event

__all__ = ["LogWatcher", "WatchStats"]

_log = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024  # longer lines are cut here (the rest is skipped up to the newline)
DETAIL_CHARS = 300
_CHUNK = 64 * 1024
_READ_BUDGET = 8 * 1024 * 1024  # bytes per poll, so a huge backlog cannot stall stop()


@dataclass
class WatchStats:
    lines: int = 0
    matches: dict[str, int] = field(default_factory=dict)
    rotations: int = 0
    truncations: int = 0
    long_lines: int = 0  # lines cut at MAX_LINE_BYTES
    callback_errors: int = 0


class LogWatcher:
    """Follows ``path``; every line matching a pattern becomes a ``log_match`` event, returned by
    :meth:`poll` and passed to ``on_event`` (one event per matching pattern)."""

    def __init__(
        self,
        path: Path | str,
        patterns: Sequence[LogPattern],
        on_event: Callable[[Event], None],
        *,
        from_start: bool = False,
        poll_interval: float = 0.5,
        redact: Iterable[str] = (),
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.path = Path(path)
        self.patterns = tuple(patterns)
        self.on_event = on_event
        self.poll_interval = poll_interval
        self.max_line_bytes = max_line_bytes
        self._redactor = Redactor(redact)
        self._stats = WatchStats(matches={p.name: 0 for p in self.patterns})
        self._fh: BinaryIO | None = None
        self._ident: tuple[int, int] | None = None
        self._pos = 0
        self._buf = bytearray()
        self._cut = False  # the line in _buf was cut at max_line_bytes
        self._lock = threading.RLock()  # on_event may read .stats
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        # where to resume in the file that is there now: its end, unless from_start
        self._resume: tuple[tuple[int, int], int] | None = None
        if not from_start:
            try:
                st = self.path.stat()
                self._resume = ((st.st_dev, st.st_ino), st.st_size)
            except OSError:
                pass  # a file that appears later is read from its start

    @property
    def stats(self) -> WatchStats:
        with self._lock:
            return replace(self._stats, matches=dict(self._stats.matches))

    # -- the read step ----------------------------------------------------------------------

    def poll(self) -> list[Event]:
        """Read what was appended since the last call; the events (also sent to ``on_event``)."""
        out: list[Event] = []
        with self._lock:
            if self._fh is None and not self._open():
                return out
            self._check_truncation()
            if not self._read(out, budget=_READ_BUDGET):
                return out  # more to read: the next poll continues
            try:
                st = self.path.stat()
            except OSError:
                return out  # renamed away, the new file not there yet: keep the old one
            if (st.st_dev, st.st_ino) != self._ident:  # rotated: finish the old file first
                self._read(out, budget=None)
                if self._buf or self._cut:
                    self._end_line(out)
                self._close(resume=False)
                self._stats.rotations += 1
                if self._open():
                    self._read(out, budget=_READ_BUDGET)
        return out

    def _open(self) -> bool:
        try:
            fh = open(self.path, "rb", buffering=0)  # noqa: SIM115 (kept open across polls)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError) and str(exc) != self._last_error:
                _log.warning("cannot open the bot log %s: %s", self.path, exc)
            self._last_error = str(exc)
            return False
        self._last_error = None
        st = os.fstat(fh.fileno())
        self._ident, self._pos = (st.st_dev, st.st_ino), 0
        if self._resume is not None:
            ident, pos = self._resume
            if ident == self._ident and st.st_size >= pos:
                self._pos = pos
            self._resume = None
        fh.seek(self._pos)
        self._fh = fh
        return True

    def _close(self, *, resume: bool) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            if resume and self._ident is not None:
                self._resume = (self._ident, self._pos)

    def _check_truncation(self) -> None:
        assert self._fh is not None
        if os.fstat(self._fh.fileno()).st_size < self._pos:
            self._stats.truncations += 1
            self._fh.seek(0)
            self._pos = 0
            self._buf.clear()
            self._cut = False

    def _read(self, out: list[Event], *, budget: int | None) -> bool:
        """Read up to ``budget`` bytes (None: to the end); True when the end was reached."""
        assert self._fh is not None
        left = budget
        while left is None or left > 0:
            chunk = self._fh.read(_CHUNK)
            if not chunk:
                return True
            self._pos += len(chunk)
            if left is not None:
                left -= len(chunk)
            start = 0
            while (newline := chunk.find(b"\n", start)) >= 0:
                self._keep(chunk[start:newline])
                self._end_line(out)
                start = newline + 1
            self._keep(chunk[start:])
        return False

    def _keep(self, piece: bytes) -> None:
        room = self.max_line_bytes - len(self._buf)
        if len(piece) > room:
            self._cut = True
            piece = piece[: max(room, 0)]
        self._buf += piece

    def _end_line(self, out: list[Event]) -> None:
        raw = bytes(self._buf)
        self._buf.clear()
        self._stats.lines += 1
        if self._cut:
            self._stats.long_lines += 1
            self._cut = False
        self._match(raw.decode("utf-8", errors="replace").rstrip("\r\n"), out)

    # -- matching ---------------------------------------------------------------------------

    def _match(self, line: str, out: list[Event]) -> None:
        line = self._redactor.text(line).strip()
        if not line:
            return
        trimmed = _trim(line)
        for pattern in self.patterns:
            found = pattern.compiled.search(line)
            if found is None:
                continue
            groups = {k: None if v is None else _trim(v) for k, v in found.groupdict().items()}
            key = pattern.account_key
            event = Event(
                kind=LOG_MATCH,
                account=groups.get(key) if key else None,
                detail=trimmed,
                data={"pattern": pattern.name, "line": trimmed, **groups},
            )
            self._stats.matches[pattern.name] = self._stats.matches.get(pattern.name, 0) + 1
            out.append(event)
            try:
                self.on_event(event)
            except Exception:
                self._stats.callback_errors += 1
                _log.exception("the log watcher's on_event callback failed")

    def drain(self, rounds: int = 64) -> None:
        """Read everything appended so far now (a deploy marker wants the lines written before
        it stamped before it), in at most ``rounds`` polls of the read budget each."""
        for _ in range(rounds):
            before = self.stats.lines
            self.poll()
            if self.stats.lines == before:  # nothing more to read
                return

    # -- the background thread --------------------------------------------------------------

    def start(self) -> LogWatcher:
        """Poll every ``poll_interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"logwatch:{self.path.name}", daemon=True
        )
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                _log.exception("reading the bot log %s failed", self.path)
            self._stop.wait(self.poll_interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (joined) and close the file; a later start/poll resumes where it was."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            self._close(resume=True)


def _trim(text: str, limit: int = DETAIL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
