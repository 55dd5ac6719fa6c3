"""dashboard: the krakenwatch monitor, metrics, checklist and Streamlit app built on broker."""

__version__ = "0.1.0"
