"""Launcher: ``streamlit run dashboard/app.py`` or ``python -m dashboard.app`` (``krakenwatch up``
does the same with its own options)."""

from dashboard.runtime import build_app

app = build_app()

if __name__ == "__main__":
    app.run()
