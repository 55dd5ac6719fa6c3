"""``KrakenClient``: a thread-, process- and fork-safe drop-in for ``krakenex.API``.

Switching a bot is one line::

    api = krakenex.API(key, secret)          # before
    api = broker.KrakenClient(key, secret)   # after

``query_private`` / ``query_public`` keep krakenex's contract: they return the response dict with
Kraken's errors in its ``error`` list, raise ``requests`` exceptions for transport and HTTP
trouble, honour ``session`` settings (``verify``, ``proxies``...), ``json_options()`` and
``(connect, read)`` timeouts. ``call_private`` / ``call_public`` return ``result`` or raise
:mod:`broker.errors`. ``forward_private`` sends parameters that are already form-encoded,
byte-for-byte, and hands back Kraken's raw answer (the signing gateway uses it).

Every private call generates its nonce, signs, sends and reads the answer while holding the key's
:class:`~broker.nonce.KeyChannel`, so no two requests of one key are ever in flight at once among
the processes sharing the nonce store, and nonces reach Kraken in the order they were issued.
After a request whose outcome is unknown (no answer in time, or the connection broke after
sending), the key is held for ``late_grace`` seconds (default: the read timeout, at most
:data:`DEFAULT_LATE_GRACE` s) before the next request may leave, so a late delivery of the lost
request is judged before it instead of being rejected behind a higher nonce.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import krakenex
import requests

from .answers import ForwardedAnswer, Outcome, judge, parse_answer
from .errors import (
    ConfigurationError,
    InvalidNonceError,
    InvalidSecretError,
    KrakenError,
    TransportError,
)
from .nonce import MAX_HOLD_S, KeyChannel, NonceStatus, NonceStore, channel_for, parse_unit
from .observer import CallEvent, Observer, RefreshEvent, notify
from .paths import (
    api_url_default,
    default_data_dir,
    nonce_store_dir,
    nonce_sync_default,
    parse_api_url,
)
from .signing import decode_secret, mask_key, private_headers
from .stores import LEASE_MARGIN_S, nonce_store_spec, open_store
from .transport import (
    EnvCachingSession,
    Timeout,
    parse_timeout,
    read_timeout,
    transport_error,
)
from .upstream import KeptAlive, applies, stock_adapters

__all__ = ["DEFAULT_LATE_GRACE", "ForwardedAnswer", "KrakenClient"]

#: the longest the key is held by default after a request whose outcome is unknown
DEFAULT_LATE_GRACE = 5.0


class KrakenClient(krakenex.API):  # type: ignore[misc]  # krakenex ships no type hints
    """A krakenex-compatible Kraken client with safe nonces. See the module docstring."""

    #: the key as last found valid (reset whenever the key is set)
    _checked: str | None = None

    def __init__(
        self,
        key: str = "",
        secret: str = "",
        *,
        account: str = "MASTER",
        nonce_unit: str = "us",
        store_dir: str | Path | None = None,
        base_url: str | None = None,
        timeout: Timeout = 10.0,
        observer: Observer | None = None,
        durable: bool | None = None,
        late_grace: float | None = None,
        nonce_store: str | NonceStore | None = None,
        keep_alive: bool = False,
    ):
        super().__init__(key, secret)
        self.account = account
        self.timeout = parse_timeout(timeout)
        self.nonce_unit = parse_unit(nonce_unit)
        self.observer = observer
        # the library's one place for defaults from the environment: read now, never at import.
        # A bad URL, given or from $KRAKEN_API_URL, is refused here: never another Kraken
        self.uri = parse_api_url(base_url) if base_url else api_url_default()
        self.store_dir = (
            Path(store_dir).expanduser() if store_dir else nonce_store_dir(default_data_dir())
        )
        #: fdatasync the high-water mark before each request leaves (see the README)
        self.durable = nonce_sync_default() if durable is None else durable
        #: ``file``, a ``redis://`` URL, or a store object (:mod:`broker.stores`)
        self.nonce_store = nonce_store_spec() if nonce_store is None else nonce_store
        if late_grace is not None and (
            isinstance(late_grace, bool)
            or not isinstance(late_grace, int | float)
            or not 0 <= late_grace <= MAX_HOLD_S
        ):
            raise ConfigurationError(
                f"late_grace must be between 0 (no hold) and {MAX_HOLD_S:g} seconds, "
                f"not {late_grace!r}"
            )
        self.late_grace = None if late_grace is None else float(late_grace)
        session = EnvCachingSession()
        session.headers.update(self.session.headers)  # krakenex's User-Agent
        self.session: requests.Session = session
        self._stock = stock_adapters(session)
        self._cached_channel: tuple[tuple[Any, ...], KeyChannel] | None = None
        #: forwarded calls go through one kept-alive connection (:mod:`broker.upstream`) where it
        #: cannot differ from requests (the signing gateway's key clients)
        self.keep_alive = keep_alive
        self._kept_alive: KeptAlive | None = None
        _clients.add(self)

    # krakenex assigns ``key`` in its constructor and in ``load_key``: keep it normalised, as
    # HTTP does (a trailing blank is not part of the key at Kraken)
    @property
    def key(self) -> str:
        return self._key

    @key.setter
    def key(self, value: str) -> None:
        self._key = value.strip() if isinstance(value, str) else value
        self._checked = None

    def __repr__(self) -> str:
        return (
            f"KrakenClient(account={self.account!r}, key={mask_key(self.key)!r}, uri={self.uri!r})"
        )

    # -- public surface ---------------------------------------------------------------------------

    def query_private(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: Timeout | None = None
    ) -> Any:
        """krakenex-compatible private call (never mutates ``data``)."""
        outcome = self._private(method, data, timeout)
        return outcome.krakenex_value(self._secrets(), self._json_options)

    def query_public(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: Timeout | None = None
    ) -> Any:
        """krakenex-compatible public call, with the client's default timeout."""
        outcome = self._public(method, data, timeout)
        return outcome.krakenex_value(self._secrets(), self._json_options)

    def call_private(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: Timeout | None = None
    ) -> Any:
        """Private call returning ``result`` or raising a :class:`~broker.errors.KrakenError`."""
        return self._private(method, data, timeout).result()

    def call_public(
        self, method: str, data: Mapping[str, Any] | None = None, timeout: Timeout | None = None
    ) -> Any:
        """Public call returning ``result`` or raising a :class:`~broker.errors.KrakenError`."""
        return self._public(method, data, timeout).result()

    def forward_private(
        self,
        method: str,
        fields: bytes = b"",
        timeout: Timeout | None = None,
        *,
        deadline: float | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> ForwardedAnswer:
        """Send ``fields`` (a form-encoded body without ``nonce``) byte-for-byte after this client's
        own nonce, and return Kraken's answer as received.

        ``deadline`` (``time.monotonic()``): when the key is still busy then (another request of
        it, here or in another process or host), raise :class:`~broker.errors.KeyBusyError`
        instead of sending. ``before_send`` is called once the key is held, right before the
        request leaves: it raises (e.g. :class:`~broker.errors.CallAbandonedError`) when the call
        is no longer wanted, and nothing is sent.

        Raises :class:`~broker.errors.TransportError` when no answer came back (its
        ``outcome_unknown`` says whether the request may have reached Kraken), and the store's,
        configuration and re-entry errors before anything is sent.
        """
        if any(pair.partition(b"=")[0] == b"nonce" for pair in fields.split(b"&")):
            raise ConfigurationError(
                f"{method}: forwarded fields must not carry a nonce", account=self.account
            )
        suffix = b"&" + fields if fields else b""
        outcome = self._signed(
            method,
            lambda nonce: b"nonce=%d" % nonce + suffix,
            timeout,
            deadline=deadline,
            before_send=before_send,
            kept_alive=self.keep_alive,
        )
        if isinstance(outcome.error, TransportError):
            raise outcome.error
        nonce = outcome.nonce
        assert nonce is not None
        answer, response = outcome.answer, outcome.response
        if answer is not None:
            return ForwardedAnswer(
                answer.status, answer.body, answer.content_type, nonce, outcome.error
            )
        assert response is not None
        return ForwardedAnswer(
            response.status_code,
            response.content,
            response.headers.get("Content-Type", ""),
            nonce,
            outcome.error,
        )

    def refresh(self, reason: str = "connect") -> RefreshEvent:
        """Re-baseline the key's nonce to now (never backwards) and report it to the observer."""
        channel = self._channel()
        previous, baseline = channel.refresh(self.nonce_unit)
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
        notify(self.observer, "on_refresh", event)
        return event

    def connect(self, method: str = "Balance", data: Mapping[str, Any] | None = None) -> Any:
        """Refresh the baseline, then the first private call; on ``EAPI:Invalid nonce`` refresh and
        retry exactly once, then raise (looping on nonce errors leads to a lockout).

        Use only a read-only or validate-only ``method``: it may be sent twice.
        """
        self.refresh("connect")
        try:
            return self.call_private(method, data)
        except InvalidNonceError:
            self.refresh("retry after invalid nonce")
            return self.call_private(method, data)

    def nonce_status(self) -> NonceStatus:
        """The key's high-water mark, unit, lead over the wall clock (a stranded key leads) and
        the store that coordinates it."""
        return self._channel().status(self.nonce_unit)

    @property
    def key_id(self) -> str:
        return self._channel().key_id

    @property
    def nonce_store_lost_at(self) -> float | None:
        """When this process found that the key's shared nonce store (Redis) had lost its data
        (Unix time), else ``None``."""
        lost: float | None = getattr(self._channel().store, "data_lost_at", None)
        return lost

    # -- internals --------------------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        return [s for s in (self.key, self.secret) if isinstance(s, str) and s]

    def _checked_key(self) -> str:
        """The key, refused when empty or unusable (checked once per key value)."""
        key = self.key
        if key and key is self._checked:
            return key
        if not key:
            raise ConfigurationError(
                f"no API key configured for {self.account}", account=self.account
            )
        if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
            raise ConfigurationError(
                f"the API key of {self.account} contains control, blank or non-ASCII characters; "
                "copy it again from Kraken",
                account=self.account,
            )
        self._checked = key
        return key

    def _channel(self) -> KeyChannel:
        spec = self.nonce_store
        ident = (
            self._checked_key(),
            self.store_dir,
            self.durable,
            spec if isinstance(spec, str) else id(spec),
        )
        cached = self._cached_channel
        if cached is None or cached[0] != ident:
            store = open_store(spec, self.store_dir, durable=self.durable)
            cached = (ident, channel_for(ident[0], store))
            self._cached_channel = cached
        return cached[1]

    def _private(
        self, method: str, data: Mapping[str, Any] | None, timeout: Timeout | None
    ) -> Outcome:
        payload = dict(data or {})
        for name, value in payload.items():
            if isinstance(value, list | tuple | set | dict):
                raise ConfigurationError(
                    f"{method}: parameter {name!r} is a {type(value).__name__}; Kraken expects a "
                    "comma-separated string (krakenex signs lists wrongly)",
                    account=self.account,
                )
        payload.pop("nonce", None)
        return self._signed(
            method, lambda nonce: urllib.parse.urlencode({"nonce": nonce, **payload}), timeout
        )

    def _signed(
        self,
        method: str,
        body_for: Callable[[int], str | bytes],
        timeout: Timeout | None,
        *,
        deadline: float | None = None,
        before_send: Callable[[], None] | None = None,
        kept_alive: bool = False,
    ) -> Outcome:
        """Sign and send one private call whose body ``body_for(nonce)`` builds, under the key
        (``deadline`` and ``before_send`` as in :meth:`forward_private`; ``kept_alive``: through
        :mod:`broker.upstream` where it applies)."""
        urlpath = f"/{self.apiversion}/private/{method}"
        started, t0 = time.time(), time.perf_counter()
        try:
            key = self._checked_key()
            try:
                decode_secret(self.secret)
            except InvalidSecretError as exc:
                raise InvalidSecretError(
                    f"API secret of {self.account}: {exc.message}", account=self.account
                ) from None
            channel = self._channel()
            limit = self.timeout if timeout is None else parse_timeout(timeout)
            lease = read_timeout(limit) + LEASE_MARGIN_S
            with channel.reserve(self.nonce_unit, lease_s=lease, deadline=deadline) as ticket:
                if before_send is not None:
                    before_send()
                body = body_for(ticket.nonce)
                headers = private_headers(urlpath, ticket.nonce, body, key, self.secret)
                if kept_alive and applies(self.session, self.uri, self._stock):
                    outcome = self._send_kept_alive(urlpath, method, body, headers, timeout)
                else:
                    outcome = self._send(
                        "POST", urlpath, method, body=body, headers=headers, timeout=timeout
                    )
                outcome.nonce, outcome.waited_s = ticket.nonce, ticket.waited_s
                if isinstance(outcome.error, TransportError) and outcome.error.outcome_unknown:
                    ticket.hold_for(self._grace(timeout))
        except KrakenError as exc:  # refused before anything was sent
            exc.account, exc.method = exc.account or self.account, exc.method or method
            self._report(method, True, started, t0, Outcome(error=exc))
            raise
        if isinstance(outcome.error, InvalidNonceError):
            outcome.error.diagnosis = channel.diagnosis()
        elif outcome.error is None:
            channel.accepted = True
        self._report(method, True, started, t0, outcome)
        return outcome

    def _grace(self, timeout: Timeout | None) -> float:
        if self.late_grace is not None:
            return self.late_grace
        limit = self.timeout if timeout is None else parse_timeout(timeout)
        return min(read_timeout(limit), DEFAULT_LATE_GRACE)

    def _public(
        self, method: str, data: Mapping[str, Any] | None, timeout: Timeout | None
    ) -> Outcome:
        urlpath = f"/{self.apiversion}/public/{method}"
        started, t0 = time.time(), time.perf_counter()
        outcome = self._send("GET", urlpath, method, params=dict(data or {}), timeout=timeout)
        self._report(method, False, started, t0, outcome)
        return outcome

    def _send(
        self,
        http_method: str,
        urlpath: str,
        method: str,
        *,
        timeout: Timeout | None,
        body: str | bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        limit = self.timeout if timeout is None else parse_timeout(timeout)
        failure: requests.RequestException | None = None
        try:
            response = self.session.request(
                http_method,
                self.uri + urlpath,
                data=body,
                params=params,
                headers=headers,
                timeout=limit,
            )
        except requests.RequestException as exc:
            failure = exc
        if failure is not None:
            error = transport_error(failure, timeout=limit, account=self.account, method=method)
            return Outcome(error=error, transport=failure)
        self.response = response
        return parse_answer(response, self._json_options, account=self.account, method=method)

    def _send_kept_alive(
        self,
        urlpath: str,
        method: str,
        body: str | bytes,
        headers: dict[str, str],
        timeout: Timeout | None,
    ) -> Outcome:
        """One POST through the client's kept-alive connection (see :mod:`broker.upstream`)."""
        limit = self.timeout if timeout is None else parse_timeout(timeout)
        kept = self._kept_alive
        if kept is None or kept.base_url != self.uri:  # ``uri`` stays settable, as in krakenex
            if kept is not None:
                kept.close()
            agent = str(self.session.headers.get("User-Agent", "krakenwatch"))
            kept = self._kept_alive = KeptAlive(self.uri, agent)
        data = body.encode("utf-8") if isinstance(body, str) else body
        try:
            answer = kept.post(urlpath, data, headers, limit, account=self.account, method=method)
        except TransportError as exc:
            return Outcome(error=exc)
        options = self._json_options
        outcome = judge(
            answer.status,
            lambda: answer.body.decode("utf-8", "replace"),
            lambda: json.loads(answer.body, **options),
            account=self.account,
            method=method,
        )
        outcome.answer = answer
        return outcome

    def close(self) -> None:
        """Close the session and the kept-alive connection (krakenex's ``close``)."""
        if self._kept_alive is not None:
            self._kept_alive.close()
        self.session.close()

    def _report(
        self, method: str, private: bool, started: float, t0: float, outcome: Outcome
    ) -> None:
        error = outcome.error
        key_id = ""
        if private and self.key:
            try:
                key_id = self._channel().key_id
            except KrakenError:
                key_id = ""
        event = CallEvent(
            account=self.account,
            key_id=key_id,
            method=method,
            private=private,
            started_at=started,
            duration_s=time.perf_counter() - t0,
            outcome="ok" if error is None else error.kind,
            nonce=outcome.nonce,
            error=error,
            waited_s=outcome.waited_s,
        )
        notify(self.observer, "on_call", event)


_clients: weakref.WeakSet[KrakenClient] = weakref.WeakSet()


def _drop_inherited_connections() -> None:
    """In a forked child: pooled connections are sockets shared with the parent; close the
    child's copies (the parent's stay open) so that each process talks on its own."""
    for client in list(_clients):
        client.close()


os.register_at_fork(after_in_child=_drop_inherited_connections)
