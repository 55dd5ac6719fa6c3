"""dashboard: the krakenwatch monitor, metrics, checklist and Streamlit app built on broker."""

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
