"""``KrakenClient``: a thread-, process- and fork-safe drop-in for ``krakenex.API``.

Switching a bot is one line::

    api = krakenex.API(key, secret)          # before
    api = broker.KrakenClient(key, secret)   # after

``query_private`` / ``query_public`` keep krakenex's contract: they return the response dict with
Kraken's errors in its ``error`` list, raise ``requests`` exceptions for transport and HTTP
trouble, honour ``session`` settings (``verify``, ``proxies``...), ``json_options()`` and
``(connect, read)`` timeouts. ``call_private`` / ``call_public`` return ``result`` or raise
:mod:`broker.errors`. ``forward_private`` sends parameters that are already form-encoded,
byte-for-byte, and hands back Kraken's raw answer (the signing gateway uses it; the path is in
:mod:`broker.forwarding`). Public calls take the same code as :class:`~broker.public.PublicClient`'s
(:mod:`broker.calls`).

Every private call generates its nonce, signs, sends and reads the answer while holding the key's
:class:`~broker.nonce.KeyChannel`, so no two requests of one key are ever in flight at once among
the processes sharing the nonce store, and nonces reach Kraken in the order they were issued.
After a request whose outcome is unknown (no answer in time, or the connection broke after
sending), the key is held for ``late_grace`` seconds (default: the read timeout, at most
:data:`DEFAULT_LATE_GRACE` s) before the next request may leave, so a late delivery of the lost
request is judged before it instead of being rejected behind a higher nonce.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import krakenex
import requests

from .answers import ForwardedAnswer, Outcome
from .calls import public_call, send_request
from .channels import channel_for
from .errors import InvalidNonceError
from .forwarding import KeptAliveLine, forwarded_answer, forwarded_body
from .loopupstream import Paused
from .nonce import (
    KeyChannel,
    NonceStatus,
    NonceStore,
    WouldBlock,
    parse_hold,
    parse_unit,
)
from .observer import Observer, RefreshEvent, notify
from .paths import (
    api_url_default,
    default_data_dir,
    nonce_store_dir,
    nonce_sync_default,
    parse_api_url,
)
from .privatecall import SignedCall
from .signing import check_key, form_body, mask_key
from .stores import nonce_store_spec, open_store
from .transport import (
    EnvCachingSession,
    Timeout,
    close_in_forked_child,
    parse_timeout,
    read_timeout,
)

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
        self.late_grace = None if late_grace is None else parse_hold(late_grace)
        session = EnvCachingSession()
        session.headers.update(self.session.headers)  # krakenex's User-Agent
        self.session: requests.Session = session
        self._cached_channel: tuple[tuple[Any, ...], KeyChannel] | None = None
        #: forwarded calls and ``call_private`` go through one kept-alive connection
        #: (:mod:`broker.upstream`) where it cannot differ from requests (the signing gateway's
        #: key clients, ``check``'s); ``query_private`` keeps requests (krakenex's ``response``)
        self.keep_alive = keep_alive
        self._kept_alive = KeptAliveLine(session)
        close_in_forked_child(self)

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
        """Private call returning ``result`` or raising a :class:`~broker.errors.KrakenError`
        (with ``keep_alive``, on the kept-alive connection where it applies)."""
        return self._private(method, data, timeout, kept_alive=self.keep_alive).result()

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

        Raises :class:`~broker.errors.KrakenConnectionError` when nothing could be sent,
        :class:`~broker.errors.OutcomeUnknownError` (a timeout, a connection lost) when the
        request was sent and no answer came back, and the store's, configuration and re-entry
        errors before anything is sent.
        """
        outcome = self._signed(
            method,
            forwarded_body(method, fields, account=self.account),
            timeout,
            deadline=deadline,
            before_send=before_send,
            kept_alive=self.keep_alive,
        )
        return forwarded_answer(outcome)

    async def forward_private_on_loop(
        self,
        method: str,
        fields: bytes = b"",
        timeout: Timeout | None = None,
        *,
        deadline: float | None = None,
        before_send: Callable[[], None] | None = None,
        pausing: Callable[[], None] | None = None,
    ) -> ForwardedAnswer:
        """:meth:`forward_private` from the running event loop, never blocking it (the gateway's
        calls). :class:`~broker.nonce.WouldBlock`, nothing issued or sent, when a step would
        block (see :meth:`KeyChannel.reserve <broker.nonce.KeyChannel.reserve>`), the call would
        go through requests, or the client has an observer: then call :meth:`forward_private`
        from a thread. When the request must wait for a connection, ``pausing`` is called before
        the wait and ``before_send`` again after it. A call cancelled once the key is held may
        have been sent: the key is held for the late grace, as after a timeout."""
        kept = self._kept_alive
        if not (self.keep_alive and self.observer is None and kept.applies(self.session, self.uri)):
            raise WouldBlock
        body_for = forwarded_body(method, fields, account=self.account)
        call = SignedCall(
            self, method, body_for, timeout, deadline=deadline, before_send=before_send, wait=False
        )
        paused, where = Paused(pausing, before_send), {"account": self.account, "method": method}
        try:
            outcome = await kept.post_on_loop(self.session, self.uri, call, paused, where)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):  # its outcome is unknown
                call.ticket.hold_for(self._grace(call.limit))
            call.fail(exc)
            raise
        return forwarded_answer(call.end(outcome))

    def wait_idle(self, timeout: float | None = None) -> None:
        """Return once no request of this key is in flight, here or in any process or host that
        shares the nonce store (the key is held for an instant; no nonce is used). A decision
        written before this call (a halt) then binds every request that leaves afterwards.
        :class:`~broker.errors.KeyBusyError` when the key stays busy ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._channel().wait_idle(deadline)

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
        """Since when the key's shared nonce store (Redis) may lack writes made before (Unix
        time): when this process found that it had lost its data, or when its primary took over
        from another (a failover); else ``None``."""
        store = self._channel().store
        found = [getattr(store, name, None) for name in ("data_lost_at", "primary_since")]
        times = [t for t in found if t is not None]
        return max(times) if times else None

    # -- internals --------------------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        return [s for s in (self.key, self.secret) if isinstance(s, str) and s]

    def _checked_key(self) -> str:
        """The key, refused when empty or unusable (checked once per key value)."""
        key = self.key
        if not key or key is not self._checked:
            self._checked = check_key(key, self.account)
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
        self,
        method: str,
        data: Mapping[str, Any] | None,
        timeout: Timeout | None,
        kept_alive: bool = False,
    ) -> Outcome:
        body_for = form_body(method, data, account=self.account)
        return self._signed(method, body_for, timeout, kept_alive=kept_alive)

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
        call = SignedCall(
            self, method, body_for, timeout, deadline=deadline, before_send=before_send
        )
        try:
            outcome = self._send(call, method, timeout, kept_alive)
        except BaseException as exc:
            call.fail(exc)
            raise
        return call.end(outcome)

    def _grace(self, timeout: Timeout | None) -> float:
        if self.late_grace is not None:
            return self.late_grace
        return min(read_timeout(self._limit(timeout)), DEFAULT_LATE_GRACE)

    def _limit(self, timeout: Timeout | None) -> Timeout:
        """A call's timeout: its own, else the client's."""
        return self.timeout if timeout is None else parse_timeout(timeout)

    def _public(
        self, method: str, data: Mapping[str, Any] | None, timeout: Timeout | None
    ) -> Outcome:
        outcome = public_call(
            self.session,
            self.uri,
            method,
            data,
            apiversion=self.apiversion,
            account=self.account,
            timeout=self._limit(timeout),
            json_options=self._json_options,
            observer=self.observer,
        )
        if outcome.response is not None:
            self.response = outcome.response  # krakenex keeps the last answer
        return outcome

    def _send(
        self, call: SignedCall, method: str, timeout: Timeout | None, kept_alive: bool
    ) -> Outcome:
        """``call``'s POST: through the kept-alive line when asked for and it applies (see
        :mod:`broker.upstream`; the lease looked at again once connected), else through the
        session (requests)."""
        limit, options = self._limit(timeout), self._json_options
        if kept_alive and self._kept_alive.applies(self.session, self.uri):
            return self._kept_alive.post(
                self.session,
                self.uri,
                call.urlpath,
                call.body,
                call.headers,
                timeout=limit,
                json_options=options,
                account=self.account,
                method=method,
                last_look=call.last_look,
            )
        outcome = send_request(
            self.session,
            "POST",
            self.uri + call.urlpath,
            method=method,
            account=self.account,
            timeout=limit,
            json_options=options,
            body=call.body,
            headers=call.headers,
        )
        if outcome.response is not None:
            self.response = outcome.response  # krakenex keeps the last answer
        return outcome

    def close(self) -> None:
        """Close the session and the kept-alive connection (krakenex's ``close``)."""
        self._kept_alive.close()
        self.session.close()
