"""The dashboard's own exceptions.

::

    DashboardError
    ├── StoreError          the event database cannot be opened or used (names the file)
    └── LogPatternError     a bot-log pattern, or the pattern file, is invalid (names the file,
                            the pattern and the field; also a ``ValueError``)

Everything about a Kraken request (transport, Kraken's answers, an account's configuration) is
:class:`broker.KrakenError`'s tree and stays there. These two are not about Kraken: they describe
the dashboard's SQLite file and the bot's log patterns, which ``broker`` knows nothing of, so they
have their own small root instead of joining ``KrakenError``.
"""

from __future__ import annotations

__all__ = ["DashboardError", "LogPatternError", "StoreError"]


class DashboardError(Exception):
    """Root of the dashboard's own errors; the message names the file or setting at fault."""


class StoreError(DashboardError):
    """The event store cannot be opened or used; the message names the database file."""


class LogPatternError(DashboardError, ValueError):
    """A log pattern (or a pattern file) is invalid; the message names the pattern / file + field."""
