"""The Streamlit pages (thin scripts; data and charts live in dashboard.views)."""
