"""One private call of a :class:`~broker.client.KrakenClient` under its key, in the steps that can
be taken apart: :class:`SignedCall` begins it (the key and secret checked, the key held, the nonce
issued and stored, the caller's last check, the request signed), the client sends it and gets the
answer (blocking, or awaited on an event loop: :meth:`KrakenClient.forward_private_on_loop
<broker.client.KrakenClient.forward_private_on_loop>`), and :meth:`SignedCall.end` lets the key go
and reports the call; :meth:`SignedCall.fail` when it ends with an exception instead.

The key is held through an exit stack rather than a ``with`` block, so the steps can span an
``await``; an exception passes through the nonce store's context exactly as through a ``with``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from .answers import Outcome
from .calls import report_call
from .errors import InvalidNonceError, KrakenError, OutcomeUnknownError
from .nonce import KeyChannel
from .observer import Observer
from .signing import check_secret, private_headers
from .stages import mark
from .stores import LEASE_MARGIN_S
from .transport import Timeout, read_timeout

__all__ = ["SignedCall", "Signer"]


class Signer(Protocol):
    """What a call needs of its client (:class:`~broker.client.KrakenClient`)."""

    account: str
    secret: str
    key: str
    nonce_unit: str
    apiversion: str
    observer: Observer | None
    #: krakenex's ``json_options()``: how answers are parsed
    _json_options: dict[str, Any]

    def _limit(self, timeout: Timeout | None) -> Timeout: ...
    def _checked_key(self) -> str: ...
    def _channel(self) -> KeyChannel: ...
    def _grace(self, timeout: Timeout | None) -> float: ...


class SignedCall:
    """A private call begun: the key held, ``body`` and ``headers`` signed with the nonce issued
    (``wait=False``: :class:`~broker.nonce.WouldBlock` instead of any step that would block the
    thread, nothing issued). Raises what refused it, reported as a call that sent nothing."""

    def __init__(
        self,
        client: Signer,
        method: str,
        body_for: Callable[[int], str | bytes],
        timeout: Timeout | None,
        *,
        deadline: float | None = None,
        before_send: Callable[[], None] | None = None,
        wait: bool = True,
    ):
        mark("call")
        self.client, self.method = client, method
        self.urlpath = f"/{client.apiversion}/private/{method}"
        self.started, self.t0 = time.time(), time.perf_counter()
        self._stack = contextlib.ExitStack()
        try:
            self.limit = client._limit(timeout)
            key = client._checked_key()
            check_secret(client.secret, client.account)
            self.channel = channel = client._channel()
            lease = read_timeout(self.limit) + LEASE_MARGIN_S
            reserved = channel.reserve(
                client.nonce_unit, lease_s=lease, deadline=deadline, wait=wait
            )
            self.ticket = ticket = self._stack.enter_context(reserved)
            mark("reserved")
            if before_send is not None:
                before_send()
                mark("still wanted")
            self.body = body_for(ticket.nonce)
            self.headers = private_headers(
                self.urlpath, ticket.nonce, self.body, key, client.secret
            )
            mark("signed")
            ticket.ensure_live(read_timeout(self.limit))
        except BaseException as exc:
            self.fail(exc)
            raise

    def last_look(self) -> None:
        """Right before the request's first byte leaves, the connection made: raise unless the
        key's lease stays ours for the read timeout (a process paused since the look above, past
        its lease, sends nothing when it wakes)."""
        self.ticket.ensure_live(read_timeout(self.limit))

    def end(self, outcome: Outcome) -> Outcome:
        """The request was sent (or could not be): let the key go and report the call."""
        mark("answered")
        ticket, channel = self.ticket, self.channel
        outcome.nonce, outcome.waited_s = ticket.nonce, ticket.waited_s
        if isinstance(outcome.error, OutcomeUnknownError):
            ticket.hold_for(self.client._grace(self.limit))
        try:
            self._stack.close()
        except KrakenError as exc:
            self._refused(exc)
            raise
        mark("released")
        if isinstance(outcome.error, InvalidNonceError):
            outcome.error.diagnosis = channel.diagnosis()
        elif outcome.error is None:
            channel.accepted = True
        self._report(outcome)
        mark("reported")
        return outcome

    def fail(self, exc: BaseException) -> None:
        """The call ends with ``exc`` before an answer: the key let go (``exc`` passed through
        the store's context), a :class:`~broker.errors.KrakenError` reported."""
        try:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
        except KrakenError as during:
            self._refused(during)
            raise
        if isinstance(exc, KrakenError):
            self._refused(exc)

    def _refused(self, exc: KrakenError) -> None:
        client = self.client
        exc.account, exc.method = exc.account or client.account, exc.method or self.method
        self._report(Outcome(error=exc))

    def _report(self, outcome: Outcome) -> None:
        """Tell the client's observer about the call (nothing to build without one)."""
        client = self.client
        if client.observer is None:
            return
        key_id = ""
        if client.key:
            with contextlib.suppress(KrakenError):
                key_id = client._channel().key_id
        report_call(
            client.observer,
            outcome,
            account=client.account,
            method=self.method,
            private=True,
            started=self.started,
            t0=self.t0,
            key_id=key_id,
        )
