"""Public calls (``GET /0/public/<Method>``), passed through to Kraken.

The query string is forwarded as received and Kraken's answer comes back unchanged. Reference data
that changes rarely (``Assets``, ``AssetPairs``) is answered from a short cache when it was a
success; ``Time`` never is (bots measure their clock skew with it), nor is anything private.
No public call is counted against a key's budget: Kraken limits public calls per IP address.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import Executor

import requests

from broker.transport import EnvCachingSession, transport_error

from .answers import Reply, from_transport
from .methods import CACHEABLE_PUBLIC

__all__ = ["PublicProxy"]

_CACHE_ENTRIES = 128


def _outcome(response: requests.Response) -> tuple[str, tuple[str, ...]]:
    if response.status_code != 200:
        return "upstream_error", ()
    try:
        codes = tuple(str(c) for c in json.loads(response.content).get("error") or ())
    except (ValueError, AttributeError):
        return "upstream_error", ()
    return ("kraken_error" if any(not c.startswith("W") for c in codes) else "ok"), codes


class PublicProxy:
    def __init__(
        self,
        api_url: str,
        executor: Executor,
        *,
        timeout_s: float,
        cache_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self._executor = executor
        self._clock = clock
        self._session = EnvCachingSession()
        self._cache: dict[tuple[str, str], tuple[float, Reply]] = {}

    async def get(self, method: str, query: str) -> tuple[Reply, bool]:
        """Kraken's answer to ``GET /0/public/<method>?<query>``, and whether it came from cache."""
        key = (method, query)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1], True
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(self._executor, self._fetch, method, query)
        if method in CACHEABLE_PUBLIC and self.cache_s > 0 and reply.outcome == "ok":
            if len(self._cache) >= _CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = (self._clock() + self.cache_s, reply)
        return reply, False

    def close(self) -> None:
        self._session.close()

    def _fetch(self, method: str, query: str) -> Reply:
        url = f"{self.api_url}/0/public/{method}" + (f"?{query}" if query else "")
        try:
            response = self._session.get(url, timeout=self.timeout_s)
        except requests.RequestException as exc:
            error = transport_error(exc, timeout=self.timeout_s, account=None, method=method)
            return from_transport(error)
        outcome, codes = _outcome(response)
        content_type = response.headers.get("Content-Type", "")
        return Reply(
            response.status_code, response.content, content_type, outcome, codes, sent=True
        )
