"""Optional protection of the dashboard and its HTTP routes with one shared password.

``KRAKENWATCH_PASSWORD`` guards the pages (a login form per browser session) and ``/metrics`` /
``/api/verify`` (HTTP Basic, any user name: Prometheus ``basic_auth``). Comparison is in constant
time. ``/_stcore/health`` stays open for liveness probes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["basic_auth_ok", "password_ok"]


def password_ok(given: str, expected: str) -> bool:
    """Constant-time comparison (of digests, so lengths leak nothing either)."""
    a = hashlib.sha256(given.encode("utf-8")).digest()
    b = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)


def basic_auth_ok(header: str | None, expected: str) -> bool:
    """Check an ``Authorization: Basic …`` header against the password (user name ignored)."""
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _, _, password = decoded.partition(":")
    return password_ok(password, expected)
