"""``KrakenClient``: a thread- and process-safe drop-in for ``krakenex.API``.

Switching a bot is one line::

    api = krakenex.API(key, secret)          # before
    api = broker.KrakenClient(key, secret)   # after

``query_private`` / ``query_public`` keep krakenex's contract (they return the response dict with
Kraken's errors in its ``error`` list and raise ``requests`` exceptions for transport and HTTP
trouble). ``call_private`` / ``call_public`` return ``result`` or raise :mod:`broker.errors`.

Every private call generates its nonce, signs, sends and reads the answer while holding the key's
:class:`~broker.nonce.KeyChannel`, so no two requests of one key are ever in flight at once on this
host, and nonces reach Kraken in the order they were issued.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import krakenex
import requests

from .errors import (
    ConfigurationError,
    HTTPStatusError,
    InvalidNonceError,
    KrakenConnectionError,
    KrakenError,
    KrakenTimeout,
    ResponseFormatError,
    api_error_from_codes,
)
from .nonce import KeyChannel, NonceStatus, channel_for, parse_unit
from .observer import CallEvent, Observer, RefreshEvent, notify
from .paths import default_data_dir, nonce_store_dir
from .signing import InvalidSecretError, decode_secret, encode_private_request, mask_key

__all__ = ["KrakenClient", "mask_key"]

log = logging.getLogger(__name__)
_BODY_EXCERPT = 200


@dataclass
class _Outcome:
    """What one request produced: a parsed document, or why there is none."""

    doc: dict[str, Any] | None = None
    error: KrakenError | None = None
    transport: requests.RequestException | None = None
    response: requests.Response | None = None

    def krakenex_value(self) -> Any:
        """krakenex's contract: requests exceptions for transport/HTTP, else the JSON."""
        if self.transport is not None:
            raise self.transport
        assert self.response is not None
        if self.response.status_code not in (200, 201, 202):
            self.response.raise_for_status()
        return self.response.json()

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        assert self.doc is not None
        return self.doc.get("result", {})


class KrakenClient(krakenex.API):
    """A krakenex-compatible Kraken client with safe nonces. See the module docstring."""

    def __init__(
        self,
        key: str = "",
        secret: str = "",
        *,
        account: str = "MASTER",
        nonce_unit: str = "us",
        store_dir: str | Path | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
        observer: Observer | None = None,
    ):
        super().__init__(key, secret)
        if timeout is None or not float(timeout) > 0:
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, not {timeout!r}"
            )
        self.account = account
        self.nonce_unit = parse_unit(nonce_unit)
        self.timeout = float(timeout)
        self.observer = observer
        if base_url:
            self.uri = base_url.rstrip("/")
        self.store_dir = (
            Path(store_dir).expanduser() if store_dir else nonce_store_dir(default_data_dir())
        )
        self._ok_since_refresh = False
        self._cached_channel: tuple[str, Path, KeyChannel] | None = None
        # requests re-reads os.environ (proxies, CA bundle) on every request when trust_env is on,
        # which costs more CPU than the request itself in a big fleet; read it once per base URL
        self.session.trust_env = False
        self._env_settings: tuple[str, dict[str, str], bool | str] | None = None

    def __repr__(self) -> str:
        return (
            f"KrakenClient(account={self.account!r}, key={mask_key(self.key)!r}, uri={self.uri!r})"
        )

    # -- public surface ---------------------------------------------------------------------------

    def query_private(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """krakenex-compatible private call (never mutates ``data``)."""
        return self._private(method, data, timeout).krakenex_value()

    def query_public(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """krakenex-compatible public call, with the client's default timeout."""
        return self._public(method, data, timeout).krakenex_value()

    def call_private(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Private call returning ``result`` or raising a :class:`~broker.errors.KrakenError`."""
        return self._private(method, data, timeout).result()

    def call_public(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Public call returning ``result`` or raising a :class:`~broker.errors.KrakenError`."""
        return self._public(method, data, timeout).result()

    def refresh(self, reason: str = "connect") -> RefreshEvent:
        """Re-baseline the key's nonce to now (never backwards) and report it to the observer."""
        channel = self._channel()
        previous, baseline = channel.refresh(self.nonce_unit)
        self._ok_since_refresh = False
        status = channel.status(self.nonce_unit)
        event = RefreshEvent(
            account=self.account,
            key_id=channel.key_id,
            unit=self.nonce_unit,
            previous=previous,
            baseline=baseline,
            lead_seconds=status.lead_seconds,
            reason=reason,
        )
        log.debug("refreshed nonce baseline to %d for %s (%s)", baseline, self.account, reason)
        notify(self.observer, "on_refresh", event)
        return event

    def connect(self, method: str = "Balance", data: Mapping[str, Any] | None = None) -> Any:
        """The seed's connect flow, fixed: refresh, first private call; on ``EAPI:Invalid nonce``
        refresh and retry exactly once, then raise (looping on nonce errors leads to lockout).

        Use only a read-only or validate-only ``method``: it may be sent twice.
        """
        self.refresh("connect")
        try:
            return self.call_private(method, data)
        except InvalidNonceError:
            self.refresh("retry after invalid nonce")
            return self.call_private(method, data)

    def nonce_status(self) -> NonceStatus:
        """The key's high-water mark, unit and lead over the wall clock (a stranded key leads)."""
        return self._channel().status(self.nonce_unit)

    @property
    def key_id(self) -> str:
        return self._channel().key_id

    # -- internals --------------------------------------------------------------------------------

    def _channel(self) -> KeyChannel:
        if not self.key:
            raise ConfigurationError(
                f"no API key configured for {self.account}", account=self.account
            )
        cached = self._cached_channel
        if cached is None or cached[0] != self.key or cached[1] != self.store_dir:
            cached = (self.key, self.store_dir, channel_for(self.key, self.store_dir))
            self._cached_channel = cached
        return cached[2]

    def _environment(self) -> tuple[dict[str, str], bool | str]:
        """Proxies and CA bundle from the environment (as requests would), once per ``uri``."""
        settings = self._env_settings
        if settings is None or settings[0] != self.uri:
            proxies = requests.utils.get_environ_proxies(self.uri)
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
            settings = (self.uri, dict(proxies), verify)
            self._env_settings = settings
        return settings[1], settings[2]

    def _payload(self, method: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
        payload = dict(data or {})
        for name, value in payload.items():
            if isinstance(value, list | tuple | set | dict):
                raise ConfigurationError(
                    f"{method}: parameter {name!r} is a {type(value).__name__}; Kraken expects a "
                    "comma-separated string (krakenex signs lists wrongly)",
                    account=self.account,
                )
        payload.pop("nonce", None)
        return payload

    def _private(
        self, method: str, data: Mapping[str, Any] | None, timeout: float | None
    ) -> _Outcome:
        payload = self._payload(method, data)
        urlpath = f"/{self.apiversion}/private/{method}"
        try:
            decode_secret(self.secret)
        except InvalidSecretError as exc:
            raise ConfigurationError(
                f"API secret of {self.account}: {exc}", account=self.account
            ) from None
        channel = self._channel()
        started, t0 = time.time(), time.perf_counter()
        nonce: int | None = None
        outcome = _Outcome()
        try:
            with channel.reserve(self.nonce_unit) as nonce:
                body, headers = encode_private_request(
                    urlpath, nonce, payload, self.key, self.secret
                )
                outcome = self._send(
                    "POST", urlpath, method, body=body, headers=headers, timeout=timeout
                )
        except ConfigurationError as exc:
            outcome.error = exc
            self._report(method, True, started, t0, nonce, outcome)
            raise
        if isinstance(outcome.error, InvalidNonceError):
            outcome.error.diagnosis = (
                "second_writer"
                if self._ok_since_refresh or channel.had_history
                else "restart_below_high_water"
            )
        elif outcome.error is None:
            self._ok_since_refresh = True
        self._report(method, True, started, t0, nonce, outcome)
        return outcome

    def _public(
        self, method: str, data: Mapping[str, Any] | None, timeout: float | None
    ) -> _Outcome:
        urlpath = f"/{self.apiversion}/public/{method}"
        started, t0 = time.time(), time.perf_counter()
        outcome = self._send("GET", urlpath, method, params=dict(data or {}), timeout=timeout)
        self._report(method, False, started, t0, None, outcome)
        return outcome

    def _send(
        self,
        http_method: str,
        urlpath: str,
        method: str,
        *,
        timeout: float | None,
        body: str | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> _Outcome:
        where = {"account": self.account, "method": method}
        proxies, verify = self._environment()
        try:
            response = self.session.request(
                http_method,
                self.uri + urlpath,
                data=body,
                params=params,
                headers=headers,
                timeout=self.timeout if timeout is None else timeout,
                proxies=proxies,
                verify=verify,
            )
        except requests.Timeout as exc:
            return _Outcome(
                error=KrakenTimeout(f"no answer within {timeout or self.timeout:g} s", **where),
                transport=exc,
            )
        except requests.RequestException as exc:
            return _Outcome(
                error=KrakenConnectionError(f"connection failed: {type(exc).__name__}", **where),
                transport=exc,
            )
        self.response = response
        return _parse(response, **where)

    def _report(
        self,
        method: str,
        private: bool,
        started: float,
        t0: float,
        nonce: int | None,
        outcome: _Outcome,
    ) -> None:
        error = outcome.error
        event = CallEvent(
            account=self.account,
            key_id=self._channel().key_id if private else "",
            method=method,
            private=private,
            started_at=started,
            duration_s=time.perf_counter() - t0,
            outcome="ok" if error is None else error.kind,
            nonce=nonce,
            error=error,
        )
        notify(self.observer, "on_call", event)


def _parse(response: requests.Response, *, account: str, method: str) -> _Outcome:
    where = {"account": account, "method": method}
    if response.status_code not in (200, 201, 202):
        excerpt = " ".join(response.text[:_BODY_EXCERPT].split())
        return _Outcome(
            error=HTTPStatusError(response.status_code, excerpt, **where), response=response
        )
    try:
        doc = response.json()
    except ValueError:
        excerpt = " ".join(response.text[:80].split())
        return _Outcome(
            error=ResponseFormatError(f"answer is not JSON: {excerpt!r}", **where),
            response=response,
        )
    if not isinstance(doc, dict) or not isinstance(doc.get("error", []), list):
        return _Outcome(
            error=ResponseFormatError("answer is not a Kraken JSON envelope", **where),
            response=response,
        )
    codes = [str(c) for c in doc.get("error") or []]
    errors = [c for c in codes if not c.startswith("W")]
    if errors:
        return _Outcome(doc=doc, error=api_error_from_codes(codes, **where), response=response)
    if "result" in doc and not isinstance(doc["result"], dict | list):
        return _Outcome(
            doc=doc,
            error=ResponseFormatError("'result' is not an object", **where),
            response=response,
        )
    return _Outcome(doc=doc, response=response)
