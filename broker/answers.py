"""Kraken's answers as the client reads them: the parsed document or the error it means, and
krakenex's way of handing them back (requests exceptions, scrubbed of every secret)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from .codes import api_error_from_codes
from .errors import HTTPStatusError, KrakenError, ResponseFormatError
from .transport import scrubbed
from .upstream import Answer

__all__ = ["ForwardedAnswer", "Outcome", "judge", "parse_answer"]

_BODY_EXCERPT = 200
_OK_STATUSES = (200, 201, 202)


@dataclass(frozen=True)
class ForwardedAnswer:
    """Kraken's answer to a forwarded private call, as received, and what it means."""

    status: int
    body: bytes
    content_type: str
    #: the nonce this client sent
    nonce: int
    #: the error :meth:`KrakenClient.call_private` would raise for this answer (``None``: success)
    error: KrakenError | None


@dataclass
class Outcome:
    """What one request produced: a parsed document, or why there is none."""

    doc: Any = None
    error: KrakenError | None = None
    transport: requests.RequestException | None = None
    response: requests.Response | None = None
    #: the answer as received, when it came through :class:`broker.upstream.KeptAlive`
    answer: Answer | None = None
    nonce: int | None = None
    waited_s: float = 0.0

    def krakenex_value(self, secrets: list[str], json_options: dict[str, Any]) -> Any:
        """krakenex's contract: requests exceptions for transport/HTTP, else the JSON."""
        failure: requests.RequestException | None = None
        if self.transport is not None:
            failure = scrubbed(self.transport, secrets)
        else:
            assert self.response is not None
            if self.response.status_code not in _OK_STATUSES:
                try:
                    self.response.raise_for_status()
                except requests.HTTPError as exc:
                    failure = scrubbed(exc, secrets)
        if failure is not None:
            raise failure  # outside the except block: nothing chained
        assert self.response is not None
        return self.response.json(**json_options)

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        assert isinstance(self.doc, dict)
        return self.doc.get("result", {})


def parse_answer(
    response: requests.Response, json_options: dict[str, Any], *, account: str, method: str
) -> Outcome:
    """What a requests answer means (see :func:`judge`)."""
    outcome = judge(
        response.status_code,
        lambda: response.text,
        lambda: response.json(**json_options),
        account=account,
        method=method,
    )
    outcome.response = response
    return outcome


def judge(
    status: int,
    text: Callable[[], str],
    document: Callable[[], Any],
    *,
    account: str,
    method: str,
) -> Outcome:
    """What an HTTP answer means: Kraken's document, or the error (an HTTP error page, a body
    that is not Kraken's JSON envelope, Kraken's own error codes). ``text`` and ``document`` read
    the body as text and as JSON (``ValueError`` when it is not)."""
    where = {"account": account, "method": method}
    if status not in _OK_STATUSES:
        excerpt = " ".join(text()[:_BODY_EXCERPT].split())
        return Outcome(error=HTTPStatusError(status, excerpt, **where))
    try:
        doc = document()
    except ValueError:
        excerpt = " ".join(text()[:80].split())
        return Outcome(error=ResponseFormatError(f"answer is not JSON: {excerpt!r}", **where))
    if not isinstance(doc, dict) or not isinstance(doc.get("error", []), list):
        return Outcome(error=ResponseFormatError("answer is not a Kraken JSON envelope", **where))
    codes = [str(c) for c in doc.get("error") or []]
    if any(not c.startswith("W") for c in codes):
        return Outcome(doc=doc, error=api_error_from_codes(codes, **where))
    # any JSON value is a valid result: objects, lists, and plain ``true`` (WithdrawCancel, Earn)
    return Outcome(doc=doc)
