"""Helpers shared by every test folder (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from bench.upkit import CHROMIUM, CHROMIUM_ARGS, free_port, stop_group  # one definition each

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "eventually", "free_port", "http_get", "stop_group"]

T = TypeVar("T")


def http_get(
    url: str, timeout: float = 10.0, headers: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, also for 4xx/5xx answers."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return (
                response.status,
                response.headers.get("Content-Type", ""),
                response.read().decode(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def eventually(probe: Callable[[], T], timeout: float = 30.0, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy (the awaited event), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(interval)
