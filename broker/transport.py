"""HTTP plumbing of the client: the session, timeouts, and what a failed request means.

* :class:`EnvCachingSession` is a ``requests.Session`` that behaves exactly like one (proxies and
  ``verify`` set on the session by the caller, ``trust_env``, the environment's proxies and CA
  bundle, merged as requests merges them) but works out the environment's proxies once per host
  and process (while the proxy variables stay the same) instead of on every request: requests
  scans every environment variable each time, which with many accounts configured by
  environment is a large share of a request's CPU.
* A failed request is classified by whether it can have reached Kraken: :func:`transport_error`.
* Exceptions handed to callers never carry the API key or secret: :func:`scrubbed`.
* A forked child closes its copies of the parent's pooled connections (sockets it shares with the
  parent) for every client registered with :func:`close_in_forked_child`.
"""

from __future__ import annotations

import copy
import math
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies
from urllib3.exceptions import ConnectTimeoutError

from .errors import (
    ConfigurationError,
    ConnectionLostError,
    KrakenConnectionError,
    KrakenTimeout,
    TransportError,
)

__all__ = [
    "EnvCachingSession",
    "Timeout",
    "close_in_forked_child",
    "describe_timeout",
    "environ_proxies",
    "parse_timeout",
    "read_timeout",
    "scrubbed",
    "transport_error",
]

#: seconds, or ``(connect, read)`` seconds, as requests takes them
Timeout = float | tuple[float, float]
#: requests' own rule for a request-level setting over a session-level one (untyped upstream)
_merge: Callable[[Any, Any], Any] = merge_setting


def parse_timeout(value: Any, *, what: str = "timeout") -> Timeout:
    """A positive number of seconds or a ``(connect, read)`` pair of them; never unlimited."""

    def seconds(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise ConfigurationError(
                f"{what} must be a positive number of seconds or a (connect, read) pair of them, "
                f"not {value!r}"
            )
        return float(v)

    if isinstance(value, tuple | list) and len(value) == 2:
        return seconds(value[0]), seconds(value[1])
    return seconds(value)


def read_timeout(timeout: Timeout) -> float:
    """How long a sent request may wait for its answer."""
    return timeout[1] if isinstance(timeout, tuple) else timeout


def describe_timeout(timeout: Timeout) -> str:
    if isinstance(timeout, tuple):
        return f"{timeout[0]:g} s to connect and {timeout[1]:g} s to answer"
    return f"{timeout:g} s"


#: the environment variables requests' proxy lookup for a URL reads, in the spellings programs
#: use (a change of any of them is noticed at the next request; see :func:`environ_proxies`)
_PROXY_VARIABLES = (
    *(
        spelling
        for name in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy")
        for spelling in (name, name.upper())
    ),
    "REQUEST_METHOD",
)
_environment_lock = threading.Lock()
_environment_proxies: dict[tuple[Any, ...], dict[str, str]] = {}


#: ``os.environ``'s own table (encoded names and values, kept in step with every change made
#: through ``os.environ``), read directly: the fingerprint is taken on every forwarded call
_ENVIRON_TABLE: dict[Any, Any] | None = (
    getattr(os.environ, "_data", None) if os.name == "posix" else None
)
_ENCODED_VARIABLES = tuple(os.fsencode(name) for name in _PROXY_VARIABLES)


def _fingerprint() -> tuple[Any, ...]:
    if _ENVIRON_TABLE is not None:
        return tuple(map(_ENVIRON_TABLE.get, _ENCODED_VARIABLES))
    return tuple(os.environ.get(name) for name in _PROXY_VARIABLES)


def environ_proxies(url: str, no_proxy: str | None) -> dict[str, str]:
    """requests' ``get_environ_proxies(url)``, shared by every session of the process and worked
    out again when one of :data:`_PROXY_VARIABLES` changes. Not noticed until the process
    restarts: a change of an oddly spelled variable (``Https_Proxy``) that requests would also
    read, or of the system proxy settings on macOS and Windows."""
    parts = urlsplit(url)
    key = (_fingerprint(), parts.scheme, parts.netloc, no_proxy)
    with _environment_lock:
        found = _environment_proxies.get(key)
        if found is not None:
            return found
        # under the lock: our own lookups (requests sets no_proxy in os.environ for the length
        # of one) never overlap, and an answer is kept only if the environment held still
        found = dict(get_environ_proxies(url, no_proxy=no_proxy))
        if _fingerprint() == key[0]:
            if len(_environment_proxies) >= 1024:  # the environment keeps changing: start over
                _environment_proxies.clear()
            _environment_proxies[key] = found
        return found


class EnvCachingSession(requests.Session):
    """``requests.Session`` with the environment's proxies looked up once per host (see the module
    docstring)."""

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        # the same steps as requests.Session.merge_environment_settings, with the proxy lookup
        # answered from the process-wide cache (the CA bundle is read each time, as requests does)
        if self.trust_env:
            no_proxy = proxies.get("no_proxy") if proxies is not None else None
            if proxies is not None:
                text = url.decode() if isinstance(url, bytes) else str(url)
                for name, value in environ_proxies(text, no_proxy).items():
                    proxies.setdefault(name, value)
            if verify is True or verify is None:
                verify = (
                    os.environ.get("REQUESTS_CA_BUNDLE")
                    or os.environ.get("CURL_CA_BUNDLE")
                    or verify
                )
        return {
            "proxies": _merge(proxies, self.proxies),
            "stream": _merge(stream, self.stream),
            "verify": _merge(verify, self.verify),
            "cert": _merge(cert, self.cert),
        }


def _reason(exc: BaseException) -> BaseException:
    """The innermost cause requests wrapped (urllib3's ``MaxRetryError.reason`` and the like)."""
    inner: BaseException = (
        exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    )
    reason = getattr(inner, "reason", None)
    return reason if isinstance(reason, BaseException) else inner


def _nothing_sent(exc: requests.RequestException) -> bool:
    if isinstance(
        exc,
        requests.ConnectTimeout
        | requests.exceptions.SSLError
        | requests.exceptions.ProxyError
        | requests.exceptions.InvalidURL
        | requests.exceptions.InvalidSchema
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidHeader,
    ):
        return True
    # refused, unreachable, name not resolved: urllib3 raises these before a byte is written
    return isinstance(exc, requests.ConnectionError) and isinstance(
        _reason(exc), ConnectTimeoutError
    )


def transport_error(
    exc: requests.RequestException, *, timeout: Timeout, account: str | None, method: str | None
) -> TransportError:
    """What a request that got no HTTP answer means for its caller (never a secret)."""
    where = {"account": account, "method": method}
    cause = type(_reason(exc)).__name__
    if _nothing_sent(exc):
        return KrakenConnectionError(f"could not connect ({cause}); nothing was sent", **where)
    if isinstance(exc, requests.Timeout):
        return KrakenTimeout(
            f"no answer within {describe_timeout(timeout)}; the request may have reached Kraken",
            **where,
        )
    return ConnectionLostError(
        f"the connection broke after sending ({cause}); the request may have reached Kraken",
        **where,
    )


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def scrubbed(exc: requests.RequestException, secrets: Iterable[str]) -> requests.RequestException:
    """A copy of a requests exception that is safe to raise: same type and message with every
    secret replaced, no ``request`` (its headers hold the key and the signature), a ``response``
    without its request, and no chained cause."""
    response = exc.response
    if response is not None:
        response = copy.copy(response)
        response.request = None  # type: ignore[assignment]
    clean = type(exc)(_redact(str(exc), list(secrets)), response=response)
    clean.request = None
    clean.__cause__ = None
    clean.__suppress_context__ = True
    return clean


class _Closable(Protocol):
    def close(self) -> None: ...


_clients: weakref.WeakSet[_Closable] = weakref.WeakSet()


def close_in_forked_child(client: _Closable) -> None:
    """Have ``client`` closed in a forked child: its pooled connections are sockets shared with
    the parent, so the child drops its copies (the parent's stay open) and talks on its own."""
    _clients.add(client)


def _drop_inherited_connections() -> None:
    for client in list(_clients):
        client.close()


os.register_at_fork(after_in_child=_drop_inherited_connections)
