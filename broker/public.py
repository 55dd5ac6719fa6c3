"""``PublicClient``: Kraken's public endpoints (``GET /0/public/<Method>``) with no key, no secret
and no nonce store.

For what needs no account: Kraken's clock, its system status, market data. There is nothing to
configure but where Kraken is and how long to wait: ``base_url`` (else ``$KRAKEN_API_URL``, else
Kraken's own, refused when malformed exactly as :class:`~broker.client.KrakenClient` refuses it)
and ``timeout`` (seconds or a ``(connect, read)`` pair, never unlimited). No credential, nonce or
data-directory setting is read, so it cannot fail on one.

A public call goes through the same code as a :class:`~broker.client.KrakenClient`'s
(:mod:`broker.calls`): the same session (the environment's proxies and CA bundle), the same
classification of failures (:class:`~broker.errors.KrakenConnectionError` when nothing was sent,
:class:`~broker.errors.OutcomeUnknownError` when it was sent and no answer came), the same errors
for HTTP error pages, malformed answers and Kraken's error codes, and the same ``on_call`` report
to an observer (``private`` false, no key id)::

    public = PublicClient(timeout=5.0)
    public.server_time()                       # 1767225600 (Kraken's clock, whole seconds)
    public.system_status()                     # "online"
    public.ticker(["XXBTZUSD"])["XXBTZUSD"]    # Kraken's ticker fields for the pair
    public.call_public("Assets")               # any public method: its ``result``
    public.query_public("Time")                # krakenex's contract: the whole document
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import requests

from .answers import Outcome
from .calls import public_call
from .errors import ResponseFormatError
from .observer import Observer
from .paths import api_url_default, parse_api_url
from .transport import EnvCachingSession, Timeout, close_in_forked_child, parse_timeout

__all__ = ["API_VERSION", "USER_AGENT", "PublicClient", "unixtime"]

#: the path segment of Kraken's REST API version (``/0/public/Time``)
API_VERSION = "0"
USER_AGENT = "krakenwatch-broker (PublicClient)"


def unixtime(result: Any, *, account: str | None = None) -> int:
    """Kraken's clock from a ``Time`` result: whole seconds (``unixtime``); a
    :class:`~broker.errors.ResponseFormatError` when it is missing or not an integer."""
    value = result.get("unixtime") if isinstance(result, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ResponseFormatError(
            "Time: 'unixtime' is missing or not an integer", account=account, method="Time"
        )
    return value


class PublicClient:
    """Kraken's public REST endpoints. See the module docstring."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: Timeout = 10.0,
        account: str = "public",
        observer: Observer | None = None,
    ):
        #: the label calls are reported and errors raised under (no account is used)
        self.account = account
        self.timeout = parse_timeout(timeout)
        self.observer = observer
        # read now, never at import; a bad URL, given or from $KRAKEN_API_URL, is refused here
        self.base_url = parse_api_url(base_url) if base_url else api_url_default()
        self.session: requests.Session = EnvCachingSession()
        self.session.headers["User-Agent"] = USER_AGENT
        self._json_options: dict[str, Any] = {}
        close_in_forked_child(self)

    def __repr__(self) -> str:
        return f"PublicClient(account={self.account!r}, base_url={self.base_url!r})"

    def __enter__(self) -> PublicClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()

    def json_options(self, **kwargs: Any) -> None:
        """Keyword arguments for ``json.loads`` of every answer (e.g. ``parse_float=Decimal``), as
        krakenex's ``json_options``."""
        self._json_options = kwargs

    # -- any public method ------------------------------------------------------------------------

    def query_public(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: Timeout | None = None
    ) -> Any:
        """krakenex's contract: Kraken's whole document (its errors in the ``error`` list);
        ``requests`` exceptions for transport and HTTP trouble."""
        return self._get(method, data, timeout).krakenex_value([], self._json_options)

    def call_public(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: Timeout | None = None
    ) -> Any:
        """The ``result`` of public ``method``, or a :class:`~broker.errors.KrakenError`."""
        return self._get(method, data, timeout).result()

    # -- the common ones --------------------------------------------------------------------------

    def server_time(self, timeout: Timeout | None = None) -> int:
        """Kraken's clock, in whole Unix seconds (``Time``). For the skew of the local clock use
        :func:`broker.skew.estimate_clock_skew` with this client."""
        return unixtime(self.call_public("Time", timeout=timeout), account=self.account)

    def system_status(self, timeout: Timeout | None = None) -> str:
        """Kraken's trading status (``SystemStatus``): ``online``, ``maintenance``,
        ``cancel_only`` or ``post_only``."""
        result = self.call_public("SystemStatus", timeout=timeout)
        status = result.get("status") if isinstance(result, dict) else None
        if not isinstance(status, str) or not status:
            raise ResponseFormatError(
                "SystemStatus: 'status' is missing or not a string",
                account=self.account,
                method="SystemStatus",
            )
        return status

    def ticker(self, pairs: str | Iterable[str], timeout: Timeout | None = None) -> dict[str, Any]:
        """``Ticker`` for ``pairs`` (one request): Kraken's fields by pair name, e.g. the last
        trade price of ``XXBTZUSD`` at ``["XXBTZUSD"]["c"][0]``."""
        return self._object("Ticker", {"pair": _pair_list(pairs)}, timeout)

    def asset_pairs(
        self, pairs: str | Iterable[str] | None = None, timeout: Timeout | None = None
    ) -> dict[str, Any]:
        """``AssetPairs``: every tradable pair by name, or only ``pairs``."""
        data = {} if pairs is None else {"pair": _pair_list(pairs)}
        return self._object("AssetPairs", data, timeout)

    # -- internals --------------------------------------------------------------------------------

    def _get(self, method: str, data: Mapping[str, Any] | None, timeout: Timeout | None) -> Outcome:
        return public_call(
            self.session,
            self.base_url,
            method,
            data,
            apiversion=API_VERSION,
            account=self.account,
            timeout=self.timeout if timeout is None else parse_timeout(timeout),
            json_options=self._json_options,
            observer=self.observer,
        )

    def _object(
        self, method: str, data: Mapping[str, Any], timeout: Timeout | None
    ) -> dict[str, Any]:
        result = self.call_public(method, data, timeout)
        if not isinstance(result, dict):
            raise ResponseFormatError(
                f"{method}: the result is a {type(result).__name__}, not an object",
                account=self.account,
                method=method,
            )
        return result


def _pair_list(pairs: str | Iterable[str]) -> str:
    """Kraken's comma-separated pair list; a ``ValueError`` for none."""
    names = [pairs] if isinstance(pairs, str) else list(pairs)
    text = ",".join(name.strip() for name in names if name.strip())
    if not text:
        raise ValueError("name at least one pair")
    return text
