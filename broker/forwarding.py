"""The forwarding path of :meth:`KrakenClient.forward_private <broker.client.KrakenClient>` (the
signing gateway's): parameters that are already form-encoded are sent byte-for-byte behind the
client's own nonce, over the client's kept-alive connection where that cannot differ from
requests (:mod:`broker.upstream`), and Kraken's answer is handed back as received.

The key's lock, the nonce and the signature are the client's (its private path); this module
builds the body, sends it on the kept-alive connection, and turns what came back into a
:class:`~broker.answers.ForwardedAnswer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests

from .answers import ForwardedAnswer, Outcome, judge
from .errors import ConfigurationError, TransportError
from .loopupstream import LoopKeptAlive, Paused
from .transport import Timeout
from .upstream import Answer, KeptAlive, applies, stock_adapters

if TYPE_CHECKING:
    from .privatecall import SignedCall

__all__ = ["KeptAliveLine", "forwarded_answer", "forwarded_body"]


def forwarded_body(method: str, fields: bytes, *, account: str) -> Callable[[int], bytes]:
    """The body for a nonce: ``nonce=<n>`` then ``fields`` as given. Refuses ``fields`` that carry
    a nonce of their own (:class:`~broker.errors.ConfigurationError`, nothing sent)."""
    if any(pair.partition(b"=")[0] == b"nonce" for pair in fields.split(b"&")):
        raise ConfigurationError(
            f"{method}: forwarded fields must not carry a nonce", account=account
        )
    suffix = b"&" + fields if fields else b""
    return lambda nonce: b"nonce=%d" % nonce + suffix


class KeptAliveLine:
    """A client's kept-alive connection for forwarded calls: opened on first use, replaced when
    the client's base URL changes (``uri`` stays settable, as in krakenex). One user at a time:
    the key's single writer."""

    def __init__(self, session: requests.Session):
        #: the adapters the client's session came with (a mounted one means: requests decides)
        self._stock = stock_adapters(session)
        self.connection: KeptAlive | None = None
        #: the same server's connection on the gateway's event loop
        self.on_loop: LoopKeptAlive | None = None

    def applies(self, session: requests.Session, base_url: str) -> bool:
        """Whether a call through ``session`` may take this line (see
        :func:`broker.upstream.applies`)."""
        return applies(session, base_url, self._stock)

    def post(
        self,
        session: requests.Session,
        base_url: str,
        urlpath: str,
        body: str | bytes,
        headers: dict[str, str],
        *,
        timeout: Timeout,
        json_options: dict[str, Any],
        account: str,
        method: str,
        last_look: Callable[[], None] | None = None,
    ) -> Outcome:
        """One POST of ``body`` to ``urlpath`` under ``base_url``, judged as an answer through
        requests is (``last_look`` as :meth:`KeptAlive.post <broker.upstream.KeptAlive.post>`
        takes it)."""
        kept = self._kept(session, base_url)
        data = body.encode("utf-8") if isinstance(body, str) else body
        where = {"account": account, "method": method}
        try:
            answer = kept.post(urlpath, data, headers, timeout, last_look=last_look, **where)
        except TransportError as exc:
            return Outcome(error=exc)
        return _judged(answer, json_options, account=account, method=method)

    async def post_on_loop(
        self,
        session: requests.Session,
        base_url: str,
        call: SignedCall,
        paused: Paused,
        where: dict[str, str],
    ) -> Outcome:
        """:meth:`post` of ``call``'s request from the running event loop
        (:mod:`broker.loopupstream`; ``paused`` as there); ``where``: its account and method."""
        kept = self._kept(session, base_url)
        loop = asyncio.get_running_loop()
        on_loop = self.on_loop
        if on_loop is None or on_loop.target is not kept or on_loop.loop is not loop:
            if on_loop is not None:
                on_loop.close()
            on_loop = self.on_loop = LoopKeptAlive(kept, loop)
        body = call.body.encode("utf-8") if isinstance(call.body, str) else call.body
        try:
            answer = await on_loop.post(
                call.urlpath, body, call.headers, call.limit, paused=paused, **where
            )
        except TransportError as exc:
            return Outcome(error=exc)
        return _judged(answer, call.client._json_options, **where)

    def _kept(self, session: requests.Session, base_url: str) -> KeptAlive:
        kept = self.connection
        if kept is None or kept.base_url != base_url:
            if kept is not None:
                kept.close()
            agent = str(session.headers.get("User-Agent", "krakenwatch"))
            kept = self.connection = KeptAlive(base_url, agent)
        return kept

    def close(self) -> None:
        """Close the connections (the loop's from its own loop when that is another thread's:
        asyncio transports are not thread-safe)."""
        if self.connection is not None:
            self.connection.close()
        on_loop, self.on_loop = self.on_loop, None
        if on_loop is not None:
            _close_on_its_loop(on_loop)


def _close_on_its_loop(on_loop: LoopKeptAlive) -> None:
    loop = on_loop.loop
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop or loop.is_closed():
        on_loop.close()
        return
    with contextlib.suppress(RuntimeError):  # closed meanwhile: its transports went with it
        loop.call_soon_threadsafe(on_loop.close)


def _judged(answer: Answer, json_options: dict[str, Any], *, account: str, method: str) -> Outcome:
    """An answer judged as an answer through requests is."""
    outcome = judge(
        answer.status,
        lambda: answer.body.decode("utf-8", "replace"),
        lambda: json.loads(answer.body, **json_options),
        account=account,
        method=method,
    )
    outcome.answer = answer
    return outcome


def forwarded_answer(outcome: Outcome) -> ForwardedAnswer:
    """Kraken's answer to a forwarded call as received, with the error it means; raises the
    :class:`~broker.errors.TransportError` when no answer came back."""
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
