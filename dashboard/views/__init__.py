"""Data shaping and charts for the pages (importable, unit-tested; no Streamlit calls here)."""
