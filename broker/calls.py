"""One request to Kraken through a ``requests`` session, and what came of it.

The request's answer is judged (:mod:`broker.answers`), a request that got no answer is classified
by whether anything was sent (:func:`broker.transport.transport_error`), and every call is reported
to the client's observer as a :class:`~broker.observer.CallEvent`.

Shared by :class:`~broker.client.KrakenClient` (its private and public calls) and
:class:`~broker.public.PublicClient`, so a public call behaves the same whichever client sends it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests

from .answers import Outcome, parse_answer
from .observer import CallEvent, Observer, notify
from .transport import Timeout, transport_error

__all__ = ["public_call", "report_call", "send_request"]


def send_request(
    session: requests.Session,
    http_method: str,
    url: str,
    *,
    method: str,
    account: str,
    timeout: Timeout,
    json_options: dict[str, Any],
    body: str | bytes | None = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Outcome:
    """Send one request for Kraken API ``method``: the judged answer, or the transport error
    (:class:`~broker.errors.KrakenConnectionError` when nothing was sent,
    :class:`~broker.errors.OutcomeUnknownError` when it may have reached Kraken)."""
    failure: requests.RequestException | None = None
    try:
        response = session.request(
            http_method, url, data=body, params=params, headers=headers, timeout=timeout
        )
    except requests.RequestException as exc:
        failure = exc
    if failure is not None:
        error = transport_error(failure, timeout=timeout, account=account, method=method)
        return Outcome(error=error, transport=failure)
    return parse_answer(response, json_options, account=account, method=method)


def report_call(
    observer: Observer | None,
    outcome: Outcome,
    *,
    account: str,
    method: str,
    private: bool,
    started: float,
    t0: float,
    key_id: str = "",
) -> None:
    """Tell ``observer`` about one finished call (``started``: Unix time it began; ``t0``: its
    ``time.perf_counter()`` then)."""
    error = outcome.error
    event = CallEvent(
        account=account,
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
    notify(observer, "on_call", event)


def public_call(
    session: requests.Session,
    base_url: str,
    method: str,
    data: Mapping[str, Any] | None,
    *,
    apiversion: str,
    account: str,
    timeout: Timeout,
    json_options: dict[str, Any],
    observer: Observer | None,
) -> Outcome:
    """``GET <base_url>/<apiversion>/public/<method>`` with ``data`` as the query string, reported
    to ``observer`` as a public call."""
    started, t0 = time.time(), time.perf_counter()
    outcome = send_request(
        session,
        "GET",
        f"{base_url}/{apiversion}/public/{method}",
        method=method,
        account=account,
        timeout=timeout,
        json_options=json_options,
        params=dict(data or {}),
    )
    report_call(
        observer, outcome, account=account, method=method, private=False, started=started, t0=t0
    )
    return outcome
