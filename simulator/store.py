"""The simulator's persistent nonce state: one JSON file, rewritten atomically (temp + replace).

Keys are stored under a SHA-256 of the public key, never the key itself. Entries of keys that are
not in the current scenario are kept. A damaged file is an error, never a silent reset (a reset
would lower a nonce, which real Kraken never does).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["NonceStore", "StateFileError"]

_VERSION = 1


class StateFileError(ValueError):
    """The state file cannot be read or written (outside :mod:`broker.errors` for the same
    reason as :class:`~simulator.scenario.ScenarioError`)."""


class NonceStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._entries: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StateFileError(f"{self.path}: cannot read the state file ({exc})") from None
        try:
            data = json.loads(text)
            keys = data["keys"]
            entries: dict[str, dict[str, Any]] = {}
            for kid, entry in keys.items():
                last = entry["last_nonce"]
                recent = entry.get("recent", [])
                if (
                    not isinstance(last, int)
                    or isinstance(last, bool)
                    or not all(isinstance(n, int) for n in recent)
                ):
                    raise TypeError(kid)
                entries[str(kid)] = {"last_nonce": last, "recent": list(recent)}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StateFileError(
                f"{self.path}: not a simulator state file (fix or remove it; "
                "removing it forgets every accepted nonce)"
            ) from None
        return entries

    def get(self, kid: str) -> tuple[int, list[int]]:
        entry = self._entries.get(kid)
        if entry is None:
            return 0, []
        return int(entry["last_nonce"]), list(entry["recent"])

    def put(self, kid: str, last_nonce: int, recent: list[int]) -> None:
        self._entries[kid] = {"last_nonce": last_nonce, "recent": recent}
        self.save()

    def save(self) -> None:
        document = {"version": _VERSION, "keys": self._entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(document, fh, separators=(",", ":"), sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
