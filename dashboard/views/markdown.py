"""Text for ``st.markdown``: our strings shown as written, and tables whose cells wrap.

A markdown table (unlike ``st.dataframe``'s canvas) wraps long cells, so nothing is cut off at the
width of the table, and renders Streamlit's ``:material/...:`` icons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["escape", "table"]

#: ``|`` ends a table cell, ``$...$`` is LaTeX in Streamlit, ``<NAME>`` would be taken for HTML
_SPECIAL = re.compile(r"([|$<>\\])")


def escape(text: str) -> str:
    """``text`` shown as written (money, variable patterns, Kraken's error codes), one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table; cells are markdown already (pass plain text through :func:`escape`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
