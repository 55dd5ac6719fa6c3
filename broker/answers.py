"""Kraken's answers as the client reads them: the parsed document or the error it means, and
krakenex's way of handing them back (requests exceptions, scrubbed of every secret)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from .codes import api_error_from_codes
from .errors import HTTPStatusError, KrakenError, ResponseFormatError
from .transport import scrubbed

__all__ = ["ForwardedAnswer", "Outcome", "parse_answer"]

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
    where = {"account": account, "method": method}
    if response.status_code not in _OK_STATUSES:
        excerpt = " ".join(response.text[:_BODY_EXCERPT].split())
        return Outcome(
            error=HTTPStatusError(response.status_code, excerpt, **where), response=response
        )
    try:
        doc = response.json(**json_options)
    except ValueError:
        excerpt = " ".join(response.text[:80].split())
        return Outcome(
            error=ResponseFormatError(f"answer is not JSON: {excerpt!r}", **where),
            response=response,
        )
    if not isinstance(doc, dict) or not isinstance(doc.get("error", []), list):
        return Outcome(
            error=ResponseFormatError("answer is not a Kraken JSON envelope", **where),
            response=response,
        )
    codes = [str(c) for c in doc.get("error") or []]
    if any(not c.startswith("W") for c in codes):
        return Outcome(doc=doc, error=api_error_from_codes(codes, **where), response=response)
    # any JSON value is a valid result: objects, lists, and plain ``true`` (WithdrawCancel, Earn)
    return Outcome(doc=doc, response=response)
