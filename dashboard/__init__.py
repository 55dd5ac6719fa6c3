"""dashboard: the krakenwatch monitor, metrics, checklist and Streamlit app built on broker."""

from importlib.metadata import PackageNotFoundError, version

try:
    #: the installed distribution's version (pyproject.toml is the one place it is written)
    __version__ = version("krakenwatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
