"""WebSocket session tokens, as ``GetWebSocketsToken`` issues them and the WebSocket server checks
them (Kraken's ws-auth rule, kraken-api.md "WebSocket v2 (private)").

A token is bound to the key that asked for it. It is valid while a subscription holds it, and for
``ttl_s`` seconds of the simulator's clock after it was issued or its last subscription ended
(unused that long: expired). :meth:`TokenBook.invalidate` revokes a key's tokens for good (the
``invalidate_sessions`` fault). Tokens are never logged or shown by the admin routes.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TokenBook"]


@dataclass
class _Token:
    key: str  # the public key (looked up in the simulator's state, never shown)
    fresh_since: float  # issued, or the end of its last subscription (simulator clock)
    holders: int = 0
    revoked: bool = False


class TokenBook:
    """The tokens the simulated Kraken knows. Thread-safe (its own lock, never held while calling
    out)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}

    def issue(self, key: str) -> str:
        """A fresh token for ``key``: 43 base64 characters, like Kraken's."""
        token = base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
        now = self._clock()
        with self._lock:
            self._prune(now)
            self._tokens[token] = _Token(key, now)
        return token

    def _valid(self, entry: _Token | None, now: float) -> bool:
        if entry is None or entry.revoked:
            return False
        return entry.holders > 0 or now - entry.fresh_since < self.ttl_s

    def key_of(self, token: str) -> str | None:
        """The key of a valid token, ``None`` for an unknown, expired or revoked one."""
        with self._lock:
            entry = self._tokens.get(token)
            return entry.key if entry is not None and self._valid(entry, self._clock()) else None

    def claim(self, token: str) -> str | None:
        """Hold a valid token for a subscription; its key, or ``None`` (then nothing is held)."""
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None or not self._valid(entry, self._clock()):
                return None
            entry.holders += 1
            return entry.key

    def release(self, token: str) -> None:
        """A subscription holding ``token`` ended: the token's ``ttl_s`` starts again."""
        with self._lock:
            entry = self._tokens.get(token)
            if entry is not None and entry.holders > 0:
                entry.holders -= 1
                if entry.holders == 0:
                    entry.fresh_since = self._clock()

    def invalidate(self, key: str | None = None) -> int:
        """Revoke every token of ``key`` (``None``: of every key); how many were valid."""
        now = self._clock()
        with self._lock:
            count = 0
            for entry in self._tokens.values():
                if key is None or entry.key == key:
                    count += self._valid(entry, now)
                    entry.revoked = True
            return count

    def _prune(self, now: float) -> None:
        if len(self._tokens) < 1024:
            return
        for token, entry in list(self._tokens.items()):
            if not self._valid(entry, now) and now - entry.fresh_since > 2 * self.ttl_s:
                del self._tokens[token]
