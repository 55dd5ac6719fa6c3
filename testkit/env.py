"""The environment a test or benchmark hands on: never the developer's real Kraken configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["OUR_PREFIXES", "ROOT", "clean_environ", "is_ours", "subprocess_environ"]

#: the repository root (``testkit/`` lives directly under it)
ROOT = Path(__file__).resolve().parents[1]
#: variables that configure krakenwatch or Streamlit: a test sets its own, never inherits them
OUR_PREFIXES = ("KRAKEN_", "KRAKENWATCH_", "STREAMLIT_")


def is_ours(name: str) -> bool:
    """Whether ``name`` configures krakenwatch (or Streamlit) and must not leak into a test."""
    return name.startswith(OUR_PREFIXES)


def clean_environ(
    extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default ``os.environ``) without our variables, plus ``extra``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not is_ours(k)}
    env.update(extra or {})
    return env


def subprocess_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a child Python that can import every package of the repository."""
    env = clean_environ()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONSTARTUP", None)
    env.update(extra or {})
    return env
