"""Defense in depth: remove known secrets (API keys, secrets, the password) from text and data."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[redacted]"


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret that contains another one is removed whole
        self._secrets = sorted({s for s in secrets if s and s.strip()}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def clean(self, value: Any) -> Any:
        """``value`` as plain JSON types: secrets removed, non-finite floats as strings."""
        if isinstance(value, dict):
            return {self.text(str(k)): self.clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.clean(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool | int) or value is None:
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        return self.text(str(value))
