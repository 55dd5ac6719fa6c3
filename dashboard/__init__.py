"""dashboard: the krakenwatch monitor, checklist, exporter, history and Streamlit app on broker.

Each subsystem is a folder with a map of its modules in its ``__init__``; the imports run down
this table (a part imports only parts below it, never one above):

==============  ===========================================================================
part            concern
==============  ===========================================================================
``cli``         ``krakenwatch``: the command line, each command handed to the part running it
``app``         the launcher for ``streamlit run dashboard/app.py``
``ui``          the Streamlit pages (thin scripts run by the web app, reading its service)
``web``         the running product: the service wired once, the Streamlit app, the routes
``views``       the pages' data and charts (no Streamlit calls)
``exporter``    the Prometheus registry: counters from events, gauges from the snapshot
``deploys``     deploy markers: the checklist counted from the latest one, and its verdict
``checks``      the post-deploy checklist and ``krakenwatch check``
``history``     the event history and the deploys (SQLite), and the bot-log watcher
``monitor``     every account connected and polled, the clock sampled, events made
``config``      the settings, read once from the environment and the env file
``logpatterns`` the bot-log patterns (the defaults and the operator's file)
``errors``      the dashboard's own exceptions
==============  ===========================================================================

``docs/architecture.md`` draws what flows where.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``: the installed distribution's version (pyproject.toml is the one place it
    is written), looked up on first use: reading package metadata adds about 15 ms to every
    start of a one-shot ``check``."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("krakenwatch")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
